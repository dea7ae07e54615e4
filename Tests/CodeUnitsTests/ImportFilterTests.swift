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
