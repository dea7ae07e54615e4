/// The compute engine's contract: a small set of operations on device matrices.
///
/// Models (BERT, ModernBERT, the ColBERT head, k-means assignment) are written once against this
/// protocol; a backend (CPU, CUDA, later HIP or Metal) implements operations, never models.
/// Every activation is a row-major matrix with one row per token of a packed batch: sequences are
/// concatenated without padding and described by `PackedBatch.cuSeqlens`.
public protocol Backend: AnyObject {
    /// A short human-readable name ("cpu (openblas, 2 threads)", "cuda:0 (H100, bf16)").
    var name: String { get }

    /// Copies constant host data (weights, centroids) to the device once.
    func upload(_ matrix: HostMatrix) throws -> any DeviceMatrix

    /// Copies a device matrix back to the host.
    func download(_ matrix: any DeviceMatrix) throws -> HostMatrix

    /// Copies rows of a device matrix back as one host matrix per group of row indices (a packed
    /// batch's result split per sequence, skipped rows left out), without first building the whole
    /// matrix on the host.
    func download(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> [HostMatrix]

    /// The same rows as `download(_:rowGroups:)`, one group after another in a single host block: no
    /// allocation per group, and a GPU backend lands them in reused pinned memory (see `HostRowBlock`).
    func downloadBlock(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> HostRowBlock

    /// Rows of `table` picked by `ids` (embedding lookup): result is `ids.count × table.cols`.
    func gather(_ table: any DeviceMatrix, ids: [Int32]) throws -> any DeviceMatrix

    /// An encoder's embedding stage: `layerNorm(gather(words, ids:) + gather(positions.table, ids: positions.ids))`,
    /// the position term left out when `positions` is nil (ModernBERT). `positions.ids` has one id per token id.
    /// A backend may gather, add and normalize in one pass; the default is the ops one after the other.
    func embed(words: any DeviceMatrix, ids: [Int32], positions: (table: any DeviceMatrix, ids: [Int32])?,
               normWeight: any DeviceMatrix, normBias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix

    /// Row-wise layer norm: `(x − mean) / sqrt(var + eps) · weight (+ bias)`.
    /// `weight` and `bias` are `1 × cols`; `bias` is nil for bias-free models (ModernBERT).
    func layerNorm(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix

    /// `activation(x · weightᵀ + bias) (+ residual)`, with `weight` in PyTorch `Linear` layout
    /// (`out × in`). Epilogues are fused where the backend can.
    func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?,
                activation: Activation, residual: (any DeviceMatrix)?) throws -> any DeviceMatrix

    /// Gated GELU as ModernBERT's MLP uses it: the input is `[a | g]` (two halves of the columns);
    /// the result is `gelu(a) · g`, half as wide.
    func geglu(_ x: any DeviceMatrix) throws -> any DeviceMatrix

    /// `geglu(linear(x, weight:, bias:))`, ModernBERT's MLP input, in one call: a backend may compute the
    /// gate from its GEMM's accumulators and never write the twice-as-wide up-projection out.
    func linearGeGLU(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?) throws -> any DeviceMatrix

    /// Element-wise sum of two matrices of the same shape (residual connections).
    func add(_ a: any DeviceMatrix, _ b: any DeviceMatrix) throws -> any DeviceMatrix

    /// Multi-head self-attention over packed sequences.
    ///
    /// `qkv` is `tokens × (3 · heads · headDim)` laid out `[q | k | v]`, each head-major.
    /// When `rotary` is set, rotary position embeddings (NeoX half-rotation, positions counted
    /// from 0 within each sequence) are applied to q and k first. When `window` is set, a token
    /// attends only to tokens at distance ≤ window / 2 (ModernBERT's local attention).
    /// Returns `tokens × (heads · headDim)`.
    func attention(_ qkv: any DeviceMatrix, batch: PackedBatch, heads: Int, headDim: Int,
                   rotary: Rotary?, window: Int?) throws -> any DeviceMatrix

    /// Scales every row to unit L2 norm (rows of zeros stay zero).
    func l2Normalize(_ x: any DeviceMatrix) throws -> any DeviceMatrix
}

extension Backend {
    /// `embedInSeparateOps`.
    public func embed(words: any DeviceMatrix, ids: [Int32], positions: (table: any DeviceMatrix, ids: [Int32])?,
                      normWeight: any DeviceMatrix, normBias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        try embedInSeparateOps(words: words, ids: ids, positions: positions, normWeight: normWeight, normBias: normBias, eps: eps)
    }

    /// `embed` as gather, add and layer norm one after the other (the words' gather first): what a backend whose fused
    /// kernel does not apply falls back to.
    public func embedInSeparateOps(words: any DeviceMatrix, ids: [Int32], positions: (table: any DeviceMatrix, ids: [Int32])?,
                                   normWeight: any DeviceMatrix, normBias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        var x = try gather(words, ids: ids)
        if let positions { x = try add(x, gather(positions.table, ids: positions.ids)) }
        return try layerNorm(x, weight: normWeight, bias: normBias, eps: eps)
    }

    /// The two ops one after the other.
    public func linearGeGLU(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        try geglu(linear(x, weight: weight, bias: bias, activation: .none, residual: nil))
    }

    /// Downloads the whole matrix, then gathers each group's rows.
    public func download(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> [HostMatrix] {
        let whole = try download(matrix)
        return HostMatrix.gatheringRows(rowGroups, cols: whole.cols) { row, destination in
            whole.values.withUnsafeBufferPointer { destination.update(from: $0.baseAddress! + row * whole.cols, count: whole.cols) }
        }
    }

    /// Downloads the whole matrix, then copies each group's rows into one owned block.
    public func downloadBlock(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> HostRowBlock {
        let whole = try download(matrix)
        if let bad = rowGroups.lazy.flatMap({ $0 }).first(where: { $0 < 0 || $0 >= whole.rows }) {
            throw TensorError("downloadBlock: row \(bad) is outside the matrix's \(whole.rows) rows")
        }
        let cols = whole.cols
        return whole.values.withUnsafeBufferPointer { source in
            HostRowBlock(cols: cols, offsets: HostRowBlock.offsets(sizes: rowGroups.map(\.count))) { destination in
                var next = destination
                for row in rowGroups.joined() {
                    next.update(from: source.baseAddress! + row * cols, count: cols)
                    next += cols
                }
            }
        }
    }
}

/// Activation applied in a `linear` epilogue.
public enum Activation: Sendable, Equatable {
    case none
    /// Exact GELU, `x · Φ(x)` with the error function (PyTorch's default `gelu`).
    case gelu
    /// The tanh approximation of GELU (`gelu_pytorch_tanh`, `gelu_new`).
    case geluTanh
}

/// Rotary position embedding settings of one attention layer.
public struct Rotary: Sendable, Equatable {
    /// Base of the inverse frequencies (`theta ** (-2i / headDim)`).
    public var theta: Float
    public init(theta: Float) { self.theta = theta }
}

/// A matrix resident on a backend's device. Backends downcast to their own concrete type.
public protocol DeviceMatrix: AnyObject {
    var rows: Int { get }
    var cols: Int { get }
}
