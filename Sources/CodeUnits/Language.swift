/// A source language or text format, detected from a file name (reference §1.3, extended to every
/// grammar of the bundle). `grammar` names the bundle's grammar (`manifest.json` key); text formats
/// have none and become whole-file `document` units.
public struct Language: Sendable, Hashable {
    /// The lowercase name written into `CodeUnit.language`.
    public var name: String
    /// Grammar key in the bundle manifest; nil for text formats.
    public var grammar: String?
    /// Text/config formats (`--code-only` leaves them out).
    public var isTextFormat: Bool

    init(_ name: String, grammar: String? = nil, text: Bool = false) {
        self.name = name
        self.grammar = text ? nil : (grammar ?? name)
        self.isTextFormat = text
    }

    /// Detects the language from a path: file name first (case-insensitive), then the lowercase extension.
    public static func detect(path: String) -> Language? {
        let fileName = path.split(separator: "/").last.map(String.init) ?? path
        let lower = fileName.lowercased()
        if let byName = byFileName[lower] { return byName }
        if lower.hasPrefix("dockerfile.") || lower.hasSuffix(".dockerfile") { return byFileName["dockerfile"] }
        guard let dot = lower.lastIndex(of: "."), dot != lower.startIndex else { return nil }
        return byExtension[String(lower[lower.index(after: dot)...])]
    }

    /// Every language this module knows, with its extensions and special file names.
    static let table: [(Language, extensions: [String], names: [String])] = [
        // Languages of the reference §1.3, each with its own unit rules.
        (Language("python"), ["py", "pyi", "pyw"], []),
        (Language("typescript"), ["ts", "mts", "cts"], []),
        (Language("typescript", grammar: "tsx"), ["tsx"], []),
        (Language("javascript"), ["js", "jsx", "mjs", "cjs"], []),
        (Language("go"), ["go"], []),
        (Language("rust"), ["rs"], []),
        (Language("java"), ["java"], []),
        (Language("c"), ["c", "h"], []),
        (Language("cpp"), ["cpp", "cc", "cxx", "hpp", "hxx", "hh", "c++", "h++", "ipp", "tpp"], []),
        (Language("ruby"), ["rb", "rake", "gemspec"], ["rakefile", "gemfile"]),
        (Language("csharp"), ["cs"], []),
        (Language("kotlin"), ["kt", "kts"], []),
        (Language("swift"), ["swift"], []),
        (Language("scala"), ["scala", "sc"], []),
        (Language("php"), ["php", "phtml"], []),
        (Language("lua"), ["lua"], []),
        (Language("elixir"), ["ex", "exs"], []),
        (Language("haskell"), ["hs", "lhs"], []),
        (Language("ocaml"), ["ml", "mli"], []),
        (Language("r"), ["r", "rmd"], []),
        (Language("zig"), ["zig"], []),
        (Language("julia"), ["jl"], []),
        (Language("sql"), ["sql"], []),
        (Language("vue"), ["vue"], []),
        (Language("svelte"), ["svelte"], []),
        (Language("css"), ["css"], []),
        (Language("html"), ["html", "htm", "xhtml"], []),
        (Language("dart"), ["dart"], []),
        // No qmljs grammar in the bundle: detected, then text fallback with one warning.
        (Language("qml", grammar: "qmljs"), ["qml"], []),
        // Other grammars of the bundle: rules from the node-kind table (LanguageRules.table).
        (Language("objc"), ["m", "mm"], []),
        (Language("perl"), ["pl", "pm", "t"], []),
        (Language("groovy"), ["groovy", "gradle", "gvy"], ["jenkinsfile"]),
        (Language("clojure"), ["clj", "cljs", "cljc", "edn"], []),
        (Language("scheme"), ["scm", "ss"], []),
        (Language("racket"), ["rkt"], []),
        (Language("erlang"), ["erl", "hrl"], []),
        (Language("fortran"), ["f", "f90", "f95", "f03", "f08", "for"], []),
        (Language("graphql"), ["graphql", "gql"], []),
        (Language("hcl"), ["tf", "hcl", "tfvars"], []),
        (Language("proto"), ["proto"], []),
        (Language("solidity"), ["sol"], []),
        (Language("starlark"), ["bzl", "star"], ["build", "build.bazel", "workspace", "workspace.bazel", "tiltfile"]),
        (Language("nix"), ["nix"], []),
        (Language("cmake"), ["cmake"], ["cmakelists.txt"]),
        (Language("scss"), ["scss"], []),
        (Language("latex"), ["tex", "sty", "cls"], []),
        (Language("typst"), ["typ"], []),
        (Language("vim"), ["vim"], [".vimrc", "_vimrc"]),
        (Language("wat"), ["wat", "wast"], []),
        (Language("xml"), ["xml", "xsd", "xsl", "xslt", "svg", "plist", "csproj"], []),
        (Language("dtd"), ["dtd"], []),
        (Language("jsonnet"), ["jsonnet", "libsonnet"], []),
        (Language("just"), ["just"], ["justfile", ".justfile"]),
        (Language("kdl"), ["kdl"], []),
        (Language("astro"), ["astro"], []),
        (Language("gotmpl"), ["tmpl", "gotmpl"], []),
        (Language("jinja2"), ["j2", "jinja", "jinja2"], []),
        (Language("embedded_template"), ["erb", "ejs"], []),
        (Language("heex"), ["heex"], []),
        (Language("batch"), ["bat", "cmd"], []),
        // Text formats (reference §1.3 plus the bundle's config formats): whole-file documents.
        (Language("markdown", text: true), ["md", "markdown", "mdx"], []),
        (Language("text", text: true), ["txt", "text", "rst"], []),
        (Language("asciidoc", text: true), ["adoc", "asciidoc"], []),
        (Language("org", text: true), ["org"], []),
        (Language("yaml", text: true), ["yaml", "yml"], []),
        (Language("toml", text: true), ["toml"], []),
        (Language("json", text: true), ["json", "json5", "jsonc"], []),
        (Language("shell", text: true), ["sh", "bash", "zsh"], []),
        (Language("powershell", text: true), ["ps1", "psm1", "psd1"], []),
        (Language("dockerfile", text: true), [], ["dockerfile", "containerfile"]),
        (Language("makefile", text: true), ["mk", "mak"], ["makefile", "gnumakefile"]),
        (Language("ini", text: true), ["ini", "cfg", "properties"], []),
    ]

    private static let byExtension: [String: Language] = {
        var map: [String: Language] = [:]
        for (language, extensions, _) in table { for e in extensions where map[e] == nil { map[e] = language } }
        return map
    }()

    private static let byFileName: [String: Language] = {
        var map: [String: Language] = [:]
        for (language, _, names) in table { for n in names { map[n] = language } }
        return map
    }()
}
