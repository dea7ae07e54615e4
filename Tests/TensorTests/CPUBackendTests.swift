import Foundation
import Testing
@testable import Tensor

/// Deterministic pseudo-random values in [-1, 1) (a tiny LCG; tests must not depend on the system RNG).
func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64, scale: Float = 1) -> HostMatrix {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    let values = (0..<(rows * cols)).map { _ -> Float in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
    return HostMatrix(rows: rows, cols: cols, values: values)
}

func maxAbsDifference(_ a: HostMatrix, _ b: HostMatrix) -> Float {
    precondition(a.rows == b.rows && a.cols == b.cols)
    return zip(a.values, b.values).map { abs($0 - $1) }.max() ?? 0
}

func exactGELU(_ x: Float) -> Float { 0.5 * x * (1 + Float(erf(Double(x) / 2.0.squareRoot()))) }

@Suite struct CPUBackendTests {
    let backend = CPUBackend(threads: 2, precision: .fp32)

    @Test func linearWithBiasGELUAndResidualMatchesNaive() throws {
        let x = randomMatrix(37, 24, seed: 1), w = randomMatrix(40, 24, seed: 2), b = randomMatrix(1, 40, seed: 3)
        let r = randomMatrix(37, 40, seed: 4)
        let y = try backend.download(backend.linear(backend.upload(x), weight: backend.upload(w), bias: backend.upload(b),
                                                    activation: .gelu, residual: backend.upload(r)))
        var expected = [Float](repeating: 0, count: 37 * 40)
        for i in 0..<37 { for j in 0..<40 {
            var s: Float = b.values[j]
            for k in 0..<24 { s += x.values[i * 24 + k] * w.values[j * 24 + k] }
            expected[i * 40 + j] = exactGELU(s) + r.values[i * 40 + j]
        } }
        #expect(maxAbsDifference(y, HostMatrix(rows: 37, cols: 40, values: expected)) < 1e-4)
    }

    @Test func geluIsExactOverWideRange() throws {
        let xs: [Float] = stride(from: -12, through: 12, by: 0.37).map { Float($0) } + [0, -0.0001, 30, -30]
        let cols = xs.count
        // gelu through a linear layer with an identity weight.
        var eye = [Float](repeating: 0, count: cols * cols)
        for i in 0..<cols { eye[i * cols + i] = 1 }
        let y = try backend.download(backend.linear(backend.upload(HostMatrix(rows: 1, cols: cols, values: xs)),
            weight: backend.upload(HostMatrix(rows: cols, cols: cols, values: eye)), bias: nil, activation: .gelu, residual: nil))
        for (x, v) in zip(xs, y.values) {
            let e = exactGELU(x)
            #expect(abs(v - e) <= 1e-6 + 1e-5 * abs(e), "gelu(\(x)) = \(v), expected \(e)")
        }
    }

    @Test func layerNormGegluAddAndL2MatchNaive() throws {
        let x = randomMatrix(9, 16, seed: 5, scale: 3), w = randomMatrix(1, 16, seed: 6), b = randomMatrix(1, 16, seed: 7)
        let ln = try backend.download(backend.layerNorm(backend.upload(x), weight: backend.upload(w), bias: backend.upload(b), eps: 1e-5))
        var expected: [Float] = []
        for i in 0..<9 {
            let row = Array(x.row(i)), mean = row.reduce(0, +) / 16
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16
            for j in 0..<16 { expected.append((row[j] - mean) / (variance + 1e-5).squareRoot() * w.values[j] + b.values[j]) }
        }
        #expect(maxAbsDifference(ln, HostMatrix(rows: 9, cols: 16, values: expected)) < 1e-4)

        let g = try backend.download(backend.geglu(backend.upload(x)))
        #expect(g.cols == 8)
        for i in 0..<9 { for j in 0..<8 {
            let e = exactGELU(x.values[i * 16 + j]) * x.values[i * 16 + 8 + j]
            #expect(abs(g.values[i * 8 + j] - e) < 1e-4)
        } }

        let sum = try backend.download(backend.add(backend.upload(x), backend.upload(x)))
        #expect(sum.values == x.values.map { $0 * 2 })

        var withZeroRow = x
        for j in 0..<16 { withZeroRow.values[j] = 0 }
        let n = try backend.download(backend.l2Normalize(backend.upload(withZeroRow)))
        #expect(n.row(0).allSatisfy { $0 == 0 })
        for i in 1..<9 { #expect(abs(n.row(i).map { $0 * $0 }.reduce(0, +) - 1) < 1e-5) }
    }

    @Test(arguments: [(nil, nil), (Float(10000), nil), (Float(160000), 6), (nil, 4)] as [(Float?, Int?)])
    func attentionMatchesNaive(theta: Float?, window: Int?) throws {
        let heads = 2, d = 8, lengths = [1, 13, 70, 5]
        let batch = PackedBatch(sequences: lengths.map { [Int32](repeating: 1, count: $0) })
        let qkv = randomMatrix(batch.tokenCount, 3 * heads * d, seed: 11, scale: 2)
        let out = try backend.download(backend.attention(backend.upload(qkv), batch: batch, heads: heads, headDim: d,
                                                         rotary: theta.map(Rotary.init), window: window))
        let expected = naiveAttention(qkv, batch: batch, heads: heads, d: d, theta: theta, window: window)
        #expect(maxAbsDifference(out, expected) < 1e-4)
    }

    @Test func foreignAndMisshapenInputsThrow() throws {
        let a = try backend.upload(randomMatrix(2, 3, seed: 1)), b = try backend.upload(randomMatrix(3, 2, seed: 2))
        #expect(throws: TensorError.self) { try backend.add(a, b) }
        #expect(throws: TensorError.self) { try backend.gather(a, ids: [2]) }
        #expect(throws: TensorError.self) { try backend.linear(a, weight: b, bias: nil, activation: .none, residual: nil) }
    }

    @Test func gatherPicksRows() throws {
        let t = randomMatrix(5, 3, seed: 9)
        let g = try backend.download(backend.gather(backend.upload(t), ids: [4, 0, 4]))
        #expect(Array(g.row(0)) == Array(t.row(4)) && Array(g.row(1)) == Array(t.row(0)) && Array(g.row(2)) == Array(t.row(4)))
    }
}

/// Straightforward attention in Double: the reference the tiled kernel must match.
func naiveAttention(_ qkv: HostMatrix, batch: PackedBatch, heads: Int, d: Int, theta: Float?, window: Int?) -> HostMatrix {
    let width = heads * d
    var out = [Float](repeating: 0, count: batch.tokenCount * width)
    func rotated(_ row: Int, _ offset: Int, _ pos: Int) -> [Double] {
        var v = (0..<d).map { Double(qkv.values[row * 3 * width + offset + $0]) }
        if let theta {
            let h = d / 2
            let copy = v
            for i in 0..<h {
                let angle = Double(pos) * Double(1 / pow(theta, Float(2 * i) / Float(d)))
                v[i] = copy[i] * cos(angle) - copy[i + h] * sin(angle)
                v[i + h] = copy[i + h] * cos(angle) + copy[i] * sin(angle)
            }
        }
        return v
    }
    for s in 0..<batch.sequenceCount {
        let r = batch.range(of: s)
        for h in 0..<heads {
            for i in r {
                let q = rotated(i, h * d, i - r.lowerBound)
                var scores: [(Int, Double)] = []
                for j in r where window.map({ abs(i - j) <= $0 / 2 }) ?? true {
                    let k = rotated(j, width + h * d, j - r.lowerBound)
                    scores.append((j, zip(q, k).map(*).reduce(0, +) / Double(d).squareRoot()))
                }
                let m = scores.map(\.1).max()!
                let weights = scores.map { exp($0.1 - m) }, total = weights.reduce(0, +)
                for c in 0..<d {
                    var acc = 0.0
                    for (n, (j, _)) in scores.enumerated() { acc += weights[n] / total * Double(qkv.values[j * 3 * width + 2 * width + h * d + c]) }
                    out[i * width + h * d + c] = Float(acc)
                }
            }
        }
    }
    return HostMatrix(rows: batch.tokenCount, cols: width, values: out)
}

@Suite struct Int8LinearTests {
    // At least `int8MinimumRows` rows, or linear stays fp32.
    @Test(arguments: [(70, 24, 40), (65, 33, 19), (100, 256, 130)])
    func int8LinearTracksFP32(rows: Int, k: Int, n: Int) throws {
        let fp32 = CPUBackend(threads: 2, precision: .fp32), int8 = CPUBackend(threads: 2, precision: .int8)
        let x = randomMatrix(rows, k, seed: 21, scale: 2), w = randomMatrix(n, k, seed: 22), b = randomMatrix(1, n, seed: 23)
        func run(_ backend: CPUBackend) throws -> HostMatrix {
            try backend.download(backend.linear(backend.upload(x), weight: backend.upload(w), bias: backend.upload(b), activation: .none, residual: nil))
        }
        let exact = try run(fp32), quantized = try run(int8)
        // Per-row cosine well above the encoder's 0.99 bound, and small absolute error.
        for i in 0..<rows {
            let a = Array(exact.row(i)), q = Array(quantized.row(i))
            let dot = zip(a, q).map(*).reduce(0, +), na = a.map { $0 * $0 }.reduce(0, +), nq = q.map { $0 * $0 }.reduce(0, +)
            #expect(dot / (na * nq).squareRoot() > 0.999)
        }
        #expect(maxAbsDifference(exact, quantized) < 0.05 * Float(k).squareRoot())
    }
}

@Suite struct BLASCoreTypeTests {
    @Test func openBLASReportsItsKernelFamily() {
        #expect(!BLASCoreType.current.isEmpty)
        // Where OpenBLAS picked a real family, no relaunch is asked for.
        if !["prescott", "core2", "unknown"].contains(BLASCoreType.current.lowercased()) { #expect(BLASCoreType.better == nil) }
        #expect(CPUPrecision.automatic == .auto)
    }
}
