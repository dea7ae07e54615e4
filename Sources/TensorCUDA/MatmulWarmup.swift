import Foundation
import Tensor

/// One `linear` call of a forward pass, by shape: what decides cuBLASLt's plan and kernel.
public struct LinearShape: Hashable, Sendable {
    public var rows: Int
    public var outFeatures: Int
    public var inFeatures: Int
    public var hasBias: Bool
    public var activation: Activation
    public var hasResidual: Bool
}

/// A `Backend` that computes nothing and records the shape of every `linear` call: a model run on it
/// once (weights borrowed where the file holds f32, so loading is cheap) lists the GEMMs a real
/// forward pass of that batch will run, before any GPU exists, for `CUDABackend.warmMatmuls`.
public final class ShapeRecordingBackend: HostBorrowingBackend {
    /// A matrix with a shape and no values.
    final class Shape: DeviceMatrix {
        let rows: Int
        let cols: Int
        init(_ rows: Int, _ cols: Int) { self.rows = rows; self.cols = cols }
    }

    public let name = "shape recorder"
    /// Every `linear` call so far, in order.
    public private(set) var linearShapes: [LinearShape] = []

    public init() {}

    public func upload(_ matrix: HostMatrix) throws -> any DeviceMatrix { Shape(matrix.rows, matrix.cols) }
    public func uploadBorrowing(_ values: UnsafePointer<Float>, rows: Int, cols: Int, owner: AnyObject) throws -> any DeviceMatrix { Shape(rows, cols) }
    public func download(_ matrix: any DeviceMatrix) throws -> HostMatrix {
        HostMatrix(rows: matrix.rows, cols: matrix.cols, values: [Float](repeating: 0, count: matrix.rows * matrix.cols))
    }
    public func gather(_ table: any DeviceMatrix, ids: [Int32]) throws -> any DeviceMatrix { Shape(ids.count, table.cols) }
    public func layerNorm(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix { Shape(x.rows, x.cols) }
    public func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?,
                       activation: Activation, residual: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        linearShapes.append(LinearShape(rows: x.rows, outFeatures: weight.rows, inFeatures: weight.cols, hasBias: bias != nil,
                                        activation: activation, hasResidual: residual != nil))
        return Shape(x.rows, weight.rows)
    }
    public func geglu(_ x: any DeviceMatrix) throws -> any DeviceMatrix { Shape(x.rows, x.cols / 2) }
    public func add(_ a: any DeviceMatrix, _ b: any DeviceMatrix) throws -> any DeviceMatrix { Shape(a.rows, a.cols) }
    public func attention(_ qkv: any DeviceMatrix, batch: PackedBatch, heads: Int, headDim: Int,
                          rotary: Rotary?, window: Int?) throws -> any DeviceMatrix { Shape(qkv.rows, heads * headDim) }
    public func l2Normalize(_ x: any DeviceMatrix) throws -> any DeviceMatrix { Shape(x.rows, x.cols) }
}

/// How long one shape's warm-up GEMM took on the host (plan with cuBLASLt's heuristic query, kernel
/// launch). Measured on an H200 host: the first plan of a process costs 85–110 ms (cuBLASLt's one-time
/// heuristic initialisation, shared by every handle and thread), each later one 0.1–0.2 ms.
public struct MatmulWarmupTiming: Sendable {
    public var shape: LinearShape
    public var seconds: Double
    /// The part of `seconds` spent making the plan (descriptors, heuristic query).
    public var planningSeconds: Double
}

extension CUDABackend {
    /// Runs one GEMM of each distinct shape (with the epilogue `linear` would use) on scratch memory,
    /// through its own cuBLASLt handle and memory pool, then waits for the device: cuBLASLt's first-call
    /// costs (its own initialisation, loading the kernels it picks, the heuristics) are paid here rather
    /// than in the first batch. Touches none of this backend's own state, so it may run on a second
    /// thread while this one uploads weights.
    public func warmMatmuls(_ shapes: [LinearShape]) throws -> [MatmulWarmupTiming] {
        let unique = Array(Set(shapes)).sorted { ($0.rows, $0.outFeatures, $0.inFeatures) < ($1.rows, $1.outFeatures, $1.inFeatures) }
        guard !unique.isEmpty else { return [] }
        try context.makeCurrent()
        let scratchPool = DeviceMemoryPool(allocator: context)
        defer { scratchPool.trim() }
        let size = precision.elementType.size
        var blocks: [DeviceBlock] = []
        defer { for block in blocks { scratchPool.release(block) } }
        func scratch(_ elements: Int) throws -> UInt64 {
            let block = try scratchPool.allocate(bytes: max(1, elements) * size)
            blocks.append(block)
            return block.pointer
        }
        let x = try scratch(unique.map { $0.rows * $0.inFeatures }.max()!)
        let w = try scratch(unique.map { $0.outFeatures * $0.inFeatures }.max()!)
        let b = try scratch(unique.map(\.outFeatures).max()!)
        let c = try scratch(unique.map { $0.rows * $0.outFeatures }.max()!)
        let d = try scratch(unique.map { $0.rows * $0.outFeatures }.max()!)
        let type: BLASLtMatmul.DataType = precision == .bf16 ? .bfloat16 : .float32
        var timings: [MatmulWarmupTiming] = []
        let warm = try BLASLtMatmul(context: context, pool: scratchPool)
        for shape in unique {
            let start = ContinuousClock.now
            let planningBefore = warm.planningSeconds
            let plan = linearEpilogue(activation: shape.activation, hasBias: shape.hasBias, hasResidual: shape.hasResidual)
            try warm.run(rows: shape.rows, outFeatures: shape.outFeatures, inFeatures: shape.inFeatures, x: x, weight: w,
                         bias: shape.hasBias ? b : nil, c: plan.fuseResidual && shape.hasResidual ? c : nil, beta: 1, d: d,
                         input: type, output: type, epilogue: plan.epilogue)
            let elapsed = ContinuousClock.now - start
            timings.append(MatmulWarmupTiming(shape: shape, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18,
                                              planningSeconds: warm.planningSeconds - planningBefore))
        }
        // The handle and its workspace must outlive the queued GEMMs.
        try withExtendedLifetime(warm) {
            try context.check(context.driver.cuStreamSynchronize(context.computeStream), "cuStreamSynchronize")
        }
        return timings
    }
}
