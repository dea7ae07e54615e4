import Foundation
import Tensor

extension CUDASelfTest {
    /// The warpgroup-MMA GEMM (`usesWarpgroupGemm`, compute capability 9.0): linear with the exact GELU and
    /// linear → GeGLU against double precision, on row counts that leave a partial 128-row tile, input widths of
    /// one to six 64-wide steps (the three shared-memory stages wrap), several column tiles, with and without
    /// bias; against the same ops on cuBLASLt with the activation in its own pass; and which kernel ran. On a GPU
    /// of another architecture the kernel is not built and there is nothing to check.
    static func warpgroupGemmChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) throws -> [Check] {
        var recorder = CheckRecorder(prefix: "bf16 wgmma")
        guard backend.warpgroupGemmKernel != nil else {
            if backend.context.architecture == WarpgroupGemmSetting.deviceArchitecture && WarpgroupGemmSetting.environment {
                recorder.record("kernel loaded on \(backend.context.architecture)", [0], [1], tolerance: 0)
            }
            return recorder.checks
        }
        // The resident kernel, when asked for (`COLGREP_RESIDENT_GEMM`), would take the GeGLU cases first.
        let saved = (backend.usesWarpgroupGemm, backend.residentFusion)
        defer { (backend.usesWarpgroupGemm, backend.residentFusion) = saved }
        backend.residentFusion = .off
        // (rows, input width, weight rows, bias, GeGLU)
        for (rows, inFeatures, outFeatures, withBias, gated) in [(203, 384, 256, true, false), (1_000, 64, 1_536, true, false),
                                                                 (1_000, 256, 512, false, true), (77, 320, 384, true, true)] {
            let x = randomMatrix(rows: rows, cols: inFeatures, &random)
            let w = randomMatrix(rows: outFeatures, cols: inFeatures, &random, scale: 0.1), b = randomMatrix(rows: 1, cols: outFeatures, &random)
            let bias = withBias ? b : nil
            let reference: [Double]
            if gated {
                let up = referenceLinear(x, w, bias: bias, activation: .none, residual: nil)
                reference = (0..<rows).flatMap { r in (0..<outFeatures / 2).map { c in gelu(up[r * outFeatures + c]) * up[r * outFeatures + outFeatures / 2 + c] } }
            } else {
                reference = referenceLinear(x, w, bias: bias, activation: .gelu, residual: nil)
            }
            let dx = try backend.upload(x), dw = try backend.upload(w), db = try bias.map { try backend.upload($0) }
            var results: [Bool: [Float]] = [:]
            for on in [false, true] {
                backend.usesWarpgroupGemm = on
                let before = backend.warpgroupGemmCount
                let y = gated ? try backend.linearGeGLU(dx, weight: dw, bias: db)
                    : try backend.linear(dx, weight: dw, bias: db, activation: .gelu, residual: nil)
                let values = try backend.download(y).values
                let shape = "\(rows)x\(inFeatures)→\(outFeatures)\(gated ? " →geglu" : " gelu") bias=\(withBias) wgmma=\(on)"
                recorder.record(shape, values, reference)
                recorder.record("kernel runs \(shape)", [Float(backend.warpgroupGemmCount - before)], [on ? 1 : 0], tolerance: 0)
                results[on] = values
            }
            if let off = results[false], let fused = results[true] {
                // Same bf16 inputs; the fused activation skips the GEMM output's bf16 rounding, so close, not equal.
                recorder.record("\(rows)x\(inFeatures)→\(outFeatures) fused vs separate", fused, off.map(Double.init), tolerance: 5e-3)
            }
        }
        return recorder.checks
    }
}
