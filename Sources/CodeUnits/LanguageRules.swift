/// How a docstring is found for a unit.
enum DocStyle: Sendable {
    case none
    /// Python: the first string statement of the body.
    case bodyString
    /// Contiguous comment lines above starting with one of these markers (Rust `///`, Go `//`, Ruby `#`…).
    case lineComments([String])
    /// A `/** … */` or `/* … */` block ending just above, or `///` lines (C-family, JS/TS, Java…).
    case blockComment
    /// OCaml `(** … *)` above.
    case ocamlComment
    /// Elixir `@doc "…"` above.
    case elixirAttribute
    /// Julia: a string literal just above.
    case stringAbove
}

/// How an import node is reduced to one module token (reference §1.4).
enum ImportToken: Sendable {
    /// First path segment (`os` for `os.path`, `std` for `std::collections`).
    case first
    /// Last segment (Java, Kotlin, Scala, C#).
    case last
}

/// The unit rules of one language, as data: node kinds for functions, classes, constants, imports,
/// plus a few switches for the shapes a kind list cannot express. The §1.3 languages are tuned against
/// the bundle's real grammars (see Tests/CodeUnitsTests/Fixtures); the others use the same fields.
struct LanguageRules: Sendable {
    var functions: [String] = []
    var classes: [String] = []
    /// Abstract type containers: emitted as class units, bodies not recursed.
    var abstractClasses: [String] = []
    /// A class node with one of these keyword tokens is abstract (Kotlin `interface`, Swift `protocol`/`enum`).
    var abstractKeywords: [String] = []
    /// Unnamed containers whose functions become methods of the `type` field (Rust `impl_item`).
    var implContainers: [String] = []
    var constants: [String] = []
    /// When non-empty, a constant node must contain one of these operator tokens (R `<-`).
    var constantOperators: [String] = []
    /// Python: only assignments to an UPPER_CASE name are constants.
    var upperCaseConstantsOnly = false
    var imports: [String] = []
    /// Calls of these functions are imports too (`require`, `library`…); their first argument is the module.
    var importCalls: [String] = []
    var importToken: ImportToken = .first
    /// Call-shaped definitions (Elixir `def`, Lisp `defn`/`define`): nodes of `headKinds` whose head
    /// names a function or class definer.
    var headKinds: [String] = []
    var headFunctions: [String] = []
    var headClasses: [String] = []
    var attributePrefixes: [String] = []
    var doc: DocStyle = .none
    /// Languages whose reference output includes `return_type`.
    var reportsReturnType = false
    /// A class's name is its first line up to `{` (CSS selectors, `@media …`).
    var nameFromFirstLine = false
    /// A function node followed by one of these sibling kinds spans it too (Dart signature + body).
    var siblingBodies: [String] = []
    /// Definitions must carry a `name` field (Haskell reuses `function` for function types).
    var requireNameField = false
    /// Host formats with `<script>` blocks parsed by another grammar (Vue, Svelte, HTML, Astro).
    var embeddedScriptGrammar: String?

    static let cFamilyAttributes = ["@", "/**", "*", "///", "#["]

    /// Rules per language name (`Language.name`); a language without an entry gets only raw-code units.
    static let table: [String: LanguageRules] = {
        var t: [String: LanguageRules] = [:]
        t["python"] = LanguageRules(
            functions: ["function_definition"], classes: ["class_definition"],
            constants: ["expression_statement"], upperCaseConstantsOnly: true,
            imports: ["import_statement", "import_from_statement", "future_import_statement"],
            attributePrefixes: ["@"], doc: .bodyString, reportsReturnType: true)
        t["starlark"] = t["python"]
        t["rust"] = LanguageRules(
            functions: ["function_item", "function_signature_item"],
            classes: ["struct_item", "enum_item", "union_item", "trait_item", "mod_item"],
            abstractClasses: ["trait_item"], implContainers: ["impl_item"],
            constants: ["const_item", "static_item"], imports: ["use_declaration", "extern_crate_declaration"],
            attributePrefixes: ["#[", "#![", "///"], doc: .lineComments(["///"]), reportsReturnType: true)
        let tsLike = LanguageRules(
            functions: ["function_declaration", "generator_function_declaration", "method_definition", "arrow_function",
                        "function_expression", "function_signature", "abstract_method_signature"],
            classes: ["class_declaration", "abstract_class_declaration", "class", "interface_declaration",
                      "type_alias_declaration", "enum_declaration", "module", "internal_module"],
            abstractClasses: ["interface_declaration", "type_alias_declaration", "enum_declaration"],
            constants: ["lexical_declaration", "variable_declaration"], imports: ["import_statement"],
            importCalls: ["require"],
            attributePrefixes: ["@", "/**", "*"], doc: .blockComment, reportsReturnType: true)
        t["typescript"] = tsLike
        var js = tsLike
        js.classes = ["class_declaration", "class"]
        js.abstractClasses = []
        t["javascript"] = js
        t["go"] = LanguageRules(
            functions: ["function_declaration", "method_declaration"], classes: ["type_declaration"],
            constants: ["const_declaration", "var_declaration"], imports: ["import_spec"],
            attributePrefixes: ["//"], doc: .lineComments(["//"]), reportsReturnType: true)
        t["java"] = LanguageRules(
            functions: ["method_declaration", "constructor_declaration", "compact_constructor_declaration"],
            classes: ["class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
                      "annotation_type_declaration"],
            abstractClasses: ["interface_declaration", "enum_declaration", "annotation_type_declaration"],
            imports: ["import_declaration"], importToken: .last,
            attributePrefixes: ["@"], doc: .blockComment, reportsReturnType: true)
        t["csharp"] = LanguageRules(
            functions: ["method_declaration", "constructor_declaration", "local_function_statement", "destructor_declaration"],
            classes: ["class_declaration", "interface_declaration", "enum_declaration", "struct_declaration", "record_declaration"],
            abstractClasses: ["interface_declaration", "enum_declaration"],
            imports: ["using_directive"], importToken: .last,
            attributePrefixes: ["[", "///"], doc: .blockComment, reportsReturnType: true)
        t["c"] = LanguageRules(
            functions: ["function_definition"], classes: ["struct_specifier", "union_specifier", "enum_specifier"],
            constants: ["declaration"], imports: ["preproc_include"],
            attributePrefixes: ["///", "/**", "*"], doc: .blockComment, reportsReturnType: true)
        t["cpp"] = LanguageRules(
            functions: ["function_definition"],
            classes: ["class_specifier", "struct_specifier", "union_specifier", "enum_specifier"],
            abstractClasses: ["enum_specifier"], constants: ["declaration"], imports: ["preproc_include"],
            attributePrefixes: ["///", "/**", "*", "template"], doc: .blockComment, reportsReturnType: true)
        t["objc"] = LanguageRules(
            functions: ["function_definition", "method_definition"],
            classes: ["class_interface", "class_implementation", "protocol_declaration", "struct_specifier"],
            abstractClasses: ["protocol_declaration"], constants: ["declaration"],
            imports: ["preproc_include", "module_import"], attributePrefixes: ["///", "/**", "*"], doc: .blockComment)
        t["ruby"] = LanguageRules(
            functions: ["method", "singleton_method"], classes: ["class", "module", "singleton_class"],
            importCalls: ["require", "require_relative", "load"], attributePrefixes: [],
            doc: .lineComments(["#"]))
        t["kotlin"] = LanguageRules(
            functions: ["function_declaration", "anonymous_function", "secondary_constructor"],
            classes: ["class_declaration", "object_declaration", "companion_object"],
            abstractKeywords: ["interface"], constants: ["property_declaration"], imports: ["import"], importToken: .last,
            attributePrefixes: ["@"], doc: .blockComment)
        t["swift"] = LanguageRules(
            functions: ["function_declaration", "init_declaration", "deinit_declaration", "protocol_function_declaration", "subscript_declaration"],
            classes: ["class_declaration", "protocol_declaration", "extension_declaration"],
            abstractClasses: ["protocol_declaration"], abstractKeywords: ["enum"],
            constants: ["property_declaration"], imports: ["import_declaration"],
            attributePrefixes: ["@", "///"], doc: .lineComments(["///"]))
        t["scala"] = LanguageRules(
            functions: ["function_definition", "function_declaration"],
            classes: ["class_definition", "object_definition", "trait_definition", "enum_definition"],
            abstractClasses: ["trait_definition"], constants: ["val_definition", "var_definition"],
            imports: ["import_declaration"], importToken: .last, attributePrefixes: ["@"], doc: .blockComment)
        t["php"] = LanguageRules(
            functions: ["function_definition", "method_declaration"],
            classes: ["class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"],
            abstractClasses: ["interface_declaration", "trait_declaration", "enum_declaration"],
            constants: ["const_declaration"], imports: ["namespace_use_declaration"], importToken: .last,
            attributePrefixes: ["#[", "/**", "*"], doc: .blockComment)
        t["lua"] = LanguageRules(
            functions: ["function_declaration"], constants: [], importCalls: ["require"],
            doc: .lineComments(["---"]))
        t["elixir"] = LanguageRules(
            functions: ["anonymous_function"], constants: ["unary_operator"],
            headKinds: ["call"], headFunctions: ["def", "defp", "defmacro", "defmacrop", "defguard", "defdelegate"],
            headClasses: ["defmodule", "defprotocol", "defimpl"],
            attributePrefixes: ["@doc", "@spec", "@impl"], doc: .elixirAttribute)
        t["haskell"] = LanguageRules(
            functions: ["function", "bind"], classes: ["data_type", "newtype", "type_synomym", "class", "instance"],
            imports: ["import"], attributePrefixes: ["-- |"], doc: .lineComments(["-- |", "-- ^"]),
            requireNameField: true)
        t["ocaml"] = LanguageRules(
            functions: ["let_binding"], classes: ["type_definition", "module_definition", "class_definition"],
            imports: ["open_module"], attributePrefixes: ["(**"], doc: .ocamlComment)
        t["r"] = LanguageRules(
            functions: ["function_definition"], constants: ["binary_operator"], constantOperators: ["<-", "=", "<<-"],
            importCalls: ["library", "require", "source"], doc: .lineComments(["#'", "#"]))
        t["zig"] = LanguageRules(
            functions: ["function_declaration"], classes: ["struct_declaration", "enum_declaration", "union_declaration"],
            constants: ["variable_declaration"], importCalls: ["@import"], doc: .lineComments(["///"]))
        t["julia"] = LanguageRules(
            functions: ["function_definition", "macro_definition"],
            classes: ["struct_definition", "abstract_definition", "module_definition", "primitive_definition"],
            abstractClasses: ["abstract_definition"], constants: ["const_statement"],
            imports: ["using_statement", "import_statement"], doc: .stringAbove)
        t["sql"] = LanguageRules(
            functions: ["create_function", "create_procedure"],
            classes: ["create_table", "create_view", "create_index", "create_materialized_view", "create_type"],
            doc: .lineComments(["--"]))
        t["css"] = LanguageRules(
            classes: ["rule_set", "media_statement", "keyframes_statement", "supports_statement"],
            constants: ["import_statement", "charset_statement", "namespace_statement"], nameFromFirstLine: true)
        var scss = t["css"]!
        scss.functions = ["mixin_statement", "function_statement"]
        scss.imports = ["import_statement", "use_statement"]
        t["scss"] = scss
        t["dart"] = LanguageRules(
            functions: ["function_signature", "method_signature", "getter_signature", "setter_signature"],
            classes: ["class_definition", "mixin_declaration", "extension_declaration", "enum_declaration"],
            abstractClasses: ["enum_declaration"], imports: ["import_or_export"],
            attributePrefixes: ["@", "///"], doc: .lineComments(["///"]), siblingBodies: ["function_body"])
        t["vue"] = LanguageRules(embeddedScriptGrammar: "typescript")
        t["svelte"] = LanguageRules(embeddedScriptGrammar: "typescript")
        t["astro"] = LanguageRules(embeddedScriptGrammar: "typescript")
        t["html"] = LanguageRules(embeddedScriptGrammar: "javascript")

        // Other grammars of the bundle: node kinds read from each grammar's symbol table.
        t["perl"] = LanguageRules(functions: ["function_definition"], classes: ["package_statement"],
                                  imports: ["use_statement", "require_statement"], doc: .lineComments(["#"]))
        t["groovy"] = LanguageRules(functions: ["function_definition", "function_declaration"], classes: ["class_definition"],
                                    imports: ["groovy_import"], importToken: .last, attributePrefixes: ["@"], doc: .blockComment)
        let lisp = LanguageRules(headKinds: ["list_lit", "list"],
                                 headFunctions: ["defn", "defn-", "defmacro", "defmethod", "define", "define-syntax", "define-macro", "lambda"],
                                 headClasses: ["defprotocol", "defrecord", "deftype", "ns", "define-record-type", "struct", "module"],
                                 doc: .lineComments([";;", ";"]))
        t["clojure"] = lisp
        t["scheme"] = lisp
        t["racket"] = lisp
        t["erlang"] = LanguageRules(functions: ["fun_decl"], classes: ["record_decl"], imports: ["import_attribute"],
                                    doc: .lineComments(["%%", "%"]))
        t["fortran"] = LanguageRules(functions: ["function", "subroutine"], classes: ["module", "program", "derived_type_definition", "interface"],
                                     imports: ["use_statement"], doc: .lineComments(["!"]))
        t["graphql"] = LanguageRules(functions: ["operation_definition", "fragment_definition", "directive_definition"],
                                     classes: ["object_type_definition", "interface_type_definition", "enum_type_definition",
                                               "input_object_type_definition", "union_type_definition", "scalar_type_definition"],
                                     doc: .lineComments(["#"]))
        t["hcl"] = LanguageRules(classes: ["block"], doc: .lineComments(["#", "//"]), nameFromFirstLine: true)
        t["proto"] = LanguageRules(functions: ["rpc"], classes: ["message", "service", "enum"], imports: ["import"],
                                   doc: .lineComments(["//"]))
        t["solidity"] = LanguageRules(
            functions: ["function_definition", "constructor_definition", "modifier_definition", "fallback_receive_definition", "event_definition"],
            classes: ["contract_declaration", "interface_declaration", "library_declaration", "struct_declaration", "enum_declaration"],
            abstractClasses: ["interface_declaration", "enum_declaration"], constants: ["constant_variable_declaration"],
            imports: ["import_directive"], attributePrefixes: ["///", "/**", "*"], doc: .blockComment)
        t["nix"] = LanguageRules(functions: ["function_expression"], doc: .lineComments(["#"]))
        t["cmake"] = LanguageRules(functions: ["function_def", "macro_def"], doc: .lineComments(["#"]))
        t["latex"] = LanguageRules(classes: ["chapter", "section", "subsection"], nameFromFirstLine: true)
        t["typst"] = LanguageRules(classes: ["heading"], nameFromFirstLine: true)
        t["vim"] = LanguageRules(functions: ["function_definition"], doc: .lineComments(["\""]))
        t["wat"] = LanguageRules(functions: ["module_field_func"], classes: [])
        t["jsonnet"] = LanguageRules(imports: ["import"])
        t["just"] = LanguageRules(functions: ["recipe"], doc: .lineComments(["#"]))
        t["kdl"] = LanguageRules(classes: [])
        t["gotmpl"] = LanguageRules(functions: ["define_action", "block_action"])
        t["batch"] = LanguageRules(functions: [])
        // Markup, schemas and templates have no definitions worth a unit of their own: whole-file
        // raw-code blocks (still parsed, so nesting past the limit is caught like any other file).
        for markup in ["xml", "dtd", "jinja2", "embedded_template", "heex"] { t[markup] = LanguageRules() }
        return t
    }()
}
