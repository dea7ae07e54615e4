import CCUDA
import Foundation
import Tensor

/// Which GEMMs of 256-wide bf16 inputs run on the row-resident kernel (`KernelSource.gemmResident`), which
/// computes the layer norm before them while loading its rows and, for the MLP's input, the GeGLU after
/// them from its accumulators: the passes over device memory that cuBLASLt cannot fuse disappear.
public enum ResidentGemmFusion: String, Sendable, CaseIterable {
    /// Every GEMM on cuBLASLt, layer norm and GeGLU in passes of their own.
    case off
    /// The MLP's input (layer norm, up-projection, GeGLU) in one kernel; the rest on cuBLASLt.
    case mlp
    /// Also every other GEMM whose input is a layer norm (the attention's QKV projection, the head).
    case all

    /// `COLGREP_RESIDENT_GEMM` (`off`, `mlp`, `all`), else `off`.
    public static var environment: ResidentGemmFusion {
        ProcessInfo.processInfo.environment["COLGREP_RESIDENT_GEMM"].flatMap { ResidentGemmFusion(rawValue: $0.lowercased()) } ?? .off
    }
}

extension CUDABackend {
    /// The row-resident kernel of the gemm module, allowed the dynamic shared memory it needs (over the
    /// 48 KiB a launch gets without asking).
    func loadResidentGemm(_ module: CUmodule) throws -> CUfunction {
        let function = try context.function(module, KernelSource.residentGemmKernel)
        try context.check(context.driver.cuFuncSetAttribute(function, Int32(CCUDA_FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES),
                                                            Int32(KernelSource.residentGemmSharedBytes)),
                          "cuFuncSetAttribute(\(KernelSource.residentGemmKernel), \(KernelSource.residentGemmSharedBytes) shared bytes)")
        return function
    }

    /// Whether a layer norm of `input` is left for the next GEMM's resident kernel to compute.
    func residentTakesLayerNorm(of input: CUDAMatrix) -> Bool {
        residentFusion != .off && residentGemmKernel != nil && precision == .bf16 && input.cols == KernelSource.residentGemmInputWidth
    }

    /// Whether `input` (its values or a deferred layer norm) times `weight`ᵀ can run on the resident kernel:
    /// bf16, the one input width it is compiled for, whole 64-row weight chunks.
    func runsResident(_ input: CUDAMatrix, weight: CUDAMatrix) -> Bool {
        guard residentGemmKernel != nil, precision == .bf16, weight.cols == KernelSource.residentGemmInputWidth,
              weight.rows > 0, weight.rows % KernelSource.residentGemmTile.weightRows == 0 else { return false }
        switch input.deferred {
        case nil, .layerNorm?: return true
        case .geglu?: return false
        }
    }

    /// `input · wᵀ + bias` on the resident kernel, with `input`'s deferred layer norm computed in it;
    /// `geglu`: `w`'s rows are `[a | g]` and the result is `gelu(a) · g`, half as wide.
    func residentLinear(_ input: CUDAMatrix, weight w: CUDAMatrix, bias b: CUDAMatrix?, geglu: Bool) throws -> CUDAMatrix {
        var source = input, normWeight: UInt64 = 0, normBias: UInt64 = 0, eps: Float = 0
        if case .layerNorm(let normed, let weight, let bias, let epsilon)? = input.deferred {
            source = try cuda(normed, "linear input"); normWeight = weight.pointer; normBias = bias?.pointer ?? 0; eps = epsilon
        }
        let out = try makeMatrix(rows: input.rows, cols: geglu ? w.rows / 2 : w.rows)
        guard input.rows > 0, let kernel = residentGemmKernel else { return out }
        try context.launch(kernel, grid: ((input.rows + KernelSource.residentGemmTile.rows - 1) / KernelSource.residentGemmTile.rows, 1, 1),
                           block: (KernelSource.residentGemmTile.threads, 1, 1), sharedBytes: KernelSource.residentGemmSharedBytes, [
                               .pointer(source.pointer), .pointer(w.pointer), .pointer(b?.pointer ?? 0), .pointer(out.pointer),
                               .int32(Int32(input.rows)), .int32(Int32(w.rows)),
                               .pointer(normWeight), .pointer(normBias), .float(eps), .int32(geglu ? 1 : 0),
                           ])
        residentGemmCount += 1
        return out
    }
}
