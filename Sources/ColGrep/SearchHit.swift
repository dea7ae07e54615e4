import CodeUnits
import Foundation

/// A result unit is a `CodeUnit` read back from the store (its span possibly widened by file collapse).
extension CodeUnit {
    /// The JSON object in the reference's field order, with `file` replaced by `filePath`.
    func json(filePath: String) -> JSONValue {
        .object([
            ("name", .string(name)), ("qualified_name", .string(qualifiedName)), ("file", .string(filePath)),
            ("line", .int(line)), ("end_line", .int(endLine)), ("language", .string(language)),
            ("unit_type", .string(unitType.rawValue)), ("signature", .string(signature)), ("docstring", .optionalString(docstring)),
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
    public var unit: CodeUnit
    public var score: Float
    /// Absolute path of the project root the unit's relative path is based on.
    public var projectRoot: String

    public init(unit: CodeUnit, score: Float, projectRoot: String) {
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
