import CKernels

/// A backend that assigns rows to their nearest centroids and encodes their residuals with the residual codec's
/// buckets in one pass over the rows on its device, so that only the codes and the packed bytes come back to the
/// host (issue #7: a GPU's copy of a 48-d row is 192 bytes up; back come 2 bytes of code and 24 of residual at
/// 4 bits, where the host would otherwise subtract, bucket and pack every value itself).
public protocol ResidualQuantizing: AnyObject {
    /// Whether `assignAndQuantize` can run (a group of devices packs only where every one of them does).
    var packsResiduals: Bool { get }

    /// For each of the `count` rows (`dim` floats) at `points`: its nearest of `centroids` (`k × dim`), searched
    /// coarse-to-fine over the `probes` best of `groups` when `groups` is given (as `CoarseToFineAssigning`), else
    /// exhaustively (as `NearestRowAssigning`), into `codes`; and its residual encoded as `ResidualPacking.encode`
    /// does, `ResidualPacking.bytesPerRow(dim:nbits:)` bytes a row, into `packed`.
    func assignAndQuantize(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable?,
                           probes: Int, cutoffs: [Float], nbits: Int, codes: UnsafeMutablePointer<Int32>,
                           packed: UnsafeMutablePointer<UInt8>) throws
}

extension ResidualQuantizing {
    public var packsResiduals: Bool { true }
}

/// The residual codec's encoding of one row given its code: the residual `x − c[code]` in fp32, each value's
/// bucket the number of the `2^nbits − 1` ascending `cutoffs` strictly below it, `8 / nbits` buckets a byte with
/// the first in the lowest bits. The CPU's kernels (`ck_residual_encode`, `ck_residual8_encode`) are the
/// definition; a device's encoding must give the same bytes for the same codes.
public enum ResidualPacking {
    /// Bit widths a bucket may have (whole buckets per byte).
    public static let widths: Set<Int> = [1, 2, 4, 8]

    /// Whether rows of `dim` values pack into whole bytes at `nbits` a value with `cutoffs` buckets boundaries.
    public static func isValid(dim: Int, nbits: Int, cutoffs: Int) -> Bool {
        widths.contains(nbits) && dim > 0 && dim * nbits % 8 == 0 && cutoffs == (1 << nbits) - 1
    }

    public static func bytesPerRow(dim: Int, nbits: Int) -> Int { dim * nbits / 8 }

    /// The CPU's encoding of `count` rows whose codes are known (`codes` below 65,536, as the codec stores them).
    public static func encode(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], codes: [Int32],
                              cutoffs: [Float], nbits: Int, into packed: UnsafeMutablePointer<UInt8>) {
        precondition(isValid(dim: dim, nbits: nbits, cutoffs: cutoffs.count) && codes.count == count,
                     "ResidualPacking.encode: \(dim)-d rows at \(nbits) bits with \(cutoffs.count) cutoffs, \(codes.count) codes for \(count) rows")
        guard count > 0 else { return }
        let narrow = codes.map { UInt16(truncatingIfNeeded: $0) }
        encode(points: points, count: count, dim: dim, centroids: centroids, codes: narrow, cutoffs: cutoffs, nbits: nbits, into: packed)
    }

    /// The same from raw storage (`codes` as the codec stores them): what the codec runs on the host, chunk by chunk.
    public static func encode(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: UnsafePointer<Float>,
                              codes: UnsafePointer<UInt16>, cutoffs: UnsafePointer<Float>, nbits: Int, into packed: UnsafeMutablePointer<UInt8>) {
        if nbits == 8 {
            // 255 cutoffs: a binary search per value instead of a compare against each.
            ck_residual8_encode(points, dim, count, centroids, codes, cutoffs, packed)
        } else {
            ck_residual_encode(points, dim, count, centroids, codes, cutoffs, nbits, packed)
        }
    }
}
