import CKernels
import Foundation

/// Arrays of one element type that searches borrow and hand back (see `SearchScratch`).
struct ScratchArrayPool<Element: BitwiseCopyable> {
    /// Arrays handed back, kept for the next borrower. At most `limit` are kept (the smallest dropped).
    private var arrays: [[Element]] = []
    private let limit = 8

    /// An array of exactly `count` elements. Reused elements keep whatever an earlier search left in
    /// them; only elements added beyond a reused array's old count are `filler`.
    mutating func take(_ count: Int, filler: Element) -> [Element] {
        // The smallest array that holds `count` without growing, else the largest (grown once).
        let fitting = arrays.indices.filter { arrays[$0].capacity >= count }
        let pick = fitting.min { arrays[$0].capacity < arrays[$1].capacity }
            ?? arrays.indices.max { arrays[$0].capacity < arrays[$1].capacity }
        guard let pick else { return [Element](repeating: filler, count: count) }
        var array = arrays.remove(at: pick)
        if array.count > count {
            array.removeLast(array.count - count)
        } else if array.count < count {
            array.append(contentsOf: repeatElement(filler, count: count - array.count))
        }
        return array
    }

    /// Keeps `array`'s storage for a later `take` (and leaves `array` empty).
    mutating func give(_ array: inout [Element]) {
        var kept: [Element] = []
        swap(&kept, &array)
        guard kept.capacity > 0 else { return }
        arrays.append(kept)
        if arrays.count > limit, let smallest = arrays.indices.min(by: { arrays[$0].capacity < arrays[$1].capacity }) {
            arrays.remove(at: smallest)
        }
    }
}

/// The large per-query arrays of a search (the query × centroid table and its u8 copy, the IVF stage's
/// dense table of scores and marks, the selection's scratch, the exact stage's gathered tokens), kept by
/// the index between searches. Allocated afresh, each of these (hundreds of KB to a few MB at 100k
/// documents) came from newly mapped pages that the kernel had to fault in and zero on every query:
/// about 180 page faults per query at 100k × 48-d, with the fault handling serialising the two search
/// threads on the process's memory map. Thread-safe: concurrent searches each take their own arrays.
final class SearchScratch: @unchecked Sendable {
    private let lock = NSLock()
    private var floats = ScratchArrayPool<Float>()
    private var halves = ScratchArrayPool<UInt16>()
    private var words = ScratchArrayPool<UInt32>()
    private var rows = ScratchArrayPool<Int32>()
    private var bytes = ScratchArrayPool<UInt8>()
    private var cells = ScratchArrayPool<ck_ivf_cell>()

    func floats(_ count: Int) -> [Float] { lock.withLock { floats.take(count, filler: 0) } }
    func halves(_ count: Int) -> [UInt16] { lock.withLock { halves.take(count, filler: 0) } }
    func words(_ count: Int) -> [UInt32] { lock.withLock { words.take(count, filler: 0) } }
    func rows(_ count: Int) -> [Int32] { lock.withLock { rows.take(count, filler: 0) } }
    func bytes(_ count: Int) -> [UInt8] { lock.withLock { bytes.take(count, filler: 0) } }
    func cells(_ count: Int) -> [ck_ivf_cell] { lock.withLock { cells.take(count, filler: ck_ivf_cell(score: 0, mark: 0)) } }

    func give(_ array: inout [Float]) { lock.withLock { floats.give(&array) } }
    func give(_ array: inout [UInt16]) { lock.withLock { halves.give(&array) } }
    func give(_ array: inout [UInt32]) { lock.withLock { words.give(&array) } }
    func give(_ array: inout [Int32]) { lock.withLock { rows.give(&array) } }
    func give(_ array: inout [UInt8]) { lock.withLock { bytes.give(&array) } }
    func give(_ array: inout [ck_ivf_cell]) { lock.withLock { cells.give(&array) } }
}
