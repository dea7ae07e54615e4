import Foundation

/// What the path penalty reads from a path: how many of its strong categories (test, compat, examples)
/// the path falls in, and the two single-file rules. The knobs turn these into a factor.
struct PathTraits: Equatable, Sendable {
    var strongCategories: Int
    /// A TypeScript declaration file (`.d.ts`): the mild penalty.
    var declarationFile: Bool
    /// `__init__.py` or `package-info.java`: the moderate penalty.
    var packageMarker: Bool

    init(_ file: String) {
        var strong = 0
        if PathCategories.isTestFile(file) || PathCategories.isInTestFolder(file) { strong += 1 }
        if PathCategories.isInCompatFolder(file) { strong += 1 }
        if PathCategories.isInExamplesFolder(file) { strong += 1 }
        strongCategories = strong
        declarationFile = file.hasSuffix(".d.ts")
        let base = Ranker.fileName(file)
        packageMarker = base == "__init__.py" || base == "package-info.java"
    }
}

/// The query-independent part of a file stem's boost: the variants of all its tokens, of the whole
/// identifier, and of each part.
struct StemAnalysis: Sendable {
    var variants: Set<String>
    var wholeVariants: Set<String>
    var partVariants: [Set<String>]
}

/// Results of the re-ranker that depend on a file path or a unit name alone, kept for the process.
///
/// A one-shot search computes each once anyway; a query server re-ranks the same few thousand paths
/// and names search after search, and tokenizing them (file stems through Foundation's path functions,
/// the identifier splitter, variant sets) was ~6 % of a served search's CPU. Bounded: past
/// `maxEntries` entries a table starts over. Thread-safe.
final class RankerMemo: @unchecked Sendable {
    /// The memo of `IdentifierTokenizer.tokenize`, the production splitter.
    static let identifiers = RankerMemo()

    /// Entries a table holds before it starts over.
    let maxEntries: Int

    init(maxEntries: Int = 200_000) {
        self.maxEntries = maxEntries
    }

    private let lock = NSLock()
    private var traits: [String: PathTraits] = [:]
    /// Keyed by the plural knob too: a stem's variants depend on it.
    private var stems: [Bool: [String: StemAnalysis]] = [:]
    private var names: [String: Set<String>] = [:]

    func pathTraits(_ file: String) -> PathTraits {
        if let kept = locked({ traits[file] }) { return kept }
        let value = PathTraits(file)
        locked { store(value, for: file, in: &traits) }
        return value
    }

    func stem(of file: String, ranker: Ranker) -> StemAnalysis {
        let plural = ranker.knobs.stemPluralSnake
        if let kept = locked({ stems[plural]?[file] }) { return kept }
        let value = ranker.stemAnalysis(Ranker.stem(of: file))
        locked { store(value, for: file, in: &stems[plural, default: [:]]) }
        return value
    }

    func nameTokens(_ name: String, ranker: Ranker) -> Set<String> {
        if let kept = locked({ names[name] }) { return kept }
        let value = ranker.nameTokens(name)
        locked { store(value, for: name, in: &names) }
        return value
    }

    /// How many values are kept (tests).
    var count: Int {
        locked { traits.count + names.count + stems.values.reduce(0) { $0 + $1.count } }
    }

    private func store<V>(_ value: V, for key: String, in table: inout [String: V]) {
        if table.count >= maxEntries { table.removeAll(keepingCapacity: true) }
        table[key] = value
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}
