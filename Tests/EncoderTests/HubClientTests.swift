import Foundation
import Testing
import Encoder

/// HubClient against a local stand-in for the Hub (Fixtures/hub_server.py on 127.0.0.1).
@Suite struct HubClientTests {
    private let required = ["config.json", "tokenizer.json", "model.safetensors"]

    private func hubError(_ body: () throws -> URL) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func downloadsIntoTheHubCacheLayoutThenServesTheCacheOffline() throws {
        let server = try HubTestServer()
        let env = server.environment()
        let client = HubClient(environment: env)
        let snapshot = try client.snapshot(repo: HubTestServer.repo, files: required, optionalFiles: ["onnx_config.json"])
        let repoFolder = URL(fileURLWithPath: env["HF_HOME"]!).appendingPathComponent("hub/models--acme--tiny-model")
        #expect(snapshot.path == repoFolder.appendingPathComponent("snapshots/\(HubTestServer.commit)").path)
        for (name, text) in HubTestServer.files {
            #expect(try String(contentsOf: snapshot.appendingPathComponent(name), encoding: .utf8) == text)
            let link = try FileManager.default.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent(name).path)
            #expect(link.hasPrefix("../../blobs/"))
        }
        #expect(try String(contentsOf: repoFolder.appendingPathComponent("refs/main"), encoding: .utf8) == HubTestServer.commit)
        #expect(!FileManager.default.fileExists(atPath: snapshot.appendingPathComponent("onnx_config.json").path))
        #expect(FileManager.default.fileExists(
            atPath: repoFolder.appendingPathComponent(".no_exist/\(HubTestServer.commit)/onnx_config.json").path))
        // The weights came through the cross-host CDN redirect, without the token-free request failing.
        #expect(server.requests().contains { ($0["path"] as? String)?.hasPrefix("/cdn/") == true })

        // Server gone: the cache answers.
        server.stop()
        let again = try HubClient(environment: env).snapshot(repo: HubTestServer.repo, files: required, optionalFiles: ["onnx_config.json"])
        #expect(again.path == snapshot.path)
        // HF_HUB_OFFLINE=1: the cache answers without any request.
        var offlineEnv = env
        offlineEnv["HF_HUB_OFFLINE"] = "1"
        let offline = try HubClient(environment: offlineEnv).snapshot(repo: HubTestServer.repo, files: required, optionalFiles: [])
        #expect(offline.path == snapshot.path)
    }

    @Test func offlineWithNothingCachedIsOneClearLine() throws {
        let server = try HubTestServer()
        var env = server.environment()
        env["HF_HUB_OFFLINE"] = "1"
        let message = hubError { try HubClient(environment: env).snapshot(repo: HubTestServer.repo, files: required, optionalFiles: []) }
        #expect(message.contains("acme/tiny-model@main is not in the Hugging Face cache"))
        #expect(message.contains("HF_HUB_OFFLINE"))
        #expect(!message.contains("\n"))
        #expect(server.requests().isEmpty)
        // Unreachable endpoint, nothing cached.
        server.stop()
        let unreachable = hubError {
            try HubClient(environment: server.environment()).snapshot(repo: HubTestServer.repo, files: required, optionalFiles: [])
        }
        #expect(unreachable.contains("cannot reach \(server.endpoint)"))
    }

    @Test func resumesAPartialDownloadWithARangeRequest() throws {
        let server = try HubTestServer()
        let env = server.environment()
        let text = HubTestServer.files["tokenizer.json"]!
        let etag = sha256Hex(Data(text.utf8))
        let blobs = URL(fileURLWithPath: env["HF_HOME"]!).appendingPathComponent("hub/models--acme--tiny-model/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        let half = text.utf8.count / 2
        try Data(text.utf8.prefix(half)).write(to: blobs.appendingPathComponent("\(etag).incomplete"))
        let snapshot = try HubClient(environment: env).snapshot(repo: HubTestServer.repo, files: ["tokenizer.json"], optionalFiles: [])
        #expect(try String(contentsOf: snapshot.appendingPathComponent("tokenizer.json"), encoding: .utf8) == text)
        #expect(server.requests().contains { $0["method"] as? String == "GET" && $0["range"] as? String == "bytes=\(half)-" })
        #expect(!FileManager.default.fileExists(atPath: blobs.appendingPathComponent("\(etag).incomplete").path))
    }

    @Test func missingRequiredFileIsAClearError() throws {
        let server = try HubTestServer()
        let message = hubError {
            try HubClient(environment: server.environment()).snapshot(repo: HubTestServer.repo, files: ["config.json", "missing.bin"], optionalFiles: [])
        }
        #expect(message.contains("required file missing.bin not found at revision main"))
        let badRepo = hubError {
            try HubClient(environment: server.environment()).snapshot(repo: "acme/other", files: ["config.json"], optionalFiles: [])
        }
        #expect(badRepo.contains("repository not found"))
        let badRevision = hubError {
            try HubClient(environment: server.environment()).snapshot(repo: HubTestServer.repo, revision: "nope", files: ["config.json"], optionalFiles: [])
        }
        #expect(badRevision.contains("revision \"nope\" not found"))
    }

    @Test func sendsTheTokenAsBearerFromTheEnvironmentOrTheTokenFile() throws {
        let server = try HubTestServer(requireToken: "s3cret")
        let denied = hubError {
            try HubClient(environment: server.environment()).snapshot(repo: HubTestServer.repo, files: ["config.json"], optionalFiles: [])
        }
        #expect(denied.contains("HTTP 401") && denied.contains("HF_TOKEN"))
        _ = try HubClient(environment: server.environment(["HF_TOKEN": "s3cret"]))
            .snapshot(repo: HubTestServer.repo, files: ["config.json"], optionalFiles: [])
        #expect(server.requests().contains { $0["authorization"] as? String == "Bearer s3cret" })
        // $HF_HOME/token, with a fresh cache.
        let env = server.environment(["HF_HOME": server.folder.appendingPathComponent("other-home").path])
        try FileManager.default.createDirectory(atPath: env["HF_HOME"]!, withIntermediateDirectories: true)
        try Data("s3cret\n".utf8).write(to: URL(fileURLWithPath: env["HF_HOME"]!).appendingPathComponent("token"))
        _ = try HubClient(environment: env).snapshot(repo: HubTestServer.repo, files: ["config.json"], optionalFiles: [])
    }

    @Test func pinsTagsAndCommits() throws {
        let server = try HubTestServer()
        let env = server.environment()
        let byTag = try HubClient(environment: env).snapshot(repo: HubTestServer.repo, revision: "v1", files: ["config.json"], optionalFiles: [])
        #expect(byTag.lastPathComponent == HubTestServer.commit)
        let refs = URL(fileURLWithPath: env["HF_HOME"]!).appendingPathComponent("hub/models--acme--tiny-model/refs")
        #expect(try String(contentsOf: refs.appendingPathComponent("v1"), encoding: .utf8) == HubTestServer.commit)
        server.stop()
        var offline = env
        offline["HF_HUB_OFFLINE"] = "1"
        let byCommit = try HubClient(environment: offline)
            .snapshot(repo: HubTestServer.repo, revision: HubTestServer.commit, files: ["config.json"], optionalFiles: [])
        #expect(byCommit.path == byTag.path)
    }

    @Test func rejectsMalformedRepoIDs() {
        let message = hubError { try HubClient(environment: [:]).snapshot(repo: "../etc", files: [], optionalFiles: []) }
        #expect(message.contains("not a Hub model id"))
    }
}

/// SHA-256 via the system's sha256sum, only to name the blob the server will use as ETag.
private func sha256Hex(_ data: Data) -> String {
    let input = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
    try? data.write(to: input)
    defer { try? FileManager.default.removeItem(at: input) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["sha256sum", input.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try? process.run()
    process.waitUntilExit()
    return String(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64))
}
