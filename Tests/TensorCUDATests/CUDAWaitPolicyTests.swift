import Testing
@testable import TensorCUDA

/// The GPU wait policy: blocking by default (an encode lane must not hold a core while its batch runs),
/// `COLGREP_CUDA_WAIT` chooses another, and each maps to the driver's `CU_CTX_SCHED_*` value.
struct CUDAWaitPolicyTests {
    @Test func blockingByDefaultAndChosenByTheEnvironment() {
        #expect(CUDAWaitPolicy.current(environment: [:]) == .blocking)
        #expect(CUDAWaitPolicy.current(environment: ["COLGREP_CUDA_WAIT": "spin"]) == .spin)
        #expect(CUDAWaitPolicy.current(environment: ["COLGREP_CUDA_WAIT": "Auto"]) == .auto)
        #expect(CUDAWaitPolicy.current(environment: ["COLGREP_CUDA_WAIT": "yield"]) == .yield)
        #expect(CUDAWaitPolicy.current(environment: ["COLGREP_CUDA_WAIT": "nonsense"]) == .blocking)
    }

    @Test func flagsAreTheDriversSchedulingValues() {
        #expect(CUDAWaitPolicy.allCases.map(\.contextFlags) == [0, 1, 2, 4])
    }
}
