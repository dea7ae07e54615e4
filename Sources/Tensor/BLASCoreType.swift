import CBLAS
import CKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS builds that predate a CPU fall back to generic SSE3 ("Prescott") kernels: Debian's 0.3.21 does
/// so on Sapphire Rapids, where SGEMM then runs about 5× slower (measured: 2.8k vs 14k tokens/s at
/// 2 threads). OpenBLAS reads `OPENBLAS_CORETYPE` only when it loads, so the fix is to start again with it set.
public enum BLASCoreType {
    /// The kernel family OpenBLAS picked ("Haswell", "SkylakeX", "Prescott", …).
    public static var current: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The family to ask for when OpenBLAS picked a generic one on a CPU with AVX2 (nil when it is fine).
    public static var better: String? {
        let generic = ["prescott", "core2", "katmai", "coppermine", "northwood", "banias", "atom", "nehalem", "unknown"]
        guard generic.contains(current.lowercased()), ck_has_avx2() != 0 else { return nil }
        return ck_has_avx512() != 0 ? "SkylakeX" : "Haswell"
    }

    /// Set beside `OPENBLAS_CORETYPE` by the relaunch, to the same value: tells a core type colgrep chose
    /// from one the user set (the query server's key leaves the former out).
    public static let relaunchVariable = "COLGREP_BLAS_RELAUNCH"

    /// Replaces the process with itself, `OPENBLAS_CORETYPE` set, when OpenBLAS picked generic kernels
    /// and the user set no core type; returns (doing nothing) otherwise or when the relaunch fails.
    /// Loads OpenBLAS (to ask it): call only where the process will compute.
    public static func relaunchIfGeneric() {
        #if os(Linux)
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let better else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv(relaunchVariable, better, 1)
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
        #endif
    }
}
