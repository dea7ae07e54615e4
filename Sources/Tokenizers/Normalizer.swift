import Foundation

/// The `normalizer` section of a `tokenizer.json`, applied to UTF-8 bytes.
enum Normalizer: Sendable {
    /// BertNormalizer; `stripAccents` is already resolved (JSON null follows `lowercase`, as in HF).
    case bert(cleanText: Bool, chineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case nfc, nfd, nfkc, nfkd
    case lowercase
    /// StripAccents: drops combining marks (HF pairs it with a preceding NFD).
    case stripAccents
    case sequence([Normalizer])

    /// Returns the normalized bytes of `input`.
    func normalize(_ input: [UInt8]) -> [UInt8] {
        switch self {
        case .sequence(let steps):
            var text = input
            for step in steps { text = step.normalize(text) }
            return text
        case .nfc:
            // Code points below U+0300 are all NFC-stable; most code never leaves that range.
            if Self.allBelow(input, 0x300) { return input }
            return Array(String(decoding: input, as: UTF8.self).precomposedStringWithCanonicalMapping.utf8)
        case .nfd:
            if Self.allBelow(input, 0x80) { return input }
            return Array(String(decoding: input, as: UTF8.self).decomposedStringWithCanonicalMapping.utf8)
        case .nfkc:
            if Self.allBelow(input, 0x80) { return input }
            return Array(String(decoding: input, as: UTF8.self).precomposedStringWithCompatibilityMapping.utf8)
        case .nfkd:
            if Self.allBelow(input, 0x80) { return input }
            return Array(String(decoding: input, as: UTF8.self).decomposedStringWithCompatibilityMapping.utf8)
        case .lowercase:
            return Self.perScalar(input) { c, out in Self.appendLowercased(c, to: &out) }
        case .stripAccents:
            let flags = UnicodeClasses.shared.flags
            return Self.perScalar(input) { c, out in
                if flags[Int(c)] & UnicodeClasses.accentMark == 0 { UTF8Bytes.append(c, to: &out) }
            }
        case .bert(let cleanText, let chineseChars, let stripAccents, let lowercase):
            return Self.bert(input, cleanText: cleanText, chineseChars: chineseChars, stripAccents: stripAccents,
                             lowercase: lowercase)
        }
    }

    private static func allBelow(_ input: [UInt8], _ limit: UInt32) -> Bool {
        input.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count {
                if p[i] < 0x80 { i += 1; continue }
                let (c, n) = UTF8Bytes.decode(p, i)
                if c >= limit { return false }
                i += n
            }
            return true
        }
    }

    private static func perScalar(_ input: [UInt8], _ body: (UInt32, inout [UInt8]) -> Void) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        input.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count {
                let (c, n) = UTF8Bytes.decode(p, i)
                body(c, &out)
                i += n
            }
        }
        return out
    }

    @inline(__always)
    static func appendLowercased(_ c: UInt32, to out: inout [UInt8]) {
        if c < 0x80 {
            out.append(c >= 0x41 && c <= 0x5A ? UInt8(c + 32) : UInt8(c))
        } else if let mapped = UnicodeClasses.shared.lowercase[c] {
            for m in mapped { UTF8Bytes.append(m, to: &out) }
        } else {
            UTF8Bytes.append(c, to: &out)
        }
    }

    /// BertNormalizer's passes (clean text, pad CJK, strip accents, lowercase) are all per code point,
    /// so they run fused in one scan.
    private static func bert(_ input: [UInt8], cleanText: Bool, chineseChars: Bool, stripAccents: Bool,
                             lowercase: Bool) -> [UInt8] {
        let classes = UnicodeClasses.shared
        var out: [UInt8] = []
        out.reserveCapacity(input.count + 8)
        @inline(__always) func emit(_ c: UInt32, _ out: inout [UInt8]) {
            if lowercase { appendLowercased(c, to: &out) } else { UTF8Bytes.append(c, to: &out) }
        }
        classes.flags.withUnsafeBufferPointer { flags in
            input.withUnsafeBufferPointer { p in
                var i = 0
                while i < p.count {
                    let (c, n) = UTF8Bytes.decode(p, i)
                    i += n
                    let f = flags[Int(c)]
                    if cleanText {
                        if f & UnicodeClasses.removed != 0 { continue }
                        if f & UnicodeClasses.cleanWhitespace != 0 { out.append(0x20); continue }
                    }
                    if chineseChars && f & UnicodeClasses.chinese != 0 {
                        out.append(0x20)
                        emit(c, &out)
                        out.append(0x20)
                        continue
                    }
                    if stripAccents && c >= 0x80 {
                        if f & UnicodeClasses.accentMark != 0 { continue }
                        if c >= 0xAC00 && c <= 0xD7A3 {
                            // Hangul syllables decompose algorithmically into conjoining jamo.
                            let s = c - 0xAC00
                            UTF8Bytes.append(0x1100 + s / 588, to: &out)
                            UTF8Bytes.append(0x1161 + (s % 588) / 28, to: &out)
                            if s % 28 != 0 { UTF8Bytes.append(0x11A7 + s % 28, to: &out) }
                            continue
                        }
                        if let parts = classes.stripAccents[c] {
                            for d in parts { emit(d, &out) }
                            continue
                        }
                    }
                    emit(c, &out)
                }
            }
        }
        return out
    }
}
