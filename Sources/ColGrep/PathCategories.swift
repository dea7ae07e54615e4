import Foundation

/// The path categories of ColGREP's path penalty (reference §2.5: test files and folders, compat /
/// legacy folders, examples), decided on the path's UTF-8 bytes. The reference states them as regular
/// expressions; evaluating four ICU regexes per candidate file cost a one-shot search ~10 ms, so
/// these are the same rules written as suffix, prefix and component checks
/// (`PathCategoriesTests` checks them against the reference's expressions). Every literal is ASCII and
/// is compared byte for byte, as the expressions compare code points: checks on `String` characters
/// cost a search another ~5 ms (grapheme breaking and Foundation's `range(of:)` on ~500 paths).
enum PathCategories {
    /// A test file by its name (`test_x.py`, `x_test.go`, `FooTest.java`, `x.spec.ts`, …).
    static func isTestFile(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { isTestFile(name: lastComponent($0)) }
    }

    /// A `tests`, `test`, `__tests__`, `spec` or `testing` component anywhere in the path.
    static func isInTestFolder(_ path: String) -> Bool {
        anyComponent(of: path, in: testFolders)
    }

    /// A `compat`, `_compat` or `legacy` component anywhere in the path.
    static func isInCompatFolder(_ path: String) -> Bool {
        anyComponent(of: path, in: compatFolders)
    }

    /// An `example(s)`, `_example(s)`, `doc_src` or `docs_src` component anywhere in the path.
    static func isInExamplesFolder(_ path: String) -> Bool {
        anyComponent(of: path, in: exampleFolders)
    }

    private static let testFolders = bytes(["test", "tests", "__tests__", "spec", "testing"])
    private static let compatFolders = bytes(["compat", "_compat", "legacy"])
    private static let exampleFolders = bytes(["example", "examples", "_example", "_examples", "doc_src", "docs_src"])

    private static func bytes(_ words: [String]) -> [[UInt8]] { words.map { Array($0.utf8) } }

    private typealias Bytes = UnsafeBufferPointer<UInt8>

    private static func isTestFile(name base: Bytes) -> Bool {
        if base.starts(with: "test_".utf8) && base.hasSuffix(".py") { return true }
        if base.elementsEqual("conftest.py".utf8) || base.elementsEqual("tests.rs".utf8) { return true }
        if base.starts(with: "tst_".utf8) && base.hasSuffix(".qml") { return true }
        if base.starts(with: "test_helper".utf8) { return true }
        if base.hasSuffix(".bats") { return true }
        for suffix in fixedTestSuffixes where base.hasSuffix(suffix) { return true }
        return hasScriptTestSuffix(base) || hasSpecInfix(base)
    }

    /// Endings that make a test file whatever comes before them.
    private static let fixedTestSuffixes: [[UInt8]] = {
        var endings = ["_test.py", "_test.go", "Test.java", "Tests.java", "_spec.rb", "_test.rb", "_test.rs", "_test.ts",
                       "Test.cpp", "Test.h"]
        for ext in ["cs", "kt", "swift", "scala", "php"] { endings += ["Test.\(ext)", "Tests.\(ext)"] }
        for ext in ["scala", "hs", "kt", "swift"] { endings.append("Spec.\(ext)") }
        for ext in ["c", "cc", "cpp", "h", "hpp", "ex", "exs", "dart", "lua", "zig"] { endings.append("_test.\(ext)") }
        for ext in ["c", "cc", "cpp"] { endings.append("_tests.\(ext)") }
        return bytes(endings)
    }()

    /// `.test.` or `.spec.` followed by a JavaScript / TypeScript extension (`[cm]?[jt]sx?`) at the end.
    private static func hasScriptTestSuffix(_ base: Bytes) -> Bool {
        for marker in [Array(".test.".utf8), Array(".spec.".utf8)] {
            for end in occurrenceEnds(of: marker, in: base) where isScriptExtension(Bytes(rebasing: base[end...])) { return true }
        }
        return false
    }

    private static func isScriptExtension(_ ext: Bytes) -> Bool {
        var i = 0
        if i < ext.count, ext[i] == UInt8(ascii: "c") || ext[i] == UInt8(ascii: "m") { i += 1 }
        guard i < ext.count, ext[i] == UInt8(ascii: "j") || ext[i] == UInt8(ascii: "t") else { return false }
        i += 1
        guard i < ext.count, ext[i] == UInt8(ascii: "s") else { return false }
        i += 1
        return i == ext.count || (i + 1 == ext.count && ext[i] == UInt8(ascii: "x"))
    }

    /// `.spec.` with at least one character after it, in the file name.
    private static func hasSpecInfix(_ base: Bytes) -> Bool {
        occurrenceEnds(of: Array(".spec.".utf8), in: base).contains { $0 < base.count }
    }

    /// The end offsets of every occurrence of `marker` in `text`, overlapping ones included.
    private static func occurrenceEnds(of marker: [UInt8], in text: Bytes) -> [Int] {
        guard text.count >= marker.count else { return [] }
        return (0...(text.count - marker.count)).filter { start in
            marker.indices.allSatisfy { text[start + $0] == marker[$0] }
        }.map { $0 + marker.count }
    }

    /// The bytes after the last `/` (the whole path without one).
    private static func lastComponent(_ path: Bytes) -> Bytes {
        guard let slash = path.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return Bytes(rebasing: path[(slash + 1)...])
    }

    /// Whether any component of the path equals one of `names`. The reference's expressions
    /// (`(^|/)tests(/|$)`) also match the last component, so a file named `tests` counts as in a test
    /// folder, as there.
    private static func anyComponent(of path: String, in names: [[UInt8]]) -> Bool {
        var path = path
        return path.withUTF8 { bytes in
            bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).contains { component in
                names.contains { component.elementsEqual($0) }
            }
        }
    }
}

private extension UnsafeBufferPointer<UInt8> {
    func hasSuffix(_ suffix: String) -> Bool { hasSuffix(Array(suffix.utf8)) }

    func hasSuffix(_ suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
