import Testing
@testable import TensorCUDA

/// `streamRows`' bf16 format: the host rounding (ck_rows_to_bf16, split over threads) against a reference that
/// picks the nearer of the two bf16 neighbours in double precision, ties to the even one — a different route to the
/// same rounding, so a wrong bit in the C formula, a wrong padding or a slice written at the wrong offset fails.
struct StreamedRowFormatTests {
    static func reference(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7fc0 }
        let bits = f.bitPattern
        let down = UInt16(bits >> 16)  // truncated towards zero in magnitude
        let up = down &+ 1
        if bits & 0xFFFF == 0 || f.isInfinite { return down }
        let lowValue = Double(Float(bitPattern: UInt32(down) << 16))
        // Past the largest finite bf16 the upper neighbour is where 2^128 would be (IEEE rounding overflows to ∞ there).
        let upper = Float(bitPattern: UInt32(up) << 16)
        let highValue = upper.isInfinite ? (f < 0 ? -0x1p128 : 0x1p128) : Double(upper)
        let distanceDown = abs(Double(f) - lowValue), distanceUp = abs(highValue - Double(f))
        if distanceDown < distanceUp { return down }
        if distanceUp < distanceDown { return up }
        return down & 1 == 0 ? down : up
    }

    @Test(arguments: [(1, 48, 48), (3, 130, 144), (60_000, 48, 48), (70_001, 7, 16)])
    func bf16RowsMatchTheReference(rows: Int, dim: Int, padded: Int) {
        var generator = SystemRandomNumberGenerator()
        var values = (0..<(rows * dim)).map { _ in Float.random(in: -4...4, using: &generator) }
        let specials: [Float] = [0, -0.0, 1e-40, -1e-45, .greatestFiniteMagnitude, -.infinity, .infinity, .nan,
                                 1.00390625, 1.01171875, 3.3895314e38, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000)]
        for (i, s) in specials.enumerated() where i < values.count { values[i] = s }
        var out = [UInt16](repeating: 0xFFFF, count: rows * padded)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBytes { StreamedRowFormat.bf16(paddedDim: padded).copy(v.baseAddress!, rows: rows, dim: dim, into: $0.baseAddress!) }
        }
        var wrong = 0
        for r in 0..<rows {
            for c in 0..<padded {
                let expected: UInt16 = c < dim ? Self.reference(values[r * dim + c]) : 0
                if out[r * padded + c] != expected { wrong += 1 }
            }
        }
        #expect(wrong == 0)
        #expect(StreamedRowFormat.bf16(paddedDim: padded).deviceRowBytes(dim: dim) == padded * 2)
        #expect(StreamedRowFormat.bf16(paddedDim: padded).isBF16 && !StreamedRowFormat.float32.isBF16)
    }

    @Test func theReferenceRoundsTiesToEven() {
        #expect(Self.reference(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie, even below
        #expect(Self.reference(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie, even above
        #expect(Self.reference(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
    }

    /// The slices cover every unit exactly once, in aligned pieces, whatever the sizes.
    @Test(arguments: [(0, 1, 1), (1, 1, 64), (10_000_000, 1, 64), (70_001, 28, 1), (3, 1 << 20, 1)])
    func slicesCoverEveryUnitOnce(units: Int, unitBytes: Int, alignment: Int) {
        let seen = UnsafeMutablePointer<UInt8>.allocate(capacity: max(units, 1))
        seen.initialize(repeating: 0, count: max(units, 1))
        defer { seen.deallocate() }
        let address = UInt(bitPattern: seen)
        let misaligned = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        misaligned.initialize(to: 0)
        defer { misaligned.deallocate() }
        let flag = UInt(bitPattern: misaligned)
        CUDABackend.inParallelSlices(units: units, unitBytes: unitBytes, alignment: alignment) { range in
            if range.lowerBound % alignment != 0 { UnsafeMutablePointer<Int>(bitPattern: flag)!.pointee = 1 }
            for u in range { UnsafeMutablePointer<UInt8>(bitPattern: address)![u] += 1 }
        }
        #expect((0..<units).allSatisfy { seen[$0] == 1 })
        #expect(misaligned.pointee == 0)
    }

    @Test func float32RowsAreCopiedAsTheyAre() {
        let values = (0..<(5_000 * 3)).map { Float($0) * 0.5 }
        var out = [Float](repeating: -1, count: values.count)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBytes { StreamedRowFormat.float32.copy(v.baseAddress!, rows: 5_000, dim: 3, into: $0.baseAddress!) }
        }
        #expect(out == values)
    }

    /// Rows gathered by index (Lloyd's sample streamed straight from the full rows): row i of the copy is row
    /// rows[i] of the source, repeats and the last row included, in both formats (bf16 as the contiguous copy rounds it).
    @Test(arguments: [(1, 48), (70_001, 7), (20_000, 130)])
    func gatheredRowsAreTheNamedRowsInOrder(count: Int, dim: Int) {
        let source = 3_001
        let values = (0..<(source * dim)).map { Float($0 % 9_973) * 0.25 - 17 }
        var rows = (0..<count).map { ($0 * 7_919 + 13) % source }
        rows[0] = source - 1
        if count > 2 { rows[count - 1] = rows[1] }
        var fp32 = [Float](repeating: -1, count: count * dim)
        values.withUnsafeBufferPointer { v in
            rows.withUnsafeBufferPointer { r in
                fp32.withUnsafeMutableBytes { StreamedRowFormat.float32.copy(v.baseAddress!, rows: r.baseAddress!, count: count, dim: dim, into: $0.baseAddress!) }
            }
        }
        #expect(fp32 == rows.flatMap { values[($0 * dim)..<(($0 + 1) * dim)] })
        let padded = KMeansKernels.paddedDim(dim), format = StreamedRowFormat.bf16(paddedDim: padded)
        var gathered = [UInt16](repeating: 0xFFFF, count: count * padded), contiguous = gathered
        values.withUnsafeBufferPointer { v in
            rows.withUnsafeBufferPointer { r in
                gathered.withUnsafeMutableBytes { format.copy(v.baseAddress!, rows: r.baseAddress!, count: count, dim: dim, into: $0.baseAddress!) }
            }
        }
        fp32.withUnsafeBufferPointer { g in
            contiguous.withUnsafeMutableBytes { format.copy(g.baseAddress!, rows: count, dim: dim, into: $0.baseAddress!) }
        }
        #expect(gathered == contiguous)
    }
}
