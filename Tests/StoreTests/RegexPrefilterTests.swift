import Foundation
import Testing
@testable import Store

@Suite struct RegexPrefilterTests {
    private func literal(_ pattern: String) -> String? {
        RegexPrefilter(pattern: pattern).requiredLiteral.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func requiredLiteralIsTheLongestSafeRun() {
        #expect(literal("foo_bar") == "foo_bar")
        #expect(literal(#"(?mi)Cache\[Item"#) == "cache[item")
        #expect(RegexPrefilter(pattern: "(?mi)abc").caseInsensitive)
        #expect(literal("ab?cde") == "cde")
        #expect(literal("colou?r") == "colo")
        #expect(literal("(foo|bar)bazz") == "bazz")
        #expect(literal("x{2,3}yzw") == "yzw")
        #expect(literal("[abc]+def") == "def")
        #expect(literal(#"\bsend_request\("#) == "send_request(")
        #expect(literal("abc+d") == "abc")
        #expect(literal("fn .*? main") == " main")
    }

    @Test func givesUpOnWhatItDoesNotParse() {
        #expect(literal("foo|barbaz") == nil)
        #expect(literal(#"\x41BCD"#) == nil)
        #expect(literal("(?x)foo bar") == nil)
        #expect(literal(#"\Qa.b\E"#) == nil)
        #expect(literal("[]abc]xyz") == nil)
        #expect(literal("ab") == nil)
    }

    @Test func riskyShapesAreFlagged() {
        #expect(RegexPrefilter(pattern: "^(a+)+$").mayBacktrackBadly)
        #expect(RegexPrefilter(pattern: #"(\w)\1"#).mayBacktrackBadly)
        #expect(RegexPrefilter(pattern: #"\w*\s*\w*="#).mayBacktrackBadly)
        #expect(!RegexPrefilter(pattern: #"fn\s+main\("#).mayBacktrackBadly)
    }

    /// The prefilter may only answer "no match" when ICU agrees, over many pattern/text pairs.
    @Test func neverRejectsARowICUWouldMatch() throws {
        let pieces = ["ab", "a", "b", "c", "abc", "a?", "b*", "c+", "(ab)", "[ab]", ".", "(?i)", "AB", "x{1,2}", "\\.", "ſ", "K"]
        let alphabet: [Character] = ["a", "b", "c", "A", "B", "x", ".", "\u{212A}", "ſ", "s", "\n"]
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<400 {
            let pattern = (0..<Int.random(in: 1...4, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            guard let regex = try? NSRegularExpression(pattern: pattern) else { continue }
            let prefilter = RegexPrefilter(pattern: pattern)
            for _ in 0..<10 {
                let text = String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
                let icu = regex.firstMatch(in: text, range: NSRange(location: 0, length: text.utf16.count)) != nil
                var utf8 = Array(text.utf8)
                let allowed = utf8.withUnsafeMutableBufferPointer { prefilter.mayMatch(UnsafeBufferPointer($0)) }
                #expect(allowed || !icu, "pattern \(pattern) text \(text.debugDescription)")
            }
        }
    }
}

/// A deterministic generator (SplitMix64) so the property test is reproducible.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
