import Foundation

/// Runs Fixtures/hub_server.py (python3, stdlib only) on a free port of 127.0.0.1 for one test.
final class HubTestServer {
    static let commit = "0123456789abcdef0123456789abcdef01234567"
    static let repo = "acme/tiny-model"
    static let files = [
        "config.json": "{\"hidden_size\": 8}",
        "tokenizer.json": String(repeating: "{\"tokenizer\": true} ", count: 500),
        "model.safetensors": String(repeating: "weights-", count: 4000),
    ]

    let folder: URL
    let port: Int
    private let process: Process
    private var logURL: URL { folder.appendingPathComponent("requests.jsonl") }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    init(requireToken: String? = nil) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("hub-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var manifest: [String: Any] = [
            "repo": Self.repo, "commit": Self.commit, "tags": ["v1"], "files": Self.files,
            "redirect": ["model.safetensors"],
        ]
        if let requireToken { manifest["require_token"] = requireToken }
        let manifestURL = folder.appendingPathComponent("manifest.json")
        try JSONSerialization.data(withJSONObject: manifest).write(to: manifestURL)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/hub_server.py")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, manifestURL.path, folder.appendingPathComponent("requests.jsonl").path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // The server prints its port once it listens.
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "hub_server.py did not start (is python3 installed?)"])
        }
        self.port = port
    }

    func stop() {
        if process.isRunning {
            // SIGKILL: the test runner's threads may block SIGTERM, and children inherit that mask.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The requests the server saw, one dictionary each.
    func requests() -> [[String: Any]] {
        guard let text = try? String(contentsOf: logURL, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// A fresh HF_HOME under the server's folder.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ["HF_ENDPOINT": endpoint, "HF_HOME": folder.appendingPathComponent("hf-home").path, "HOME": folder.path]
        env.merge(extra) { $1 }
        return env
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }
}
