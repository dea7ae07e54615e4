import ArgumentParser
import Foundation

/// The Python of a benchmark's peers (a venv the bench command names): checked once with a clear
/// install line, then used to run the peer scripts.
struct PeerPython {
    let path: String
    /// Extra environment for the peers (thread counts, quieter libraries).
    var environment: [String: String] = [:]

    /// Fails with the install command unless `path` exists and imports `modules`.
    func require(modules: String, describedAs what: String, install: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("no Python at \(path). Create the peers' venv with:\n  \(install)")
        }
        do {
            try run(["-c", "import \(modules)"], quiet: true)
        } catch {
            throw ValidationError("\(path) lacks \(what). Install with:\n  \(install)")
        }
    }

    /// Runs `arguments`; its output goes to stderr (nowhere when `quiet`). A non-zero exit is an error.
    func run(_ arguments: [String], quiet: Bool = false) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.standardError
        if quiet { process.standardError = FileHandle.nullDevice; process.standardOutput = FileHandle.nullDevice }
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(path) \(arguments.first ?? "") exited with status \(process.terminationStatus)")
        }
    }
}
