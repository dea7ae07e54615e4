import Foundation
import Testing
@testable import Store

/// The lean reads a one-shot search uses instead of full records and ICU scans: same answers, less work.
@Suite struct SearchReadTests {
    /// Codes with the literal at the start, the end, inside a longer word, across lines, next to
    /// multi-byte characters, in another case (no match), and with regex metacharacters taken literally.
    static let codes: [String] = [
        "retry with backoff()",
        "// call retry with backoff",
        "superretry with backoffs",
        "retry\nwith backoff",
        "é retry with backoff ü",
        "Retry With Backoff",
        "a.b*c (x|y) $1 [z]",
        "a.b*c (x|y) $1 [z] again",
        "axb*c",
        "",
        "ünïcödé 🚀 retry with backoff🚀",
    ]

    func store(_ dir: TemporaryDirectory) throws -> MetadataStore {
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        try writer.insert(Self.codes.enumerated().map { unit(Int64($0.offset + 1), file: "f\($0.offset).swift", name: "u\($0.offset)", code: $0.element) })
        return try MetadataStore(path: dir.database, readOnly: true)
    }

    @Test func aLiteralScanFindsWhatTheEscapedRegexFinds() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let reader = try store(dir)
        for literal in ["retry with backoff", "Retry With Backoff", "a.b*c (x|y) $1 [z]", "🚀 retry", "backoff🚀", "with", "é", "nowhere at all"] {
            let escaped = NSRegularExpression.escapedPattern(for: literal)
            let viaRegex = try reader.docIDs(whereCodeMatches: escaped, caseSensitive: true)
            let viaBytes = try reader.docIDs(whereCodeContains: literal)
            #expect(viaBytes == viaRegex, "\(literal)")
        }
        #expect(try reader.docIDs(whereCodeContains: "retry with backoff") == [1, 2, 3, 5, 11])
        #expect(try reader.docIDs(whereCodeContains: "a.b*c (x|y) $1 [z]") == [7, 8])
        #expect(try reader.docIDs(whereCodeContains: "").count == Self.codes.count)
    }

    /// Many keyword candidates are checked on several connections at once, with the serial check's answer.
    @Test func aLiteralCheckSpreadOverConnectionsFindsWhatTheSerialOneFinds() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        let codes: [String] = (0..<400).map { i in
            switch i % 8 {
            case 0: return "func f\(i)() { retry with backoff(\(i)) }"
            case 1: return "// retry, then backoff \(i)"
            case 2: return "let x\(i) = retry_with_backoff"
            default: return "let value\(i) = compute(\(i))"
            }
        }
        try writer.insert(codes.enumerated().map { unit(Int64($0.offset + 1), file: "g\($0.offset / 10).swift", name: "v\($0.offset)", code: $0.element) })
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        let expected = Set((0..<400).filter { $0 % 8 == 0 }.map { Int64($0 + 1) })
        for _ in 0..<2 {
            #expect(try reader.docIDs(whereCodeContains: "retry with backoff", spreadFrom: 2) == expected)
            #expect(try reader.docIDs(whereCodeContains: "retry with backoff", spreadFrom: .max) == expected)
            #expect(try reader.docIDs(whereCodeContains: "then backoff", spreadFrom: 2)
                        == Set((0..<400).filter { $0 % 8 == 1 }.map { Int64($0 + 1) }))
        }
        // Literals with no whole identifier read every row: the id range is split into runs read side by side,
        // with the serial scan's answer, the first and last ids and ids left by deletions included.
        try writer.delete(docIDs: [5, 6, 7, 200, 201])
        let spread = try MetadataStore(path: dir.database, readOnly: true)
        for literal in ["compute(", "retry", "(", "value399", "let value3 ", "no such text"] {
            let serial = try spread.docIDs(whereCodeContains: literal, spreadFrom: .max)
            #expect(try spread.docIDs(whereCodeContains: literal, spreadFrom: 2) == serial, "\(literal)")
            let direct = Set(codes.enumerated().filter { ![5, 6, 7, 200, 201].contains($0.offset + 1) && $0.element.contains(literal) }
                .map { Int64($0.offset + 1) })
            #expect(serial == direct, "\(literal)")
        }
    }

    @Test func locationsMatchTheRecordsWithoutTheirContent() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        try writer.insert([fullRecord(3), fullRecord(1), unit(9, file: "a.swift", name: "", code: "")])
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        let ids: [Int64] = [9, 77, 3, 1, 3]
        let records = try reader.records(docIDs: ids)
        let locations = try reader.locations(docIDs: ids)
        #expect(locations.map(\.docID) == [9, 3, 1, 3])
        #expect(locations == records.map { UnitLocation(docID: $0.docID, file: $0.file, name: $0.name, unitType: $0.unitType, line: $0.line, endLine: $0.endLine) })
    }

    /// Each read runs in one read transaction (one lock for its many statements) that ends with the
    /// call: a reader sees every commit a writer made between two of its reads, also after a failed read.
    @Test func eachReadIsOneSnapshotThatEndsWithTheCall() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        try writer.insert([fullRecord(1), fullRecord(2)])
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        #expect(try reader.locations(docIDs: [1, 2, 3]).map(\.docID) == [1, 2])
        try writer.insert([fullRecord(3)])
        #expect(try reader.locations(docIDs: [1, 2, 3]).map(\.docID) == [1, 2, 3])
        #expect(try reader.records(docIDs: [3]).map(\.name) == ["sendRequest3"])
        #expect((try? reader.docIDs(whereCodeMatches: "(unclosed", caseSensitive: true)) == nil)
        try writer.delete(docIDs: [1])
        #expect(try reader.allDocIDs() == [2, 3])
        // The writer's own reads see its writes, in or out of its transactions.
        #expect(try writer.locations(docIDs: [1, 2, 3]).map(\.docID) == [2, 3])
    }
}

/// The keyword-index narrowing of the literal scan never loses a unit: on a corpus of camelCase,
/// snake_case, digits, punctuation and non-ASCII, every literal cut from it (and some that are not in
/// it) finds exactly what a scan of every row finds.
@Suite struct LiteralNarrowingTests {
    static let codes: [String] = [
        "func doRetryWith(backoff: Int) { retry with backoff; }",
        "// Parse command line arguments with getopt_long(argc, argv)",
        "let parseCommandLine = args.map { $0.lowercased() } // parse command line",
        "error handling when a file cannot be read: throw FileError.unreadable(path)",
        "if (x2abc == HTTPResponse.ok) { sort_results_by(score); }",
        "naïve café: résumé → sort results by score → done",
        "compute a hash of the content: xxh3(content)",
        "compute_a_hash_of_the_content()",
        "ObjectMapper mapper = new ObjectMapper(); mapper.readValue(json, Foo.class);",
        "__init__(self, a, b) -> None: pass",
    ] + (0..<40).map { "filler unit \($0) with words like handling, file, score and results" }

    @Test func narrowedScansFindWhatFullScansFind() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        try writer.insert(Self.codes.enumerated().map { unit(Int64($0.offset + 1), file: "f\($0.offset).txt", name: "u\($0.offset)", code: $0.element) })
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        var literals = ["retry with backoff", "parse command line", "command line arguments with", "a file cannot be",
                        "sort results by score", "HTTPResponse.ok) {", "x2abc == HTTP", "café: résumé →", "a hash of the",
                        "readValue(json, Foo", "(self, a, b)", "_a_hash_of_", "not in any unit at all", "with", "by score"]
        // Every substring between two spaces of every unit, and some cut mid-word.
        for code in Self.codes.prefix(10) {
            let words = code.split(separator: " ", omittingEmptySubsequences: false)
            for start in 0..<max(words.count - 3, 1) { literals.append(words[start..<min(start + 4, words.count)].joined(separator: " ")) }
            literals.append(String(code.dropFirst(3).prefix(17)))
        }
        var narrowed = 0
        for literal in literals {
            let expected = Set(Self.codes.enumerated().filter { $0.element.utf8.contains(literal.utf8) }.map { Int64($0.offset + 1) })
            #expect(try reader.docIDs(whereCodeContains: literal) == expected, "\(literal)")
            if !KeywordQuery.wholeIdentifierTokens(of: literal).isEmpty { narrowed += 1 }
        }
        #expect(narrowed > literals.count / 2, "most of these literals take the narrowed path")
    }

    @Test func wholeIdentifiersAreTheOnesBetweenTheFirstAndLastSeparator() {
        #expect(KeywordQuery.wholeIdentifierTokens(of: "retry with backoff") == ["with"])
        #expect(KeywordQuery.wholeIdentifierTokens(of: "parse command line arguments") == ["command", "line"])
        #expect(KeywordQuery.wholeIdentifierTokens(of: "a getHTTPResponse b") == ["gethttpresponse", "get", "http", "response", "get_http", "http_response"])
        #expect(KeywordQuery.wholeIdentifierTokens(of: "ObjectMapper").isEmpty)
        #expect(KeywordQuery.wholeIdentifierTokens(of: "readValue(").isEmpty)
        #expect(KeywordQuery.wholeIdentifierTokens(of: "x 12 y").isEmpty)
        #expect(KeywordQuery.wholeIdentifierTokens(of: "é word é") == ["word"])
    }
}
