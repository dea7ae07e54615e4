import Foundation
import Testing
@testable import Tensor

/// `Backend.linearGeGLU`: the default is exactly `geglu(linear(…))`, and a forwarding wrapper hands the call
/// to the backend it wraps whole, so a GPU backend's fused kernel is reached through the routing wrappers.
struct LinearGeGLUTests {
    /// Counts the fused calls that reach it; every op, the fused one included, still runs on the CPU.
    final class FusedCallSpy: ForwardingBackend {
        let forwardee: any Backend = CPUBackend()
        var fusedCalls = 0
        func linearGeGLU(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?) throws -> any DeviceMatrix {
            fusedCalls += 1
            return try forwardee.linearGeGLU(x, weight: weight, bias: bias)
        }
    }

    final class Wrapper: ForwardingBackend {
        let forwardee: any Backend
        init(_ forwardee: any Backend) { self.forwardee = forwardee }
    }

    @Test func theDefaultIsTheTwoOpsOneAfterTheOther() throws {
        let backend = CPUBackend()
        let x = try backend.upload(randomMatrix(7, 12, seed: 1)), w = try backend.upload(randomMatrix(10, 12, seed: 2))
        let b = try backend.upload(randomMatrix(1, 10, seed: 3))
        let fused = try backend.download(backend.linearGeGLU(x, weight: w, bias: b))
        let separate = try backend.download(backend.geglu(backend.linear(x, weight: w, bias: b, activation: .none, residual: nil)))
        #expect(fused.rows == 7 && fused.cols == 5)
        #expect(fused.values == separate.values)
    }

    @Test func aForwardingWrapperPassesTheFusedCallThrough() throws {
        let spy = FusedCallSpy()
        let wrapper = Wrapper(spy)
        let x = try wrapper.upload(randomMatrix(3, 8, seed: 4)), w = try wrapper.upload(randomMatrix(6, 8, seed: 5))
        let out = try wrapper.download(wrapper.linearGeGLU(x, weight: w, bias: nil))
        #expect(out.cols == 3)
        #expect(spy.fusedCalls == 1)
    }
}
