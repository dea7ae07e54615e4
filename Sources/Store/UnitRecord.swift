/// One code unit as the metadata store holds it: the fields of the reference's `CodeUnit`
/// (§1.4, §1.11) plus the caller-chosen, never-renumbered document id shared with the vector index.
public struct UnitRecord: Sendable, Equatable, Codable {
    /// Stable id chosen by the caller; the vector index uses the same id.
    public var docID: Int64
    /// Path relative to the project root.
    public var file: String
    public var name: String
    public var qualifiedName: String
    /// 1-based first line.
    public var line: Int
    /// 1-based last line (inclusive).
    public var endLine: Int
    public var language: String
    /// `function`, `method`, `class`, `constant`, `raw_code`, `document`, …
    public var unitType: String
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

    public init(
        docID: Int64, file: String, name: String, qualifiedName: String, line: Int, endLine: Int,
        language: String, unitType: String, signature: String = "", docstring: String? = nil,
        parameters: [String] = [], returnType: String? = nil, extends: String? = nil,
        parentClass: String? = nil, calls: [String] = [], calledBy: [String] = [], complexity: Int = 0,
        hasLoops: Bool = false, hasBranches: Bool = false, hasErrorHandling: Bool = false,
        variables: [String] = [], imports: [String] = [], code: String
    ) {
        self.docID = docID
        self.file = file
        self.name = name
        self.qualifiedName = qualifiedName
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

    /// The text the keyword index holds for this unit (reference §1.11): every field value
    /// (strings, optional strings, array elements), identifier-tokenized and joined by spaces.
    /// Numbers would be dropped by the tokenizer anyway; booleans are left out on purpose, since
    /// the words `true` / `false` on every row only add noise to keyword matches.
    var keywordText: [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(code.utf8.count + 256)
        for field in [file, name, qualifiedName, language, unitType, signature] {
            IdentifierTokenizer.appendTokens(of: field, to: &buffer)
        }
        for field in [docstring, returnType, extends, parentClass] {
            if let field { IdentifierTokenizer.appendTokens(of: field, to: &buffer) }
        }
        for list in [parameters, calls, calledBy, variables, imports] {
            for item in list { IdentifierTokenizer.appendTokens(of: item, to: &buffer) }
        }
        IdentifierTokenizer.appendTokens(of: code, to: &buffer)
        return buffer
    }
}

/// Where a unit is, without its content: the fields a search ranks a candidate pool by
/// (`MetadataStore.locations(docIDs:)`).
public struct UnitLocation: Sendable, Equatable {
    public var docID: Int64
    /// Path relative to the project root.
    public var file: String
    public var name: String
    /// `function`, `method`, `class`, … (as `UnitRecord.unitType`).
    public var unitType: String
    /// 1-based first and last line (inclusive).
    public var line: Int
    public var endLine: Int

    public init(docID: Int64, file: String, name: String, unitType: String, line: Int, endLine: Int) {
        self.docID = docID
        self.file = file
        self.name = name
        self.unitType = unitType
        self.line = line
        self.endLine = endLine
    }
}
