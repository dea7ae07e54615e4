import Foundation

/// Documents encoded in memory, before they become a segment file.
struct EncodedDocuments {
    var ids: [Int64] = []
    /// Token offsets, `ids.count + 1` values starting at 0.
    var offsets: [UInt64] = [0]
    var codes: [UInt16] = []
    var residuals: [UInt8] = []
    /// Per token `1/‖c + r‖` (`TokenInverseNorms`).
    var inverseNorms: [Float] = []

    var count: Int { ids.count }
    var tokens: Int { codes.count }
}

/// A memory-mapped segment file: sections ids (i64), token offsets (u64), codes (u16),
/// residuals (u8), IVF offsets (u32, K + 1), IVF rows (u32, sorted per centroid) and, since format
/// version 2, each token's `1/‖c + r‖` (f32, `TokenInverseNorms`; for 8-bit codecs too since version 3).
final class Segment: @unchecked Sendable {
    let record: SegmentRecord
    private let storage: SectionedFile
    let ids: UnsafeBufferPointer<Int64>
    let offsets: UnsafeBufferPointer<UInt64>
    let codes: UnsafeBufferPointer<UInt16>
    let residuals: UnsafeBufferPointer<UInt8>
    let ivfOffsets: UnsafeBufferPointer<UInt32>
    let ivfRows: UnsafeBufferPointer<UInt32>
    /// One per token.
    let inverseNorms: UnsafeBufferPointer<Float>

    var documentCount: Int { ids.count }

    /// Maps a segment file. Its structure (offsets, codes and IVF rows in range) is checked unless
    /// the file is known unchanged since it was written, so reads never go out of bounds.
    init(directory: URL, record: SegmentRecord, centroidCount: Int, bytesPerToken: Int, verification: PlaidVerification) throws {
        let url = directory.appendingPathComponent(record.file.name)
        storage = try SectionedFile(url: url, kind: .segment, record: record.file, verification: verification)
        let n = record.documents, t = record.tokens
        ids = try storage.array(0, of: Int64.self, count: n)
        offsets = try storage.array(1, of: UInt64.self, count: n + 1)
        codes = try storage.array(2, of: UInt16.self, count: t)
        residuals = try storage.array(3, of: UInt8.self, count: t * bytesPerToken)
        ivfOffsets = try storage.array(4, of: UInt32.self, count: centroidCount + 1)
        let entries = storage.sections.count > 5 ? storage.sections[5].count / 4 : 0
        ivfRows = try storage.array(5, of: UInt32.self, count: entries)
        inverseNorms = try storage.array(6, of: Float.self, count: t)
        self.record = record
        if verification == .full || !storage.trusted { try validate(url: url, centroidCount: centroidCount) }
    }

    /// Structural checks so that a damaged file that slipped past its checksum (or was opened without
    /// verification) raises an error instead of reading out of bounds.
    private func validate(url: URL, centroidCount: Int) throws {
        func fail(_ reason: String) -> PlaidError { .corrupt(file: url.path, reason: reason) }
        guard offsets.first == 0, Int(offsets.last ?? 1) == codes.count else { throw fail("token offsets do not match the token count") }
        for i in 0..<ids.count where offsets[i] >= offsets[i + 1] { throw fail("document \(i) has no tokens") }
        let k = UInt16(truncatingIfNeeded: centroidCount - 1)
        for code in codes where code > k { throw fail("centroid code \(code) out of range") }
        guard ivfOffsets.first == 0, Int(ivfOffsets.last ?? 1) == ivfRows.count else { throw fail("IVF offsets do not match its rows") }
        for c in 0..<centroidCount where ivfOffsets[c] > ivfOffsets[c + 1] { throw fail("IVF offsets decrease") }
        let n = UInt32(ids.count)
        for row in ivfRows where row >= n { throw fail("IVF row \(row) out of range") }
        // 1/‖c + r‖ of a reconstruction: finite and positive (0 only for a zero vector).
        for value in inverseNorms where !(value.isFinite && value >= 0) { throw fail("token norm \(value) is not a finite non-negative number") }
    }

    /// Token range of local document `row`.
    @inline(__always)
    func tokenRange(_ row: Int) -> Range<Int> { Int(offsets[row])..<Int(offsets[row + 1]) }

    /// Writes a segment file for `documents` and returns its record.
    static func write(_ documents: EncodedDocuments, number: Int, centroidCount: Int, to directory: URL) throws -> SegmentRecord {
        // IVF: for each centroid, the sorted distinct rows whose tokens use it (counting sort).
        let (counts, rows) = InvertedLists.build(tokenOffsets: documents.offsets, codes: documents.codes, centroidCount: centroidCount)
        let name = String(format: "segment-%08d.plaid", number)
        let file = try IndexFiles.writeSectioned(kind: .segment, sections: [
            IndexFiles.data(documents.ids), IndexFiles.data(documents.offsets), IndexFiles.data(documents.codes),
            IndexFiles.data(documents.residuals), IndexFiles.data(counts), IndexFiles.data(rows), IndexFiles.data(documents.inverseNorms),
        ], to: directory.appendingPathComponent(name))
        return SegmentRecord(number: number, file: file, documents: documents.count, tokens: documents.tokens)
    }

    /// Appends the live documents of this segment (rows not in `dead`) to `documents`.
    func copyLive(into documents: inout EncodedDocuments, dead: DeadRows?, bytesPerToken: Int) {
        for row in 0..<documentCount where !(dead?.contains(row) ?? false) {
            let range = tokenRange(row)
            documents.ids.append(ids[row])
            documents.codes.append(contentsOf: codes[range])
            documents.residuals.append(contentsOf: residuals[(range.lowerBound * bytesPerToken)..<(range.upperBound * bytesPerToken)])
            documents.inverseNorms.append(contentsOf: inverseNorms[range])
            documents.offsets.append(UInt64(documents.codes.count))
        }
    }
}

/// Deleted rows of one segment, as a bit set.
struct DeadRows: Sendable, Equatable {
    private(set) var words: [UInt64]
    private(set) var count = 0

    init(rows: Int) { words = [UInt64](repeating: 0, count: (rows + 63) / 64) }

    @inline(__always)
    func contains(_ row: Int) -> Bool { words[row >> 6] & (1 << UInt64(row & 63)) != 0 }

    /// Calls `body` with each dead row, in increasing order.
    func forEach(_ body: (Int) throws -> Void) rethrows {
        for (w, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                try body(w * 64 + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
    }

    mutating func insert(_ row: Int) {
        if !contains(row) {
            words[row >> 6] |= 1 << UInt64(row & 63)
            count += 1
        }
    }
}
