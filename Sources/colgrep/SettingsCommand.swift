import ArgumentParser
import ColGrep
import Foundation

/// `colgrep settings`: print or change `<data>/colgrep/config.json` (reference §5.2).
struct SettingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Show or change persistent settings.",
        discussion: """
        With no flag, prints the configuration; values not set by you are marked (default). \
        The file is <data>/colgrep/config.json where <data> is $COLGREP_DATA_DIR, else $XDG_DATA_HOME/colgrep, \
        else ~/.local/share/colgrep. (ColGREP's README says ~/.config/colgrep; its code, which we follow, uses \
        the data folder.)

        Examples:
          colgrep settings --k 25 --alpha 0.5
          colgrep settings --no-relative-paths
          colgrep settings --nbits 8
          colgrep settings --ignore 'vendor/**' --force-include 'build/gen.py'
        """
    )

    @Option(name: .customLong("k"), help: "Default number of results (0 resets).") var k: Int?
    @Option(name: .customLong("n"), help: "Default context lines (0 resets).") var n: Int?
    @Flag(name: .customLong("fp32"), help: "Use full precision weights.") var fp32 = false
    @Flag(name: .customLong("int8"), help: "Use INT8 weights where available.") var int8 = false
    @Flag(name: .customLong("default-precision"), help: "Forget the precision choice.") var defaultPrecision = false
    @Option(name: .customLong("coreml-cache-dir"), help: "CoreML compiled-model cache folder (macOS).") var coremlCacheDir: String?
    @Flag(name: .customLong("clear-coreml-cache-dir"), help: "Forget the CoreML cache folder.") var clearCoremlCacheDir = false
    @Option(name: .customLong("pool-factor"), help: "Token pooling factor (0 resets to 2).") var poolFactor: Int?
    @Flag(name: .customLong("binary"), help: "New indexes keep 1-bit residuals (int8 × 1-bit scoring, ~4× smaller residuals; `colgrep clear` rebuilds an existing one).") var binary = false
    @Flag(name: .customLong("no-binary"), help: "New indexes keep 4-bit residuals (the default).") var noBinary = false
    @Option(name: .customLong("nbits"), help: "Residual bits of new indexes: 1 (as --binary), 2, 4 or 8 (one byte per dimension, 2× the residual bytes of 4; recall@10 0.92 → 0.965 on 384-d MiniLM). Unset (or 0, which resets), 4 for models under 256 dimensions and 8 from there. `colgrep clear` rebuilds an existing index.") var nbits: Int?
    @Option(name: .customLong("parallel"), help: "Encoder sessions (0 = auto).") var parallel: Int?
    @Option(name: .customLong("batch-size"), help: "Encoder batch size (0 = auto).") var batchSize: Int?
    @Option(name: .customLong("max-recursion-depth"), help: "Parser recursion limit per file.") var maxRecursionDepth: Int?
    @Flag(inversion: .prefixedNo, help: "Show code by default (like -c).") var verbose: Bool?
    @Flag(name: .customLong("relative-paths"), help: "Print paths relative to the current folder (default).") var relativePaths = false
    @Flag(name: .customLong("no-relative-paths"), help: "Print absolute paths.") var noRelativePaths = false
    @Flag(name: .customLong("hybrid-search"), help: "Fuse semantic and keyword search (default).") var hybridSearch = false
    @Flag(name: .customLong("no-hybrid-search"), help: "Semantic search only.") var noHybridSearch = false
    @Option(name: .customLong("alpha"), help: "Fusion weight of the semantic side, 0…1 (default 0.55).") var alpha: Double?
    @Option(name: .customLong("ignore"), help: "Add an ignore pattern.") var ignore: [String] = []
    @Option(name: .customLong("no-ignore"), help: "Remove an ignore pattern.") var noIgnore: [String] = []
    @Flag(name: .customLong("clear-ignore"), help: "Remove every ignore pattern.") var clearIgnore = false
    @Option(name: .customLong("force-include"), help: "Index a path even if ignored.") var forceInclude: [String] = []
    @Option(name: .customLong("no-force-include"), help: "Remove a force-include pattern.") var noForceInclude: [String] = []
    @Flag(name: .customLong("clear-force-include"), help: "Remove every force-include pattern.") var clearForceInclude = false

    @Flag(name: .customLong("server"), help: "Let searches use a resident query server (the default; it exits after 10 idle minutes).") var server = false
    @Flag(name: .customLong("no-server"), help: "Run every search in its own process (as COLGREP_NO_SERVER=1).") var noServer = false
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runReportingErrors {
            let paths = DataPaths.fromEnvironment()
            var c = try ColGrepConfig.load(from: paths)
            var changes: [String] = []
            func note(_ s: String) { changes.append("✅ " + s) }
            if let k { c.defaultK = k == 0 ? nil : k; note(k == 0 ? "k reset to default" : "k = \(k)") }
            if let n { c.defaultN = n == 0 ? nil : n; note(n == 0 ? "n reset to default" : "n = \(n)") }
            if fp32 && int8 { throw ColGrepError.usage("--fp32 and --int8 are exclusive") }
            if fp32 { c.fp32 = true; note("precision = fp32") }
            if int8 { c.fp32 = false; note("precision = int8") }
            if defaultPrecision { c.fp32 = nil; note("precision reset to default") }
            if let coremlCacheDir { c.coremlCacheDir = coremlCacheDir; note("coreml-cache-dir = \(coremlCacheDir)") }
            if clearCoremlCacheDir { c.coremlCacheDir = nil; note("coreml-cache-dir cleared") }
            if binary && noBinary { throw ColGrepError.usage("--binary and --no-binary contradict each other") }
            if binary { c.binaryIndex = true; c.indexBits = nil; note("binary index (1-bit residuals) for new indexes; `colgrep clear` then a search rebuilds an existing one") }
            if noBinary { c.binaryIndex = nil; c.indexBits = nil; note("default residual bits for new indexes (\(ColGrepConfig.defaultResidualBitsDescription))") }
            if let nbits {
                if binary || noBinary { throw ColGrepError.usage("--nbits replaces --binary / --no-binary: pass only one of them") }
                try c.setResidualBits(nbits)
                note(nbits == 0 ? "default residual bits for new indexes (\(ColGrepConfig.defaultResidualBitsDescription))"
                     : "\(nbits)-bit residuals for new indexes; `colgrep clear` then a search rebuilds an existing one")
            }
            if let poolFactor { c.poolFactor = poolFactor == 0 ? nil : poolFactor; note(poolFactor == 0 ? "pool-factor reset to 2" : "pool-factor = \(poolFactor)") }
            if let parallel { c.parallelSessions = parallel == 0 ? nil : parallel; note(parallel == 0 ? "parallel = auto" : "parallel = \(parallel)") }
            if let batchSize { c.batchSize = batchSize == 0 ? nil : batchSize; note(batchSize == 0 ? "batch-size = auto" : "batch-size = \(batchSize)") }
            if let maxRecursionDepth { c.maxRecursionDepth = maxRecursionDepth; note("max-recursion-depth = \(maxRecursionDepth)") }
            if let verbose { c.verbose = verbose; note("verbose = \(verbose)") }
            if relativePaths && noRelativePaths { throw ColGrepError.usage("--relative-paths and --no-relative-paths are exclusive") }
            if relativePaths { c.relativePaths = true; note("relative paths on") }
            if noRelativePaths { c.relativePaths = false; note("relative paths off") }
            if hybridSearch && noHybridSearch { throw ColGrepError.usage("--hybrid-search and --no-hybrid-search are exclusive") }
            if hybridSearch { c.hybridSearch = true; note("hybrid search on") }
            if noHybridSearch { c.hybridSearch = false; note("hybrid search off") }
            if let alpha {
                guard (0...1).contains(alpha) else { throw ColGrepError.usage("--alpha must be between 0 and 1") }
                c.hybridAlpha = alpha
                note(String(format: "alpha = %.2f", alpha))
            }
            if server && noServer { throw ColGrepError.usage("--server and --no-server are exclusive") }
            if server { c.queryServer = nil; note("query server on") }
            if noServer { c.queryServer = false; note("query server off") }
            if clearIgnore { c.extraIgnore = nil; note("ignore patterns cleared") }
            for p in ignore where !(c.extraIgnore ?? []).contains(p) { c.extraIgnore = (c.extraIgnore ?? []) + [p]; note("ignore \(p)") }
            for p in noIgnore { c.extraIgnore?.removeAll { $0 == p }; note("no longer ignoring \(p)") }
            if c.extraIgnore?.isEmpty == true { c.extraIgnore = nil }
            if clearForceInclude { c.forceInclude = nil; note("force-include patterns cleared") }
            for p in forceInclude where !(c.forceInclude ?? []).contains(p) { c.forceInclude = (c.forceInclude ?? []) + [p]; note("force-include \(p)") }
            for p in noForceInclude { c.forceInclude?.removeAll { $0 == p }; note("no longer force-including \(p)") }
            if c.forceInclude?.isEmpty == true { c.forceInclude = nil }
            if changes.isEmpty {
                print(c.describe())
            } else {
                try c.save(to: paths)
                print(changes.joined(separator: "\n"))
            }
        }
    }
}
