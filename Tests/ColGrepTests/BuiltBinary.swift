import Foundation

/// The `colgrep` executable that `swift build --build-tests` produced, shared by the end-to-end suites.
enum BuiltBinary {
    /// What one run of the binary printed and how it exited.
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The package root (the folder holding Package.swift), found from this file's path.
    static let packageRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()

    /// Next to the test bundle, else the usual debug build folders; nil when not built.
    static let url: URL? = {
        let candidates = [Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("colgrep")]
            + [".build/debug/colgrep", ".build/x86_64-unknown-linux-gnu/debug/colgrep", ".build/arm64-apple-macosx/debug/colgrep"]
            .map { packageRoot.appendingPathComponent($0) }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    /// Starts the binary in `cwd` with the bundled fallback model, the given data dir and `env` on top
    /// of this process's environment.
    static func start(_ args: [String], cwd: URL, data: URL, env: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = url!
        p.arguments = args
        p.currentDirectoryURL = cwd
        var environment = ProcessInfo.processInfo.environment
        environment["COLGREP_DATA_DIR"] = data.path
        environment["COLGREP_FALLBACK_MODEL"] = packageRoot.appendingPathComponent(".deps/models/all-MiniLM-L6-v2").path
        // A query server started by a test's search outlives the test by at most this (not the default 10 minutes).
        environment["COLGREP_SERVER_IDLE_SECONDS"] = environment["COLGREP_SERVER_IDLE_SECONDS"] ?? "20"
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    /// Waits for a started run and collects what it printed.
    static func finish(_ started: (Process, Pipe, Pipe)) -> Run {
        let (p, out, err) = started
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}
