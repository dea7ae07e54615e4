import Foundation
import Tensor

/// Checks every operation of `CUDABackend` against plain double-precision loops on the host.
///
/// Lives in the library (not only in the test target) so the same checks run from `swift test` on a
/// machine with a GPU and from `colgrep debug gpu-selftest` in a release binary on a machine without
/// a Swift toolchain.
public enum CUDASelfTest {
    /// One check: the relative error ‖gpu − reference‖ / ‖reference‖ against its tolerance.
    /// A check of `precision` from a GPU call measuring its error; a call that throws fails with the error in
    /// its name, so the other checks still run.
    static func attempted(_ precision: CUDAPrecision, _ name: String, tolerance: Double, _ error: () throws -> Double) -> Check {
        do {
            return Check(name: "\(precision.rawValue) \(name)", error: try error(), tolerance: tolerance)
        } catch {
            return Check(name: "\(precision.rawValue) \(name) threw \(error)", error: .infinity, tolerance: tolerance)
        }
    }

    public struct Check: Sendable, CustomStringConvertible {
        public var name: String
        public var error: Double
        public var tolerance: Double
        public var passed: Bool { error.isFinite && error <= tolerance }
        public var description: String {
            // Only numbers go through String(format:): Swift strings as %@ are not portable to Linux Foundation.
            "\(passed ? "PASS" : "FAIL") \(name): relative error \(String(format: "%.2e", error)) (tolerance \(String(format: "%.0e", tolerance)))"
        }
    }

    /// Runs all checks with a backend of the given precision on `device`.
    public static func run(precision: CUDAPrecision, device: Int = 0, kernelCache: KernelCache? = nil) throws -> [Check] {
        let backend = try CUDABackend(device: device, precision: precision, kernelCache: kernelCache)
        var random = SeededGenerator(seed: 7)
        let tolerance = precision == .fp32 ? 1e-5 : 1.2e-2
        var checks: [Check] = []
        func record(_ name: String, _ gpu: [Float], _ reference: [Double], tolerance override: Double? = nil) {
            checks.append(Check(name: "\(precision.rawValue) \(name)", error: relativeError(gpu, reference), tolerance: override ?? tolerance))
        }

        // Copies.
        let host = randomMatrix(rows: 37, cols: 53, &random)
        record("upload/download", try backend.download(backend.upload(host)).values, host.values.map(Double.init))

        // Grouped downloads: per-group matrices, and blocks (every row in order: straight DMA; rows
        // skipped or reordered: compacted on the device). Five blocks held at once outgrow the arena's
        // three pinned buffers, so the pageable fallback is checked too; then one block comes from reuse.
        for cols in [53, 48] {
            let source = randomMatrix(rows: 40, cols: cols, &random)
            let device = try backend.upload(source)
            let groups: [[Int]] = [[0, 1, 2], [3, 5, 7, 8], [], [39, 10]]
            let expected = groups.joined().flatMap { source.row($0).map(Double.init) }
            let perGroup = try backend.download(device, rowGroups: groups)
            record("download rowGroups \(cols)", perGroup.flatMap(\.values), expected)
            var held: [HostRowBlock] = []
            for (index, rowGroups) in [groups, [Array(0..<40)], groups, [Array(0..<20), Array(20..<40)], groups].enumerated() {
                let block = try backend.downloadBlock(device, rowGroups: rowGroups)
                let reference = rowGroups.joined().flatMap { source.row($0).map(Double.init) }
                let values = (0..<block.groupCount).flatMap { g in block.withGroup(g) { Array($0) } }
                let shapeOK = block.groupCount == rowGroups.count && (0..<block.groupCount).allSatisfy { block.offsets[$0 + 1] - block.offsets[$0] == rowGroups[$0].count }
                record("downloadBlock \(cols) #\(index)", shapeOK ? values : [.nan], reference)
                held.append(block)
            }
            held.removeAll()
            let reused = try backend.downloadBlock(device, rowGroups: groups)
            record("downloadBlock \(cols) reused buffer", reused.matrices().flatMap(\.values), expected)
        }

        // Embedding gather, including repeated ids.
        let table = randomMatrix(rows: 50, cols: 24, &random)
        let ids: [Int32] = (0..<41).map { _ in Int32.random(in: 0..<50, using: &random) }
        let gathered = try backend.download(backend.gather(backend.upload(table), ids: ids))
        record("gather", gathered.values, ids.flatMap { table.row(Int($0)).map(Double.init) })

        // Layer norm with and without bias, narrow (registers) and wide (three-pass) rows.
        for cols in [256, 1100] {
            let x = randomMatrix(rows: 19, cols: cols, &random)
            let w = randomMatrix(rows: 1, cols: cols, &random)
            let b = randomMatrix(rows: 1, cols: cols, &random)
            for withBias in [true, false] {
                let out = try backend.download(backend.layerNorm(backend.upload(x), weight: backend.upload(w),
                                                                 bias: withBias ? backend.upload(b) : nil, eps: 1e-5))
                record("layerNorm \(cols) bias=\(withBias)", out.values,
                       referenceLayerNorm(x, weight: w, bias: withBias ? b : nil, eps: 1e-5))
            }
        }

        // The embedding stage (fused in bf16), from a generator of its own so the other checks' inputs stay as they were.
        var embeddingRandom = SeededGenerator(seed: 11)
        checks += try embeddingChecks(backend, &embeddingRandom)

        // Linear with every epilogue combination, on both GEMM engines in bf16 (cuBLASLt and our own
        // kernel); a second shape crosses several 128 × 64 tiles and 32-deep K steps with partial ones
        // at every edge, and an odd output width (the kernel's unpaired stores).
        let engines: [MatmulEngine] = precision == .bf16 ? [.cuBLASLt, .own] : [.cuBLASLt]
        for (rows, inFeatures, outFeatures) in [(70, 96, 48), (300, 264, 131)] {
            let x = randomMatrix(rows: rows, cols: inFeatures, &random)
            let w = randomMatrix(rows: outFeatures, cols: inFeatures, &random, scale: 0.1)
            let b = randomMatrix(rows: 1, cols: outFeatures, &random)
            let residual = randomMatrix(rows: rows, cols: outFeatures, &random)
            for engine in engines {
                backend.matmulEngine = engine
                let ownBefore = backend.ownMatmulCount
                for activation in [Activation.none, .gelu, .geluTanh] {
                    for withBias in [true, false] {
                        for withResidual in [false, true] {
                            let out = try backend.download(backend.linear(backend.upload(x), weight: backend.upload(w),
                                                                          bias: withBias ? backend.upload(b) : nil, activation: activation,
                                                                          residual: withResidual ? backend.upload(residual) : nil))
                            record("linear \(rows)x\(inFeatures)→\(outFeatures) \(engine.rawValue) \(activation) bias=\(withBias) residual=\(withResidual)", out.values,
                                   referenceLinear(x, w, bias: withBias ? b : nil, activation: activation, residual: withResidual ? residual : nil))
                        }
                    }
                }
                // The engine asked for is the one that ran (12 calls above).
                let ownRuns = backend.ownMatmulCount - ownBefore
                record("linear \(rows)x\(inFeatures)→\(outFeatures) ran on \(engine.rawValue)", [Float(ownRuns)], [engine == .own ? 12 : 0], tolerance: 0)
            }
            backend.matmulEngine = .environment
        }

        if precision == .bf16 {
            checks += try fusedPrologueChecks(backend, &random)
            checks += try residentGemmChecks(backend, &random)
            checks += try warpgroupGemmChecks(backend, &random)
        }

        // A table whose rows are not a multiple of 8 wide takes the scalar path in bf16.
        let narrow = randomMatrix(rows: 10, cols: 20, &random)
        record("gather (20 columns)", try backend.download(backend.gather(backend.upload(narrow), ids: [3, 0, 9, 3])).values,
               [3, 0, 9, 3].flatMap { narrow.row($0).map(Double.init) })

        // GeGLU (vector and scalar widths), add, L2 normalisation (a zero row must stay zero).
        for width in [80, 40] {
            let gate = randomMatrix(rows: 33, cols: width, &random)
            record("geglu \(width)", try backend.download(backend.geglu(backend.upload(gate))).values, (0..<33).flatMap { r in
                (0..<(width / 2)).map { c in gelu(Double(gate.values[r * width + c])) * Double(gate.values[r * width + width / 2 + c]) }
            })
        }
        let a = randomMatrix(rows: 21, cols: 30, &random), a2 = randomMatrix(rows: 21, cols: 30, &random)
        record("add", try backend.download(backend.add(backend.upload(a), backend.upload(a2))).values,
               zip(a.values, a2.values).map { Double($0) + Double($1) })
        var normed = randomMatrix(rows: 9, cols: 48, &random)
        for c in 0..<48 { normed.values[3 * 48 + c] = 0 }
        record("l2Normalize", try backend.download(backend.l2Normalize(backend.upload(normed))).values, (0..<9).flatMap { r -> [Double] in
            let row = normed.row(r).map(Double.init)
            let norm = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            return row.map { $0 / norm }
        })

        // Attention over packed sequences: lengths around the 64-row tile edges, global and windowed,
        // with and without rotary embeddings; head dims 64 (tensor cores in bf16) and 32.
        let batch = PackedBatch(sequences: [1, 5, 64, 65, 130, 200].map { n in (0..<n).map { Int32($0) } })
        for headDim in [64, 32] {
            let heads = headDim == 64 ? 4 : 3
            let qkv = randomMatrix(rows: batch.tokenCount, cols: 3 * heads * headDim, &random)
            let device = try backend.upload(qkv)
            for rotary in [Rotary(theta: 10000), nil] {
                for window in [nil, 128] as [Int?] {
                    let reference = referenceAttention(qkv, batch: batch, heads: heads, headDim: headDim, rotary: rotary, window: window)
                    let label = "attention d=\(headDim) rope=\(rotary != nil) window=\(window.map(String.init) ?? "none")"
                    for scalar in (precision == .bf16 && KernelSource.tensorCoreHeadDims.contains(headDim) ? [false, true] : [true]) {
                        backend.forceScalarAttention = scalar
                        let out = try backend.download(backend.attention(device, batch: batch, heads: heads, headDim: headDim, rotary: rotary, window: window))
                        record("\(label) \(scalar ? "scalar" : "tensor-core")", out.values, reference)
                    }
                    backend.forceScalarAttention = false
                }
            }
        }

        // Nearest centroids: the chosen centroid's score must equal the best score (ties and bf16
        // rounding may pick another index with the same score).
        let vectors = randomMatrix(rows: 300, cols: 48, &random)
        let centroids = randomMatrix(rows: 37, cols: 48, &random)
        for metric in [CentroidMetric.innerProduct, .euclidean] {
            let codes = try backend.nearestCentroids(backend.upload(vectors), centroids: backend.upload(centroids), metric: metric)
            var worst = 0.0
            for r in 0..<300 {
                let scores = (0..<37).map { k -> Double in
                    var dot = 0.0, norm = 0.0
                    for c in 0..<48 {
                        dot += Double(vectors.values[r * 48 + c]) * Double(centroids.values[k * 48 + c])
                        norm += Double(centroids.values[k * 48 + c]) * Double(centroids.values[k * 48 + c])
                    }
                    return metric == .euclidean ? dot - 0.5 * norm : dot
                }
                let best = scores.max()!
                let chosen = codes.indices.contains(r) && (0..<37).contains(Int(codes[r])) ? scores[Int(codes[r])] : -Double.infinity
                worst = max(worst, (best - chosen) / max(abs(best), 1))
            }
            checks.append(Check(name: "\(precision.rawValue) nearestCentroids \(metric)", error: worst, tolerance: precision == .fp32 ? 1e-5 : 2e-2))
        }

        checks += kmeansChecks(backend, &random)
        checks += coarseToFineChecks(backend, &random)
        checks += deviceGroupingChecks(backend, &random)
        checks += residualQuantizingChecks(backend, &random)
        checks += residentChecks(backend, &random)
        checks += tunedAlgorithmChecks(backend, &random)

        // Bad input is an error, never a crash.
        let rejected = (try? backend.gather(backend.upload(table), ids: [0, 50])) == nil
            && (try? backend.linear(backend.upload(randomMatrix(rows: 70, cols: 96, &random)), weight: backend.upload(randomMatrix(rows: 1, cols: 48, &random)),
                                    bias: nil, activation: .none, residual: nil)) == nil
        checks.append(Check(name: "\(precision.rawValue) invalid arguments rejected", error: rejected ? 0 : 1, tolerance: 0))
        return checks
    }

    /// The checks of one group, each named "<prefix> <name>" and scored by its relative error against a reference.
    struct CheckRecorder {
        let prefix: String
        private(set) var checks: [Check] = []

        init(prefix: String) { self.prefix = prefix }

        mutating func record(_ name: String, _ gpu: [Float], _ reference: [Double], tolerance: Double = 1.2e-2) {
            checks.append(Check(name: "\(prefix) \(name)", error: relativeError(gpu, reference), tolerance: tolerance))
        }
    }

    // MARK: references (double precision)

    static func relativeError(_ gpu: [Float], _ reference: [Double]) -> Double {
        guard gpu.count == reference.count else { return .infinity }
        var difference = 0.0, norm = 0.0
        for (g, r) in zip(gpu, reference) {
            difference += (Double(g) - r) * (Double(g) - r)
            norm += r * r
        }
        return (difference / max(norm, 1e-30)).squareRoot()
    }

    /// Layer norm and GeGLU left to the next GEMM (`fusesPrologues`): fused against the reference and
    /// against the same ops computed on their own; a deferred result read by another op (download) is
    /// computed first.
    static func fusedPrologueChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) throws -> [Check] {
        var recorder = CheckRecorder(prefix: "bf16 fused")
        defer { backend.fusesPrologues = ProcessInfo.processInfo.environment["COLGREP_FUSE"] == "1" }
        let rows = 203, hidden = 264, intermediate = 136
        var x = randomMatrix(rows: rows, cols: hidden, &random)
        for i in x.values.indices { x.values[i] = roundToBF16(x.values[i] * 3 + 0.5) }  // an offset and scale to remove
        let normWeight = randomMatrix(rows: 1, cols: hidden, &random), normBias = randomMatrix(rows: 1, cols: hidden, &random)
        let up = randomMatrix(rows: rows, cols: 2 * intermediate, &random)
        let wIn = randomMatrix(rows: 96, cols: hidden, &random, scale: 0.1), bIn = randomMatrix(rows: 1, cols: 96, &random)
        let wOut = randomMatrix(rows: 72, cols: intermediate, &random, scale: 0.1)
        let residual = randomMatrix(rows: rows, cols: 72, &random)
        let normed = HostMatrix(rows: rows, cols: hidden, values: referenceLayerNorm(x, weight: normWeight, bias: normBias, eps: 1e-5).map { roundToBF16(Float($0)) })
        let gated = HostMatrix(rows: rows, cols: intermediate, values: (0..<rows).flatMap { r in
            (0..<intermediate).map { c in roundToBF16(Float(gelu(Double(up.values[r * 2 * intermediate + c])) * Double(up.values[r * 2 * intermediate + intermediate + c]))) }
        })
        let dx = try backend.upload(x), dw = try backend.upload(normWeight), db = try backend.upload(normBias), dup = try backend.upload(up)
        let dwIn = try backend.upload(wIn), dbIn = try backend.upload(bIn), dwOut = try backend.upload(wOut), dres = try backend.upload(residual)
        var results: [Bool: (norm: [Float], gated: [Float])] = [:]
        for fused in [false, true] {
            backend.fusesPrologues = fused
            backend.matmulEngine = .own
            let before = backend.fusedPrologueCount
            let a = try backend.download(backend.linear(backend.layerNorm(dx, weight: dw, bias: db, eps: 1e-5), weight: dwIn, bias: dbIn, activation: .none, residual: nil)).values
            let g = try backend.download(backend.linear(backend.geglu(dup), weight: dwOut, bias: nil, activation: .none, residual: dres)).values
            results[fused] = (a, g)
            recorder.record("layerNorm→linear fused=\(fused)", a, referenceLinear(normed, wIn, bias: bIn, activation: .none, residual: nil))
            recorder.record("geglu→linear fused=\(fused)", g, referenceLinear(gated, wOut, bias: nil, activation: .none, residual: residual))
            recorder.record("prologues computed in the GEMM fused=\(fused)", [Float(backend.fusedPrologueCount - before)], [fused ? 2 : 0], tolerance: 0)
        }
        backend.matmulEngine = .environment
        if let plain = results[false], let fused = results[true] {
            // Same bf16 inputs to the same GEMM either way: equal up to how the compiler contracted the prologue's arithmetic.
            recorder.record("layerNorm→linear fused vs separate", fused.norm, plain.norm.map(Double.init), tolerance: 2e-3)
            recorder.record("geglu→linear fused vs separate", fused.gated, plain.gated.map(Double.init), tolerance: 2e-3)
        }
        // Deferred results read by other ops are computed first.
        backend.fusesPrologues = true
        recorder.record("layerNorm deferred then downloaded", try backend.download(backend.layerNorm(dx, weight: dw, bias: db, eps: 1e-5)).values,
               referenceLayerNorm(x, weight: normWeight, bias: normBias, eps: 1e-5))
        recorder.record("geglu deferred then added", try backend.download(backend.add(backend.geglu(dup), backend.geglu(dup))).values, gated.values.map { 2 * Double($0) })
        return recorder.checks
    }

    static func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }
    static func geluTanh(_ x: Double) -> Double { 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }

    static func referenceLayerNorm(_ x: HostMatrix, weight: HostMatrix, bias: HostMatrix?, eps: Double) -> [Double] {
        (0..<x.rows).flatMap { r -> [Double] in
            let row = x.row(r).map(Double.init)
            let mean = row.reduce(0, +) / Double(x.cols)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(x.cols)
            return (0..<x.cols).map { c in
                (row[c] - mean) / (variance + eps).squareRoot() * Double(weight.values[c]) + Double(bias?.values[c] ?? 0)
            }
        }
    }

    static func referenceLinear(_ x: HostMatrix, _ w: HostMatrix, bias: HostMatrix?, activation: Activation, residual: HostMatrix?) -> [Double] {
        var out = [Double](repeating: 0, count: x.rows * w.rows)
        for r in 0..<x.rows {
            for o in 0..<w.rows {
                var sum = Double(bias?.values[o] ?? 0)
                for k in 0..<x.cols { sum += Double(x.values[r * x.cols + k]) * Double(w.values[o * w.cols + k]) }
                switch activation {
                case .none: break
                case .gelu: sum = gelu(sum)
                case .geluTanh: sum = geluTanh(sum)
                }
                out[r * w.rows + o] = sum + Double(residual?.values[r * w.rows + o] ?? 0)
            }
        }
        return out
    }

    static func referenceAttention(_ qkv: HostMatrix, batch: PackedBatch, heads: Int, headDim: Int, rotary: Rotary?, window: Int?) -> [Double] {
        let width = heads * headDim, half = headDim / 2
        var out = [Double](repeating: 0, count: batch.tokenCount * width)
        func vector(_ row: Int, _ part: Int, _ head: Int, position: Int) -> [Double] {
            var v = (0..<headDim).map { Double(qkv.values[row * qkv.cols + part * width + head * headDim + $0]) }
            if let rotary, part < 2 {
                for i in 0..<half {
                    let inverse = 1 / powf(rotary.theta, Float(2 * i) / Float(headDim))
                    let angle = Double(Float(position) * inverse)
                    let (x1, x2) = (v[i], v[i + half])
                    v[i] = x1 * cos(angle) - x2 * sin(angle)
                    v[i + half] = x2 * cos(angle) + x1 * sin(angle)
                }
            }
            return v
        }
        for s in 0..<batch.sequenceCount {
            let range = batch.range(of: s)
            for h in 0..<heads {
                let keys = range.map { vector($0, 1, h, position: $0 - range.lowerBound) }
                let values = range.map { vector($0, 2, h, position: $0 - range.lowerBound) }
                for i in range {
                    let q = vector(i, 0, h, position: i - range.lowerBound)
                    var scores: [(Int, Double)] = []
                    for (jIndex, j) in range.enumerated() where window == nil || abs(i - j) <= window! / 2 {
                        scores.append((jIndex, zip(q, keys[jIndex]).reduce(0) { $0 + $1.0 * $1.1 } / Double(headDim).squareRoot()))
                    }
                    let top = scores.map(\.1).max()!
                    let weights = scores.map { exp($0.1 - top) }
                    let total = weights.reduce(0, +)
                    for (index, (jIndex, _)) in scores.enumerated() {
                        for c in 0..<headDim { out[i * width + h * headDim + c] += weights[index] / total * values[jIndex][c] }
                    }
                }
            }
        }
        return out
    }

    /// Random values already representable in bf16, so both precisions see exactly the same inputs.
    static func randomMatrix(rows: Int, cols: Int, _ random: inout SeededGenerator, scale: Float = 1) -> HostMatrix {
        HostMatrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in roundToBF16(Float.random(in: -1...1, using: &random) * scale * 1.7) })
    }

    static func roundToBF16(_ value: Float) -> Float {
        var bits = value.bitPattern
        bits = bits &+ 0x7fff &+ ((bits >> 16) & 1)
        return Float(bitPattern: bits & 0xffff_0000)
    }
}

/// SplitMix64: a small deterministic generator so self-test inputs are the same on every machine.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
