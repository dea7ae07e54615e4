/// A direct writer of `state.json`, the counterpart of `IndexStateReader`: `JSONEncoder` took ~5 ms of
/// CPU for the 83 kB state of a 550-file project, and an update writes the state two or three times.
///
/// It writes what `JSONEncoder` with `.sortedKeys` and `.withoutEscapingSlashes` writes for an
/// `IndexState` — keys in order, `embeddings_absent` left out when nil, files sorted by path — with
/// strings escaped as JSON requires (`"`, `\`, control characters; other text as UTF-8), so both the
/// fast reader and `JSONDecoder` read it back (`IndexStateWriterTests`).
enum IndexStateWriter {
    static func encode(_ state: IndexState) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + state.files.count * 160)
        out += Array("{\"cli_version\":".utf8)
        string(state.cliVersion, &out)
        out += Array(",\"dirty\":".utf8)
        out += Array((state.dirty ? "true" : "false").utf8)
        if let absent = state.embeddingsAbsent {
            out += Array(",\"embeddings_absent\":".utf8)
            out += Array((absent ? "true" : "false").utf8)
        }
        out += Array(",\"files\":{".utf8)
        for (n, path) in state.files.keys.sorted().enumerated() {
            let stamp = state.files[path]!
            if n > 0 { out.append(0x2C) }
            string(path, &out)
            out += Array(":{\"content_hash\":".utf8)
            out += Array(String(stamp.contentHash).utf8)
            out += Array(",\"mtime\":".utf8)
            out += Array(String(stamp.mtime).utf8)
            out += Array(",\"size\":".utf8)
            out += Array(String(stamp.size).utf8)
            out.append(0x7D)
        }
        out += Array("},\"ignored_files\":[".utf8)
        for (n, path) in state.ignoredFiles.enumerated() {
            if n > 0 { out.append(0x2C) }
            string(path, &out)
        }
        out += Array("],\"index_format_version\":".utf8)
        out += Array(String(state.indexFormatVersion).utf8)
        out += Array(",\"next_doc_id\":".utf8)
        out += Array(String(state.nextDocID).utf8)
        out += Array(",\"unit_count\":".utf8)
        out += Array(String(state.unitCount).utf8)
        out.append(0x7D)
        return out
    }

    /// A JSON string: `"` and `\` escaped, control characters as `JSONEncoder` writes them.
    private static func string(_ text: String, _ out: inout [UInt8]) {
        out.append(0x22)
        for byte in text.utf8 {
            switch byte {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x08: out += [0x5C, 0x62]
            case 0x0C: out += [0x5C, 0x66]
            case 0x0A: out += [0x5C, 0x6E]
            case 0x0D: out += [0x5C, 0x72]
            case 0x09: out += [0x5C, 0x74]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(0x22)
    }
}
