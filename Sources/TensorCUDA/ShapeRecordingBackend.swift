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
/// forward pass of that batch will run, before any GPU exists.
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
