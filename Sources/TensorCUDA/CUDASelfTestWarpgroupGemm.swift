import Foundation
import Tensor

extension CUDASelfTest {
    /// The warpgroup-MMA GEMM (`usesWarpgroupGemm`, compute capability 9.0): linear with the exact GELU and
    /// linear → GeGLU against double precision, on row counts that leave a partial 128-row tile, input widths of
    /// one to six 64-wide steps (the three shared-memory stages wrap), several column tiles, with and without
    /// bias, no activation (the QKV projections' case); its row-resident form too, which must give the same bits;
    /// against the same ops on cuBLASLt with the activation in its own pass; and which kernel ran. On a GPU
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
        let saved = (backend.usesWarpgroupGemm, backend.residentFusion, backend.usesWarpgroupRows, backend.routesPlainToWarpgroup,
                     backend.warpgroupRowsTilesPerBlock)
        defer {
            (backend.usesWarpgroupGemm, backend.residentFusion, backend.usesWarpgroupRows, backend.routesPlainToWarpgroup,
             backend.warpgroupRowsTilesPerBlock) = saved
        }
        backend.residentFusion = .off
        // Each case on cuBLASLt (activation in its own pass), on gemm_wgmma, and on its row-resident form where the input
        // fits it: with the column tiles a block takes from the shape, and with a count that leaves the last block fewer.
        enum Mode: CaseIterable { case cuBLASLt, wgmma, rows, rowsFewerTiles }
        // (rows, input width, weight rows, bias, activation, GeGLU, column tiles a block in rowsFewerTiles)
        let cases: [(Int, Int, Int, Bool, Activation, Bool, Int)] = [
            (203, 384, 256, true, .gelu, false, 1), (1_000, 64, 1_536, true, .gelu, false, 5), (1_000, 384, 1_536, true, .gelu, false, 5),
            (1_000, 256, 512, false, .gelu, true, 3), (77, 320, 384, true, .gelu, true, 2), (300, 384, 1_152, true, .none, false, 4),
        ]
        for (rows, inFeatures, outFeatures, withBias, activation, gated, fewerTiles) in cases {
            let x = randomMatrix(rows: rows, cols: inFeatures, &random)
            let w = randomMatrix(rows: outFeatures, cols: inFeatures, &random, scale: 0.1), b = randomMatrix(rows: 1, cols: outFeatures, &random)
            let bias = withBias ? b : nil
            let reference: [Double]
            if gated {
                let up = referenceLinear(x, w, bias: bias, activation: .none, residual: nil)
                reference = (0..<rows).flatMap { r in (0..<outFeatures / 2).map { c in gelu(up[r * outFeatures + c]) * up[r * outFeatures + outFeatures / 2 + c] } }
            } else {
                reference = referenceLinear(x, w, bias: bias, activation: activation, residual: nil)
            }
            let dx = try backend.upload(x), dw = try backend.upload(w), db = try bias.map { try backend.upload($0) }
            var results: [Mode: [Float]] = [:]
            for mode in Mode.allCases {
                let rowsForm = mode == .rows || mode == .rowsFewerTiles
                if rowsForm && (backend.warpgroupRowsKernel == nil || inFeatures > KernelSource.warpgroupRowsMaxDepth) { continue }
                backend.usesWarpgroupGemm = mode != .cuBLASLt
                backend.routesPlainToWarpgroup = mode != .cuBLASLt
                backend.usesWarpgroupRows = rowsForm
                backend.warpgroupRowsTilesPerBlock = mode == .rowsFewerTiles ? fewerTiles : nil
                let before = (backend.warpgroupGemmCount, backend.warpgroupRowsCount)
                let y = gated ? try backend.linearGeGLU(dx, weight: dw, bias: db)
                    : try backend.linear(dx, weight: dw, bias: db, activation: activation, residual: nil)
                let values = try backend.download(y).values
                let shape = "\(rows)x\(inFeatures)→\(outFeatures)\(gated ? " →geglu" : " \(activation)") bias=\(withBias) \(mode)"
                recorder.record(shape, values, reference)
                recorder.record("kernel runs \(shape)", [Float(backend.warpgroupGemmCount - before.0), Float(backend.warpgroupRowsCount - before.1)],
                                [mode == .cuBLASLt ? 0 : 1, rowsForm ? 1 : 0], tolerance: 0)
                results[mode] = values
            }
            if let separate = results[.cuBLASLt] {
                for (mode, values) in results where mode != .cuBLASLt {
                    // Same bf16 inputs; the fused activation skips the GEMM output's bf16 rounding, so close, not equal.
                    recorder.record("\(rows)x\(inFeatures)→\(outFeatures) \(mode) vs cuBLASLt", values, separate.map(Double.init), tolerance: 5e-3)
                }
            }
            if let tiled = results[.wgmma], let resident = results[.rows], let fewer = results[.rowsFewerTiles] {
                // The same MMAs in the same order: the row-resident form must give gemm_wgmma's bits.
                recorder.record("\(rows)x\(inFeatures)→\(outFeatures) rows = wgmma", resident, tiled.map(Double.init), tolerance: 0)
                recorder.record("\(rows)x\(inFeatures)→\(outFeatures) rows (\(fewerTiles) tiles a block) = wgmma", fewer, tiled.map(Double.init), tolerance: 0)
            }
        }
        return recorder.checks
    }
}
