import Foundation
import Testing
import Tensor
@testable import Encoder

/// F32 weights are used in place in the memory-mapped file on the CPU backend: the values equal the
/// copying path bit for bit, the model computes the same vectors, and bad files fail before mapping.
@Suite struct ZeroCopyWeightsTests {
    let backend = CPUBackend(threads: 1, precision: .fp32)

    @Test func mappedTensorsEqualCopiedTensorsBitForBit() throws {
        let file = try SafeTensorsFile(url: Fixtures.tinyModernBERT.appending(path: "model.safetensors"))
        #expect(!file.names.isEmpty)
        for name in file.names {
            let mapped = try #require(try file.mappedFloats(name), "\(name) is F32 at an aligned offset")
            let copied = try file.matrix(name)
            #expect(mapped.rows == copied.rows && mapped.cols == copied.cols)
            let view = UnsafeBufferPointer(start: mapped.values, count: mapped.rows * mapped.cols)
            #expect(view.map(\.bitPattern) == copied.values.map(\.bitPattern), "\(name)")
        }
    }

    @Test func cpuModelBorrowsItsWeightsAndEncodesLikeACopyingBackend() throws {
        let borrowed = try ColBERTModel(modelDirectory: Fixtures.tinyModernBERT, backend: backend)
        let modern = try #require(borrowed.backbone as? ModernBERT)
        #expect((modern.embeddings as? CPUMatrix)?.isBorrowed == true)
        let copying = try ColBERTModel(modelDirectory: Fixtures.tinyModernBERT, backend: CopyingBackend(backend))
        #expect((try #require(copying.backbone as? ModernBERT).embeddings as? CPUMatrix)?.isBorrowed == false)
        let batch = PackedBatch(sequences: [[1, 5, 9, 33, 2], [1, 7, 2]])
        let a = try borrowed.embed(batch), b = try copying.embed(batch)
        #expect(a.rows == 8 && a.values.map(\.bitPattern) == b.values.map(\.bitPattern))
    }

    @Test func borrowedWeightsOutliveTheFileHandle() throws {
        var matrix: CPUMatrix?
        var expected: [Float] = []
        do {
            let file = try SafeTensorsFile(url: Fixtures.tinyModernBERT.appending(path: "model.safetensors"))
            let name = try #require(file.names.first)
            let mapped = try #require(try file.mappedFloats(name))
            matrix = CPUMatrix(borrowing: mapped.values, rows: mapped.rows, cols: mapped.cols, owner: file)
            expected = try file.matrix(name).values
        }
        #expect(matrix?.host.values == expected)
    }

    @Test func misalignedF32IsCopiedNotMapped() throws {
        let values: [Float] = [1.5, -2.25, 3, 0x1p-130]
        let url = FileManager.default.temporaryDirectory.appending(path: "misaligned-\(UUID().uuidString).safetensors")
        var header = #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
        while (8 + header.utf8.count) % 4 != 1 { header += " " }
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Data($0) }
        bytes.append(Data(header.utf8))
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        try bytes.write(to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(try file.mappedFloats("w") == nil)
        #expect(try file.matrix("w").values.map(\.bitPattern) == values.map(\.bitPattern))
    }

    /// Truncations anywhere in the data (down to one byte short) are caught from the header, before
    /// mapping, with the file named; nothing is read past the end (no SIGBUS).
    @Test(arguments: [1, 4, 4096])
    func truncatedDataIsAnErrorNamingTheFile(missingBytes: Int) throws {
        let dir = try Fixtures.scratchCopy()
        let url = dir.appending(path: "model.safetensors")
        let data = try Data(contentsOf: url)
        try Data(data.prefix(data.count - missingBytes)).write(to: url)
        do {
            _ = try ColBERTModel(modelDirectory: dir, backend: backend)
            Issue.record("a truncated file loaded")
        } catch let error as EncoderError {
            guard case let .invalidFile(file, reason) = error else { Issue.record("unexpected \(error)"); return }
            #expect(file == url && reason.contains("truncated"), "\(reason)")
            #expect(error.description.contains(url.path))
        }
    }
}

/// A backend that forwards to the CPU but takes every weight through `upload` (a copy), like a
/// device backend would: the reference for the borrowing path.
final class CopyingBackend: Backend {
    let base: CPUBackend
    init(_ base: CPUBackend) { self.base = base }
    var name: String { "copying " + base.name }
    func upload(_ matrix: HostMatrix) throws -> any DeviceMatrix { try base.upload(matrix) }
    func download(_ matrix: any DeviceMatrix) throws -> HostMatrix { try base.download(matrix) }
    func gather(_ table: any DeviceMatrix, ids: [Int32]) throws -> any DeviceMatrix { try base.gather(table, ids: ids) }
    func layerNorm(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        try base.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
    func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?,
                activation: Activation, residual: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        try base.linear(x, weight: weight, bias: bias, activation: activation, residual: residual)
    }
    func geglu(_ x: any DeviceMatrix) throws -> any DeviceMatrix { try base.geglu(x) }
    func add(_ a: any DeviceMatrix, _ b: any DeviceMatrix) throws -> any DeviceMatrix { try base.add(a, b) }
    func attention(_ qkv: any DeviceMatrix, batch: PackedBatch, heads: Int, headDim: Int,
                   rotary: Rotary?, window: Int?) throws -> any DeviceMatrix {
        try base.attention(qkv, batch: batch, heads: heads, headDim: headDim, rotary: rotary, window: window)
    }
    func l2Normalize(_ x: any DeviceMatrix) throws -> any DeviceMatrix { try base.l2Normalize(x) }
}
