import Foundation
import Tensor

extension CUDASelfTest {
    /// The row-resident GEMM (`ResidentGemmFusion`): layer norm → linear and layer norm → linear → GeGLU
    /// against double precision, with and without the norm's bias and with a plain input, on row counts
    /// that leave a partial 128-row tile and weights of five 64-row chunks (the three shared buffers wrap);
    /// against the same ops with the fusion off (cuBLASLt and separate passes); and which kernel ran.
    static func residentGemmChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) throws -> [Check] {
        var recorder = CheckRecorder(prefix: "bf16 resident")
        guard backend.residentGemmKernel != nil else {
            recorder.record("kernel loaded", [0], [1], tolerance: 0)
            return recorder.checks
        }
        let saved = backend.residentFusion
        defer { backend.residentFusion = saved }
        let hidden = KernelSource.residentGemmInputWidth, outputs = 5 * KernelSource.residentGemmTile.weightRows
        for (rows, withNormBias) in [(203, true), (1_000, false)] {
            var x = randomMatrix(rows: rows, cols: hidden, &random)
            for i in x.values.indices { x.values[i] = roundToBF16(x.values[i] * 3 + 0.5) }  // an offset and scale to remove
            let normWeight = randomMatrix(rows: 1, cols: hidden, &random), normBias = randomMatrix(rows: 1, cols: hidden, &random)
            let w = randomMatrix(rows: outputs, cols: hidden, &random, scale: 0.1), b = randomMatrix(rows: 1, cols: outputs, &random)
            let normed = HostMatrix(rows: rows, cols: hidden, values: referenceLayerNorm(x, weight: normWeight, bias: withNormBias ? normBias : nil, eps: 1e-5)
                .map { roundToBF16(Float($0)) })
            func gated(_ up: [Double]) -> [Double] {
                (0..<rows).flatMap { r in (0..<outputs / 2).map { c in gelu(up[r * outputs + c]) * up[r * outputs + outputs / 2 + c] } }
            }
            let projected = referenceLinear(normed, w, bias: b, activation: .none, residual: nil)
            let gatedNormed = gated(projected), gatedPlain = gated(referenceLinear(x, w, bias: nil, activation: .none, residual: nil))
            let dx = try backend.upload(x), dw = try backend.upload(normWeight), db = try backend.upload(normBias)
            let dW = try backend.upload(w), dB = try backend.upload(b)
            var results: [ResidentGemmFusion: [[Float]]] = [:]
            for fusion in [ResidentGemmFusion.off, .all] {
                backend.residentFusion = fusion
                let before = backend.residentGemmCount
                let norm = { try backend.layerNorm(dx, weight: dw, bias: withNormBias ? db : nil, eps: 1e-5) }
                let a = try backend.download(backend.linear(norm(), weight: dW, bias: dB, activation: .none, residual: nil)).values
                let g = try backend.download(backend.linearGeGLU(norm(), weight: dW, bias: dB)).values
                let p = try backend.download(backend.linearGeGLU(dx, weight: dW, bias: nil)).values
                let shape = "\(rows)x\(hidden)→\(outputs) norm bias=\(withNormBias) fusion=\(fusion.rawValue)"
                recorder.record("layerNorm→linear \(shape)", a, projected)
                recorder.record("layerNorm→linear→geglu \(shape)", g, gatedNormed)
                recorder.record("linear→geglu \(shape)", p, gatedPlain)
                recorder.record("kernel runs \(shape)", [Float(backend.residentGemmCount - before)], [fusion == .all ? 3 : 0], tolerance: 0)
                results[fusion] = [a, g, p]
            }
            if let off = results[.off], let fused = results[.all] {
                // Same bf16 inputs; the fused GeGLU skips the up-projection's bf16 rounding, so close, not equal.
                for (name, index) in [("layerNorm→linear", 0), ("layerNorm→linear→geglu", 1), ("linear→geglu", 2)] {
                    recorder.record("\(name) \(rows) rows fused vs separate", fused[index], off[index].map(Double.init), tolerance: 5e-3)
                }
            }
            // A layer norm left for the kernel but read by another op first is computed then.
            backend.residentFusion = .all
            recorder.record("layerNorm deferred then downloaded \(rows) rows",
                   try backend.download(backend.layerNorm(dx, weight: dw, bias: withNormBias ? db : nil, eps: 1e-5)).values,
                   referenceLayerNorm(x, weight: normWeight, bias: withNormBias ? normBias : nil, eps: 1e-5))
        }
        return recorder.checks
    }
}
