import Foundation

/// The kind of a code unit, serialized lowercase as in ColGREP (reference §1.4).
public enum UnitType: String, Codable, Sendable {
    case function, method, `class`, constant, document, section, rawcode
}

/// One searchable piece of a file: a function, method, class, module-level constant, a raw-code gap or a
/// whole text document. Field order and JSON keys follow the reference §1.4 exactly.
public struct CodeUnit: Codable, Sendable, Equatable {
    public var name: String
    public var qualifiedName: String
    /// Path relative to the project root, `/`-separated.
    public var file: String
    /// First line, 1-based (moved up over attribute and doc-comment lines).
    public var line: Int
    /// Last line, 1-based, inclusive.
    public var endLine: Int
    public var language: String
    public var unitType: UnitType
    public var signature: String
    public var docstring: String?
    public var parameters: [String]
    public var returnType: String?
    public var extends: String?
    public var parentClass: String?
    public var calls: [String]
    public var calledBy: [String]
    public var complexity: Int
    public var hasLoops: Bool
    public var hasBranches: Bool
    public var hasErrorHandling: Bool
    public var variables: [String]
    public var imports: [String]
    public var code: String

    enum CodingKeys: String, CodingKey {
        case name
        case qualifiedName = "qualified_name"
        case file, line
        case endLine = "end_line"
        case language
        case unitType = "unit_type"
        case signature, docstring, parameters
        case returnType = "return_type"
        case extends
        case parentClass = "parent_class"
        case calls
        case calledBy = "called_by"
        case complexity
        case hasLoops = "has_loops"
        case hasBranches = "has_branches"
        case hasErrorHandling = "has_error_handling"
        case variables, imports, code
    }

    public init(
        name: String, qualifiedName: String, file: String, line: Int, endLine: Int, language: String,
        unitType: UnitType, signature: String, docstring: String? = nil, parameters: [String] = [],
        returnType: String? = nil, extends: String? = nil, parentClass: String? = nil, calls: [String] = [],
        calledBy: [String] = [], complexity: Int = 1, hasLoops: Bool = false, hasBranches: Bool = false,
        hasErrorHandling: Bool = false, variables: [String] = [], imports: [String] = [], code: String
    ) {
        self.name = name
        self.qualifiedName = qualifiedName
        self.file = file
        self.line = line
        self.endLine = endLine
        self.language = language
        self.unitType = unitType
        self.signature = signature
        self.docstring = docstring
        self.parameters = parameters
        self.returnType = returnType
        self.extends = extends
        self.parentClass = parentClass
        self.calls = calls
        self.calledBy = calledBy
        self.complexity = complexity
        self.hasLoops = hasLoops
        self.hasBranches = hasBranches
        self.hasErrorHandling = hasErrorHandling
        self.variables = variables
        self.imports = imports
        self.code = code
    }

    /// Encodes optional fields as explicit nulls so every key of §1.4 is always present.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(qualifiedName, forKey: .qualifiedName)
        try c.encode(file, forKey: .file)
        try c.encode(line, forKey: .line)
        try c.encode(endLine, forKey: .endLine)
        try c.encode(language, forKey: .language)
        try c.encode(unitType, forKey: .unitType)
        try c.encode(signature, forKey: .signature)
        try c.encode(docstring, forKey: .docstring)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(returnType, forKey: .returnType)
        try c.encode(extends, forKey: .extends)
        try c.encode(parentClass, forKey: .parentClass)
        try c.encode(calls, forKey: .calls)
        try c.encode(calledBy, forKey: .calledBy)
        try c.encode(complexity, forKey: .complexity)
        try c.encode(hasLoops, forKey: .hasLoops)
        try c.encode(hasBranches, forKey: .hasBranches)
        try c.encode(hasErrorHandling, forKey: .hasErrorHandling)
        try c.encode(variables, forKey: .variables)
        try c.encode(imports, forKey: .imports)
        try c.encode(code, forKey: .code)
    }
}

/// What extracting one file produced: its units, or why it was skipped, plus non-fatal warnings
/// (e.g. a grammar that failed to load, so text units were used instead).
public struct FileExtraction: Sendable {
    public var units: [CodeUnit]
    /// Set when the file yields no units because it cannot be read as source (binary, invalid UTF-8,
    /// nesting past the recursion limit, unreadable). The file is counted as skipped with this reason.
    public var skipReason: String?
    public var warnings: [String]

    public init(units: [CodeUnit], skipReason: String? = nil, warnings: [String] = []) {
        self.units = units
        self.skipReason = skipReason
        self.warnings = warnings
    }
}
