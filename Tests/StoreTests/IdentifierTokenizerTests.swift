import Testing
@testable import Store

@Suite struct IdentifierTokenizerTests {
    @Test func camelCaseWithAcronymSplitsIntoPartsAndBigrams() {
        #expect(IdentifierTokenizer.tokenize("getHTTPResponse") ==
                ["gethttpresponse", "get", "http", "response", "get_http", "http_response"])
    }

    @Test func snakeCaseEmitsPartsAndAdjacentBigrams() {
        #expect(IdentifierTokenizer.tokenize("handler_stack_push") ==
                ["handler_stack_push", "handler", "stack", "push", "handler_stack", "stack_push"])
        #expect(IdentifierTokenizer.tokenize("HandlerStack") == ["handlerstack", "handler", "stack", "handler_stack"])
    }

    @Test func singleWordsAndAcronymsStayWhole() {
        #expect(IdentifierTokenizer.tokenize("simple HTTP x") == ["simple", "http", "x"])
        #expect(IdentifierTokenizer.tokenize("ABc") == ["abc", "a", "bc", "a_bc"])
    }

    @Test func numbersAreDropped() {
        #expect(IdentifierTokenizer.tokenize("42 3.14 7") == [])
        #expect(IdentifierTokenizer.tokenize("parseV2Config") ==
                ["parsev2config", "parse", "v", "config", "parse_v", "v_config"])
        // A lone part that differs from the whole is emitted too, so `utf` and `init` find these.
        #expect(IdentifierTokenizer.tokenize("utf8 __init__") == ["utf8", "utf", "__init__", "init"])
        #expect(IdentifierTokenizer.tokenize("_ __ _1 sha256") == ["sha256", "sha"])
        #expect(IdentifierTokenizer.tokenize("x2y") == ["x2y", "x", "y", "x_y"])
    }

    @Test func nonASCIISeparatesIdentifiersAndIsIgnored() {
        #expect(IdentifierTokenizer.tokenize("日本語 fooBar") == ["foobar", "foo", "bar", "foo_bar"])
        #expect(IdentifierTokenizer.tokenize("naïveFunc") == ["na", "vefunc", "ve", "func", "ve_func"])
        #expect(IdentifierTokenizer.tokenize("") == [])
        #expect(IdentifierTokenizer.tokenize("+-*/ () {}") == [])
    }

    @Test func codeIsSplitOnPunctuation() {
        #expect(IdentifierTokenizer.tokenize("self.fooBar(baz_qux);") ==
                ["self", "foobar", "foo", "bar", "foo_bar", "baz_qux", "baz", "qux"])
    }

    @Test func keywordQueryIsAnOrOfDistinctQuotedTokens() {
        #expect(MetadataStore.keywordQuery("parse parse_config") ==
                "\"parse\" OR \"parse_config\" OR \"config\"")
        #expect(MetadataStore.keywordQuery("!!! 123") == nil)
    }
}
