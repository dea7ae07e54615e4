import Tensor

/// Element types a CUDA matrix can hold.
public enum CUDAElementType: Sendable, Equatable {
    case float32
    case bfloat16

    public var size: Int { self == .float32 ? 4 : 2 }
}

/// Numeric mode of a `CUDABackend`: bf16 storage and tensor-core GEMMs for speed, fp32 for checking.
public enum CUDAPrecision: String, Sendable, CaseIterable {
    case bf16
    case fp32

    var elementType: CUDAElementType { self == .bf16 ? .bfloat16 : .float32 }
}

/// A row-major matrix in device memory, backed by a block of the backend's memory pool; the block
/// returns to the pool when the matrix is released, which is what makes ops that return new
/// matrices cheap.
///
/// A matrix may also be *deferred*: a layer norm or GeGLU of another matrix whose values have not been
/// computed, because the next `linear` computes them inside its GEMM's loads (`CUDABackend.fusesPrologues`).
/// Every other op computes them first (`CUDABackend.cuda(_:_:)`), so a deferred matrix is never read as memory.
public final class CUDAMatrix: DeviceMatrix {
    public let rows: Int
    public let cols: Int
    public let elementType: CUDAElementType
    /// nil only while deferred.
    private var storage: DeviceBlock?
    /// What this matrix is the result of, until its values exist.
    private(set) var deferred: DeferredPrologue?
    private let pool: DeviceMemoryPool

    init(rows: Int, cols: Int, elementType: CUDAElementType, block: DeviceBlock, pool: DeviceMemoryPool) {
        self.rows = rows
        self.cols = cols
        self.elementType = elementType
        self.storage = block
        self.pool = pool
    }

    /// A matrix whose values are `deferred`'s result, not computed yet.
    init(rows: Int, cols: Int, elementType: CUDAElementType, deferred: DeferredPrologue, pool: DeviceMemoryPool) {
        self.rows = rows
        self.cols = cols
        self.elementType = elementType
        self.deferred = deferred
        self.pool = pool
    }

    deinit { if let storage { pool.release(storage) } }

    /// Takes over `computed`'s memory (this matrix's deferred values, computed into it).
    func adoptStorage(of computed: CUDAMatrix) {
        precondition(computed.rows == rows && computed.cols == cols && computed.elementType == elementType && storage == nil)
        storage = computed.storage
        computed.storage = nil
        deferred = nil
    }

    var pointer: UInt64 {
        guard let storage else { preconditionFailure("a deferred CUDA matrix was read before its values were computed") }
        return storage.pointer
    }
    var count: Int { rows * cols }
    var byteCount: Int { count * elementType.size }
}

/// A layer norm or GeGLU left for the next GEMM to compute while it loads its input.
enum DeferredPrologue {
    case layerNorm(source: CUDAMatrix, weight: CUDAMatrix, bias: CUDAMatrix?, eps: Float)
    /// `gelu(source[:, :half]) · source[:, half:]`.
    case geglu(source: CUDAMatrix)

    var source: CUDAMatrix {
        switch self {
        case .layerNorm(let source, _, _, _), .geglu(let source): return source
        }
    }
}
