import Foundation
import Testing
@testable import CodeUnits

@Suite struct ImportFilterTests {
    /// The byte search answers as Foundation's `contains` does, for ASCII pairs (where it is used) and for
    /// pairs with other characters (where it hands over to Foundation).
    @Test func containsAnswersAsFoundationDoes() {
        let words = ["", "a", "os", "json", "json.loads", "http", "httpclient", "client", "xml.etree", "tree", "os.path.join",
                     "ab", "abc", "ababc", "ünïcode", "code", "naïve", "nai\u{308}ve", "日本", "日本語", "🚀x", "x"]
        for text in words {
            for part in words {
                #expect(ImportCollector.contains(text, part) == text.contains(part), "\(text) ⊇ \(part)")
            }
        }
    }

    @Test func importsAreKeptWhenAccessedOrNamedByACall() {
        let code = "data = json.loads(text)\nnode = etree.parse(p)\n"
        let kept = ImportCollector.filter(["json", "xml", "etree", "requests", "os"], code: code, calls: ["loads", "etree.parse", "getcwd"])
        #expect(kept == ["json", "etree"])
        // A call naming the module: `os` is in `os.getcwd`; `req` (≥ 3 characters) contains the call `req`.
        #expect(ImportCollector.filter(["os", "req"], code: "", calls: ["os.getcwd", "req"]) == ["os", "req"])
    }
}

@Suite struct ImportFilterReferenceTests {
    /// The filter as it was before it compared bytes in place (every identifier before `.`, `:` or `->`
    /// lowered into a set): the byte version must keep exactly the imports this keeps.
    static func reference(_ imports: [String], code: String, calls: [String]) -> [String] {
        guard !imports.isEmpty else { return [] }
        var accessed = Set<String>()
        let bytes = Array(code.utf8)
        var start = -1
        for i in 0...bytes.count {
            let b: UInt8 = i < bytes.count ? bytes[i] : 0
            let isIdentifier = (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 95 || b >= 128
            if isIdentifier {
                if start < 0 { start = i }
                continue
            }
            if start >= 0 {
                let follows = b == UInt8(ascii: ".") || b == UInt8(ascii: ":")
                    || (b == UInt8(ascii: "-") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: ">"))
                if follows { accessed.insert(String(decoding: bytes[start..<i], as: UTF8.self).lowercased()) }
                start = -1
            }
        }
        let loweredCalls = calls.map { $0.lowercased() }
        return imports.filter { imp in
            let l = imp.lowercased()
            if accessed.contains(l) { return true }
            return loweredCalls.contains { ImportCollector.contains($0, l) || (l.count >= 3 && $0.count >= 3 && ImportCollector.contains(l, $0)) }
        }
    }

    @Test func keepsWhatTheStringVersionKeptOnGeneratedCode() {
        let words = ["json", "JSON", "Json", "os", "np", "numpy", "torch", "nn", "std", "io", "Ünï", "ünï", "ÜNÏ", "日本", "x_1",
                     "http", "httpclient", "self", "re", "a", ""]
        let joints = [".", ":", "::", "->", "-", " ", "(", "\n", ". ", "=", ">", ""]
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        for _ in 0..<3_000 {
            var code = ""
            for _ in 0..<next(12) { code += words[next(words.count)] + joints[next(joints.count)] }
            let imports = (0..<next(6)).map { _ in words[next(words.count)] }
            let calls = (0..<next(4)).map { _ in words[next(words.count)] + (next(2) == 0 ? "" : "." + words[next(words.count)]) }
            let expected = Self.reference(imports, code: code, calls: calls)
            #expect(ImportCollector.filter(imports, code: code, calls: calls) == expected, "\(imports) in \(code.debugDescription), calls \(calls)")
        }
    }
}

@Suite struct CalleeNormalizationTests {
    /// Where the byte version answers, it answers as the string version; it hands over on `\r` and non-ASCII.
    @Test func byteVersionAnswersAsTheStringVersion() {
        let pieces = ["foo", "Bar", "self", ".", "::", "->", ":", ">", "(", "x)", "<T>", "{", "[0]", "\n", "\r\n", " ", "\t", "!", "?",
                      "_priv", "1x", "é", "\u{301}", "日本", "@", "a", ""]
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        var answered = 0
        for _ in 0..<5_000 {
            let text = (0..<next(7)).map { _ in pieces[next(pieces.count)] }.joined()
            // The callee inside a larger source, as a syntax tree's node is.
            let source = Array(("x = " + text + " # tail é").utf8)
            let start = 4, end = 4 + text.utf8.count
            if let answer = Analysis.normalizeASCIICallee(source, from: start, to: end) {
                answered += 1
                #expect(answer == Analysis.normalizeCallee(text), "\(text.debugDescription)")
            } else {
                #expect(text.utf8.contains { $0 >= 0x80 || $0 == 13 }, "\(text.debugDescription) is ASCII without \\r but was handed over")
            }
        }
        #expect(answered > 2_000)
    }
}
