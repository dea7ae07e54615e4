/// A language's rules resolved against one loaded grammar: kind names become symbol-id sets and
/// field names become field ids, so the extraction passes compare integers.
struct CompiledRules {
    let rules: LanguageRules
    let grammar: Grammar
    let functions, classes, abstractClasses, implContainers, constants, imports, headKinds, siblingBodies: Set<UInt16>
    let calls, branches, loops, errorHandling, variables, identifiers, parameterLists, parameterNodes: Set<UInt16>
    let extendsKinds, typeParameterLists, stringKinds, typeSpecs, expressionStatements, assignments: Set<UInt16>
    let abstractKeywordSymbols: Set<UInt16>
    let f: Fields

    struct Fields {
        let name, declarator, parameters, body, returnType, result, type, returns, value, left, lhs, pattern,
            function, method, macro, constructor, target, receiver, superclass, superclasses, moduleName, source,
            path, argument, module, arguments, typeParameters, scope: UInt16
    }

    // Node kinds shared by all grammars (reference §1.4 lists them by name, whatever the language).
    static let callKinds = [
        "call", "call_expression", "method_invocation", "object_creation_expression", "macro_invocation",
        "invocation_expression", "function_call", "method_call", "function_call_expression", "member_call_expression",
        "scoped_call_expression", "nullsafe_member_call_expression", "message_expression", "new_expression",
        "constructor_invocation", "functioncall", "subroutine_call", "macrocall_expression", "instr_call", "call_stmt",
    ]
    static let branchKinds = [
        "if_statement", "if_expression", "match_expression", "match_statement", "switch_statement", "case_statement",
        "conditional_expression", "ternary_expression", "if", "unless", "when", "expression_switch_statement",
        "type_switch_statement", "select_statement", "switch_expression", "when_expression", "guard_statement",
        "elif_clause", "else_if_clause", "elsif", "case", "if_let_expression", "if_clause", "cond",
    ]
    static let loopKinds = [
        "for_statement", "for_expression", "while_statement", "while_expression", "loop_expression", "for_in_statement",
        "foreach_statement", "do_statement", "for", "while", "until", "enhanced_for_statement", "for_range_loop",
        "repeat_statement", "do_while_statement", "for_each_statement", "repeat_while_statement", "for_generic_clause",
        "for_numeric_clause", "while_loop", "for_loop",
    ]
    static let errorKinds = [
        "try_statement", "try_expression", "catch_clause", "rescue", "except_clause", "try", "?", "try_operator",
        "catch_block", "try_block", "do_catch_statement", "catch_keyword", "rescue_block", "finally_clause",
    ]
    static let variableKinds = [
        "assignment", "named_expression", "augmented_assignment", "let_declaration", "variable_declarator",
        "short_var_declaration", "var_spec", "init_declarator", "property_declaration", "assignment_expression",
        "assignment_statement", "val_definition", "var_definition", "static_final_declaration",
        "initialized_variable_definition", "local_variable_declaration", "variable_declaration",
    ]
    static let identifierKinds = [
        "identifier", "type_identifier", "simple_identifier", "constant", "property_identifier", "field_identifier",
        "name", "word", "value_name", "type_constructor", "module_name", "variable", "sym_name", "symbol",
        "object_reference", "package_name", "message_name", "service_name", "enum_name", "rpc_name", "function_name",
        "class_name", "type_name", "namespace_identifier", "atom", "alias", "constructor", "qualified_identifier",
        "scoped_identifier", "dotted_name", "private_property_identifier", "destructor_name", "operator_name",
        "shorthand_property_identifier", "bare_key", "method_name",
    ]
    static let parameterListKinds = [
        "parameters", "formal_parameters", "parameter_list", "function_value_parameters", "method_parameters",
        "formal_parameter_list", "lambda_parameters", "class_parameters", "parameter_clause",
    ]

    init(rules: LanguageRules, grammar g: Grammar) {
        self.rules = rules
        self.grammar = g
        functions = g.symbols(rules.functions)
        classes = g.symbols(rules.classes)
        abstractClasses = g.symbols(rules.abstractClasses)
        implContainers = g.symbols(rules.implContainers)
        constants = g.symbols(rules.constants)
        imports = g.symbols(rules.imports)
        headKinds = g.symbols(rules.headKinds)
        siblingBodies = g.symbols(rules.siblingBodies)
        calls = g.symbols(Self.callKinds)
        branches = g.symbols(Self.branchKinds)
        loops = g.symbols(Self.loopKinds)
        errorHandling = g.symbols(Self.errorKinds)
        variables = g.symbols(Self.variableKinds)
        identifiers = g.symbols(Self.identifierKinds)
        parameterLists = g.symbols(Self.parameterListKinds)
        parameterNodes = g.symbols(["parameter"])
        extendsKinds = g.symbols(["superclass", "superclasses", "extends_clause", "base_class_clause", "base_list",
                                  "base_clause", "delegation_specifiers", "inheritance_specifier", "class_heritage"])
        typeParameterLists = g.symbols(["type_parameters", "type_parameter_list"])
        stringKinds = g.symbols(["string", "string_literal", "concatenated_string"])
        typeSpecs = g.symbols(["type_spec", "type_alias"])
        expressionStatements = g.symbols(["expression_statement"])
        assignments = g.symbols(["assignment"])
        abstractKeywordSymbols = g.symbols(rules.abstractKeywords)
        f = Fields(
            name: g.field("name"), declarator: g.field("declarator"), parameters: g.field("parameters"),
            body: g.field("body"), returnType: g.field("return_type"), result: g.field("result"), type: g.field("type"),
            returns: g.field("returns"), value: g.field("value"), left: g.field("left"), lhs: g.field("lhs"),
            pattern: g.field("pattern"), function: g.field("function"), method: g.field("method"), macro: g.field("macro"),
            constructor: g.field("constructor"), target: g.field("target"), receiver: g.field("receiver"),
            superclass: g.field("superclass"), superclasses: g.field("superclasses"), moduleName: g.field("module_name"),
            source: g.field("source"), path: g.field("path"), argument: g.field("argument"), module: g.field("module"),
            arguments: g.field("arguments"), typeParameters: g.field("type_parameters"), scope: g.field("scope"))
    }
}
