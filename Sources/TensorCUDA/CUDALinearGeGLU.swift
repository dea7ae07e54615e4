import Foundation
import Tensor

extension CUDABackend {
    /// `gelu(a) · g` of `x · wᵀ + bias`, `w`'s rows being `[a | g]`, in one kernel where one fits: the row-resident
    /// kernel where `residentFusion` asks for it (computing a deferred layer norm of `x` too), else the warpgroup-MMA
    /// kernel (Hopper); elsewhere the GEMM and the GeGLU pass.
    public func linearGeGLU(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        let input = try cudaKeepingDeferred(x, "linearGeGLU input")
        let w = try cuda(weight, "linearGeGLU weight")
        let b = try bias.map { try cuda($0, "linearGeGLU bias") }
        let shapesFit = input.cols == w.cols && w.rows % 2 == 0 && (b == nil || b!.count == w.rows)
        if shapesFit, residentFusion != .off, runsResident(input, weight: w) {
            return try profiled("linear\(input.deferred == nil ? "" : " norm→") \(w.rows)x\(w.cols) →geglu") {
                try context.makeCurrent()
                return try residentLinear(input, weight: w, bias: b, geglu: true)
            }
        }
        if shapesFit, runsWarpgroup(inFeatures: w.cols, outFeatures: w.rows) {
            return try profiled("linear \(w.rows)x\(w.cols) →geglu (wgmma)") {
                try context.makeCurrent()
                return try warpgroupLinear(try cuda(input, "linearGeGLU input"), weight: w, bias: b, activation: .gelu, geglu: true)
            }
        }
        return try geglu(linear(input, weight: w, bias: b, activation: .none, residual: nil))
    }
}
