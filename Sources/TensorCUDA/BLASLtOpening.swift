import Foundation

/// cuBLASLt opened on a thread of its own: library load, handle, and one plan (which pays cuBLASLt's
/// one-time heuristic initialisation), while the backend's own thread uploads weights and runs the
/// first batches on our own GEMM kernel. `ready` never blocks; `wait` does.
final class BLASLtOpening: @unchecked Sendable {
    private let lock = NSLock()
    private let finished = DispatchSemaphore(value: 0)
    private var outcome: Result<BLASLtMatmul, Error>?
    /// What the thread did and how long each part took (ms), once finished.
    private(set) var steps: [(step: String, seconds: Double)] = []

    /// Starts opening cuBLASLt for `context` with a caller-owned `workspace` of `BLASLtMatmul.workspaceBytes`,
    /// keeping its timed algorithm choices in `algorithmStore`.
    init(context: CUDAContext, workspace: UInt64, type: BLASLtMatmul.DataType, algorithmStore: BLASLtAlgorithmStore?) {
        let thread = Thread { [self] in
            var clock = ContinuousClock.now
            var laps: [(String, Double)] = []
            func lap(_ name: String) {
                let now = ContinuousClock.now
                let elapsed = now - clock
                laps.append((name, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
                clock = now
            }
            let result = Result { () throws -> BLASLtMatmul in
                try context.makeCurrent()
                let library = try BLASLtLibrary.shared.get()
                lap("load libcublasLt")
                let blas = try BLASLtMatmul(context: context, library: library, workspace: workspace, algorithmStore: algorithmStore)
                lap("cuBLASLt handle")
                try blas.plan(rows: 1024, outFeatures: 256, inFeatures: 256, type: type, epilogue: .bias)
                lap("first plan (one-time heuristic initialisation)")
                return blas
            }
            lock.lock()
            outcome = result
            steps = laps
            lock.unlock()
            finished.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// The opened cuBLASLt if the thread has finished successfully; nil while it runs or after a failure.
    var ready: BLASLtMatmul? {
        lock.lock()
        defer { lock.unlock() }
        return try? outcome?.get()
    }

    /// Waits for the thread; the opened cuBLASLt or the reason it could not open.
    func wait() throws -> BLASLtMatmul {
        finished.wait()
        finished.signal()
        lock.lock()
        defer { lock.unlock() }
        return try outcome!.get()
    }
}
