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
}
