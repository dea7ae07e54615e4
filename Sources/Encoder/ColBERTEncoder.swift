import Foundation
import Tensor
import Tokenizers

/// A ColBERT encoder as ColGREP builds its input and output (reference §1.7): texts are trimmed, lowercased
/// when the model says so, tokenized with `[CLS] … [SEP]`, the marker inserted after `[CLS]` (`[D]` for
/// documents, `[Q]` for queries) and truncated to `document_length` / `query_length` keeping `[SEP]`;
/// queries are padded with `[MASK]` to `query_length` only with query expansion; documents lose the rows
/// of skiplist tokens (CLS, markers and SEP stay). Vectors go through the Dense head and L2 normalisation.
///
/// Plain sentence-transformers models (the MiniLM fallback) have no `[Q]`/`[D]` in their vocabulary: they
/// get no marker at all (`[CLS] … [SEP]`) rather than a reused `[unused0]`/`[unused1]`, whose untrained
/// embeddings would only perturb every contextual vector; no projection exists, so their vectors are the
/// backbone's hidden states (384-d for MiniLM), L2-normalised; query expansion is off for them.
public final class ColBERTEncoder {
    public let model: ColBERTModel
    public let tokenizer: Tokenizer
    /// Marker ids; nil for models without ColBERT markers.
    public let queryMarker: Int32?
    public let documentMarker: Int32?
    public let queryLength: Int
    public let documentLength: Int
    public let queryExpansion: Bool
    public let maskID: Int32?
    public let skiplistIDs: Set<Int32>
    public let lowercase: Bool
    public var batcher = TokenBudgetBatcher()
    public let modelName: String

    public var dimension: Int { model.dimension }
    public var hasMarkers: Bool { queryMarker != nil && documentMarker != nil }

    public init(modelDirectory: URL, backend: any Backend) throws {
        Int8DecisionFile.installStandard()
        model = try ColBERTModel(modelDirectory: modelDirectory, backend: backend)
        let tokenizerURL = modelDirectory.appending(path: "tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerURL.path) else {
            throw EncoderError.missingFile(tokenizerURL, hint: "the model's tokenizer is not there; download the model again")
        }
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer(contentsOf: tokenizerURL) } catch let error as TokenizerError {
            throw EncoderError.invalidFile(tokenizerURL, reason: error.detail)
        }
        self.tokenizer = tokenizer
        let s = model.settings
        func marker(_ id: Int32?, _ text: String) -> Int32? {
            id ?? tokenizer.id(forToken: text) ?? tokenizer.id(forToken: text.trimmingCharacters(in: .whitespaces))
        }
        let q = marker(s.queryPrefixID, s.queryPrefix), d = marker(s.documentPrefixID, s.documentPrefix)
        (queryMarker, documentMarker) = q != nil && d != nil ? (q, d) : (nil, nil)
        let positions = model.backbone.config.architecture == .bert ? model.backbone.config.maxPositions : Int.max
        queryLength = min(s.queryLength, positions)
        documentLength = min(s.documentLength, positions)
        queryExpansion = s.doQueryExpansion ?? (q != nil && d != nil)
        maskID = s.maskTokenID ?? tokenizer.id(forToken: "[MASK]") ?? tokenizer.id(forToken: "<mask>")
        if queryExpansion, maskID == nil {
            throw EncoderError.invalidFile(tokenizerURL, reason: "query expansion needs a [MASK] or <mask> token")
        }
        skiplistIDs = Set(s.skiplistWords.compactMap { tokenizer.id(forToken: $0) })
        lowercase = s.doLowerCase
        modelName = s.modelName ?? Self.name(of: modelDirectory)
    }

    /// `org/name` for a Hugging Face cache snapshot (`models--org--name/snapshots/<rev>`), else the folder name.
    static func name(of directory: URL) -> String {
        let parts = directory.standardizedFileURL.pathComponents
        if let i = parts.lastIndex(where: { $0.hasPrefix("models--") }) {
            return parts[i].dropFirst("models--".count).replacingOccurrences(of: "--", with: "/")
        }
        return directory.lastPathComponent
    }

    // MARK: tokenization

    /// Prepared ids of documents: `[CLS] [D] … [SEP]`, at most `documentLength`.
    public func tokenizeDocuments(_ texts: [String]) -> [[Int32]] {
        // The file's own truncation (MiniLM's says 128) must not cut before ColGREP's rule does; cleaning,
        // tokenizing and preparing all run on every core (cleaning a large unit is not cheap either).
        let lowercase = lowercase, marker = documentMarker, length = documentLength
        return tokenizer.encodeBatch(texts, addSpecialTokens: true, threads: UsableCores.count,
                                     maxLength: documentTokenizeLimit,
                                     before: { Self.clean($0, lowercase: lowercase) },
                                     after: { Self.prepare($0, marker: marker, maxLength: length) })
    }

    /// How many ids (special ones included) the tokenizer must produce for `prepare` to give the same
    /// document ids as from the whole text, so a long unit stops being tokenized once it has them:
    /// `prepare` keeps the first `documentLength − 1` ids after the marker and the final suffix id, so
    /// `documentLength + suffix` ids are enough. Nil (tokenize everything) when the final id would not
    /// be a suffix id or the file truncates from the start.
    var documentTokenizeLimit: Int? {
        let special = tokenizer.specialTokenCounts
        guard special.suffix > 0, !tokenizer.truncatesFromStart else { return nil }
        return documentLength + special.suffix
    }

    /// Prepared ids of a query: `[CLS] [Q] … [SEP]`, at most `queryLength`, `[MASK]`-padded to it with expansion.
    public func tokenizeQuery(_ text: String) -> [Int32] {
        var ids = prepare(tokenizer.encode(clean(text), addSpecialTokens: true, maxLength: nil), marker: queryMarker, maxLength: queryLength)
        if queryExpansion, let maskID, ids.count < queryLength {
            ids += [Int32](repeating: maskID, count: queryLength - ids.count)
        }
        return ids
    }

    func clean(_ text: String) -> String { Self.clean(text, lowercase: lowercase) }

    static func clean(_ text: String, lowercase: Bool) -> String {
        let trimmed = trimmingWhitespaceAndNewlines(text)
        return lowercase ? trimmed.lowercased() : trimmed
    }

    /// `text` without leading and trailing whitespace and newlines: exactly Foundation's
    /// `trimmingCharacters(in: .whitespacesAndNewlines)`, without its trip through UTF-16. On Linux that call
    /// transcoded every document text to UTF-16 and back: more than half of the tokenize stage in a profile
    /// of a cold index (docs/PERFORMANCE.md, session 15). A text with nothing to trim is returned as is.
    static func trimmingWhitespaceAndNewlines(_ text: String) -> String {
        let scalars = text.unicodeScalars
        let others = CharacterSet.whitespacesAndNewlines
        // ASCII: tab, line feed, vertical tab, form feed, carriage return and space; beyond ASCII the set decides.
        func isSpace(_ scalar: Unicode.Scalar) -> Bool {
            scalar.value < 0x80 ? (scalar.value == 0x20 || (0x09...0x0D).contains(scalar.value)) : others.contains(scalar)
        }
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, isSpace(scalars[start]) { start = scalars.index(after: start) }
        while end > start, isSpace(scalars[scalars.index(before: end)]) { end = scalars.index(before: end) }
        if start == scalars.startIndex && end == scalars.endIndex { return text }
        return String(scalars[start..<end])
    }

    func prepare(_ encoded: [Int32], marker: Int32?, maxLength: Int) -> [Int32] { Self.prepare(encoded, marker: marker, maxLength: maxLength) }

    /// Inserts the marker after `[CLS]` and truncates to `maxLength`, keeping the final `[SEP]`.
    static func prepare(_ encoded: [Int32], marker: Int32?, maxLength: Int) -> [Int32] {
        var ids = encoded
        if let marker { ids.insert(marker, at: min(1, ids.count)) }
        if ids.count > maxLength, let last = ids.last {
            ids = Array(ids.prefix(maxLength - 1)) + [last]
        }
        return ids
    }

    // MARK: encoding

    /// One matrix of unit vectors per prepared sequence, in input order (packed token-budget batches
    /// inside); documents lose their skiplist rows, queries keep every row.
    public func encode(prepared: [[Int32]], isQuery: Bool) throws -> [HostMatrix] {
        try model.encode(prepared, dropping: isQuery ? [] : skiplistIDs, batcher: batcher)
    }

    public func encodeDocuments(_ texts: [String]) throws -> [HostMatrix] {
        try encode(prepared: tokenizeDocuments(texts), isQuery: false)
    }

    public func encodeQuery(_ text: String) throws -> HostMatrix {
        try encode(prepared: [tokenizeQuery(text)], isQuery: true)[0]
    }
}
