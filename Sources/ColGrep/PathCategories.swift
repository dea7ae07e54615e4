import Foundation

/// The path categories of ColGREP's path penalty (reference §2.5: test files and folders, compat /
/// legacy folders, examples), decided on the path's bytes. The reference states them as regular
/// expressions; evaluating four ICU regexes per candidate file cost a one-shot search ~10 ms, so
/// these are the same rules written as suffix, prefix and component checks
/// (`PathCategoriesTests` checks them against the reference's expressions).
enum PathCategories {
    /// A test file by its name (`test_x.py`, `x_test.go`, `FooTest.java`, `x.spec.ts`, …).
    static func isTestFile(_ path: String) -> Bool {
        let base = Substring(lastComponent(path))
        if base.hasPrefix("test_") && base.hasSuffix(".py") { return true }
        if base == "conftest.py" || base == "tests.rs" { return true }
        if base.hasPrefix("tst_") && base.hasSuffix(".qml") { return true }
        if base.hasPrefix("test_helper") { return true }
        if base.hasSuffix(".bats") { return true }
        for suffix in fixedTestSuffixes where base.hasSuffix(suffix) { return true }
        if hasScriptTestSuffix(base) || hasSpecInfix(base) { return true }
        return false
    }

    /// A `tests`, `test`, `__tests__`, `spec` or `testing` component anywhere in the path.
    static func isInTestFolder(_ path: String) -> Bool {
        folders(path).contains { $0 == "test" || $0 == "tests" || $0 == "__tests__" || $0 == "spec" || $0 == "testing" }
    }

    /// A `compat`, `_compat` or `legacy` component anywhere in the path.
    static func isInCompatFolder(_ path: String) -> Bool {
        folders(path).contains { $0 == "compat" || $0 == "_compat" || $0 == "legacy" }
    }

    /// An `example(s)`, `_example(s)`, `doc_src` or `docs_src` component anywhere in the path.
    static func isInExamplesFolder(_ path: String) -> Bool {
        folders(path).contains { $0 == "example" || $0 == "examples" || $0 == "_example" || $0 == "_examples" || $0 == "doc_src" || $0 == "docs_src" }
    }

    /// Endings that make a test file whatever comes before them.
    private static let fixedTestSuffixes: [String] = {
        var endings = ["_test.py", "_test.go", "Test.java", "Tests.java", "_spec.rb", "_test.rb", "_test.rs", "_test.ts",
                       "Test.cpp", "Test.h"]
        for ext in ["cs", "kt", "swift", "scala", "php"] { endings += ["Test.\(ext)", "Tests.\(ext)"] }
        for ext in ["scala", "hs", "kt", "swift"] { endings.append("Spec.\(ext)") }
        for ext in ["c", "cc", "cpp", "h", "hpp", "ex", "exs", "dart", "lua", "zig"] { endings.append("_test.\(ext)") }
        for ext in ["c", "cc", "cpp"] { endings.append("_tests.\(ext)") }
        return endings
    }()

    /// `.test.` or `.spec.` followed by a JavaScript / TypeScript extension (`[cm]?[jt]sx?`) at the end.
    private static func hasScriptTestSuffix(_ base: Substring) -> Bool {
        for marker in [".test.", ".spec."] {
            var search = base[...]
            while let range = search.range(of: marker) {
                if isScriptExtension(base[range.upperBound...]) { return true }
                search = base[base.index(after: range.lowerBound)...]
            }
        }
        return false
    }

    private static func isScriptExtension(_ ext: Substring) -> Bool {
        var rest = ext[...]
        if let first = rest.first, first == "c" || first == "m" { rest = rest.dropFirst() }
        guard let letter = rest.first, letter == "j" || letter == "t" else { return false }
        rest = rest.dropFirst()
        guard rest.first == "s" else { return false }
        rest = rest.dropFirst()
        return rest.isEmpty || rest == "x"
    }

    /// `.spec.` with at least one character after it, in the file name.
    private static func hasSpecInfix(_ base: Substring) -> Bool {
        var search = base[...]
        while let range = search.range(of: ".spec.") {
            if range.upperBound < base.endIndex { return true }
            search = base[base.index(after: range.lowerBound)...]
        }
        return false
    }

    private static func lastComponent(_ path: String) -> Substring {
        path.lastIndex(of: "/").map { path[path.index(after: $0)...] } ?? path[...]
    }

    /// Every component of the path. The reference's expressions (`(^|/)tests(/|$)`) also match the last
    /// one, so a file named `tests` counts as in a test folder, as there.
    private static func folders(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: false)
    }
}
