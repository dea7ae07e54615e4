#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// WordPiece (BERT): greedy longest-match-first over each word, `##`-prefixed continuations.
struct WordPieceModel: Sendable {
    /// Vocabulary entries that do not start with the continuation prefix.
    let starts: ByteStringTable
    /// Entries that start with the continuation prefix, keyed without it.
    let continuations: ByteStringTable
    let unknownID: Int32
    let maxInputCharsPerWord: Int

    init(vocab: [(String, Int32)], unknownToken: String, continuingSubwordPrefix: String,
         maxInputCharsPerWord: Int, source: String) throws {
        var starts = ByteStringTable(capacity: vocab.count)
        var continuations = ByteStringTable(capacity: vocab.count / 4)
        let prefix = Array(continuingSubwordPrefix.utf8)
        starts.reserve(keys: vocab.count, bytes: vocab.reduce(0) { $0 + $1.0.utf8.count })
        var unknown: Int32?
        for (token, id) in vocab {
            var token = token
            token.withUTF8 { bytes in
                starts.insert(bytes, value: id)
                if !prefix.isEmpty, bytes.count > prefix.count, prefix.withUnsafeBufferPointer({ memcmp(bytes.baseAddress!, $0.baseAddress!, prefix.count) == 0 }) {
                    continuations.insert(UnsafeBufferPointer(rebasing: bytes[prefix.count...]), value: id)
                }
            }
            if token == unknownToken { unknown = id }
        }
        guard let unknown else {
            throw TokenizerError(source: source, detail: "model.unk_token \"\(unknownToken)\" is not in model.vocab")
        }
        self.starts = starts
        self.continuations = continuations
        self.unknownID = unknown
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    func tokenize(_ word: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        if UTF8Bytes.scalarCount(word, 0..<word.count) > maxInputCharsPerWord {
            ids.append(unknownID)
            return
        }
        let mark = ids.count
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while end > start {
                let piece = UnsafeBufferPointer(rebasing: word[start..<end])
                if let id = start == 0 ? starts.lookup(piece) : continuations.lookup(piece) {
                    found = id
                    break
                }
                // Step back one scalar.
                end -= 1
                while end > start && word[end] & 0xC0 == 0x80 { end -= 1 }
            }
            guard let id = found else {
                // Any unmatchable remainder makes the whole word unknown.
                ids.removeSubrange(mark...)
                ids.append(unknownID)
                return
            }
            ids.append(id)
            start = end
        }
    }
}
