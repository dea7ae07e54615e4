import Encoder
import Foundation
import Tensor
import TensorCUDA
import Testing

/// `ShapeRecordingBackend` (what `debug gpu-embed --overlap` warms cuBLASLt with): a model run on it
/// lists exactly the `linear` calls, in order and by shape, that the same batch makes on a real backend.
@Suite struct ShapeRecordingBackendTests {
    /// Forwards every op to the CPU backend and records `linear` calls as the recorder does.
    final class LinearSpy: Backend {
        let cpu = CPUBackend(threads: 1, precision: .fp32)
        var calls: [LinearShape] = []
        let recorder = ShapeRecordingBackend()
        var name: String { "spy" }
        func upload(_ matrix: HostMatrix) throws -> any DeviceMatrix { try cpu.upload(matrix) }
        func download(_ matrix: any DeviceMatrix) throws -> HostMatrix { try cpu.download(matrix) }
        func download(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> [HostMatrix] { try cpu.download(matrix, rowGroups: rowGroups) }
        func gather(_ table: any DeviceMatrix, ids: [Int32]) throws -> any DeviceMatrix { try cpu.gather(table, ids: ids) }
        func layerNorm(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
            try cpu.layerNorm(x, weight: weight, bias: bias, eps: eps)
        }
        func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, activation: Activation,
                    residual: (any DeviceMatrix)?) throws -> any DeviceMatrix {
            _ = try recorder.linear(x, weight: weight, bias: bias, activation: activation, residual: residual)
            return try cpu.linear(x, weight: weight, bias: bias, activation: activation, residual: residual)
        }
        func geglu(_ x: any DeviceMatrix) throws -> any DeviceMatrix { try cpu.geglu(x) }
        func add(_ a: any DeviceMatrix, _ b: any DeviceMatrix) throws -> any DeviceMatrix { try cpu.add(a, b) }
        func attention(_ qkv: any DeviceMatrix, batch: PackedBatch, heads: Int, headDim: Int, rotary: Rotary?, window: Int?) throws -> any DeviceMatrix {
            try cpu.attention(qkv, batch: batch, heads: heads, headDim: headDim, rotary: rotary, window: window)
        }
        func l2Normalize(_ x: any DeviceMatrix) throws -> any DeviceMatrix { try cpu.l2Normalize(x) }
    }

    @Test(arguments: ["modernbert", "bert"])
    func recordedShapesAreTheRealForwardPasssCalls(architecture: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-shapes-\(architecture)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        if architecture == "bert" {
            var shape = SyntheticModel.BERTShape()
            shape.vocab = 300; shape.layers = 2
            try SyntheticModel.writeBERT(shape, to: directory)
        } else {
            var shape = SyntheticModel.ModernBERTShape()
            shape.vocab = 300; shape.hidden = 32; shape.intermediate = 48; shape.layers = 2; shape.heads = 2; shape.localWindow = 16; shape.head = [24, 8]
            try SyntheticModel.writeModernBERT(shape, to: directory)
        }
        let batch = PackedBatch(sequences: [[5, 6, 7, 8], [9, 10], Array(repeating: 11, count: 19)])
        let recorder = ShapeRecordingBackend()
        let recorded = try ColBERTModel(modelDirectory: directory, backend: recorder).embed(batch)
        let spy = LinearSpy()
        let real = try ColBERTModel(modelDirectory: directory, backend: spy).embed(batch)
        #expect(recorded.rows == real.rows && recorded.cols == real.cols)
        #expect(!recorder.linearShapes.isEmpty)
        #expect(recorder.linearShapes == spy.recorder.linearShapes)
        #expect(recorder.linearShapes.allSatisfy { $0.rows == batch.tokenCount })
    }
}
