import Testing
@testable import TensorCUDA

/// The probe reports its steps (what a cold start spends before any backend exists): with or without a
/// driver, once it has run, the last step is device 0's context and every step took a non-negative time.
@Suite struct CUDAProbeStepsTests {
    @Test func theProbeNamesItsStepsOnceItHasRun() {
        _ = CUDABackend.availability
        #expect(CUDABackend.driverProbed)
        let steps = CUDABackend.probeSteps
        #expect(steps.last?.step == "device 0: context and streams")
        #expect(steps.allSatisfy { $0.seconds >= 0 })
        // Where the driver loaded, its load and initialisation come first.
        if CUDABackend.availability.isAvailable {
            #expect(steps.contains { $0.step.hasPrefix("dlopen libcuda") })
        }
    }
}
