import Foundation
import Testing
@testable import CodeUnits

@Suite struct EmbeddingTextTests {
    @Test func pathNormalization() {
        #expect(EmbeddingText.normalizedPath("src/utils/HttpClientHelper.rs") == "src utils http client helper HttpClientHelper.rs")
        #expect(EmbeddingText.normalizedPath("src/Makefile") == "src makefile Makefile")
        #expect(EmbeddingText.normalizedPath("a/b/c/d/e/my_file-name.py") == "c d e my file name my_file-name.py")
    }

    @Test func fieldOrderAndEmptyFieldsLeftOut() {
        var unit = CodeUnit(name: "get", qualifiedName: "src/a.py::Cache::get", file: "src/a.py", line: 1, endLine: 2,
                            language: "python", unitType: .method, signature: "def get(self, key):", docstring: "Gets.",
                            parameters: ["key"], returnType: "int", parentClass: "Cache", calls: ["load", "dumps"],
                            calledBy: ["main"], variables: ["v"], imports: ["json"], code: "def get(self, key):\n    return 1")
        unit.extends = nil
        let text = EmbeddingText.build(for: unit)
        #expect(text == """
            Method: get
            Signature: def get(self, key):
            Class: Cache
            Description: Gets.
            Parameters: key
            Returns: int
            Calls: load, dumps
            Called by: main
            Variables: v
            Uses: json
            File: src a a.py
            Code:
            def get(self, key):
                return 1
            """)
        var raw = unit
        raw.unitType = .rawcode
        #expect(EmbeddingText.build(for: raw) == unit.code)
    }

    @Test func truncationAt8192CharactersWithMarker() {
        let code = String(repeating: "é", count: 10_000)
        let unit = CodeUnit(name: "f", qualifiedName: "f.py::f", file: "f.py", line: 1, endLine: 1, language: "python",
                            unitType: .function, signature: "def f():", code: code)
        let text = EmbeddingText.build(for: unit)
        #expect(text.unicodeScalars.count == 8192)
        #expect(text.hasSuffix("\n[...truncated...]\n"))
        #expect(text.hasPrefix("Function: f\nSignature: def f():\nFile: f f.py\nCode:\n"))
        let exact = String(repeating: "ü", count: 8192)
        #expect(EmbeddingText.truncate(exact) == exact)
        let over = exact + "x"
        #expect(EmbeddingText.truncate(over).unicodeScalars.count == 8192 && EmbeddingText.truncate(over).hasSuffix("[...truncated...]\n"))
        let short = CodeUnit(name: "f", qualifiedName: "f", file: "f.py", line: 1, endLine: 1, language: "python",
                             unitType: .constant, signature: "", code: "X = 1")
        #expect(EmbeddingText.build(for: short) == "X = 1")
    }

    @Test func callGraphSpansFilesAndIgnoresRawCode() throws {
        let extractor = try UnitExtractor(grammarDirectory: grammarDirectory)
        var units = extractor.extract(relativePath: "a.py", data: Data("def helper():\n    return 1\n".utf8)).units
        units += extractor.extract(relativePath: "b.py", data: Data("from a import helper\n\ndef main():\n    helper()\n\nhelper()\n".utf8)).units
        units += extractor.extract(relativePath: "c.go", data: Data("package c\n\nfunc Run() { helper() }\n".utf8)).units
        CallGraph.resolve(&units)
        let helper = try #require(units.first { $0.name == "helper" })
        #expect(helper.calledBy == ["Run", "main"])
        CallGraph.resolve(&units)
        #expect(units.first { $0.name == "helper" }?.calledBy == ["Run", "main"])
    }

    @Test func textFormatsAreWholeFileDocuments() throws {
        let extractor = try UnitExtractor(grammarDirectory: grammarDirectory)
        let md = extractor.extract(relativePath: "docs/Guide.md", data: Data("\n# Guide\nline two\n\nmore\n\n".utf8)).units
        #expect(md.count == 1)
        let doc = try #require(md.first)
        #expect(doc.unitType == .document && doc.name == "Guide" && doc.line == 1 && doc.endLine == 5)
        #expect(doc.signature == "# Guide" && doc.docstring == "# Guide line two" && doc.language == "markdown")
        #expect(extractor.extract(relativePath: "x.yaml", data: Data("   \n\n".utf8)).units.isEmpty)
        #expect(extractor.extract(relativePath: "Dockerfile", data: Data("FROM x\n".utf8)).units.first?.language == "dockerfile")
        #expect(extractor.extract(relativePath: "run.sh", data: Data("echo hi\n".utf8)).units.first?.unitType == .document)
    }

    @Test func jsonMatchesTheReferenceKeys() throws {
        let unit = CodeUnit(name: "f", qualifiedName: "a.py::f", file: "a.py", line: 1, endLine: 2, language: "python",
                            unitType: .function, signature: "def f():", code: "def f():\n  pass")
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(unit)) as! [String: Any]
        #expect(Set(object.keys) == ["name", "qualified_name", "file", "line", "end_line", "language", "unit_type", "signature",
                                     "docstring", "parameters", "return_type", "extends", "parent_class", "calls", "called_by",
                                     "complexity", "has_loops", "has_branches", "has_error_handling", "variables", "imports", "code"])
        #expect(try JSONDecoder().decode(CodeUnit.self, from: JSONEncoder().encode(unit)) == unit)
    }

    @Test func embeddedScriptsInVueSvelteHtml() throws {
        let extractor = try UnitExtractor(grammarDirectory: grammarDirectory)
        let vue = """
            <template>
              <div>{{ msg }}</div>
            </template>

            <script setup lang="ts">
            import { ref } from "vue"
            function greet(name: string): string {
              return name.trim()
            }
            </script>
            """
        let units = extractor.extract(relativePath: "App.vue", data: Data(vue.utf8)).units
        let greet = try #require(units.first { $0.name == "greet" })
        #expect(greet.line == 7 && greet.endLine == 9 && greet.language == "vue" && greet.calls == ["trim"])
        #expect(units.contains { $0.unitType == .rawcode && $0.line == 1 })
        let html = "<html>\n<script>\nfunction hello() { alert(1) }\n</script>\n</html>\n"
        let h = extractor.extract(relativePath: "i.html", data: Data(html.utf8)).units
        #expect(h.contains { $0.name == "hello" && $0.line == 3 && $0.unitType == .function })
    }
}
