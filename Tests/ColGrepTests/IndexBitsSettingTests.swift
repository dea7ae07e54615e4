import ColGrep
import Foundation
import Plaid
import Testing

/// `settings --nbits` (1, 2, 4, 8; 0 resets) beside the reference's `--binary`: what the config stores,
/// what new indexes get, and an 8-bit index built and searched through the binary.
@Suite(.serialized) struct IndexBitsSettingTests {
    @Test func configMapsBitsToTheReferenceKeys() throws {
        var c = ColGrepConfig()
        // Unset: the model's width chooses (4 bits below 256 dimensions, 8 from there).
        #expect(c.residualBits == nil)
        #expect(PlaidConfig.defaultBits(dimension: 48) == 4 && PlaidConfig.defaultBits(dimension: 128) == 4)
        #expect(PlaidConfig.defaultBits(dimension: 256) == 8 && PlaidConfig.defaultBits(dimension: 384) == 8)
        try c.setResidualBits(8)
        #expect(c.residualBits == 8 && c.indexBits == 8 && c.binaryIndex == nil)
        #expect(c.describe().contains("  index-bits:     8\n"))
        try c.setResidualBits(1)
        // One bit is the reference's binary index, stored under its key.
        #expect(c.residualBits == 1 && c.binaryIndex == true && c.indexBits == nil)
        #expect(c.describe().contains("index-bits:     1 (binary)"))
        try c.setResidualBits(2)
        #expect(c.residualBits == 2 && c.binaryIndex == nil)
        try c.setResidualBits(0)
        #expect(c == ColGrepConfig() && c.residualBits == nil)
        #expect(c.describe().contains("index-bits:     4, or 8 for models of 256+ dimensions (default)"))
        // An explicit 4 is kept: it overrides the 8 bits a wide model would get.
        try c.setResidualBits(4)
        #expect(c != ColGrepConfig() && c.residualBits == 4 && c.describe().contains("  index-bits:     4\n"))
        for bad in [3, 5, 16, -1] { #expect(throws: ColGrepError.self) { try c.setResidualBits(bad) } }
        // The stored key survives a save and load.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-bits-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try c.setResidualBits(8)
        try c.save(to: DataPaths(root: dir))
        #expect(try String(contentsOf: DataPaths(root: dir).configFile, encoding: .utf8).contains("\"index_bits\""))
        #expect(try ColGrepConfig.load(from: DataPaths(root: dir)).residualBits == 8)
    }

    @Test func settingsNbitsEightBuildsAnEightBitIndexThatFindsTheCode() throws {
        guard let _ = BuiltBinary.url,
              FileManager.default.fileExists(atPath: BuiltBinary.packageRoot.appendingPathComponent(".deps/models/all-MiniLM-L6-v2/config.json").path)
        else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-bits-\(UUID().uuidString.prefix(8))")
        let data = base.appendingPathComponent("data"), project = base.appendingPathComponent("proj")
        defer { try? FileManager.default.removeItem(at: base) }
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        try EndToEndTests.writeProject(project)
        func colgrep(_ args: [String]) throws -> BuiltBinary.Run {
            BuiltBinary.finish(try BuiltBinary.start(args, cwd: project, data: data, env: [:]))
        }
        let bad = try colgrep(["settings", "--nbits", "3"])
        #expect(bad.status != 0 && bad.stderr.contains("--nbits takes 1, 2, 4 or 8"), "\(bad.stdout)\(bad.stderr)")
        #expect(try colgrep(["settings", "--binary", "--nbits", "8"]).status != 0)
        // Unset, the fallback model's 384 dimensions get 8-bit residuals.
        #expect(try colgrep(["init"]).status == 0)
        let indices = data.appendingPathComponent("indices")
        let dir = try #require(try FileManager.default.contentsOfDirectory(atPath: indices.path).first)
        let location = indices.appendingPathComponent(dir).appendingPathComponent("index")
        #expect(try PlaidIndex.open(at: location).config.nbits == 8)
        let found = try colgrep(["--semantic-only", "-l", "retry a request with exponential backoff"])
        #expect(found.status == 0 && found.stdout.hasPrefix("src/http_client.py"), "\(found.stdout)\(found.stderr)")
        let verified = try colgrep(["status", "--verify"])
        #expect(verified.status == 0 && verified.stdout.contains("Verified"), "\(verified.stdout)\(verified.stderr)")
        // An explicit width wins once the index is rebuilt.
        let set = try colgrep(["settings", "--nbits", "4"])
        #expect(set.status == 0 && set.stdout.contains("4-bit residuals"), "\(set.stdout)\(set.stderr)")
        #expect(try colgrep(["settings"]).stdout.contains("index-bits:     4\n"))
        #expect(try colgrep(["clear"]).status == 0)
        #expect(try colgrep(["init"]).status == 0)
        let rebuilt = try #require(try FileManager.default.contentsOfDirectory(atPath: indices.path).first)
        #expect(try PlaidIndex.open(at: indices.appendingPathComponent(rebuilt).appendingPathComponent("index")).config.nbits == 4)
        #expect(try colgrep(["settings", "--nbits", "0"]).status == 0)
        #expect(try colgrep(["settings"]).stdout.contains("index-bits:     4, or 8 for models of 256+ dimensions (default)"))
    }
}
