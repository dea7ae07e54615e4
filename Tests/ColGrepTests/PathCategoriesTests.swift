import Foundation
import Testing
@testable import ColGrep

/// The path penalty's categories equal the reference's regular expressions (§2.5, kept here as the
/// oracle) on hand-picked paths and on thousands of paths built from the pieces those expressions test.
@Suite struct PathCategoriesTests {
    static let testFile = try! NSRegularExpression(pattern: [
        #"(^|/)test_[^/]*\.py$"#, #"_test\.py$"#, #"(^|/)conftest\.py$"#, #"_test\.go$"#,
        #"Tests?\.java$"#, #"\.(test|spec)\.[cm]?[jt]sx?$"#, #"\.spec\.[^/]+$"#, #"_spec\.rb$"#, #"_test\.rb$"#,
        #"_test\.rs$"#, #"(^|/)tests\.rs$"#, #"Tests?\.(cs|kt|swift|scala|php)$"#, #"Spec\.(scala|hs|kt|swift)$"#,
        #"(^|/)tst_[^/]*\.qml$"#, #"\.bats$"#, #"(^|/)test_helpers?[^/]*$"#, #"_test\.(c|cc|cpp|h|hpp|exs?|dart|lua|zig)$"#,
        #"_tests?\.(c|cc|cpp)$"#, #"Test\.(cpp|h)$"#, #"_test\.ts$"#,
    ].joined(separator: "|"))
    static let testDir = try! NSRegularExpression(pattern: #"(^|/)(tests?|__tests__|spec|testing)(/|$)"#)
    static let compatDir = try! NSRegularExpression(pattern: #"(^|/)(compat|_compat|legacy)(/|$)"#)
    static let examplesDir = try! NSRegularExpression(pattern: #"(^|/)(_?examples?|docs?_src)(/|$)"#)

    static func matches(_ r: NSRegularExpression, _ s: String) -> Bool {
        r.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    func expectSameAsReference(_ path: String) {
        #expect(PathCategories.isTestFile(path) == Self.matches(Self.testFile, path), "test file: \(path)")
        #expect(PathCategories.isInTestFolder(path) == Self.matches(Self.testDir, path), "test folder: \(path)")
        #expect(PathCategories.isInCompatFolder(path) == Self.matches(Self.compatDir, path), "compat: \(path)")
        #expect(PathCategories.isInExamplesFolder(path) == Self.matches(Self.examplesDir, path), "examples: \(path)")
    }

    @Test func handPickedPaths() {
        let paths = [
            "src/test_utils.py", "test_x.py", "a/b_test.py", "conftest.py", "pkg/conftest.pyc", "x_test.go",
            "FooTest.java", "FooTests.java", "a.test.ts", "a.spec.tsx", "a.test.mjs", "a.test.cjsx", "a.test.tsxx",
            "a.spec.", "a.spec.x", "a.spec.b/c.py", "x_spec.rb", "lib/tests.rs", "mytests.rs", "BarTests.swift",
            "BarSpec.kt", "tst_view.qml", "run.bats", "test_helpers.rb", "test_helper", "x_test.exs", "x_test.ex",
            "x_tests.cc", "XTest.h", "x_test.ts", "src/main.rs", "tests/main.rs", "src/testing", "a/spec/b.rb",
            "a/specs/b.rb", "compat/x.py", "_compat.py", "src/_compat/x", "legacy", "docs_src/a.md", "doc_src/x",
            "_examples/a.go", "example/x", "examples", "myexamples/a", "a//tests//b", "/tests/x", "Test.java.bak",
            "a.test.js/", "x.spec.js", "dir.test.ts/file.go", "", "/", "test_", "a.test.test.ts",
        ]
        for path in paths { expectSameAsReference(path) }
    }

    @Test func generatedPathsFromThePiecesTheRulesTest() {
        let folders = ["", "src/", "tests/", "test/", "__tests__/", "spec/", "testing/", "compat/", "_compat/", "legacy/",
                       "example/", "_examples/", "docs_src/", "doc_src/", "a/tests/b/", "specs/", "xtest/", "compats/"]
        let stems = ["test_a", "a", "conftest", "tests", "tst_a", "test_helper", "test_helpers_x", "Foo", "a.test", "a.spec",
                     "a_test", "a_tests", "FooTest", "FooTests", "FooSpec", "a.spec.b", "legacy", "examples"]
        let extensions = ["", ".py", ".go", ".java", ".js", ".ts", ".tsx", ".mjs", ".cjsx", ".rb", ".rs", ".cs", ".kt",
                          ".swift", ".scala", ".php", ".hs", ".qml", ".bats", ".c", ".cc", ".cpp", ".h", ".hpp", ".ex",
                          ".exs", ".dart", ".lua", ".zig", ".jsxx", "."]
        var count = 0
        for folder in folders {
            for stem in stems {
                for ext in extensions {
                    expectSameAsReference(folder + stem + ext)
                    count += 1
                }
            }
        }
        #expect(count == folders.count * stems.count * extensions.count)
    }
}
