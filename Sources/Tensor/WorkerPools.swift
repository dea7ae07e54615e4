import Foundation

/// The width of the process's data-parallel worker pools: the parallel maps of the indexing pipeline
/// (embedding texts, pooling, a GPU lane's split of its results), the tokenizer's workers and the store
/// rows' text work. `UsableCores.count` unless a caller narrowed it for a while (`narrowed(to:_:)`): a
/// cold index narrows it so that the lane bounding the build keeps cores of its own (`CoreBudget`).
///
/// The CPU encoder's intra-op pool is sized once, when its backend is made, and does not follow this.
public enum WorkerPools {
    /// The process's narrowing, which every pool follows.
    public static let shared = Narrowing()

    /// Threads a data-parallel loop may use now (at least 1).
    public static var width: Int { shared.width(cores: UsableCores.count) }

    /// Runs `body` with every pool at most `width` threads wide (the narrowest of nested calls wins);
    /// the width is process-wide, so loops started by other threads meanwhile follow it too.
    public static func narrowed<T>(to width: Int, _ body: () throws -> T) rethrows -> T {
        try shared.narrowed(to: width, body)
    }

    /// A stack of width limits, each held while its `narrowed` call runs (one for the process; tests
    /// make their own).
    public final class Narrowing: @unchecked Sendable {
        private let lock = NSLock()
        private var limits: [Int] = []

        public init() {}

        /// The narrowest limit held now, at most `cores` and at least 1; `cores` when none is held.
        public func width(cores: Int) -> Int {
            let cores = max(1, cores)
            return lock.withLock { limits.min() }.map { min($0, cores) } ?? cores
        }

        public func narrowed<T>(to width: Int, _ body: () throws -> T) rethrows -> T {
            let width = max(1, width)
            lock.withLock { limits.append(width) }
            defer {
                lock.withLock {
                    if let index = limits.lastIndex(of: width) { limits.remove(at: index) }
                }
            }
            return try body()
        }
    }
}

/// How many threads the worker pools get while a lane of dedicated threads bounds the work.
///
/// Measured in session 10 (docs/PERFORMANCE.md, "Acceleration routing"): next to GPUs a cold index is
/// bound by the store lane — the SQLite row writer and one FTS5 writer per keyword shard, each a thread
/// of its own — while the tokenizer, the embedding texts, the pooling and the row preparation run loops
/// as wide as the machine in bursts. Inside the pipeline the store's threads spent 1.3–1.5× the CPU
/// they spend on the same rows alone. Narrowing the pools by the store's thread count leaves those
/// threads cores nobody else's loop is on; the pools' own work is short next to the store's, so they
/// lose little.
public enum CoreBudget {
    /// Overrides the rule: `COLGREP_POOL_THREADS=N` makes the pools N threads wide during a cold index
    /// (`0` or a value ≥ the cores: no narrowing).
    public static let environmentVariable = "COLGREP_POOL_THREADS"
    /// Below this many cores nothing is kept back: the pools would lose too large a share, and the
    /// whole machine is busy anyway (a 2-core CPU-only index is bound by encoding).
    public static let minimumCoresToReserve = 8

    /// The pools' width while `reservedThreads` dedicated threads must keep their speed: the usable
    /// cores less those threads, but never below half the cores, and all of them on a small machine.
    public static func poolWidth(cores: Int, reservedThreads: Int) -> Int {
        let cores = max(1, cores)
        guard cores >= minimumCoresToReserve, reservedThreads > 0 else { return cores }
        return max(cores / 2, cores - reservedThreads)
    }

    /// `poolWidth(cores:reservedThreads:)` unless `environment` sets `COLGREP_POOL_THREADS` to a
    /// positive count (capped at the cores; `0` means all of them).
    public static func poolWidth(cores: Int, reservedThreads: Int, environment: [String: String]) -> Int {
        let cores = max(1, cores)
        if let text = environment[environmentVariable], let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 0 {
            return value == 0 ? cores : min(value, cores)
        }
        return poolWidth(cores: cores, reservedThreads: reservedThreads)
    }
}
