import CCUDA
import Foundation

/// How a host thread waits for the GPU (`cuStreamSynchronize`, `cuEventSynchronize`): the primary context's
/// scheduling flag, set before the context is first retained.
///
/// The driver's default (`auto`) spins whenever the process has fewer contexts than cores, so every encode lane
/// (two per GPU) holds a core at 100 % for as long as its batch runs on the device — on a 16-core cold index
/// with one GPU, two cores taken from the tokenizer, pooling and the SQLite writers for the whole encode. A
/// blocking wait sleeps until the device signals instead; its wake-up (tens of µs) is small against a 64k-token
/// batch (milliseconds). `COLGREP_CUDA_WAIT=spin|yield|blocking|auto` chooses; default `blocking`.
public enum CUDAWaitPolicy: String, Sendable, CaseIterable {
    case auto, spin, yield, blocking

    /// The policy of this process: `COLGREP_CUDA_WAIT`, else `blocking`.
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> CUDAWaitPolicy {
        environment["COLGREP_CUDA_WAIT"].flatMap { CUDAWaitPolicy(rawValue: $0.lowercased()) } ?? .blocking
    }

    /// The `CU_CTX_SCHED_*` flag.
    var contextFlags: UInt32 {
        switch self {
        case .auto: UInt32(CCUDA_CTX_SCHED_AUTO)
        case .spin: UInt32(CCUDA_CTX_SCHED_SPIN)
        case .yield: UInt32(CCUDA_CTX_SCHED_YIELD)
        case .blocking: UInt32(CCUDA_CTX_SCHED_BLOCKING_SYNC)
        }
    }
}
