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
}
