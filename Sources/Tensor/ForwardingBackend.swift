/// A backend that hands every operation to another one: a wrapper that adds one capability (such as
/// assignment split over several devices) conforms to this and writes only what it changes.
public protocol ForwardingBackend: Backend {
    /// The backend every operation not written by the wrapper goes to.
    var forwardee: any Backend { get }
}

extension ForwardingBackend {
    public var name: String { forwardee.name }
    public func upload(_ matrix: HostMatrix) throws -> any DeviceMatrix { try forwardee.upload(matrix) }
    public func download(_ matrix: any DeviceMatrix) throws -> HostMatrix { try forwardee.download(matrix) }
    public func download(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> [HostMatrix] {
        try forwardee.download(matrix, rowGroups: rowGroups)
    }
    public func downloadBlock(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> HostRowBlock {
        try forwardee.downloadBlock(matrix, rowGroups: rowGroups)
    }
    public func gather(_ table: any DeviceMatrix, ids: [Int32]) throws -> any DeviceMatrix { try forwardee.gather(table, ids: ids) }
    public func embed(words: any DeviceMatrix, ids: [Int32], positions: (table: any DeviceMatrix, ids: [Int32])?,
                      normWeight: any DeviceMatrix, normBias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        try forwardee.embed(words: words, ids: ids, positions: positions, normWeight: normWeight, normBias: normBias, eps: eps)
    }
    public func layerNorm(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        try forwardee.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
    public func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, activation: Activation,
                       residual: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        try forwardee.linear(x, weight: weight, bias: bias, activation: activation, residual: residual)
    }
    public func geglu(_ x: any DeviceMatrix) throws -> any DeviceMatrix { try forwardee.geglu(x) }
    public func linearGeGLU(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        try forwardee.linearGeGLU(x, weight: weight, bias: bias)
    }
    public func add(_ a: any DeviceMatrix, _ b: any DeviceMatrix) throws -> any DeviceMatrix { try forwardee.add(a, b) }
    public func attention(_ qkv: any DeviceMatrix, batch: PackedBatch, heads: Int, headDim: Int, rotary: Rotary?,
                          window: Int?) throws -> any DeviceMatrix {
        try forwardee.attention(qkv, batch: batch, heads: heads, headDim: headDim, rotary: rotary, window: window)
    }
    public func l2Normalize(_ x: any DeviceMatrix) throws -> any DeviceMatrix { try forwardee.l2Normalize(x) }
}
