import Foundation
import Tensor

/// Self-test checks of cuBLASLt's timed choices kept in the kernel cache (`BLASLtAlgorithmStore`), the part the
/// CPU tests cannot reach: whether cuBLASLt accepts the stored bytes. Three handles in turn, each with a process
/// registry of its own and one scratch cache: the first times a 20,000-row GEMM's candidates and stores the choice;
/// the second loads it (no timing) and `cublasLtMatmulAlgoCheck` accepts it; after the entry is overwritten with
/// bytes that are no algorithm, the third is refused by the check, times again and replaces the entry. Every
/// product is checked against the double-precision reference.
extension CUDASelfTest {
    static func tunedAlgorithmChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) -> [Check] {
        let precision = backend.precision
        var checks: [Check] = []
        func attempt(_ name: String, tolerance: Double, _ error: () throws -> Double) {
            checks.append(attempted(precision, name, tolerance: tolerance, error))
        }
        let tolerance = precision == .fp32 ? 1e-5 : 1.2e-2
        let rows = 20_000, inFeatures = 64, outFeatures = 48
        let x = randomMatrix(rows: rows, cols: inFeatures, &random)
        let w = randomMatrix(rows: outFeatures, cols: inFeatures, &random, scale: 0.1)
        let b = randomMatrix(rows: 1, cols: outFeatures, &random)
        let reference = referenceLinear(x, w, bias: b, activation: .none, residual: nil)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-selftest-algorithms-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let store = BLASLtAlgorithmStore(cache: KernelCache(directory: scratch))

        /// One GEMM on a fresh handle with a fresh registry: the product's error against the reference (infinity when
        /// the registry's (timed, loaded) counts are not the expected ones or `accepts` refuses it), and the store's
        /// key of the shape.
        func run(expect: (timed: Int, loaded: Int), accepts: (BLASLtTunedAlgorithms) -> Bool = { _ in true }) throws -> (Double, BLASLtAlgorithmKey?) {
            try backend.context.makeCurrent()
            let library = try BLASLtLibrary.shared.get()
            let workspace = try backend.pool.allocate(bytes: BLASLtMatmul.workspaceBytes)
            defer { backend.pool.release(workspace) }
            let registry = BLASLtTunedAlgorithms()
            let values: [Float]
            let key: BLASLtAlgorithmKey?
            do {
                let blas = try BLASLtMatmul(context: backend.context, library: library, workspace: workspace.pointer, algorithmStore: store)
                blas.tunedAlgorithms = registry
                blas.tuning = BLASLtTuning(candidates: BLASLtTuning.defaultCandidates)
                let dx = try backend.cuda(backend.upload(x), "x"), dw = try backend.cuda(backend.upload(w), "w"), db = try backend.cuda(backend.upload(b), "b")
                let out = try backend.makeMatrix(rows: rows, cols: outFeatures)
                let type: BLASLtMatmul.DataType = precision == .bf16 ? .bfloat16 : .float32
                try blas.run(rows: rows, outFeatures: outFeatures, inFeatures: inFeatures, x: dx.pointer, weight: dw.pointer, bias: db.pointer,
                             c: nil, beta: 0, d: out.pointer, input: type, output: type, epilogue: .bias)
                values = try backend.download(out).values
                key = registry.keys.first.map(blas.storeKey)
            }
            guard registry.counts == expect, accepts(registry) else { return (.infinity, key) }
            return (relativeError(values, reference), key)
        }

        var stored: BLASLtAlgorithmKey? = nil
        attempt("cuBLASLt choice timed and stored", tolerance: tolerance) {
            let (error, key) = try run(expect: (1, 0))
            stored = key
            guard let key, case .hit = store.load(key) else { return .infinity }
            return error
        }
        attempt("cuBLASLt choice loaded from the cache, no timing", tolerance: tolerance) {
            let (error, key) = try run(expect: (0, 1))
            return key != nil && key == stored ? error : .infinity
        }
        attempt("cuBLASLt stored bytes refused by AlgoCheck, timed again and replaced", tolerance: tolerance) {
            guard let key = stored else { return .infinity }
            let garbage = [UInt64](repeating: .max, count: BLASLtAlgorithmStore.words)
            try store.store(garbage, for: key)
            let (error, _) = try run(expect: (1, 0)) { $0.summary.contains { $0.contains("refused by cublasLtMatmulAlgoCheck") } }
            guard case .hit(let words) = store.load(key), words != garbage else { return .infinity }
            return error
        }
        return checks
    }
}
