import Foundation
import Testing
@testable import CodeUnits

@Suite struct BadInputTests {
    @Test func binaryAndInvalidUTF8AreSkippedWithReasons() throws {
        let extractor = try UnitExtractor(grammarDirectory: grammarDirectory)
        let binary = extractor.extract(relativePath: "a.py", data: Data([0x7f, 0x45, 0x4c, 0x46, 0x00, 0x01]))
        #expect(binary.units.isEmpty && binary.skipReason == "binary file (NUL bytes)")
        let invalid = extractor.extract(relativePath: "b.py", data: Data([0x78, 0x20, 0x3d, 0x20, 0xff, 0xfe, 0x0a]))
        #expect(invalid.units.isEmpty && invalid.skipReason == "invalid UTF-8")
        let empty = extractor.extract(relativePath: "c.py", data: Data())
        #expect(empty.units.isEmpty && empty.skipReason == nil)
    }

    @Test func nestingPastTheRecursionLimitIsSkipped() throws {
        let extractor = try UnitExtractor(grammarDirectory: grammarDirectory, maxRecursionDepth: 64)
        let deep = "x = " + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "\n"
        let extraction = extractor.extract(relativePath: "deep.py", data: Data(deep.utf8))
        #expect(extraction.units.isEmpty && extraction.skipReason?.contains("deeper than 64 levels") == true)
        let shallow = extractor.extract(relativePath: "ok.py", data: Data("def f():\n    return [[1]]\n".utf8))
        #expect(shallow.skipReason == nil && shallow.units.map(\.name) == ["f"])
        // The default limit (1024) with 5,000 levels: skipped, not a stack overflow.
        let defaultExtractor = try UnitExtractor(grammarDirectory: grammarDirectory)
        let veryDeep = "x = " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + "\n"
        #expect(defaultExtractor.extract(relativePath: "d.py", data: Data(veryDeep.utf8)).skipReason?.contains("1024") == true)
    }

    /// A bundle whose Python library is corrupt: one warning, Python files become text documents, the
    /// other grammars keep working.
    @Test func grammarThatFailsToLoadFallsBackToTextWithOneWarning() throws {
        let dir = try TemporaryDirectory()
        let manifest = try Data(contentsOf: grammarDirectory.appendingPathComponent("manifest.json"))
        try manifest.write(to: dir.url.appendingPathComponent("manifest.json"))
        for lib in ["libtree_sitter_rust.so"] {
            try FileManager.default.createSymbolicLink(at: dir.url.appendingPathComponent(lib),
                                                       withDestinationURL: grammarDirectory.appendingPathComponent(lib))
        }
        try dir.write("libtree_sitter_python.so", "not a shared library")
        let extractor = try UnitExtractor(grammarDirectory: dir.url)
        let py = extractor.extract(relativePath: "m.py", data: Data("def f():\n    pass\n".utf8))
        #expect(py.skipReason == nil && py.units.map(\.unitType) == [.document])
        #expect(py.warnings.count == 1 && py.warnings[0].contains("python") && py.warnings[0].contains("sha256"))
        let again = extractor.extract(relativePath: "n.py", data: Data("x = 1\n".utf8))
        #expect(again.warnings.isEmpty && again.units.count == 1)
        let go = extractor.extract(relativePath: "m.go", data: Data("package m\n".utf8))
        #expect(go.warnings.count == 1 && go.warnings[0].contains("cannot read"))
        let rust = extractor.extract(relativePath: "m.rs", data: Data("fn main() {}\n".utf8))
        #expect(rust.warnings.isEmpty && rust.units.map(\.name) == ["main"])
        #expect(extractor.warnings.count == 2)
        // A language whose grammar is not in the bundle at all (QML) falls back the same way.
        let qml = extractor.extract(relativePath: "a.qml", data: Data("Item {}\n".utf8))
        #expect(qml.units.map(\.unitType) == [.document] && qml.warnings.first?.contains("not in the bundle manifest") == true)
    }

    @Test func missingManifestIsAClearError() throws {
        let dir = try TemporaryDirectory()
        #expect(throws: UnitExtractorError.self) { try UnitExtractor(grammarDirectory: dir.url) }
        let none = try UnitExtractor(grammarDirectory: nil)
        let e = none.extract(relativePath: "a.rs", data: Data("fn a() {}\n".utf8))
        #expect(e.units.map(\.unitType) == [.document] && e.warnings.count == 1)
    }

    @Test func grammarLocatorHonoursTheEnvironment() throws {
        #expect(GrammarLocator.defaultDirectory(environment: ["COLGREP_GRAMMARS_DIR": grammarDirectory.path, "HOME": "/nonexistent"])?.path
            == grammarDirectory.path)
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Data(String(repeating: "a", count: 1000).utf8)
        #expect(SHA256.hex(long) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
