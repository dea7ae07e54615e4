import Foundation

/// Settings fixed when an index is created (stored in its manifest).
public struct PlaidConfig: Codable, Sendable, Equatable {
    /// Bits per residual dimension: 1 (sign bits, `settings --binary`), 2, 4 (the default) or 8
    /// (`settings --nbits 8`: twice the residual bytes of 4-bit, for models whose token scores crowd
    /// together, such as 384-d MiniLM).
    public var nbits: Int
    /// The residual widths an index can be written and read with.
    public static let supportedBits = [1, 2, 4, 8]

    /// The residual width of a new index when none is set: 4 bits (the reference's) below 256
    /// dimensions, 8 from there. Measured on real vectors (docs/PERFORMANCE.md, "8-bit residuals"): on
    /// 384-d MiniLM the 4-bit codec's own ceiling is recall@10 0.930 against exact MaxSim and the search
    /// reaches 0.921, while 8 bits give 0.965; at 48 dimensions 4 bits already give 0.95–0.96.
    public static func defaultBits(dimension: Int) -> Int {
        dimension >= 256 ? 8 : 4
    }
    /// Lloyd iterations of k-means (the reference uses 4).
    public var kmeansIterations: Int
    /// Training points per centroid in the k-means sample (the reference allows up to 256; fewer keep
    /// training fast at the larger K used here, and centroid means converge long before).
    public var maxPointsPerCentroid: Int
    /// Seed of every random choice (sampling, k-means initialisation).
    public var seed: UInt64
    /// The codec trains on a strided sample of at least this many documents (all when fewer), grown
    /// until it holds `maxPointsPerCentroid` points per centroid.
    public var trainingDocuments: Int
    /// Upper bound on K. K follows the reference formula over all documents indexed at training time
    /// (`2^floor(log2(16·sqrt(tokens)))`, as next-plaid's library computes it; ColGREP's CLI applies it
    /// to its first chunk only, which leaves centroids far from later data). The cap bounds the
    /// query × centroid product every search pays.
    public var maxCentroids: Int
    /// Retrain the codec during a write once the index holds this many times the tokens it held when
    /// the codec was last trained (the reference never retrains). 0 disables retraining.
    public var retrainGrowthFactor: Double
    /// Share of dead (deleted) rows in a segment above which a later write rewrites it without them.
    public var compactionDeadShare: Double

    public init(nbits: Int = 4, kmeansIterations: Int = 4, maxPointsPerCentroid: Int = 32, seed: UInt64 = 42,
                trainingDocuments: Int = 1024, maxCentroids: Int = 8192, retrainGrowthFactor: Double = 4,
                compactionDeadShare: Double = 0.2) {
        self.nbits = nbits
        self.kmeansIterations = kmeansIterations
        self.maxPointsPerCentroid = maxPointsPerCentroid
        self.seed = seed
        self.trainingDocuments = trainingDocuments
        self.maxCentroids = maxCentroids
        self.retrainGrowthFactor = retrainGrowthFactor
        self.compactionDeadShare = compactionDeadShare
    }

    /// Number of centroids for a training set, as the reference computes it:
    /// `2^floor(log2(16·sqrt(avgTokensPerDoc · docs)))`, at most the number of training tokens.
    public static func centroidCount(trainingTokens: Int, trainingDocuments: Int) -> Int {
        guard trainingTokens > 0, trainingDocuments > 0 else { return 1 }
        let average = Double(trainingTokens) / Double(trainingDocuments)
        let estimate = 16 * (average * Double(trainingDocuments)).squareRoot()
        let k = 1 << Int(log2(max(estimate, 1)).rounded(.down))
        return max(1, min(k, trainingTokens, 1 << 16))
    }
}

/// Knobs of one search (defaults as ColGREP passes them).
public struct SearchParameters: Sendable, Equatable {
    /// Centroids probed per query token.
    public var nIVFProbe: Int
    /// Probed centroids whose best score over the query tokens is below this are dropped (negative: keep all).
    public var centroidScoreThreshold: Float
    /// Candidates kept after the first (IVF) stage and scored from their centroid codes. 4096, the
    /// reference library's default (its CLI passes 8192). 2048 halves the codes stage and keeps recall@10
    /// equal on synthetic 100k and MiniLM 20k sets, but on the dev split (session 8, same index, same call)
    /// hybrid NDCG@10 fell 0.8508 → 0.8499 at 2048 (abseil-cpp 0.884 → 0.866), equal at 8192: quality wins.
    public var nFullScores: Int
    /// Candidates re-scored with their residuals (reference: `max(nFullScores / 4, topK)`; fewer
    /// here because the codes stage ranks well and residual scoring dominates latency).
    public var nExactScores: Int?
    /// PLAID's centroid pruning in the approximate (codes) stage: tokens whose centroid scores under
    /// `centroidScoreThreshold` for every query token count 0 (the reference scores every code). Off by
    /// default: it takes about 0.6 ms of CPU off a 100k × 48-d search, but costs real-data recall@10
    /// (MiniLM 20k: 0.965 → 0.960 at 8-bit, 0.921 → 0.917 at 4-bit; docs/PERFORMANCE.md, session 6).
    public var pruneCodeScores: Bool

    public init(nIVFProbe: Int = 8, centroidScoreThreshold: Float = 0.4, nFullScores: Int = 4096, nExactScores: Int? = nil,
                pruneCodeScores: Bool = false) {
        self.nIVFProbe = nIVFProbe
        self.centroidScoreThreshold = centroidScoreThreshold
        self.nFullScores = nFullScores
        self.nExactScores = nExactScores
        self.pruneCodeScores = pruneCodeScores
    }

    /// How many candidates get residual scoring for a given `topK`.
    public func exactCount(topK: Int) -> Int {
        max(nExactScores ?? max(nFullScores / 32, 256), topK)
    }

    /// Defaults overridden by `COLGREP_N_IVF_PROBE`, `COLGREP_N_FULL_SCORES`,
    /// `COLGREP_CENTROID_SCORE_THRESHOLD`, `COLGREP_N_EXACT_SCORES` and `COLGREP_PRUNE_CODE_SCORES` (1 or
    /// true: on, 0 or false: off) where set and valid.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> SearchParameters {
        var parameters = SearchParameters()
        if let value = environment["COLGREP_N_IVF_PROBE"].flatMap({ Int($0) }), value > 0 { parameters.nIVFProbe = value }
        if let value = environment["COLGREP_N_FULL_SCORES"].flatMap({ Int($0) }), value > 0 { parameters.nFullScores = value }
        if let value = environment["COLGREP_CENTROID_SCORE_THRESHOLD"].flatMap({ Float($0) }), value.isFinite {
            parameters.centroidScoreThreshold = value
        }
        if let value = environment["COLGREP_N_EXACT_SCORES"].flatMap({ Int($0) }), value > 0 { parameters.nExactScores = value }
        switch environment["COLGREP_PRUNE_CODE_SCORES"]?.lowercased() {
        case "1", "true": parameters.pruneCodeScores = true
        case "0", "false": parameters.pruneCodeScores = false
        default: break
        }
        return parameters
    }
}

/// Why an index could not be opened or written. `corrupt` and `unsupportedFormat` mean: rebuild it.
public enum PlaidError: Error, CustomStringConvertible, Equatable {
    /// The directory holds no index (no manifest).
    case missing(directory: String)
    /// A file is truncated, fails its checksum or holds impossible values.
    case corrupt(file: String, reason: String)
    /// The index was written by another format version.
    case unsupportedFormat(file: String, found: Int, expected: Int)
    /// The caller passed something the index cannot take.
    case invalidInput(String)
    /// The file system refused an operation.
    case io(file: String, reason: String)

    public var description: String {
        switch self {
        case .missing(let directory):
            return "no PLAID index in \(directory) (manifest.plaid missing): build it first"
        case .corrupt(let file, let reason):
            return "corrupt PLAID index file \(file): \(reason); delete the index directory and rebuild it"
        case .unsupportedFormat(let file, let found, let expected):
            return "PLAID index file \(file) has format version \(found), this build reads \(expected): rebuild the index"
        case .invalidInput(let reason):
            return "invalid input to the PLAID index: \(reason)"
        case .io(let file, let reason):
            return "cannot access \(file): \(reason)"
        }
    }

    /// True when rebuilding the index from its sources is the fix.
    public var needsRebuild: Bool {
        switch self {
        case .missing, .corrupt, .unsupportedFormat: return true
        case .invalidInput, .io: return false
        }
    }
}
