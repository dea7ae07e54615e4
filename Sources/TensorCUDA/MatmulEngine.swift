import Foundation

/// Which GEMM `CUDABackend.linear` runs in bf16.
///
/// cuBLASLt needs 50–100 ms to load and another 80–110 ms of one-time initialisation at its first plan
/// (measured on an H200 host), so the backend opens it on a thread of its own and, until it is ready,
/// runs our own tensor-core kernel (`KernelSource.gemm`, loaded from the kernel cache with the core
/// kernels): the first batch does not wait for cuBLASLt.
public enum MatmulEngine: String, Sendable, CaseIterable {
    /// Our own kernel until cuBLASLt has opened, cuBLASLt from then on.
    case automatic
    /// Our own kernel wherever it applies (bf16, an input width that is a multiple of 8).
    case own
    /// cuBLASLt always: the first GEMM waits for it to open.
    case cuBLASLt = "cublaslt"

    /// `COLGREP_GEMM` (`automatic`, `own`, `cublaslt`), else `automatic`.
    public static var environment: MatmulEngine {
        ProcessInfo.processInfo.environment["COLGREP_GEMM"].flatMap { MatmulEngine(rawValue: $0.lowercased()) } ?? .automatic
    }

    /// Most rows our kernel takes in one launch (128-row tiles along the grid's y, at most 65,535).
    public static let ownKernelMaxRows = 65_535 * 128

    /// Whether a `rows × inFeatures` input runs on our own kernel. It needs bf16 and whole 16-byte rows
    /// (`inFeatures` a multiple of 8); fp32, the checking mode, always goes to cuBLASLt.
    public func usesOwnKernel(precision: CUDAPrecision, rows: Int, inFeatures: Int, cuBLASLtReady: Bool) -> Bool {
        guard precision == .bf16, inFeatures > 0, inFeatures % 8 == 0, rows <= Self.ownKernelMaxRows else { return false }
        switch self {
        case .own: return true
        case .cuBLASLt: return false
        case .automatic: return !cuBLASLtReady
        }
    }
}
