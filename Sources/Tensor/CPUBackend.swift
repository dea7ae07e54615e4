import CBLAS
import CKernels
import Foundation

/// The CPU backend: OpenBLAS SGEMM for `linear` and attention, AVX2/FMA kernels (with scalar fallbacks)
/// for the element-wise operations, all parallelised over one `IntraOpPool`.
///
/// Threads: OpenBLAS is set to one thread and every operation splits its own work (GEMM rows, attention
/// heads, element-wise rows) over the pool, so the process never runs more than `threads` busy threads.
/// `openblas_set_num_threads` is process-wide: a component that raises it while this backend runs would
/// oversubscribe the cores.
public final class CPUBackend: Backend, ReducedPrecisionLinear, BoundedActivationMemory, @unchecked Sendable {
    public let pool: IntraOpPool
    /// Per-operation timings, when `COLGREP_PROFILE=1`.
    public let profile: OpProfile?
    /// The arithmetic of `linear` (the other operations are always fp32).
    public let precision: CPUPrecision
    /// How `linear` multiplies in fp32 (OpenBLAS, or the small-batch dot kernel of a query encoder).
    public let products: CPUProductKernel
    /// Every byte this backend allocates for its work: operation outputs, attention scratch, int8 weight
    /// copies and their work buffers (not the weights a model uploads or borrows).
    public let memory: MemoryMeter
    /// Where activation matrices live (see `ActivationPool`).
    let activations: ActivationPool
    /// Activations one forward pass may hold: a model splits a larger batch into passes of whole sequences
    /// (`ColBERTModel`), so a 16k-token batch stays within the weights + 64 MiB that issue #3 allows, with
    /// cached buffers, int8 copies, scratch and the output (MiniLM's 384-wide vectors: 24 MiB) included.
    /// 16 MiB is ~2,900 Ettin-17M tokens or ~1,800 MiniLM tokens per pass: GEMMs of that height still run
    /// at full speed.
    public var activationBudgetBytes = 16 << 20 {
        didSet { activations.limit = Self.poolLimit(activationBudgetBytes) }
    }

    /// What the activation pool may hold: the pass budget and room for buffers of other sizes to stay cached.
    public static func poolLimit(_ budget: Int) -> Int { budget + budget / 2 }

    /// Unmaps the activation buffers kept for reuse (an idle process gives their memory back).
    public func releaseCachedMemory() { activations.trim() }
    public var name: String {
        let fp32 = products == .dot ? "dot fp32" : "openblas fp32"
        let arithmetic = precision == .fp32 ? fp32 : "\(precision.rawValue) int8 \(Int8Kernel.name(Int8Kernel.level))/\(fp32)"
        return "cpu (\(arithmetic) + \(ck_has_avx2() != 0 ? "avx2" : "scalar"), \(pool.threads) threads)"
    }

    /// `threads`: how many cores to use; nil uses every core of the machine.
    /// `precision`: `linear`'s arithmetic; nil picks `CPUPrecision.automatic`.
    /// `products`: the fp32 GEMM of `linear` (`.dot` for an encoder that only sees a query's few dozen rows).
    public init(threads: Int? = nil, precision: CPUPrecision? = nil, products: CPUProductKernel = .blas) {
        self.precision = precision ?? .automatic
        self.products = products
        pool = IntraOpPool(threads: threads ?? UsableCores.count)
        profile = OpProfile.enabledByEnvironment ? OpProfile() : nil
        memory = MemoryMeter()
        activations = ActivationPool(meter: memory, limit: Self.poolLimit(activationBudgetBytes))
        openblas_set_num_threads(1)
    }

    @inline(__always)
    func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard let profile else { return try body() }
        return try profile.measure(name, body)
    }

    // MARK: transfers

    public func upload(_ matrix: HostMatrix) throws -> any DeviceMatrix { CPUMatrix(matrix) }

    public func download(_ matrix: any DeviceMatrix) throws -> HostMatrix { try cpu(matrix).host }

    /// Each group's rows copied straight from the matrix (no whole copy first).
    public func download(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> [HostMatrix] {
        let m = try cpu(matrix)
        guard rowGroups.allSatisfy({ $0.allSatisfy { $0 >= 0 && $0 < m.rows } }) else {
            throw TensorError("download: a row index outside the matrix's \(m.rows) rows")
        }
        return HostMatrix.gatheringRows(rowGroups, cols: m.cols) { row, destination in
            destination.update(from: m.pointer + row * m.cols, count: m.cols)
        }
    }

    public func gather(_ table: any DeviceMatrix, ids: [Int32]) throws -> any DeviceMatrix {
        try timed("gather") {
            let t = try cpu(table)
            let out = CPUMatrix(rows: ids.count, cols: t.cols, pool: activations)
            for (row, id) in ids.enumerated() {
                guard id >= 0, Int(id) < t.rows else {
                    throw TensorError("gather: id \(id) outside the table's \(t.rows) rows")
                }
                (out.pointer + row * t.cols).update(from: t.pointer + Int(id) * t.cols, count: t.cols)
            }
            return out
        }
    }

    // MARK: element-wise

    public func layerNorm(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        try timed("layerNorm") {
            let x = try cpu(x), w = try cpu(weight), b = try bias.map(cpu)
            guard w.rows * w.cols == x.cols, b.map({ $0.rows * $0.cols == x.cols }) ?? true else {
                throw TensorError("layerNorm: weight/bias width differs from \(x.cols) columns")
            }
            let out = CPUMatrix(rows: x.rows, cols: x.cols, pool: activations)
            let src = SharedPointer(x.pointer), dst = SharedPointer(out.pointer)
            let wp = SharedPointer(w.pointer), bp = b.map { SharedPointer($0.pointer) }
            let cols = x.cols
            pool.forEachRange(x.rows, grain: 64) { r in
                ck_layer_norm(src.base + r.lowerBound * cols, dst.base + r.lowerBound * cols, r.count, cols, wp.base, bp?.base, eps)
            }
            return out
        }
    }

    public func geglu(_ x: any DeviceMatrix) throws -> any DeviceMatrix {
        try timed("geglu") {
            let x = try cpu(x)
            guard x.cols % 2 == 0 else { throw TensorError("geglu: odd width \(x.cols)") }
            let half = x.cols / 2
            let out = CPUMatrix(rows: x.rows, cols: half, pool: activations)
            let src = SharedPointer(x.pointer), dst = SharedPointer(out.pointer)
            pool.forEachRange(x.rows, grain: 32) { r in
                ck_geglu(src.base + r.lowerBound * 2 * half, dst.base + r.lowerBound * half, r.count, half)
            }
            return out
        }
    }

    public func add(_ a: any DeviceMatrix, _ b: any DeviceMatrix) throws -> any DeviceMatrix {
        try timed("add") {
            let a = try cpu(a), b = try cpu(b)
            guard a.rows == b.rows, a.cols == b.cols else {
                throw TensorError("add: \(a.rows)×\(a.cols) and \(b.rows)×\(b.cols)")
            }
            let out = CPUMatrix(rows: a.rows, cols: a.cols, pool: activations)
            let pa = SharedPointer(a.pointer), pb = SharedPointer(b.pointer), po = SharedPointer(out.pointer)
            let cols = a.cols
            pool.forEachRange(a.rows, grain: 256) { r in
                let o = r.lowerBound * cols
                ck_add(pa.base + o, pb.base + o, po.base + o, r.count * cols)
            }
            return out
        }
    }

    public func l2Normalize(_ x: any DeviceMatrix) throws -> any DeviceMatrix {
        try timed("l2Normalize") {
            let x = try cpu(x)
            let out = CPUMatrix(rows: x.rows, cols: x.cols, pool: activations)
            let src = SharedPointer(x.pointer), dst = SharedPointer(out.pointer)
            let cols = x.cols
            pool.forEachRange(x.rows, grain: 256) { r in
                ck_l2_normalize(src.base + r.lowerBound * cols, dst.base + r.lowerBound * cols, r.count, cols)
            }
            return out
        }
    }

    // MARK: GEMM

    public func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?,
                       activation: Activation, residual: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        let x = try cpu(x), w = try cpu(weight), b = try bias.map(cpu), res = try residual.map(cpu)
        guard w.cols == x.cols else { throw TensorError("linear: input width \(x.cols), weight \(w.rows)×\(w.cols)") }
        let n = w.rows
        guard b.map({ $0.rows * $0.cols == n }) ?? true else { throw TensorError("linear: bias width differs from \(n)") }
        guard res.map({ $0.rows == x.rows && $0.cols == n }) ?? true else { throw TensorError("linear: residual shape differs from \(x.rows)×\(n)") }
        let quantized = int8Weight(for: w, input: x)
        return timed(quantized == nil ? "linear" : "linear-int8") {
            let out = CPUMatrix(rows: x.rows, cols: n, pool: activations)
            let po = SharedPointer(out.pointer)
            let pb = b.map { SharedPointer($0.pointer) }, pr = res.map { SharedPointer($0.pointer) }
            product(x, rows: x.rows, weight: w, quantized: quantized, into: out.pointer) { r in
                Self.epilogue(po.base + r.lowerBound * n, rows: r.count, cols: n, bias: pb?.base, activation: activation,
                              residual: pr.map { $0.base + r.lowerBound * n })
            }
            return out
        }
    }

    /// `y = x[0..<rows] · weightᵀ` (fp32 SGEMM, or int8 when `quantized` is given), rows split over the pool;
    /// `then` runs on each finished block of rows while it is still in cache.
    func product(_ x: CPUMatrix, rows: Int, weight w: CPUMatrix, quantized: QuantizedWeight?, into y: UnsafeMutablePointer<Float>,
                 then: @Sendable (Range<Int>) -> Void = { _ in }) {
        let n = w.rows, k = x.cols
        let px = SharedPointer(x.pointer), pw = SharedPointer(w.pointer), py = SharedPointer(y)
        if quantized == nil, products == .dot {
            // The weight's rows split over the pool (each thread reads its share of the weight once, for
            // every row of x); the epilogue follows over the rows.
            pool.forEachRange(n, grain: 64) { r in
                ck_sgemm_dot(px.base, rows, k, pw.base, r.lowerBound, r.upperBound, py.base, n)
            }
            pool.forEachRange(rows, grain: 16, then)
            return
        }
        pool.forEachRange(rows, grain: 16) { r in
            let y = py.base + r.lowerBound * n, a = px.base + r.lowerBound * k
            if let quantized {
                quantized.multiply(a, rows: r.count, k: k, n: n, into: y, meter: memory)
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(n), Int32(k),
                            1, a, Int32(k), pw.base, Int32(k), 0, y, Int32(n))
            }
            then(r)
        }
    }

    /// Bias, activation and residual applied to a block of GEMM output while it is still in cache.
    static func epilogue(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafeMutablePointer<Float>?,
                         activation: Activation, residual: UnsafeMutablePointer<Float>?) {
        if let bias {
            for row in 0..<rows { ck_add(y + row * cols, bias, y + row * cols, cols) }
        }
        switch activation {
        case .none: break
        case .gelu: ck_gelu(y, rows * cols)
        case .geluTanh: ck_gelu_tanh(y, rows * cols)
        }
        if let residual { ck_add(y, residual, y, rows * cols) }
    }

    // MARK: attention

    public func attention(_ qkv: any DeviceMatrix, batch: PackedBatch, heads: Int, headDim: Int,
                          rotary: Rotary?, window: Int?) throws -> any DeviceMatrix {
        try timed("attention") {
            let qkv = try cpu(qkv)
            let width = heads * headDim
            guard qkv.cols == 3 * width, qkv.rows == batch.tokenCount else {
                throw TensorError("attention: qkv is \(qkv.rows)×\(qkv.cols), expected \(batch.tokenCount)×\(3 * width)")
            }
            guard rotary == nil || headDim % 2 == 0 else { throw TensorError("attention: rotary needs an even head size") }
            let out = CPUMatrix(rows: qkv.rows, cols: width, pool: activations)
            let maxLength = batch.maxSequenceLength
            let table = rotary.map { RotaryTable(theta: $0.theta, headDim: headDim, positions: maxLength, meter: memory) }
            let kernel = AttentionKernel(qkv: SharedPointer(qkv.pointer), out: SharedPointer(out.pointer), heads: heads,
                                         headDim: headDim, halfWindow: window.map { $0 / 2 }, rotary: table)
            let ranges = (0..<batch.sequenceCount).map { batch.range(of: $0) }
            var costs: [Int] = []
            costs.reserveCapacity(ranges.count * heads)
            for range in ranges {
                let keys = window.map { min(range.count, $0 + 1) } ?? range.count
                for _ in 0..<heads { costs.append(range.count * keys + range.count) }
            }
            let scratch = (0..<min(pool.threads, costs.count)).map { _ in AttentionScratch(maxLength: maxLength, headDim: headDim, meter: memory) }
            pool.forEachTask(costs: costs) { worker, task in
                kernel.run(rows: ranges[task / heads], head: task % heads, scratch: scratch[worker])
            }
            withExtendedLifetime((qkv, table, scratch)) {}
            return out
        }
    }

    func cpu(_ m: any DeviceMatrix) throws -> CPUMatrix {
        guard let m = m as? CPUMatrix else { throw TensorError("CPUBackend was handed a matrix of another backend (\(type(of: m)))") }
        return m
    }
}
