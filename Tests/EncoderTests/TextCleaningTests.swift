import Foundation
import Testing
@testable import Encoder

@Suite struct TextCleaningTests {
    /// The encoder's own trim gives what Foundation's `trimmingCharacters(in: .whitespacesAndNewlines)`
    /// gives, for ASCII and Unicode whitespace, line separators, characters that look blank but are not
    /// whitespace (zero-width space, U+001C…U+001F), combining marks at the edges and texts that are all
    /// whitespace.
    @Test func trimIsFoundationsTrim() {
        let edges = [" ", "\t", "\n", "\r\n", "\u{0B}", "\u{0C}", "\u{85}", "\u{A0}", "\u{1680}", "\u{2003}", "\u{2028}",
                     "\u{2029}", "\u{202F}", "\u{3000}", "\u{200B}", "\u{1C}", "\u{1F}", "\u{FEFF}", "\u{301}", "x", "é", "🚀", ""]
        var texts = ["", "plain", "def f():\n    return 1\n", "Function: parse\nCode:\n  x = 1  "]
        for a in edges { for b in edges { for body in ["", "a b", "中文\u{301}"] { texts.append(a + b + body + b + a) } } }
        var random = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            texts.append((0..<Int.random(in: 0...12, using: &random)).map { _ in edges.randomElement(using: &random)! }.joined())
        }
        for text in texts {
            #expect(ColBERTEncoder.trimmingWhitespaceAndNewlines(text) == text.trimmingCharacters(in: .whitespacesAndNewlines),
                    "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }
}
