import Foundation
import Testing
@testable import Store

@Suite struct RegexTests {
    private func store(_ dir: TemporaryDirectory) throws -> MetadataStore {
        let store = try MetadataStore(path: dir.database, readOnly: false)
        try store.insert([
            unit(1, file: "a.rs", name: "a", code: "use std::io;\nfn main() { println!(\"Hello\"); }"),
            unit(2, file: "b.rs", name: "b", code: "fn helper() {\n    // use later\n    let abab = 1;\n}"),
            unit(3, file: "c.py", name: "c", code: "def fetch_user(id):\n    return db.get_user(id)"),
            unit(4, file: "d.py", name: "d", code: "HELLO = 'world'\nfoo = foo_bar + 1"),
        ])
        return store
    }

    @Test func caseInsensitiveUnlessAsked() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let s = try store(dir)
        #expect(try s.docIDs(whereCodeMatches: "hello", caseSensitive: false) == [1, 4])
        #expect(try s.docIDs(whereCodeMatches: "hello", caseSensitive: true) == [])
        #expect(try s.docIDs(whereCodeMatches: "HELLO", caseSensitive: true) == [4])
    }

    @Test func anchorsMatchAtLineStarts() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let s = try store(dir)
        #expect(try s.docIDs(whereCodeMatches: "^use ", caseSensitive: true) == [1])
        #expect(try s.docIDs(whereCodeMatches: #"^\s+return"#, caseSensitive: true) == [3])
        #expect(try s.docIDs(whereCodeMatches: #"1;$"#, caseSensitive: true) == [2])
    }

    @Test func lookaroundAndBackreferencesWork() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let s = try store(dir)
        #expect(try s.docIDs(whereCodeMatches: #"fetch_(?=user)"#, caseSensitive: true) == [3])
        #expect(try s.docIDs(whereCodeMatches: #"\bfoo(?!_)\b"#, caseSensitive: true) == [4])
        #expect(try s.docIDs(whereCodeMatches: #"(?<=db\.)get"#, caseSensitive: true) == [3])
        #expect(try s.docIDs(whereCodeMatches: #"\b(ab)\1\b"#, caseSensitive: true) == [2])
    }

    @Test func invalidPatternIsAClearError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let s = try store(dir)
        do {
            _ = try s.docIDs(whereCodeMatches: "fn (unclosed", caseSensitive: false)
            Issue.record("an invalid pattern was accepted")
        } catch let StoreError.invalidRegex(pattern, message) {
            #expect(pattern.contains("fn (unclosed"))
            #expect(!message.isEmpty)
        }
        #expect(throws: StoreError.self) { _ = try s.docIDs(fileMatchingRegex: "[a-") }
        // The store stays usable afterwards.
        #expect(try s.docIDs(whereCodeMatches: "fn", caseSensitive: false) == [1, 2])
    }

    @Test func catastrophicPatternEndsAsNoMatchInsteadOfHanging() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let s = try MetadataStore(path: dir.database, readOnly: false)
        let evil = String(repeating: "a", count: 40) + "!"
        try s.insert((1...10).map { unit(Int64($0), file: "f\($0)", name: "n", code: evil) } + [unit(11, file: "g", name: "n", code: "aaaa")])
        let hits = try s.docIDs(whereCodeMatches: "^(a+)+$", caseSensitive: true)
        #expect(hits.isDisjoint(with: 1...10))
        #expect(s.regexTimeouts > 0)
    }

    @Test func queryTimeLimitCutsAWholeQueryShort() throws {
        // A row limit far above the query limit: only the query budget can stop this pattern.
        let function = RegexFunction(rowTimeLimit: .seconds(60), queryTimeLimit: .milliseconds(50))
        let compiled = try function.compile("^(a+)+$")
        #expect(compiled.prefilter.mayBacktrackBadly)
        function.resetQueryBudget()
        var row = Array((String(repeating: "a", count: 40) + "!").utf8)
        let results = row.withUnsafeMutableBufferPointer { bytes in
            (0..<10).map { _ in function.matches(compiled, UnsafeBufferPointer(bytes)) }
        }
        #expect(results.allSatisfy { !$0 })
        #expect(function.timeouts == function.timeoutsBeforeGivingUp)
    }
}
