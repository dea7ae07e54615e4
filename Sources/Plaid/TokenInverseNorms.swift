import CKernels

/// The exact stage's per-token `1/‖c + r‖`, computed when tokens are encoded and stored in their segment
/// beside the residuals (format version 2), so that a search reads one float per token instead of deriving
/// it from the centroid's int16 row and three integer sums per token (the exact kernel's pass A).
///
/// The stored value is the one the kernel computes itself from `ExactCentroids` and the codec's levels
/// (`ck_residual_inverse_norms` is that pass alone: the same bits), so search scores do not change. 8-bit
/// codecs store none: their int16 kernel (`residual8.c`) derives the norm in the same loop as the dot
/// products.
struct TokenInverseNorms: @unchecked Sendable {
    let dim: Int
    let nbits: Int
    private let levels: [UInt8]
    private let a: Float
    private let b: Float
    private let tables: ExactCentroids

    /// Whether segments of an `nbits` codec hold the norms.
    static func stored(nbits: Int) -> Bool { nbits != 8 }

    /// The norms of `codec`'s tokens (nil for an 8-bit codec). Uses the codec's stored tables, or builds
    /// them (the same values: `ExactCentroids` is a function of the centroids).
    init?(codec: ResidualCodec) {
        guard Self.stored(nbits: codec.nbits) else { return nil }
        dim = codec.dim
        nbits = codec.nbits
        (levels, a, b) = ResidualScorer.levels(weights: codec.weights, nbits: codec.nbits)
        tables = codec.exactCentroids ?? ExactCentroids(codec: codec)
    }

    /// `out[i]` = 1/‖c + r‖ of token i (centroid `codes[i]`, packed residual at `packed + i · bytesPerToken`).
    func compute(codes: UnsafePointer<UInt16>, packed: UnsafePointer<UInt8>, count: Int, into out: UnsafeMutablePointer<Float>,
                 scalar: Bool = false) {
        guard count > 0 else { return }
        levels.withUnsafeBufferPointer { lut in
            tables.withKernelCentroids { centroids in
                var query = ck_residual_query(dim: dim, dim_padded: ExactCentroids.paddedDimension(dim), nq: 0, nq_padded: 0, nbits: nbits,
                                              q: nil, scale: nil, offset: nil, lut: lut.baseAddress, a: a, b: b, centroids: nil, ctable: nil)
                if scalar {
                    ck_residual_inverse_norms_scalar(&query, centroids, count, codes, packed, out)
                } else {
                    ck_residual_inverse_norms(&query, centroids, count, codes, packed, out)
                }
            }
        }
    }
}
