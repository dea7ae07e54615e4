import Foundation

/// How ColBERT input and output are shaped, read from a model folder in ColGREP's order of precedence:
/// `onnx_config.json` (ColGREP's export) › `config_sentence_transformers.json` (PyLate) ›
/// `sentence_bert_config.json` (sentence-transformers) › the defaults of ColGREP's Rust encoder.
///
/// Models without ColBERT markers (plain sentence-transformers such as all-MiniLM-L6-v2, whose vocabulary
/// has no `[Q]`/`[D]`) get `hasMarkers == false` from `ColBERTEncoder`: their sequences are
/// `[CLS] … [SEP]` with no marker, because inserting an untrained token (`[unused0]`) would only shift
/// every contextual vector away from what the model was trained to produce; and their query expansion
/// defaults to off, since `[MASK]` padding means nothing to a model not trained with it.
public struct ColBERTSettings: Sendable, Equatable {
    public var queryPrefix = "[Q] "
    public var documentPrefix = "[D] "
    public var queryPrefixID: Int32?
    public var documentPrefixID: Int32?
    public var queryLength = 48
    public var documentLength = 300
    /// nil when no file says: the encoder decides from whether the model has markers.
    public var doQueryExpansion: Bool?
    public var attendToExpansionTokens = false
    /// PyLate's default: the 32 ASCII punctuation characters.
    public var skiplistWords: [String] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".map { String($0) }
    public var doLowerCase = false
    public var maskTokenID: Int32?
    public var padTokenID: Int32?
    public var embeddingDimension: Int?
    public var modelName: String?

    public init() {}

    public init(modelDirectory: URL) throws {
        if let sbert = try JSONFile.object(at: modelDirectory.appending(path: "sentence_bert_config.json"), required: false) {
            let f = JSONFields(object: sbert, url: modelDirectory.appending(path: "sentence_bert_config.json"))
            doLowerCase = try f.bool("do_lower_case") ?? doLowerCase
            if let length = try f.int("max_seq_length") { documentLength = length }
        }
        for file in ["config_sentence_transformers.json", "onnx_config.json"] {
            let url = modelDirectory.appending(path: file)
            guard let object = try JSONFile.object(at: url, required: false) else { continue }
            try apply(JSONFields(object: object, url: url))
        }
        guard queryLength > 2, documentLength > 2 else {
            throw EncoderError.invalidFile(modelDirectory.appending(path: "onnx_config.json"),
                                           reason: "query_length and document_length must be at least 3 (CLS, marker, SEP)")
        }
    }

    private mutating func apply(_ f: JSONFields) throws {
        queryPrefix = try f.string("query_prefix") ?? queryPrefix
        documentPrefix = try f.string("document_prefix") ?? documentPrefix
        queryPrefixID = try f.int("query_prefix_id").map(Int32.init) ?? queryPrefixID
        documentPrefixID = try f.int("document_prefix_id").map(Int32.init) ?? documentPrefixID
        queryLength = try f.int("query_length") ?? queryLength
        documentLength = try f.int("document_length") ?? documentLength
        doQueryExpansion = try f.bool("do_query_expansion") ?? doQueryExpansion
        attendToExpansionTokens = try f.bool("attend_to_expansion_tokens") ?? attendToExpansionTokens
        skiplistWords = try f.strings("skiplist_words") ?? skiplistWords
        doLowerCase = try f.bool("do_lower_case") ?? doLowerCase
        maskTokenID = try f.int("mask_token_id").map(Int32.init) ?? maskTokenID
        padTokenID = try f.int("pad_token_id").map(Int32.init) ?? padTokenID
        embeddingDimension = try f.int("embedding_dim") ?? embeddingDimension
        modelName = try f.string("model_name") ?? modelName
    }
}
