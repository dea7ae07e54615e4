import Foundation

/// A result unit with every CodeUnit field (reference §1.4, JSON keys and order of §2.6).
public struct HitUnit: Sendable, Equatable {
    public var name: String
    public var qualifiedName: String
    /// Relative to the project root inside the index; the output layer makes it absolute or CWD-relative.
    public var file: String
    public var line: Int
    public var endLine: Int
    public var language: String
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

    public init(name: String, qualifiedName: String, file: String, line: Int, endLine: Int, language: String,
                unitType: String, signature: String, docstring: String?, parameters: [String], returnType: String?,
                extends: String?, parentClass: String?, calls: [String], calledBy: [String], complexity: Int,
                hasLoops: Bool, hasBranches: Bool, hasErrorHandling: Bool, variables: [String], imports: [String], code: String) {
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

    /// The JSON object in the reference's field order, with `file` replaced by `filePath`.
    func json(filePath: String) -> JSONValue {
        .object([
            ("name", .string(name)), ("qualified_name", .string(qualifiedName)), ("file", .string(filePath)),
            ("line", .int(line)), ("end_line", .int(endLine)), ("language", .string(language)),
            ("unit_type", .string(unitType)), ("signature", .string(signature)), ("docstring", .optionalString(docstring)),
            ("parameters", .strings(parameters)), ("return_type", .optionalString(returnType)),
            ("extends", .optionalString(extends)), ("parent_class", .optionalString(parentClass)),
            ("calls", .strings(calls)), ("called_by", .strings(calledBy)), ("complexity", .int(complexity)),
            ("has_loops", .bool(hasLoops)), ("has_branches", .bool(hasBranches)),
            ("has_error_handling", .bool(hasErrorHandling)), ("variables", .strings(variables)),
            ("imports", .strings(imports)), ("code", .string(code)),
        ])
    }
}

/// One search result: the unit (span possibly widened by file collapse) and its final score.
public struct SearchHit: Sendable, Equatable {
    public var unit: HitUnit
    public var score: Float
    /// Absolute path of the project root the unit's relative path is based on.
    public var projectRoot: String

    public init(unit: HitUnit, score: Float, projectRoot: String) {
        self.unit = unit
        self.score = score
        self.projectRoot = projectRoot
    }

    public var absolutePath: String {
        (projectRoot as NSString).appendingPathComponent(unit.file)
    }
}

/// A minimal JSON value with serde_json-compatible pretty printing (2-space indent, `": "`).
indirect enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case int(Int)
    case float(Float)
    case bool(Bool)
    case null

    static func optionalString(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
    static func strings(_ s: [String]) -> JSONValue { .array(s.map { .string($0) }) }

    func pretty(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent)
        let inner = String(repeating: "  ", count: indent + 1)
        switch self {
        case .object(let pairs):
            if pairs.isEmpty { return "{}" }
            return "{\n" + pairs.map { inner + Self.quote($0.0) + ": " + $0.1.pretty(indent: indent + 1) }.joined(separator: ",\n") + "\n" + pad + "}"
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + $0.pretty(indent: indent + 1) }.joined(separator: ",\n") + "\n" + pad + "]"
        case .string(let s): return Self.quote(s)
        case .int(let i): return String(i)
        case .float(let f): return f.isFinite ? Self.floatText(f) : "null"
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    /// Shortest round-trip text, with a `.0` for integral values as serde prints them.
    static func floatText(_ f: Float) -> String {
        var s = "\(f)"
        if !s.contains(".") && !s.contains("e") { s += ".0" }
        return s
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
