import Tensor

/// Self-test checks of `assignAndQuantize` (`km_residual_pack` after the search, rows streamed in small chunks):
/// its codes equal `assignNearest`'s with the same search, coarse-to-fine and exhaustive, and its bytes equal the
/// CPU codec's encoding of those codes (`ResidualPacking.encode`) at every bit width, byte for byte; the exhaustive
/// search's kept centroid table reused for the same centroids and rebuilt for others.
extension CUDASelfTest {
    static func residualQuantizingChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) -> [Check] {
        let precision = backend.precision
        var checks: [Check] = []
        let savedChunk = backend.uploadChunkBytes
        defer { backend.uploadChunkBytes = savedChunk }
        let (n, k, _, probes) = groupedShape
        for dim in [48, 128] {
            let (vectors, centroids, groups) = groupedInputs(dim: dim, &random)
            backend.uploadChunkBytes = streamedChunkBytes(dim: dim)
            for (nbits, grouped) in [(1, true), (2, false), (4, true), (4, false), (8, true)] {
                // Cutoffs at quantiles of the value range, one of them a residual met exactly (equal is not below).
                let buckets = 1 << nbits
                var cutoffs = (1..<buckets).map { -1.5 + 3 * Float($0) / Float(buckets) }
                cutoffs[cutoffs.count / 2] = vectors.values[dim + 1] - centroids.values[dim + 1]
                cutoffs.sort()
                let name = "assignAndQuantize \(grouped ? "coarse-to-fine" : "exhaustive") d=\(dim) n=\(n) k=\(k) nbits=\(nbits)"
                checks.append(attempted(precision, name, tolerance: 0) {
                    var codes = [Int32](repeating: -1, count: n), searched = codes
                    var packed = [UInt8](repeating: 0xA5, count: n * ResidualPacking.bytesPerRow(dim: dim, nbits: nbits)), expected = packed
                    try vectors.values.withUnsafeBufferPointer { v in
                        try codes.withUnsafeMutableBufferPointer { c in
                            try packed.withUnsafeMutableBufferPointer { p in
                                try backend.assignAndQuantize(points: v.baseAddress!, count: n, dim: dim, centroids: centroids.values,
                                                              groups: grouped ? groups : nil, probes: grouped ? probes : 0, cutoffs: cutoffs,
                                                              nbits: nbits, codes: c.baseAddress!, packed: p.baseAddress!)
                            }
                        }
                        try searched.withUnsafeMutableBufferPointer { c in
                            if grouped {
                                try backend.assignNearest(points: v.baseAddress!, count: n, dim: dim, centroids: centroids.values, groups: groups,
                                                          probes: probes, into: c.baseAddress!)
                            } else {
                                try backend.assignNearest(points: v.baseAddress!, count: n, dim: dim, centroids: centroids.values, into: c.baseAddress!)
                            }
                        }
                        ResidualPacking.encode(points: v.baseAddress!, count: n, dim: dim, centroids: centroids.values, codes: codes,
                                               cutoffs: cutoffs, nbits: nbits, into: &expected)
                    }
                    // The share of codes and of bytes that differ: 0 required.
                    let codesOff = zip(codes, searched).filter { $0 != $1 }.count
                    let bytesOff = zip(packed, expected).filter { $0 != $1 }.count
                    return Double(codesOff) / Double(n) + Double(bytesOff) / Double(max(1, packed.count))
                })
            }
            // The exhaustive search keeps its centroid table for the next call with the same centroids: again with them
            // (reused), then negated (rebuilt: a stale table would pick nearly every code from the old centroids), each
            // against double precision; the bytes against the CPU's packing of those codes.
            let negated = HostMatrix(rows: k, cols: dim, values: centroids.values.map { -$0 })
            let cutoffs: [Float] = (1..<16).map { -1.5 + 3 * Float($0) / 16 }
            for (label, table) in [("same centroids (table reused)", centroids), ("centroids negated (table rebuilt)", negated)] {
                checks.append(attempted(precision, "assignAndQuantize exhaustive again, \(label) d=\(dim)",
                                        tolerance: precision == .fp32 ? 1e-5 : 2e-2) {
                    var codes = [Int32](repeating: -1, count: n)
                    var packed = [UInt8](repeating: 0xA5, count: n * ResidualPacking.bytesPerRow(dim: dim, nbits: 4)), expected = packed
                    try vectors.values.withUnsafeBufferPointer { v in
                        try codes.withUnsafeMutableBufferPointer { c in
                            try packed.withUnsafeMutableBufferPointer { p in
                                try backend.assignAndQuantize(points: v.baseAddress!, count: n, dim: dim, centroids: table.values, groups: nil,
                                                              probes: 0, cutoffs: cutoffs, nbits: 4, codes: c.baseAddress!, packed: p.baseAddress!)
                            }
                        }
                        ResidualPacking.encode(points: v.baseAddress!, count: n, dim: dim, centroids: table.values, codes: codes,
                                               cutoffs: cutoffs, nbits: 4, into: &expected)
                    }
                    let bytesOff = zip(packed, expected).filter { $0 != $1 }.count
                    return worstScoreGap(codes, vectors, table, euclidean: true) + Double(bytesOff)
                })
            }
        }
        return checks
    }
}
