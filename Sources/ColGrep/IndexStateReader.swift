/// A direct reader of `state.json` for the freshness check every search runs: `JSONDecoder` took ~3 ms
/// for the 83 kB state of a 550-file project, on the main thread's path to the first result.
///
/// It reads what `IndexState.save` writes — one object with the known keys, integers, strings,
/// booleans — straight into an `IndexState`, and gives up (nil) on anything else: an unknown or repeated
/// key, a missing one, a fraction or exponent, a number out of range, an escape it does not know, bytes
/// after the object. The caller then decodes with `JSONDecoder`, so every file reads as before, errors
/// included; only the files that `save` writes take the fast path.
enum IndexStateReader {
    static func decode(_ bytes: UnsafeRawBufferPointer) -> IndexState? {
        var reader = Reader(bytes.bindMemory(to: UInt8.self))
        guard let state = reader.state(), reader.atEnd() else { return nil }
        return state
    }

    private struct Reader {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        init(_ bytes: UnsafeBufferPointer<UInt8>) { b = bytes }

        mutating func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        mutating func atEnd() -> Bool {
            skipSpace()
            return i == b.count
        }

        mutating func take(_ c: UInt8) -> Bool {
            skipSpace()
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }

        /// `{ "key": value, … }`, calling `member` for each key (false from it stops with failure).
        mutating func object(_ member: (inout Reader, String) -> Bool) -> Bool {
            guard take(0x7B) else { return false }
            if take(0x7D) { return true }
            repeat {
                guard let key = string(), take(0x3A), member(&self, key) else { return false }
            } while take(0x2C)
            return take(0x7D)
        }

        mutating func string() -> String? {
            guard take(0x22) else { return nil }
            var out: [UInt8] = []
            let start = i
            while i < b.count {
                let c = b[i]
                if c == 0x22 {
                    let text = out.isEmpty ? Self.text(UnsafeBufferPointer(rebasing: b[start..<i]))
                                           : out.withUnsafeBufferPointer { Self.text($0) }
                    i += 1
                    return text
                }
                if c < 0x20 { return nil }
                if c == 0x5C {
                    if out.isEmpty { out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i])) }
                    i += 1
                    guard i < b.count else { return nil }
                    switch b[i] {
                    case 0x22: out.append(0x22)
                    case 0x5C: out.append(0x5C)
                    case 0x2F: out.append(0x2F)
                    case 0x62: out.append(0x08)
                    case 0x66: out.append(0x0C)
                    case 0x6E: out.append(0x0A)
                    case 0x72: out.append(0x0D)
                    case 0x74: out.append(0x09)
                    case 0x75:
                        guard let unit = hex4(i + 1) else { return nil }
                        i += 4
                        var scalar = UInt32(unit)
                        if (0xD800..<0xDC00).contains(unit) {
                            guard i + 6 < b.count, b[i + 1] == 0x5C, b[i + 2] == 0x75, let low = hex4(i + 3),
                                  (0xDC00..<0xE000).contains(low) else { return nil }
                            scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                            i += 6
                        } else if (0xDC00..<0xE000).contains(unit) {
                            return nil
                        }
                        guard let value = Unicode.Scalar(scalar) else { return nil }
                        out.append(contentsOf: Array(String(Character(value)).utf8))
                    default:
                        return nil
                    }
                    i += 1
                    continue
                }
                if !out.isEmpty { out.append(c) }
                i += 1
            }
            return nil
        }

        /// ASCII as is; other bytes only when they are valid UTF-8 (JSONDecoder rejects the rest).
        static func text(_ utf8: UnsafeBufferPointer<UInt8>) -> String? {
            var high: UInt8 = 0
            for byte in utf8 { high |= byte }
            return high < 0x80 ? String(decoding: utf8, as: UTF8.self) : String(validating: utf8, as: UTF8.self)
        }

        func hex4(_ at: Int) -> UInt16? {
            guard at + 4 <= b.count else { return nil }
            var v: UInt16 = 0
            for k in at..<(at + 4) {
                let c = b[k]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x41...0x46: d = c - 0x41 + 10
                case 0x61...0x66: d = c - 0x61 + 10
                default: return nil
                }
                v = v << 4 | UInt16(d)
            }
            return v
        }

        /// A JSON integer (no fraction or exponent, no leading zero) as its sign and magnitude.
        mutating func integer() -> (negative: Bool, magnitude: UInt64)? {
            skipSpace()
            let negative = i < b.count && b[i] == 0x2D
            if negative { i += 1 }
            let start = i
            var v: UInt64 = 0
            while i < b.count, b[i] &- 0x30 < 10 {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(UInt64(b[i] - 0x30))
                guard !o1, !o2 else { return nil }
                v = s
                i += 1
            }
            guard i > start, !(b[start] == 0x30 && i - start > 1) else { return nil }
            if i < b.count, b[i] == 0x2E || b[i] == 0x65 || b[i] == 0x45 { return nil }
            return (negative, v)
        }

        mutating func uint64() -> UInt64? {
            guard let (negative, v) = integer(), !negative || v == 0 else { return nil }
            return v
        }

        mutating func int64() -> Int64? {
            guard let (negative, v) = integer() else { return nil }
            if negative { return v <= UInt64(Int64.max) ? -Int64(v) : (v == UInt64(Int64.max) + 1 ? Int64.min : nil) }
            return v <= UInt64(Int64.max) ? Int64(v) : nil
        }

        mutating func literal(_ word: StaticString) -> Bool {
            skipSpace()
            let n = word.utf8CodeUnitCount
            guard i + n <= b.count else { return false }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
            i += n
            return true
        }

        mutating func bool() -> Bool? {
            if literal("true") { return true }
            if literal("false") { return false }
            return nil
        }

        mutating func stamp() -> FileStamp? {
            var hash: UInt64?, mtime: Int64?, size: Int64?
            let ok = object { r, key in
                switch key {
                case "content_hash" where hash == nil: hash = r.uint64(); return hash != nil
                case "mtime" where mtime == nil: mtime = r.int64(); return mtime != nil
                case "size" where size == nil: size = r.int64(); return size != nil
                default: return false
                }
            }
            guard ok, let hash, let mtime, let size else { return nil }
            return FileStamp(contentHash: hash, mtime: mtime, size: size)
        }

        mutating func state() -> IndexState? {
            var version: String?, format: Int64?, files: [String: FileStamp]?, ignored: [String]?
            var dirty: Bool?, next: Int64?, units: Int64?
            var absent: Bool??
            let ok = object { r, key in
                switch key {
                case "cli_version" where version == nil: version = r.string(); return version != nil
                case "index_format_version" where format == nil: format = r.int64(); return format != nil
                case "dirty" where dirty == nil: dirty = r.bool(); return dirty != nil
                case "next_doc_id" where next == nil: next = r.int64(); return next != nil
                case "unit_count" where units == nil: units = r.int64(); return units != nil
                case "embeddings_absent" where absent == nil:
                    if r.literal("null") { absent = .some(nil); return true }
                    guard let value = r.bool() else { return false }
                    absent = .some(value)
                    return true
                case "ignored_files" where ignored == nil:
                    guard r.take(0x5B) else { return false }
                    var list: [String] = []
                    if !r.take(0x5D) {
                        repeat {
                            guard let item = r.string() else { return false }
                            list.append(item)
                        } while r.take(0x2C)
                        guard r.take(0x5D) else { return false }
                    }
                    ignored = list
                    return true
                case "files" where files == nil:
                    var map: [String: FileStamp] = [:]
                    map.reserveCapacity(1024)
                    let parsed = r.object { r, path in
                        guard map[path] == nil, let stamp = r.stamp() else { return false }
                        map[path] = stamp
                        return true
                    }
                    files = map
                    return parsed
                default:
                    return false
                }
            }
            guard ok, let version, let format, let files, let ignored, let dirty, let next, let units,
                  let formatInt = Int(exactly: format), let unitInt = Int(exactly: units) else { return nil }
            var state = IndexState()
            state.cliVersion = version
            state.indexFormatVersion = formatInt
            state.files = files
            state.ignoredFiles = ignored
            state.dirty = dirty
            state.nextDocID = next
            state.unitCount = unitInt
            state.embeddingsAbsent = absent ?? nil
            return state
        }
    }
}
