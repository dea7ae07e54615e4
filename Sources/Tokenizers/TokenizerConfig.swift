import Foundation

/// The parts of a `tokenizer.json` the encoder needs, parsed and validated. Errors name the file and the
/// offending JSON path.
struct TokenizerConfig: Sendable {
    enum Model: Sendable {
        case wordPiece(WordPieceModel)
        case bpe(BPEModel)
    }

    /// How `encode` truncates: HF's `truncation` section (only the fields that change ids).
    struct Truncation: Sendable {
        let maxLength: Int
        let keepEnd: Bool  // direction "Left" keeps the last tokens
    }

    let model: Model
    /// `model.vocab` sorted by id (the id ↔ token maps are built from it on first use).
    let vocab: [(String, Int32)]
    let addedTokens: [AddedToken]
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer
    /// The single-sequence template: special-token ids around the sequence ("$A").
    let prefixIDs: [Int32]
    let suffixIDs: [Int32]
    let truncation: Truncation?

    /// Parses `tokenizer.json` bytes.
    init(jsonData: Data, source: String) throws {
        let (spec, settings) = try TokenizerSpec.parse(jsonData: jsonData, source: source)
        try self.init(spec: spec, settings: settings, source: source)
    }

    /// Builds from a spec (parsed or cached) and its settings object.
    init(spec: TokenizerSpec, settings root: [String: Any], source: String) throws {
        func fail(_ detail: String) -> TokenizerError { TokenizerError(source: source, detail: detail) }
        guard let modelJSON = root["model"] as? [String: Any] else { throw fail("missing \"model\" object") }
        let vocab = spec.vocab
        let added = spec.addedTokens

        normalizer = try Self.parseNormalizer(root["normalizer"], path: "normalizer", fail: fail)
        let (preTokenizer, byteLevel) = try Self.parsePreTokenizer(root["pre_tokenizer"], path: "pre_tokenizer", fail: fail)
        self.preTokenizer = preTokenizer

        switch spec.modelType {
        case "WordPiece":
            model = .wordPiece(try WordPieceModel(
                vocab: vocab, unknownToken: modelJSON["unk_token"] as? String ?? "[UNK]",
                continuingSubwordPrefix: modelJSON["continuing_subword_prefix"] as? String ?? "##",
                maxInputCharsPerWord: (modelJSON["max_input_chars_per_word"] as? NSNumber)?.intValue ?? 100,
                source: source))
        case "BPE":
            guard let merges = spec.merges else { throw fail("missing \"model.merges\" array") }
            if let prefix = modelJSON["continuing_subword_prefix"] as? String, !prefix.isEmpty {
                throw fail("model.continuing_subword_prefix \"\(prefix)\" is not supported for BPE")
            }
            if let suffix = modelJSON["end_of_word_suffix"] as? String, !suffix.isEmpty {
                throw fail("model.end_of_word_suffix \"\(suffix)\" is not supported for BPE")
            }
            model = .bpe(try BPEModel(
                vocab: vocab, merges: merges, byteLevel: byteLevel,
                ignoreMerges: modelJSON["ignore_merges"] as? Bool ?? false,
                unknownToken: modelJSON["unk_token"] as? String,
                fuseUnknown: modelJSON["fuse_unk"] as? Bool ?? false,
                byteFallback: modelJSON["byte_fallback"] as? Bool ?? false, source: source))
        default:
            throw fail("model.type \"\(spec.modelType)\" is not supported (supported: WordPiece, BPE)")
        }

        self.vocab = vocab
        addedTokens = added

        (prefixIDs, suffixIDs) = try Self.parsePostProcessor(root["post_processor"], path: "post_processor",
                                                             tokenIDs: { name in
            added.last(where: { $0.content == name })?.id ?? vocab.last(where: { $0.0 == name })?.1
        }, fail: fail)

        if let t = root["truncation"] as? [String: Any] {
            guard let maxLength = (t["max_length"] as? NSNumber)?.intValue, maxLength > 0 else {
                throw fail("truncation.max_length is missing or not a positive integer")
            }
            let strategy = t["strategy"] as? String ?? "LongestFirst"
            guard ["LongestFirst", "OnlyFirst", "OnlySecond"].contains(strategy) else {
                throw fail("truncation.strategy \"\(strategy)\" is unknown")
            }
            truncation = Truncation(maxLength: maxLength, keepEnd: (t["direction"] as? String) == "Left")
        } else {
            truncation = nil
        }
    }

    private static func parseNormalizer(_ json: Any?, path: String,
                                        fail: (String) -> TokenizerError) throws -> Normalizer? {
        guard let json, !(json is NSNull) else { return nil }
        guard let object = json as? [String: Any], let type = object["type"] as? String else {
            throw fail("\(path) has no \"type\"")
        }
        switch type {
        case "BertNormalizer":
            let lowercase = object["lowercase"] as? Bool ?? true
            return .bert(cleanText: object["clean_text"] as? Bool ?? true,
                         chineseChars: object["handle_chinese_chars"] as? Bool ?? true,
                         stripAccents: object["strip_accents"] as? Bool ?? lowercase, lowercase: lowercase)
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "Sequence":
            guard let steps = object["normalizers"] as? [Any] else { throw fail("\(path).normalizers is missing") }
            return .sequence(try steps.enumerated().compactMap {
                try parseNormalizer($0.element, path: "\(path).normalizers[\($0.offset)]", fail: fail)
            })
        default:
            throw fail("\(path).type \"\(type)\" is not supported (supported: BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Sequence)")
        }
    }

    /// Returns the pre-tokenizer and whether it is byte-level.
    private static func parsePreTokenizer(_ json: Any?, path: String,
                                          fail: (String) -> TokenizerError) throws -> (PreTokenizer, Bool) {
        guard let json, !(json is NSNull) else { return (.none, false) }
        guard let object = json as? [String: Any], let type = object["type"] as? String else {
            throw fail("\(path) has no \"type\"")
        }
        switch type {
        case "BertPreTokenizer":
            return (.bert, false)
        case "ByteLevel":
            return (.byteLevel(addPrefixSpace: object["add_prefix_space"] as? Bool ?? true,
                               useRegex: object["use_regex"] as? Bool ?? true), true)
        case "Sequence":
            let steps = object["pretokenizers"] as? [Any] ?? []
            if steps.count == 1 { return try parsePreTokenizer(steps[0], path: "\(path).pretokenizers[0]", fail: fail) }
            throw fail("\(path): a Sequence of \(steps.count) pre-tokenizers is not supported (only one)")
        default:
            throw fail("\(path).type \"\(type)\" is not supported (supported: BertPreTokenizer, ByteLevel)")
        }
    }

    /// Returns the special-token ids placed before and after a single sequence.
    private static func parsePostProcessor(_ json: Any?, path: String, tokenIDs: (String) -> Int32?,
                                           fail: (String) -> TokenizerError) throws -> ([Int32], [Int32]) {
        guard let json, !(json is NSNull) else { return ([], []) }
        guard let object = json as? [String: Any], let type = object["type"] as? String else {
            throw fail("\(path) has no \"type\"")
        }
        func pair(_ key: String) throws -> Int32 {
            guard let value = object[key] as? [Any], value.count == 2, let id = (value[1] as? NSNumber)?.int32Value else {
                throw fail("\(path).\(key) is not [token, id]")
            }
            return id
        }
        switch type {
        case "TemplateProcessing":
            guard let single = object["single"] as? [[String: Any]] else { throw fail("\(path).single is missing") }
            let specials = object["special_tokens"] as? [String: Any] ?? [:]
            var before: [Int32] = [], after: [Int32] = []
            var seenSequence = false
            for (index, piece) in single.enumerated() {
                if piece["Sequence"] != nil { seenSequence = true; continue }
                guard let special = piece["SpecialToken"] as? [String: Any], let name = special["id"] as? String else {
                    throw fail("\(path).single[\(index)] is neither a Sequence nor a SpecialToken")
                }
                var ids: [Int32]
                if let entry = specials[name] as? [String: Any], let list = entry["ids"] as? [NSNumber] {
                    ids = list.map(\.int32Value)
                } else if let id = tokenIDs(name) {
                    ids = [id]
                } else {
                    throw fail("\(path).single[\(index)] names special token \"\(name)\" that is not defined")
                }
                if seenSequence { after += ids } else { before += ids }
                ids.removeAll()
            }
            return (before, after)
        case "BertProcessing", "RobertaProcessing":
            return ([try pair("cls")], [try pair("sep")])
        case "ByteLevel":
            return ([], [])
        case "Sequence":
            var before: [Int32] = [], after: [Int32] = []
            for (index, step) in ((object["processors"] as? [Any]) ?? []).enumerated() {
                let (b, a) = try parsePostProcessor(step, path: "\(path).processors[\(index)]", tokenIDs: tokenIDs, fail: fail)
                before = b + before
                after += a
            }
            return (before, after)
        default:
            throw fail("\(path).type \"\(type)\" is not supported (supported: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)")
        }
    }
}
