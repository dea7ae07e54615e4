import CTreeSitter
import Foundation

/// Finds the grammar bundle directory for this platform.
public enum GrammarLocator {
    /// `linux-x86_64`, `macos-arm64`, … as the bundle names its platform folders.
    public static var platform: String {
        #if os(Linux)
        let os = "linux"
        #elseif os(macOS)
        let os = "macos"
        #else
        let os = "unknown"
        #endif
        #if arch(x86_64)
        return "\(os)-x86_64"
        #elseif arch(arm64)
        return "\(os)-arm64"
        #else
        return "\(os)-unknown"
        #endif
    }

    /// `$COLGREP_GRAMMARS_DIR`, then `<exe>/../../.deps/grammars/<platform>` (a `.build/<config>/` binary),
    /// then `<exe>/../share/colgrep/grammars/<platform>`, then `~/.local/share/colgrep/grammars/<platform>`:
    /// the first that holds a `manifest.json`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        var candidates: [URL] = []
        if let dir = environment["COLGREP_GRAMMARS_DIR"], !dir.isEmpty { candidates.append(URL(fileURLWithPath: dir)) }
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        let exeDir = executable.deletingLastPathComponent()
        // .build/<config>/ is often a symlink to .build/<triple>/<config>/: try both depths.
        for up in ["../..", "../../.."] {
            candidates.append(exeDir.appendingPathComponent("\(up)/.deps/grammars/\(platform)").standardizedFileURL)
        }
        candidates.append(exeDir.appendingPathComponent("../share/colgrep/grammars/\(platform)").standardizedFileURL)
        let home = environment["HOME"] ?? NSHomeDirectory()
        candidates.append(URL(fileURLWithPath: home).appendingPathComponent(".local/share/colgrep/grammars/\(platform)"))
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("manifest.json").path) }
    }
}

/// A loaded grammar: the `TSLanguage` pointer and its node-kind and field tables.
final class Grammar: @unchecked Sendable {
    let name: String
    let language: OpaquePointer
    /// Symbol id → node kind name.
    let symbolNames: [String]
    private let symbolsByName: [String: [UInt16]]
    private let fieldsByName: [String: UInt16]

    init(name: String, language: OpaquePointer) {
        self.name = name
        self.language = language
        let count = Int(ts_language_symbol_count(language))
        var names: [String] = []
        var byName: [String: [UInt16]] = [:]
        names.reserveCapacity(count)
        for id in 0..<count {
            let n = ts_language_symbol_name(language, UInt16(id)).map { String(cString: $0) } ?? ""
            names.append(n)
            byName[n, default: []].append(UInt16(id))
        }
        symbolNames = names
        symbolsByName = byName
        var fields: [String: UInt16] = [:]
        let fieldCount = ts_language_field_count(language)
        if fieldCount > 0 {
            for id in 1...fieldCount {
                if let n = ts_language_field_name_for_id(language, UInt16(id)) { fields[String(cString: n)] = UInt16(id) }
            }
        }
        fieldsByName = fields
    }

    /// Every symbol id whose kind name is one of `names` (a name can map to several ids through aliases).
    func symbols(_ names: [String]) -> Set<UInt16> {
        var set = Set<UInt16>()
        for n in names { set.formUnion(symbolsByName[n] ?? []) }
        return set
    }

    func field(_ name: String) -> UInt16 { fieldsByName[name] ?? 0 }
}

/// Loads grammar libraries from a bundle directory on demand: reads `manifest.json`, verifies each
/// library's SHA-256, `dlopen`s it, resolves `tree_sitter_<lang>` and checks the ABI version against
/// the range this tree-sitter core supports. Failures are remembered (one warning per grammar).
final class GrammarRegistry: @unchecked Sendable {
    struct ManifestEntry: Decodable {
        let file: String
        let symbol: String
        let sha256: String
    }

    private struct Manifest: Decodable {
        let languages: [String: ManifestEntry]
    }

    let directory: URL?
    private let entries: [String: ManifestEntry]
    private let manifestProblem: String?
    private let lock = NSLock()
    private var loaded: [String: Result<Grammar, GrammarLoadError>] = [:]

    struct GrammarLoadError: Error, Equatable {
        let message: String
    }

    init(directory: URL?) {
        self.directory = directory
        guard let directory else {
            entries = [:]
            manifestProblem = "no grammar directory (set COLGREP_GRAMMARS_DIR or run scripts/setup.sh)"
            return
        }
        let manifestURL = directory.appendingPathComponent("manifest.json")
        do {
            let data = try Data(contentsOf: manifestURL)
            entries = try JSONDecoder().decode(Manifest.self, from: data).languages
            manifestProblem = nil
        } catch {
            entries = [:]
            manifestProblem = "cannot read \(manifestURL.path): \(error) (re-run scripts/setup.sh)"
        }
    }

    /// The grammar for a manifest key, loading it on first use.
    func grammar(_ name: String) -> Result<Grammar, GrammarLoadError> {
        lock.lock()
        defer { lock.unlock() }
        if let cached = loaded[name] { return cached }
        let result = load(name)
        loaded[name] = result
        return result
    }

    private func load(_ name: String) -> Result<Grammar, GrammarLoadError> {
        if let manifestProblem { return .failure(GrammarLoadError(message: "grammar \(name): \(manifestProblem)")) }
        guard let directory, let entry = entries[name] else {
            return .failure(GrammarLoadError(message: "grammar \(name) is not in the bundle manifest"))
        }
        let url = directory.appendingPathComponent(entry.file)
        guard let data = try? Data(contentsOf: url) else {
            return .failure(GrammarLoadError(message: "grammar \(name): cannot read \(url.path) (re-run scripts/setup.sh)"))
        }
        let digest = VerifiedDigests.shared.digest(of: url, data: data)
        guard digest == entry.sha256.lowercased() else {
            return .failure(GrammarLoadError(message: "grammar \(name): \(url.path) has sha256 \(digest), manifest says \(entry.sha256) (re-run scripts/setup.sh)"))
        }
        guard let handle = dlopen(url.path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            return .failure(GrammarLoadError(message: "grammar \(name): dlopen failed: \(reason)"))
        }
        guard let symbol = dlsym(handle, entry.symbol) else {
            return .failure(GrammarLoadError(message: "grammar \(name): symbol \(entry.symbol) missing in \(url.path)"))
        }
        typealias LanguageFunction = @convention(c) () -> OpaquePointer?
        let function = unsafeBitCast(symbol, to: LanguageFunction.self)
        guard let language = function() else {
            return .failure(GrammarLoadError(message: "grammar \(name): \(entry.symbol) returned no language"))
        }
        let abi = ts_language_abi_version(language)
        guard abi >= TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION && abi <= TREE_SITTER_LANGUAGE_VERSION else {
            return .failure(GrammarLoadError(message: "grammar \(name): ABI version \(abi) outside the supported \(TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION)–\(TREE_SITTER_LANGUAGE_VERSION)"))
        }
        return .success(Grammar(name: name, language: language))
    }
}

/// Digests already computed in this process, keyed by path, size and modification time, so several
/// extractors over one bundle hash each library once.
final class VerifiedDigests: @unchecked Sendable {
    static let shared = VerifiedDigests()
    private let lock = NSLock()
    private var digests: [String: String] = [:]

    func digest(of url: URL, data: Data) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        let mtime = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let key = "\(url.path)|\(data.count)|\(mtime)"
        lock.lock()
        if let d = digests[key] {
            lock.unlock()
            return d
        }
        lock.unlock()
        let d = SHA256.hex(data)
        lock.lock()
        digests[key] = d
        lock.unlock()
        return d
    }
}
