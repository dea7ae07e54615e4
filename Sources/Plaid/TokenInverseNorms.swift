import CKernels

/// The exact stage's per-token `1/‖c + r‖`, computed when tokens are encoded and stored in their segment
/// beside the residuals, so that a search reads one float per token instead of deriving it per token
/// (format version 2 for 1, 2 and 4 bits; version 3 added 8 bits).
///
/// The stored value is the one the exact kernel computes itself (`ck_residual_inverse_norms` /
/// `ck_residual8_inverse_norms` are that pass alone: the same bits), so search scores do not change:
/// for 1, 2 and 4 bits from `ExactCentroids` and the codec's 64 levels; for 8 bits from the float
/// centroids and the int16 levels of `ResidualScorer.WideLevels`. With the norms known, the 8-bit kernel
/// no longer decodes a token's bytes into levels (it reads them in pairs from a table).
struct TokenInverseNorms: @unchecked Sendable {
    let dim: Int
    let nbits: Int
    private let source: Source

    private enum Source {
        /// 1, 2 and 4 bits: the levels lut, a, b and the int16 centroid tables.
        case packed(levels: [UInt8], a: Float, b: Float, tables: ExactCentroids)
        /// 8 bits: the int16 levels, a, b and the float centroids.
        case wide(levels: [Int16], a: Float, b: Float, centroids: FloatRows)
    }

    /// The norms of `codec`'s tokens. Uses the codec's stored tables, or builds them (the same values:
    /// `ExactCentroids` is a function of the centroids).
    init(codec: ResidualCodec) {
        dim = codec.dim
        nbits = codec.nbits
        if codec.nbits == 8 {
            let wide = ResidualScorer.WideLevels.levels(weights: codec.weights, dim: codec.dim)
            source = .wide(levels: wide.levels, a: wide.a, b: wide.b, centroids: codec.centroids)
        } else {
            let (levels, a, b) = ResidualScorer.levels(weights: codec.weights, nbits: codec.nbits)
            source = .packed(levels: levels, a: a, b: b, tables: codec.exactCentroids ?? ExactCentroids(codec: codec))
        }
    }

    /// `out[i]` = 1/‖c + r‖ of token i (centroid `codes[i]`, packed residual at `packed + i · bytesPerToken`).
    func compute(codes: UnsafePointer<UInt16>, packed: UnsafePointer<UInt8>, count: Int, into out: UnsafeMutablePointer<Float>,
                 scalar: Bool = false) {
        guard count > 0 else { return }
        switch source {
        case let .packed(levels, a, b, tables):
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
        case let .wide(levels, a, b, centroids):
            levels.withUnsafeBufferPointer { lut in
                centroids.withUnsafeBufferPointer { c in
                    let base = ck_residual_query(dim: dim, dim_padded: ExactCentroids.paddedDimension(dim), nq: 0, nq_padded: 0, nbits: 8,
                                                 q: nil, scale: nil, offset: nil, lut: nil, a: a, b: b, centroids: c.baseAddress, ctable: nil)
                    var query = ck_residual8_query(base: base, q16: nil, q_stride: 0, levels: lut.baseAddress)
                    if scalar {
                        ck_residual8_inverse_norms_scalar(&query, count, codes, packed, out)
                    } else {
                        ck_residual8_inverse_norms(&query, count, codes, packed, out)
                    }
                }
            }
        }
    }
}
