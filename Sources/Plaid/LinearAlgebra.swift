import CBLAS

/// Thin wrappers over CBLAS used by pooling, k-means, the codec and search.
enum LinearAlgebra {
    /// `c[m×n] = a[m×k] · b[n×k]ᵀ` (row-major, `b` holds one vector per row).
    static func multiplyTransposed(_ a: UnsafePointer<Float>, rows m: Int, _ b: UnsafePointer<Float>, rows n: Int,
                                   depth k: Int, into c: UnsafeMutablePointer<Float>) {
        guard m > 0, n > 0, k > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(k), b, Int32(k), 0, c, Int32(n))
    }

    /// Dot product of two vectors of `count` floats.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            acc += x * y  // not addProduct: without FMA in the baseline target it calls fmaf per lane
            i += 8
        }
        var sum = acc.sum()
        while i < count { sum += a[i] * b[i]; i += 1 }
        return sum
    }

    /// Scales each row of a row-major buffer to unit L2 norm (zero rows stay zero).
    static func normalizeRows(_ values: inout [Float], cols: Int) {
        guard cols > 0 else { return }
        values.withUnsafeMutableBufferPointer { buffer in
            let rows = buffer.count / cols
            for r in 0..<rows {
                let row = buffer.baseAddress! + r * cols
                let norm = dot(row, row, count: cols).squareRoot()
                if norm > 0 {
                    let inverse = 1 / norm
                    for j in 0..<cols { row[j] *= inverse }
                }
            }
        }
    }
}

/// A small deterministic generator (SplitMix64) so sampling and initialisation repeat across platforms.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= Self.increment
        return Self.mix(state)
    }

    private static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The output at `index` (0-based) of a generator seeded with `seed`, without producing the ones before it:
    /// the state after `index + 1` steps is `seed + (index + 1) · increment`. Lets a known number of draws be
    /// computed in parallel (`KMeans.randomlyChosenFirst32`).
    static func output(seed: UInt64, index: Int) -> UInt64 {
        mix(seed &+ UInt64(index + 1) &* increment)
    }

    private static func mix(_ state: UInt64) -> UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Process-wide compute settings.
public enum PlaidRuntime {
    /// Caps the threads OpenBLAS uses for GEMMs (benchmarks pin it to compare with peers).
    public static func setBLASThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }
}
