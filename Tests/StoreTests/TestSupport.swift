import Foundation
@testable import Store

/// A fresh directory under the system temp dir, removed by `cleanup()`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("store-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    var database: URL { url.appendingPathComponent("metadata.db") }

    func cleanup() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// A unit with every field set to something distinctive.
func fullRecord(_ docID: Int64) -> UnitRecord {
    UnitRecord(
        docID: docID, file: "src/net/client_\(docID).rs", name: "sendRequest\(docID)",
        qualifiedName: "HttpClient::sendRequest\(docID)", line: 10, endLine: 42, language: "rust",
        unitType: "method", signature: "fn send_request(&self, req: Request) -> Result<Response>",
        docstring: "Sends \"one\" request\nwith a back\\slash and ünïcödé 🚀", parameters: ["self", "req: Request"],
        returnType: "Result<Response>", extends: "BaseClient", parentClass: "HttpClient",
        calls: ["encode_body", "socket.write"], calledBy: ["main", "retry_loop"], complexity: 7,
        hasLoops: true, hasBranches: false, hasErrorHandling: true, variables: ["buffer", "tab\there"],
        imports: ["std::io", "crate::proto"],
        code: "fn send_request(&self, req: Request) -> Result<Response> {\n    let buffer = encode_body(req)?;\n    socket.write(&buffer)\n}"
    )
}

/// A small unit whose searchable text is `name` plus `code`.
func unit(_ docID: Int64, file: String, name: String, code: String) -> UnitRecord {
    UnitRecord(docID: docID, file: file, name: name, qualifiedName: name, line: 1, endLine: 3,
               language: "swift", unitType: "function", code: code)
}

/// A synthetic but realistic corpus of `count` units (names, signatures, bodies, calls).
func syntheticCorpus(count: Int, startID: Int64 = 0) -> [UnitRecord] {
    let verbs = ["parse", "load", "write", "render", "fetch", "encode", "decode", "validate", "merge", "flush"]
    let nouns = ["Config", "Request", "Token", "Buffer", "Index", "Header", "Payload", "Session", "Cache", "Graph"]
    return (0..<count).map { i in
        let verb = verbs[i % verbs.count], noun = nouns[(i / verbs.count) % nouns.count]
        let name = "\(verb)\(noun)\(i)"
        let body = (0..<12).map { k in
            "    let \(verbs[(i + k) % verbs.count])_\(nouns[(i * 7 + k) % nouns.count].lowercased()) = helper\(k)(input, \(k));"
        }.joined(separator: "\n")
        return UnitRecord(
            docID: startID + Int64(i), file: "src/module\(i / 50)/file\(i / 10).swift", name: name,
            qualifiedName: "Module\(i / 50).\(name)", line: (i % 10) * 20 + 1, endLine: (i % 10) * 20 + 18,
            language: "swift", unitType: "function",
            signature: "func \(name)(input: \(noun), options: Options) throws -> \(noun)Result",
            docstring: "/// \(verb.capitalized)s the \(noun.lowercased()) and returns the result.",
            parameters: ["input: \(noun)", "options: Options"], returnType: "\(noun)Result",
            calls: ["helper0", "helper1", "\(verbs[(i + 1) % verbs.count])\(noun)"], calledBy: [],
            complexity: i % 9, hasLoops: i % 2 == 0, hasBranches: i % 3 == 0, hasErrorHandling: true,
            variables: ["input", "options"], imports: ["Foundation"],
            code: "func \(name)(input: \(noun), options: Options) throws -> \(noun)Result {\n\(body)\n    return try finish(input)\n}"
        )
    }
}
