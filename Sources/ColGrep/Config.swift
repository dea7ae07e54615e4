import Foundation

/// `<data>/colgrep/config.json` (reference §5.3): every key optional, omitted when unset.
public struct ColGrepConfig: Codable, Sendable, Equatable {
    public var defaultModel: String?
    public var defaultK: Int?
    public var defaultN: Int?
    public var fp32: Bool?
    public var coremlCacheDir: String?
    public var poolFactor: Int?
    public var parallelSessions: Int?
    public var batchSize: Int?
    public var verbose: Bool?
    public var maxRecursionDepth: Int?
    public var relativePaths: Bool?
    public var hybridSearch: Bool?
    public var hybridAlpha: Double?
    public var extraIgnore: [String]?
    public var forceInclude: [String]?
    /// `settings --binary` (ColGREP 1.7+): new indexes keep 1-bit residuals, scored asymmetrically
    /// (int8 query × 1-bit documents); about 4× smaller residuals than the default 4 bits.
    public var binaryIndex: Bool?
    /// `settings --nbits N`: residual bits of new indexes when other than 1 (kept as `binary_index`, the
    /// reference's key) and 4 (the default): 2, or 8 (one byte per dimension: twice the residual bytes of
    /// 4-bit, for models whose token scores crowd together, such as 384-d MiniLM).
    public var indexBits: Int?
    /// `settings --no-server`: false keeps every search in its own process (no resident query server).
    public var queryServer: Bool?

    enum CodingKeys: String, CodingKey {
        case defaultModel = "default_model"
        case defaultK = "default_k"
        case defaultN = "default_n"
        case fp32
        case coremlCacheDir = "coreml_cache_dir"
        case poolFactor = "pool_factor"
        case parallelSessions = "parallel_sessions"
        case batchSize = "batch_size"
        case verbose
        case maxRecursionDepth = "max_recursion_depth"
        case relativePaths = "relative_paths"
        case hybridSearch = "hybrid_search"
        case hybridAlpha = "hybrid_alpha"
        case extraIgnore = "extra_ignore"
        case forceInclude = "force_include"
        case binaryIndex = "binary_index"
        case indexBits = "index_bits"
        case queryServer = "query_server"
    }

    /// Residual bits of indexes built from now on (an existing index keeps its own until rebuilt); nil
    /// leaves the choice to the model's width (`PlaidConfig.defaultBits(dimension:)`).
    public var residualBits: Int? { binaryIndex == true ? 1 : indexBits }

    /// What the settings listing says of the default width.
    public static let defaultResidualBitsDescription = "4, or 8 for models of 256+ dimensions"
    /// The widths `settings --nbits` takes (0 resets to the default).
    public static let residualBitChoices = [1, 2, 4, 8]

    /// Sets the residual bits of new indexes (`settings --nbits`): 1 is the binary index, 0 the model's
    /// default; anything else outside `residualBitChoices` is a usage error.
    public mutating func setResidualBits(_ bits: Int) throws {
        guard bits == 0 || Self.residualBitChoices.contains(bits) else {
            throw ColGrepError.usage("--nbits takes 1, 2, 4 or 8 (0 resets to the default: \(Self.defaultResidualBitsDescription)), got \(bits)")
        }
        binaryIndex = bits == 1 ? true : nil
        indexBits = bits == 1 || bits == 0 ? nil : bits
    }

    public init() {}

    /// The default model id (cannot be downloaded offline: the encoder falls back to the local model).
    public static let builtinModel = "lightonai/LateOn-Code-edge"
    /// Semantic weight of the hybrid fusion (reciprocal ranks, `RankingKnobs.rrfK`); the reference's
    /// min-max fusion used 0.60. Tuned with the fusion on the dev split (0.50: 0.8476, 0.55: 0.8514, 0.60: 0.8491).
    public static let defaultAlpha = 0.55
    public static let defaultPoolFactor = 2
    public static let defaultMaxRecursionDepth = 1024

    public static func load(from paths: DataPaths) throws -> ColGrepConfig {
        try AtomicFile.readJSON(ColGrepConfig.self, from: paths.configFile) ?? ColGrepConfig()
    }

    public func save(to paths: DataPaths) throws {
        try AtomicFile.writeJSON(self, to: paths.configFile, pretty: true)
    }

    /// Model precedence: `--model` > config > built-in default.
    public func model(override: String?) -> String {
        if let override, !override.isEmpty { return override }
        return defaultModel ?? Self.builtinModel
    }

    /// Pool factor precedence: `--no-pool` → 1 > `--pool-factor` (min 1) > config > 2.
    public func poolFactor(noPool: Bool, override: Int?) -> Int {
        if noPool { return 1 }
        if let override { return max(1, override) }
        return poolFactor ?? Self.defaultPoolFactor
    }

    /// Alpha precedence: `--alpha` > `COLGREP_ALPHA` (clamped to 0…1) > config > 0.60.
    public func alpha(override: Double?, env: [String: String] = ProcessInfo.processInfo.environment) -> Double {
        if let override { return min(1, max(0, override)) }
        if let text = env["COLGREP_ALPHA"], let value = Double(text) { return min(1, max(0, value)) }
        return hybridAlpha ?? Self.defaultAlpha
    }

    /// The `settings` listing, same labels and layout as the reference.
    public func describe() -> String {
        func line(_ key: String, _ value: String?, _ fallback: String) -> String {
            let label = (key + ":").padding(toLength: 16, withPad: " ", startingAt: 0)
            if let value { return "  \(label)\(value)" }
            return "  \(label)\(fallback) (default)"
        }
        var lines = ["Current configuration:", ""]
        lines.append(line("model", defaultModel, Self.builtinModel))
        lines.append(line("precision", fp32.map { $0 ? "fp32" : "int8" }, "fp32"))
        lines.append(line("pool-factor", poolFactor.map(String.init), "\(Self.defaultPoolFactor)"))
        let bits = binaryIndex == true ? "1 (binary)" : indexBits.map(String.init)
        lines.append(line("index-bits", bits, Self.defaultResidualBitsDescription))
        lines.append(line("parallel", parallelSessions.map(String.init), "auto"))
        lines.append(line("batch-size", batchSize.map(String.init), "auto"))
        lines.append(line("k", defaultK.map(String.init), "15"))
        lines.append(line("n", defaultN.map(String.init), "20"))
        lines.append(line("verbose", verbose.map { String($0) }, "false"))
        lines.append(line("rel-paths", relativePaths.map { String($0) }, "true"))
        lines.append(line("hybrid", hybridSearch.map { String($0) }, "true"))
        lines.append(line("alpha", hybridAlpha.map { String(format: "%.2f", $0) }, String(format: "%.2f", Self.defaultAlpha)))
        lines.append(line("max-depth", maxRecursionDepth.map(String.init), "\(Self.defaultMaxRecursionDepth)"))
        lines.append(line("coreml-cache", coremlCacheDir, "none"))
        lines.append(line("ignore", extraIgnore.flatMap { $0.isEmpty ? nil : $0.joined(separator: ", ") }, "none"))
        lines.append(line("force-include", forceInclude.flatMap { $0.isEmpty ? nil : $0.joined(separator: ", ") }, "none"))
        return lines.joined(separator: "\n")
    }
}
