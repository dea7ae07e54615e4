import Foundation

/// Records with the text work of their insert done: each one's keyword text (identifier splitting of
/// every field, most of an insert's CPU) and its array columns as JSON. Built on any thread — the
/// indexing pipeline builds them on every core beside tokenizing — so that `MetadataStore.insert`,
/// one serial SQLite writer, only binds and steps.
public struct PreparedRecords: Sendable {
    /// The array columns of one record, JSON-encoded (`StringArrayJSON`) as UTF-8 bytes.
    struct ArrayColumns: Sendable, Equatable {
        var parameters: [UInt8]
        var calls: [UInt8]
        var calledBy: [UInt8]
        var variables: [UInt8]
        var imports: [UInt8]

        init(_ record: UnitRecord) {
            parameters = StringArrayJSON.encodeBytes(record.parameters)
            calls = StringArrayJSON.encodeBytes(record.calls)
            calledBy = StringArrayJSON.encodeBytes(record.calledBy)
            variables = StringArrayJSON.encodeBytes(record.variables)
            imports = StringArrayJSON.encodeBytes(record.imports)
        }
    }

    public let records: [UnitRecord]
    /// `records[i].keywordText`, the exact text the keyword index holds for it.
    let keywordTexts: [[UInt8]]
    let arrays: [ArrayColumns]

    /// Prepares `records` on up to `workers` threads (default: one per core; fewer for small inputs).
    public init(_ records: [UnitRecord], workers: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.records = records
        let count = records.count
        let threads = min(max(1, workers), max(1, count / 32))
        var texts = [[UInt8]](repeating: [], count: count)
        var arrays = [ArrayColumns?](repeating: nil, count: count)
        if threads == 1 {
            for index in 0..<count {
                texts[index] = records[index].keywordText
                arrays[index] = ArrayColumns(records[index])
            }
        } else {
            texts.withUnsafeMutableBufferPointer { textSlots in
                arrays.withUnsafeMutableBufferPointer { arraySlots in
                    let slots = Slots(texts: textSlots.baseAddress!, arrays: arraySlots.baseAddress!)
                    DispatchQueue.concurrentPerform(iterations: threads) { worker in
                        // Interleaved rows spread long and short units over the workers.
                        for index in stride(from: worker, to: count, by: threads) {
                            slots.texts[index] = records[index].keywordText
                            slots.arrays[index] = ArrayColumns(records[index])
                        }
                    }
                }
            }
        }
        keywordTexts = texts
        self.arrays = arrays.map { $0! }
    }
}

/// Output slots that `concurrentPerform` workers fill at disjoint indices.
private struct Slots: @unchecked Sendable {
    let texts: UnsafeMutablePointer<[UInt8]>
    let arrays: UnsafeMutablePointer<PreparedRecords.ArrayColumns?>
}

/// Seconds spent in the named parts of one store call, in order (for the indexing profile).
struct StageClock {
    private(set) var laps: [(stage: String, seconds: Double)] = []
    private var mark = StageClock.now()

    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// CPU time of the calling thread, in nanoseconds: set beside a wall lap it tells work from waiting
    /// (a writer descheduled among many busy threads shows wall well above its CPU).
    static func threadCPU() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    static func seconds(_ from: UInt64, _ to: UInt64) -> Double {
        Double(to &- from) * 1e-9
    }

    /// Records the time since the last lap (or the start) as `stage`.
    mutating func lap(_ stage: String) {
        let now = Self.now()
        laps.append((stage, Self.seconds(mark, now)))
        mark = now
    }

    /// Records `seconds` measured elsewhere as `stage`.
    mutating func add(_ stage: String, _ seconds: Double) {
        laps.append((stage, seconds))
    }

    /// Starts the next lap now.
    mutating func restart() {
        mark = Self.now()
    }
}
