/// Per-code-point flags and mappings used by the normalizers and pre-tokenizers, decoded once from
/// the generated `UnicodeTables` (measured from HF `tokenizers`, see scripts/fixtures).
struct UnicodeClasses: Sendable {
    static let removed: UInt8 = 1 << 0          // BertNormalizer clean_text drops it
    static let cleanWhitespace: UInt8 = 1 << 1  // clean_text maps it to " "
    static let chinese: UInt8 = 1 << 2          // handle_chinese_chars pads it
    static let accentMark: UInt8 = 1 << 3       // strip_accents drops it
    static let bertPunctuation: UInt8 = 1 << 4  // BertPreTokenizer isolates it
    static let bertWhitespace: UInt8 = 1 << 5   // BertPreTokenizer splits on it
    static let letter: UInt8 = 1 << 6           // \p{L} for the ByteLevel regex
    static let number: UInt8 = 1 << 7           // \p{N} for the ByteLevel regex

    /// One flag byte per code point (0...0x10FFFF).
    let flags: [UInt8]
    /// \s for the ByteLevel regex (a short list: kept apart to leave the flag byte full).
    let byteLevelSpace: [ClosedRange<UInt32>]
    let stripAccents: [UInt32: [UInt32]]
    let lowercase: [UInt32: [UInt32]]

    static let shared = UnicodeClasses()

    private init() {
        var flags = [UInt8](repeating: 0, count: 0x110000)
        func mark(_ table: String, _ flag: UInt8) {
            for range in Self.parseRanges(table) {
                for c in range { flags[Int(c)] |= flag }
            }
        }
        mark(UnicodeTables.bertRemoved, Self.removed)
        mark(UnicodeTables.bertCleanWhitespace, Self.cleanWhitespace)
        mark(UnicodeTables.bertChinese, Self.chinese)
        mark(UnicodeTables.bertAccentMarks, Self.accentMark)
        mark(UnicodeTables.bertPunctuation, Self.bertPunctuation)
        mark(UnicodeTables.bertWhitespace, Self.bertWhitespace)
        mark(UnicodeTables.byteLevelLetter, Self.letter)
        mark(UnicodeTables.byteLevelNumber, Self.number)
        self.flags = flags
        byteLevelSpace = Self.parseRanges(UnicodeTables.byteLevelSpace)
        stripAccents = Self.parseMap(UnicodeTables.bertStripAccents)
        lowercase = Self.parseMap(UnicodeTables.lowercase)
    }

    @inline(__always)
    func isByteLevelSpace(_ c: UInt32) -> Bool {
        if c < 0x80 { return c == 0x20 || (c >= 0x09 && c <= 0x0D) }
        for r in byteLevelSpace where r.contains(c) { return true }
        return false
    }

    // The tables are parsed on their UTF-8 bytes: splitting `String`s walks grapheme clusters, which made
    // this one-time decode a visible share of a one-shot search's start.

    /// `a-b,c-d,…` (hex) → ranges; malformed items are skipped.
    private static func parseRanges(_ text: String) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        for item in Array(text.utf8).split(separator: UInt8(ascii: ",")) {
            let parts = item.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
            guard parts.count == 2, let a = hex(parts[0]), let b = hex(parts[1]), a <= b else { continue }
            out.append(a...b)
        }
        return out
    }

    /// `k:v v;k:v;…` (hex) → map; malformed items are skipped, as are malformed values.
    private static func parseMap(_ text: String) -> [UInt32: [UInt32]] {
        var map: [UInt32: [UInt32]] = [:]
        for item in Array(text.utf8).split(separator: UInt8(ascii: ";")) {
            let parts = item.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard parts.count == 2, let key = hex(parts[0]) else { continue }
            map[key] = parts[1].split(separator: UInt8(ascii: " ")).compactMap { hex($0) }
        }
        return map
    }

    /// A non-empty hex number that fits in 32 bits, as `UInt32(_:radix: 16)` reads it (an optional sign aside).
    private static func hex(_ digits: ArraySlice<UInt8>) -> UInt32? {
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for d in digits {
            let v: UInt8
            switch d {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = d - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = d - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = d - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value * 16 + UInt64(v)
            if value > UInt64(UInt32.max) { return nil }
        }
        return UInt32(value)
    }
}

/// UTF-8 helpers over raw buffers (input comes from Swift `String`s, so it is valid UTF-8).
enum UTF8Bytes {
    /// Decodes the scalar starting at `i`; returns it and its byte length.
    @inline(__always)
    static func decode(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 {
            return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
        }
        return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
            | UInt32(p[i + 3] & 0x3F), 4)
    }

    @inline(__always)
    static func append(_ c: UInt32, to out: inout [UInt8]) {
        if c < 0x80 {
            out.append(UInt8(c))
        } else if c < 0x800 {
            out.append(UInt8(0xC0 | (c >> 6)))
            out.append(UInt8(0x80 | (c & 0x3F)))
        } else if c < 0x10000 {
            out.append(UInt8(0xE0 | (c >> 12)))
            out.append(UInt8(0x80 | ((c >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (c & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (c >> 18)))
            out.append(UInt8(0x80 | ((c >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((c >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (c & 0x3F)))
        }
    }

    /// Number of scalars in a UTF-8 buffer slice.
    @inline(__always)
    static func scalarCount(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int {
        var n = 0
        for i in range where p[i] & 0xC0 != 0x80 { n += 1 }
        return n
    }
}
