/// Why a CUDA operation failed, worded for the person who has to fix it.
public enum CUDAError: Error, CustomStringConvertible, Equatable {
    /// No usable GPU: a library is missing, the driver reports no device, or the device index is out of range.
    case unavailable(String)
    /// A driver call failed.
    case driver(call: String, code: Int32, message: String)
    /// NVRTC rejected the kernel source or failed.
    case compile(String)
    /// A cuBLASLt call failed.
    case blas(call: String, status: Int32)
    /// The device ran out of memory.
    case outOfMemory(requestedBytes: Int, freeBytes: Int, totalBytes: Int, hint: String)
    /// The compiled kernels do not run on this driver (the NVRTC toolkit is newer than the driver).
    case toolkitMismatch(String)
    /// Arguments that do not fit together (shapes, ids out of range).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .unavailable(let reason):
            return "GPU unavailable: \(reason)"
        case .driver(let call, let code, let message):
            return "CUDA driver call \(call) failed with error \(code) (\(message))"
        case .compile(let log):
            return "kernel compilation failed (NVRTC): \(log)"
        case .blas(let call, let status):
            return "cuBLASLt call \(call) failed with status \(status)"
        case .outOfMemory(let requested, let free, let total, let hint):
            return "GPU out of memory: needed \(requested >> 20) MiB with \(free >> 20) MiB free of \(total >> 20) MiB. \(hint)"
        case .toolkitMismatch(let detail):
            return "CUDA driver/toolkit mismatch: \(detail)"
        case .invalidArgument(let detail):
            return "invalid argument: \(detail)"
        }
    }
}
