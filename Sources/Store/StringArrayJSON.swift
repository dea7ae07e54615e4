/// The JSON text form of the store's array columns (`parameters`, `calls`, …): a JSON array of
/// strings, as the reference stores them. Hand-written because these columns are read for every
/// result and for whole-project call-graph passes, where Foundation's JSON coders dominate.
enum StringArrayJSON {
    static func encode(_ items: [String]) -> String {
        String(decoding: encodeBytes(items), as: UTF8.self)
    }

    /// `encode`'s UTF-8 bytes (bound as TEXT without a `String` in between).
    static func encodeBytes(_ items: [String]) -> [UInt8] {
        if items.isEmpty { return [0x5B, 0x5D] }
        var out: [UInt8] = [0x5B]
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(0x2C) }
            out.append(0x22)
            for byte in item.utf8 {
                switch byte {
                case 0x22: out.append(contentsOf: [0x5C, 0x22])
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
                case 0x0D: out.append(contentsOf: [0x5C, 0x72])
                case 0x09: out.append(contentsOf: [0x5C, 0x74])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                default: out.append(byte)
                }
            }
            out.append(0x22)
        }
        out.append(0x5D)
        return out
    }

    /// Decodes a JSON array of strings; `nil` when the text is not one (the caller reports corruption).
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> [String]? {
        var parser = Parser(bytes: bytes)
        return parser.parseArray()
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func parseArray() -> [String]? {
            skipSpace()
            guard i < bytes.count, bytes[i] == 0x5B else { return nil }
            i += 1
            var items: [String] = []
            skipSpace()
            if i < bytes.count, bytes[i] == 0x5D { i += 1; return finished(items) }
            while true {
                skipSpace()
                guard let item = parseString() else { return nil }
                items.append(item)
                skipSpace()
                guard i < bytes.count else { return nil }
                if bytes[i] == 0x2C { i += 1; continue }
                if bytes[i] == 0x5D { i += 1; return finished(items) }
                return nil
            }
        }

        mutating func finished(_ items: [String]) -> [String]? {
            skipSpace()
            return i == bytes.count ? items : nil
        }

        mutating func parseString() -> String? {
            guard i < bytes.count, bytes[i] == 0x22 else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                if c == 0x22 { return String(decoding: out, as: UTF8.self) }
                if c != 0x5C { out.append(c); continue }
                guard i < bytes.count else { return nil }
                let e = bytes[i]
                i += 1
                switch e {
                case 0x22, 0x5C, 0x2F: out.append(e)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    guard var scalar = parseHex4() else { return nil }
                    // A surrogate pair encodes one scalar outside the BMP.
                    if scalar >= 0xD800, scalar < 0xDC00, i + 1 < bytes.count, bytes[i] == 0x5C, bytes[i + 1] == 0x75 {
                        i += 2
                        guard let low = parseHex4(), low >= 0xDC00, low < 0xE000 else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out.append(contentsOf: String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8)
                default: return nil
                }
            }
            return nil
        }

        mutating func parseHex4() -> UInt32? {
            guard i + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                i += 1
                let digit: UInt32
                switch c {
                case 0x30...0x39: digit = UInt32(c - 0x30)
                case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
                default: return nil
                }
                value = value << 4 | digit
            }
            return value
        }
    }
}
