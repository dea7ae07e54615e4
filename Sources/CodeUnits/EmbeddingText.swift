/// The text a unit is embedded from (reference §1.5): labelled fields in a fixed order, the normalized
/// path before the code so truncation only loses the code's tail, capped at 8,192 characters.
public enum EmbeddingText {
    public static let maxCharacters = 8192
    public static let truncationMarker = "\n[...truncated...]\n"

    public static func build(for unit: CodeUnit) -> String {
        if unit.unitType == .rawcode || unit.unitType == .constant { return truncate(unit.code) }
        var parts: [String] = []
        func add(_ label: String, _ value: String?) {
            if let value, !value.isEmpty { parts.append("\(label): \(value)") }
        }
        add(typeLabel(unit.unitType), unit.name)
        add("Signature", unit.signature)
        add("Extends", unit.extends)
        add("Class", unit.parentClass)
        add("Description", unit.docstring)
        add("Parameters", unit.parameters.joined(separator: ", "))
        add("Returns", unit.returnType)
        add("Calls", unit.calls.joined(separator: ", "))
        add("Called by", unit.calledBy.joined(separator: ", "))
        add("Variables", unit.variables.joined(separator: ", "))
        add("Uses", unit.imports.joined(separator: ", "))
        add("File", normalizedPath(unit.file))
        parts.append("Code:\n\(unit.code)")
        return truncate(parts.joined(separator: "\n"))
    }

    static func typeLabel(_ type: UnitType) -> String {
        switch type {
        case .function: return "Function"
        case .method: return "Method"
        case .class: return "Class"
        case .constant: return "Constant"
        case .document: return "Document"
        case .section: return "Section"
        case .rawcode: return "Code block"
        }
    }

    /// Last four components, extension dropped, separators and camel-case humps turned into spaces,
    /// lowercased, then the original file name: `src/utils/HttpClientHelper.rs` →
    /// `src utils http client helper HttpClientHelper.rs`.
    public static func normalizedPath(_ path: String) -> String {
        let components = path.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        let kept = components.suffix(4).joined(separator: "/")
        let fileName = components.last.map(String.init) ?? path
        var base = Substring(kept)
        if let dot = base.lastIndex(of: ".") { base = base[..<dot] }
        var out = ""
        var previous: Character = " "
        for ch in base {
            if "/\\_-.".contains(ch) {
                out.append(" ")
            } else {
                if ch.isUppercase && previous.isLowercase { out.append(" ") }
                out.append(ch)
            }
            previous = ch
        }
        let words = out.lowercased().split(whereSeparator: { $0.isWhitespace })
        return (words.map(String.init) + [fileName]).joined(separator: " ")
    }

    /// Caps `text` at `maxCharacters` Unicode scalars, ending with the truncation marker.
    public static func truncate(_ text: String) -> String {
        // At most one scalar per UTF-8 byte: short texts need no counting.
        if text.utf8.count <= maxCharacters { return text }
        let scalars = text.unicodeScalars
        let keep = maxCharacters - truncationMarker.unicodeScalars.count
        // Within the cap (fewer than maxCharacters + 1 scalars): unchanged.
        guard let cut = scalars.index(scalars.startIndex, offsetBy: keep, limitedBy: scalars.endIndex),
              scalars.index(cut, offsetBy: maxCharacters + 1 - keep, limitedBy: scalars.endIndex) != nil else { return text }
        var head = Substring(text.unicodeScalars[..<cut])
        while let last = head.last, last.isWhitespace { head.removeLast() }
        return head + truncationMarker
    }
}

/// `called_by` links (reference §1.4, `call_graph.rs`), resolved over every unit passed in — the whole
/// project, not one batch, so callers in unchanged files stay linked after incremental updates.
public enum CallGraph {
    public static func resolve(_ units: inout [CodeUnit]) {
        var byName: [String: [Int]] = [:]
        for (i, u) in units.enumerated() where u.unitType != .rawcode {
            byName[u.name, default: []].append(i)
        }
        var callers = [Set<String>](repeating: [], count: units.count)
        for u in units {
            for callee in u.calls {
                for j in byName[callee] ?? [] { callers[j].insert(u.name) }
            }
        }
        for i in units.indices { units[i].calledBy = callers[i].sorted() }
    }
}
