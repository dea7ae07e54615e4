import Foundation

/// The content of a `tokenizer.json` split into its bulk (vocabulary, merges, added tokens) and the rest
/// (normalizer, pre-tokenizer, post-processor, truncation, model scalars), before any lookup table is built.
///
/// Parsing the bulk with `JSONSerialization` is most of a tokenizer's load time (tens of thousands of
/// `NSNumber`s and dictionary entries); a spec is what `TokenizerCache` stores in binary, so a later load
/// skips the JSON entirely. Both paths build the tokenizer from a spec, so they cannot differ.
struct TokenizerSpec: Sendable {
    /// `model.vocab`, sorted by id.
    let vocab: [(String, Int32)]
    /// `model.merges` as pairs (either JSON spelling), nil when the model is not BPE.
    let merges: [(String, String)]?
    let addedTokens: [AddedToken]
    /// `model.type`, or what it defaults to (BPE when merges are present, else WordPiece).
    let modelType: String
    /// The JSON object without `model.vocab` and `model.merges` (small: a few hundred bytes).
    let settingsJSON: Data

    init(vocab: [(String, Int32)], merges: [(String, String)]?, addedTokens: [AddedToken], modelType: String,
         settingsJSON: Data) {
        self.vocab = vocab
        self.merges = merges
        self.addedTokens = addedTokens
        self.modelType = modelType
        self.settingsJSON = settingsJSON
    }

    /// Parses `tokenizer.json` bytes. Returns the spec and the parsed settings object (so the caller
    /// does not parse `settingsJSON` again).
    static func parse(jsonData: Data, source: String) throws -> (TokenizerSpec, [String: Any]) {
        func fail(_ detail: String) -> TokenizerError { TokenizerError(source: source, detail: detail) }
        var root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: jsonData) as? [String: Any] else {
                throw fail("not a JSON object (expected a Hugging Face tokenizer.json)")
            }
            root = object
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw fail("invalid JSON (\(error.localizedDescription)); re-download the tokenizer.json")
        }
        guard var modelJSON = root["model"] as? [String: Any] else { throw fail("missing \"model\" object") }
        guard let vocabJSON = modelJSON["vocab"] as? [String: Any] else { throw fail("missing \"model.vocab\" object") }
        var vocab: [(String, Int32)] = []
        vocab.reserveCapacity(vocabJSON.count)
        for (token, value) in vocabJSON {
            guard let id = (value as? NSNumber)?.int32Value else {
                throw fail("model.vocab[\"\(token)\"] is not an integer id")
            }
            vocab.append((token, id))
        }
        // Ties (two tokens with one id) ordered by token, so the order never depends on hashing.
        vocab.sort { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }

        var added: [AddedToken] = []
        for (index, entry) in ((root["added_tokens"] as? [[String: Any]]) ?? []).enumerated() {
            guard let content = entry["content"] as? String, let id = (entry["id"] as? NSNumber)?.int32Value else {
                throw fail("added_tokens[\(index)] lacks \"content\" or \"id\"")
            }
            let special = entry["special"] as? Bool ?? false
            added.append(AddedToken(id: id, content: content, special: special,
                                    singleWord: entry["single_word"] as? Bool ?? false,
                                    lstrip: entry["lstrip"] as? Bool ?? false,
                                    rstrip: entry["rstrip"] as? Bool ?? false,
                                    normalized: entry["normalized"] as? Bool ?? !special))
        }

        let type = modelJSON["type"] as? String ?? (modelJSON["merges"] != nil ? "BPE" : "WordPiece")
        var merges: [(String, String)]?
        if type == "BPE" {
            guard let mergesJSON = modelJSON["merges"] as? [Any] else { throw fail("missing \"model.merges\" array") }
            var pairs: [(String, String)] = []
            pairs.reserveCapacity(mergesJSON.count)
            for (index, item) in mergesJSON.enumerated() {
                if let pair = item as? [String], pair.count == 2 {
                    pairs.append((pair[0], pair[1]))
                } else if let line = item as? String, let space = line.firstIndex(of: " ") {
                    pairs.append((String(line[..<space]), String(line[line.index(after: space)...])))
                } else {
                    throw fail("model.merges[\(index)] is neither \"a b\" nor [\"a\", \"b\"]")
                }
            }
            merges = pairs
        }

        modelJSON["vocab"] = nil
        modelJSON["merges"] = nil
        root["model"] = modelJSON
        root["added_tokens"] = nil
        let settings: Data
        do {
            settings = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
        } catch {
            throw fail("cannot re-encode the settings (\(error.localizedDescription))")
        }
        return (TokenizerSpec(vocab: vocab, merges: merges, addedTokens: added, modelType: type, settingsJSON: settings), root)
    }

    /// The settings object of `settingsJSON`.
    func settings(source: String) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: settingsJSON) as? [String: Any] else {
            throw TokenizerError(source: source, detail: "the cached settings are not a JSON object")
        }
        return object
    }
}
