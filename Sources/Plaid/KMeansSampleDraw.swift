import CKernels
import Dispatch
import Foundation

extension KMeans {
    /// Below this many draws the sequential shuffle is as fast (no threads to start, nothing to prefetch).
    static let parallelDrawMinimum = 65_536

    /// `randomlyChosenFirst32Sequentially`'s result, computed faster: the training sample's draw was 45–90 ms of a
    /// 10M-vector k-means on the GPU (docs/PERFORMANCE.md, session 27), one thread initialising 40 MB of indices
    /// (page faults) and then waiting on a cache miss per swap.
    ///
    /// Swift's `Int.random(in: i..<count, using:)` is Lemire's method: one generator output r, draw i + ⌊r·u / 2⁶⁴⌋
    /// with u = count − i, unless the low half of r·u is under u, where it may reject r and take the next output.
    /// SplitMix64's outputs can be computed at any index, so every draw is computed in parallel on the assumption
    /// that none rejects, and each draw that could have rejected is flagged (probability u / 2⁶⁴ each: about one
    /// run in 10⁶ at 10M rows). A flag returns nil and the caller shuffles sequentially, so the result is always
    /// the sequential one. The index array is initialised by all cores, and the swaps, which must stay in order,
    /// prefetch the slots of later draws (`ck_partial_shuffle_u32`).
    static func randomlyChosenFirst32InParallel(_ prefix: Int, of count: Int, seed: UInt64) -> [Int32]? {
        let chosen = min(prefix, count)
        guard chosen >= parallelDrawMinimum, count <= Int(Int32.max) else { return nil }
        var trace = DrawTrace()
        let block = 65_536
        var draws = [UInt32](repeating: 0, count: chosen)
        let mayReject = draws.withUnsafeMutableBufferPointer { d -> Bool in
            let out = UnsafeMutableSendablePointer(d.baseAddress!)
            let flags = FlagSet(count: (chosen + block - 1) / block)
            DispatchQueue.concurrentPerform(iterations: flags.count) { b in
                for i in (b * block)..<min(chosen, (b + 1) * block) {
                    let range = UInt64(count - i)
                    let product = SplitMix64.output(seed: seed, index: i).multipliedFullWidth(by: range)
                    if product.low < range { flags.set(b) }
                    out.pointer[i] = UInt32(truncatingIfNeeded: UInt64(i) &+ product.high)
                }
            }
            return flags.any
        }
        guard !mayReject else { return nil }
        trace.mark("draws")
        var order = [UInt32](unsafeUninitializedCapacity: count) { buffer, initialized in
            let out = UnsafeMutableSendablePointer(buffer.baseAddress!)
            let initBlock = 1 << 20
            DispatchQueue.concurrentPerform(iterations: (count + initBlock - 1) / initBlock) { b in
                for i in (b * initBlock)..<min(count, (b + 1) * initBlock) { out.pointer[i] = UInt32(truncatingIfNeeded: i) }
            }
            initialized = count
        }
        trace.mark("index array")
        order.withUnsafeMutableBufferPointer { o in
            draws.withUnsafeBufferPointer { d in ck_partial_shuffle_u32(o.baseAddress!, d.baseAddress!, chosen) }
        }
        trace.mark("swaps")
        defer { trace.mark("copy out") }
        return [Int32](unsafeUninitializedCapacity: chosen) { buffer, initialized in
            order.withUnsafeBufferPointer { o in
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: o.baseAddress!, byteCount: chosen * 4)
            }
            initialized = chosen
        }
    }
}

/// One flag per block of parallel work, each written only by its own block's thread.
private final class FlagSet: @unchecked Sendable {
    private let flags: UnsafeMutablePointer<Bool>
    let count: Int
    init(count: Int) {
        self.count = count
        flags = .allocate(capacity: count)
        flags.initialize(repeating: false, count: count)
    }
    deinit { flags.deallocate() }
    func set(_ index: Int) { flags[index] = true }
    var any: Bool { (0..<count).contains { flags[$0] } }
}

/// `COLGREP_KM_TRACE=1`: the sample draw's steps on stderr (`km-trace draw <step> <seconds>`), for the GPU k-means'
/// time split (the draw was 20–25 ms of a 10M-vector run on the H100 host, session 30, where its parts estimate ~12).
struct DrawTrace {
    static let enabled = ProcessInfo.processInfo.environment["COLGREP_KM_TRACE"] == "1"
    private var clock = ContinuousClock.now

    mutating func mark(_ step: String) {
        guard Self.enabled else { return }
        FileHandle.standardError.write(Data(String(format: "km-trace draw %@ %.4f s\n", step, KMeans.seconds(since: clock)).utf8))
        clock = ContinuousClock.now
    }
}
