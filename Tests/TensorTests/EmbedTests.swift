import Foundation
import Testing
@testable import Tensor

/// `Backend.embed`: the default is exactly gather → add → layer norm (gather → layer norm without positions), bad ids
/// are the gather's error, and a forwarding wrapper hands the call to the backend it wraps whole, so a GPU backend's
/// fused kernel is reached through the routing wrappers.
struct EmbedTests {
    /// Counts the embed calls that reach it; the ops still run on the CPU.
    final class EmbedSpy: ForwardingBackend {
        let forwardee: any Backend = CPUBackend()
        var embedCalls = 0
        func embed(words: any DeviceMatrix, ids: [Int32], positions: (table: any DeviceMatrix, ids: [Int32])?,
                   normWeight: any DeviceMatrix, normBias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
            embedCalls += 1
            return try forwardee.embed(words: words, ids: ids, positions: positions, normWeight: normWeight, normBias: normBias, eps: eps)
        }
    }

    final class Wrapper: ForwardingBackend {
        let forwardee: any Backend
        init(_ forwardee: any Backend) { self.forwardee = forwardee }
    }

    // Repeated ids and each table's last row.
    static let ids: [Int32] = [3, 0, 8, 3, 3, 5, 8]
    static let positionIDs: [Int32] = [0, 1, 2, 5, 0, 1, 2]

    @Test(arguments: [true, false])
    func theDefaultIsGatherAddLayerNorm(withPositions: Bool) throws {
        let backend = CPUBackend()
        let words = try backend.upload(randomMatrix(9, 12, seed: 1)), positions = try backend.upload(randomMatrix(6, 12, seed: 2))
        let weight = try backend.upload(randomMatrix(1, 12, seed: 3)), bias = try backend.upload(randomMatrix(1, 12, seed: 4))
        let fused = try backend.download(backend.embed(words: words, ids: Self.ids, positions: withPositions ? (positions, Self.positionIDs) : nil,
                                                       normWeight: weight, normBias: bias, eps: 1e-12))
        var x = try backend.gather(words, ids: Self.ids)
        if withPositions { x = try backend.add(x, backend.gather(positions, ids: Self.positionIDs)) }
        let separate = try backend.download(backend.layerNorm(x, weight: weight, bias: bias, eps: 1e-12))
        #expect(fused.rows == 7 && fused.cols == 12)
        #expect(fused.values == separate.values)
        // The position term is really added: leaving it out changes every row.
        let wordsOnly = try backend.download(backend.layerNorm(backend.gather(words, ids: Self.ids), weight: weight, bias: bias, eps: 1e-12))
        #expect((fused.values == wordsOnly.values) == !withPositions)
    }

    @Test func anIDOutsideEitherTableIsTheGathersError() throws {
        let backend = CPUBackend()
        let words = try backend.upload(randomMatrix(9, 8, seed: 5)), positions = try backend.upload(randomMatrix(6, 8, seed: 6))
        let weight = try backend.upload(randomMatrix(1, 8, seed: 7))
        #expect(throws: TensorError("gather: id 9 outside the table's 9 rows")) {
            try backend.embed(words: words, ids: [1, 9], positions: (positions, [0, 1]), normWeight: weight, normBias: nil, eps: 1e-5)
        }
        #expect(throws: TensorError("gather: id 6 outside the table's 6 rows")) {
            try backend.embed(words: words, ids: [1, 2], positions: (positions, [0, 6]), normWeight: weight, normBias: nil, eps: 1e-5)
        }
    }

    @Test func aForwardingWrapperPassesTheCallThrough() throws {
        let spy = EmbedSpy()
        let wrapper = Wrapper(spy)
        let words = try wrapper.upload(randomMatrix(9, 8, seed: 8)), weight = try wrapper.upload(randomMatrix(1, 8, seed: 9))
        let out = try wrapper.download(wrapper.embed(words: words, ids: Self.ids, positions: nil, normWeight: weight, normBias: nil, eps: 1e-5))
        #expect(out.rows == 7 && out.cols == 8)
        #expect(spy.embedCalls == 1)
    }
}
