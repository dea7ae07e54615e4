import Foundation
import Testing
@testable import ColGrep

/// The acceleration flags through the built `colgrep` binary (from `swift build --build-tests`), on a
/// machine without a usable GPU (skipped where one exists: there `--force-gpu` rightly succeeds).
@Suite(.serialized) struct AccelerationEndToEndTests {
    typealias Run = BuiltBinary.Run
    static var packageRoot: URL { BuiltBinary.packageRoot }
    static var binary: URL? { BuiltBinary.url }

    static let noGPUHere = GPUInventory.current().count == 0

    func colgrep(_ arguments: [String], environment extra: [String: String] = [:]) throws -> Run {
        let binary = try #require(Self.binary, "build the colgrep binary first (swift build --build-tests)")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-accel-e2e-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for key in ["FORCE_CPU", "COLGREP_FORCE_CPU", "NEXT_PLAID_FORCE_CPU", "FORCE_GPU", "COLGREP_FORCE_GPU", "NEXT_PLAID_FORCE_GPU", "COLGREP_PROFILE"] {
            environment[key] = nil
        }
        environment["COLGREP_DATA_DIR"] = scratch.appendingPathComponent("data").path
        environment["XDG_CACHE_HOME"] = scratch.appendingPathComponent("cache").path
        environment.merge(extra) { $1 }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test(.enabled(if: noGPUHere)) func warmCacheForCUDAFailsNamingTheCause() throws {
        let run = try colgrep(["warm-cache", "--provider", "cuda", "--model", AccelerationRouterTests.model.path])
        #expect(run.status != 0)
        #expect(run.stderr.contains("GPU unavailable: "))
        #expect(run.stderr.count > "Error: GPU unavailable: ".count + 10) // a cause follows
    }

    @Test(.enabled(if: noGPUHere)) func warmCacheForAllCalibratesTheCPUAndSaysWhyTheGPUIsSkipped() throws {
        let run = try colgrep(["warm-cache", "--model", AccelerationRouterTests.model.path])
        #expect(run.status == 0)
        #expect(run.stdout.contains("cpu: calibration"))
        #expect(run.stdout.contains("cuda: skipped, GPU unavailable: "))
    }

    @Test func bothForceFlagsFromTheEnvironmentAreAnError() throws {
        let run = try colgrep(["warm-cache", "--provider", "cpu", "--model", AccelerationRouterTests.model.path],
                              environment: ["FORCE_CPU": "1", "COLGREP_FORCE_GPU": "true"])
        #expect(run.status != 0)
        #expect(run.stderr.contains("cannot both be set"))
    }

    /// A small project in a temp folder.
    func project() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-accel-proj-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try "def retry(url, attempts=3):\n    for i in range(attempts):\n        fetch(url)\n".write(to: root.appendingPathComponent("net.py"), atomically: true, encoding: .utf8)
        try "fn parse(text: &str) -> Vec<String> {\n    text.lines().map(String::from).collect()\n}\n".write(to: root.appendingPathComponent("parse.rs"), atomically: true, encoding: .utf8)
        return root
    }

    @Test(.enabled(if: noGPUHere)) func initWithForceGPUFailsWithTheCauseAndAutoIndexesOnTheCPU() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let model = AccelerationRoutedEncoderTests.fixture.path
        let forced = try colgrep(["init", root.path, "--model", model, "-y", "--force-gpu"])
        #expect(forced.status != 0)
        #expect(forced.stderr.contains("GPU unavailable: "))
        let viaEnv = try colgrep(["init", root.path, "--model", model, "-y"], environment: ["COLGREP_FORCE_GPU": "1"])
        #expect(viaEnv.status != 0)
        #expect(viaEnv.stderr.contains("GPU unavailable: "))
        let auto = try colgrep(["init", root.path, "--model", model, "-y"])
        #expect(auto.status == 0)
        #expect(!auto.stderr.contains("GPU unavailable"))
        // The profile goes to stderr only: normal output is the same with and without it.
        let profiled = try colgrep(["init", root.path, "--model", model, "-y"], environment: ["COLGREP_PROFILE": "1"])
        #expect(profiled.status == 0)
        #expect(profiled.stdout == auto.stdout)
        #expect(profiled.stderr.contains("colgrep profile (COLGREP_PROFILE)"))
        #expect(profiled.stderr.contains("routing: cpu"))
        #expect(profiled.stderr.contains("encode[cpu]"))
        #expect(profiled.stderr.contains("walk"))
        #expect(profiled.stderr.contains("peak memory"))
        #expect(!auto.stderr.contains("colgrep profile"))
    }
}
