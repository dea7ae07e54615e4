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
public final class CUDAMatrix: DeviceMatrix {
    public let rows: Int
    public let cols: Int
    public let elementType: CUDAElementType
    let block: DeviceBlock
    private let pool: DeviceMemoryPool

    init(rows: Int, cols: Int, elementType: CUDAElementType, block: DeviceBlock, pool: DeviceMemoryPool) {
        self.rows = rows
        self.cols = cols
        self.elementType = elementType
        self.block = block
        self.pool = pool
    }

    deinit { pool.release(block) }

    var pointer: UInt64 { block.pointer }
    var count: Int { rows * cols }
    var byteCount: Int { count * elementType.size }
}
