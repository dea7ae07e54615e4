import Foundation
import Tensor
import Testing
@testable import ColGrep

/// `ModelRuntime`'s background work (the query prefetch of a one-shot search, the document load of an
/// update): the vectors are those of the plain path, a prefetched query survives an update that joins it
/// first, and errors surface where the plain path would have thrown them — a prefetch's only when the
/// query vector is needed.
@Suite struct ModelRuntimeBackgroundTests {
    static let fixture = AccelerationRoutedEncoderTests.fixture
    let query = "parse the command line arguments"

    /// Equal up to int8 rounding: other suites of this process may settle the fixture's weights on int8
    /// (`Int8Decisions` is process-wide), after which a later encode of the same text differs slightly.
    private func same(_ a: HostMatrix, _ b: HostMatrix) -> Bool {
        a.rows == b.rows && a.cols == b.cols && zip(a.values, b.values).allSatisfy { abs($0 - $1) < 0.02 }
    }

    @Test func aPrefetchedQueryEqualsTheDirectEncoding() throws {
        let direct = try ModelRuntime(modelID: Self.fixture.path, acceleration: .forceCPU).encodeQuery(query)
        let runtime = ModelRuntime(modelID: Self.fixture.path, acceleration: .forceCPU)
        runtime.prefetchQuery(query)
        #expect(same(try runtime.encodeQuery(query), direct))
        // Another text is encoded, not answered from the prefetch.
        let other = try runtime.encodeQuery("retry with backoff")
        #expect(!same(other, direct))
        #expect(same(other, try ModelRuntime(modelID: Self.fixture.path, acceleration: .forceCPU).encodeQuery("retry with backoff")))
    }

    @Test func aPrefetchSurvivesAnUpdateThatLoadsTheDocumentEncoder() throws {
        let direct = try ModelRuntime(modelID: Self.fixture.path, acceleration: .forceCPU).encodeQuery(query)
        let runtime = ModelRuntime(modelID: Self.fixture.path, acceleration: .forceCPU)
        runtime.prefetchQuery(query)
        runtime.prepareIndexing(fileBytes: [1200, 800])
        let documents = try runtime.encodeDocuments(prepared: runtime.tokenizeDocuments(["def f(x):\n    return x"]))
        runtime.finishIndexing()
        #expect(documents.count == 1 && documents[0].rows > 0)
        #expect(same(try runtime.encodeQuery(query), direct))
    }

    @Test func errorsSurfaceOnlyWhereTheModelIsNeeded() throws {
        // A folder that exists but holds no model: the load fails (a missing path would fall back).
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let missing = empty.path
        let plain = ModelRuntime(modelID: missing, acceleration: .forceCPU)
        var expected = ""
        do { _ = try plain.encodeQuery(query) } catch { expected = "\(error)" }
        #expect(!expected.isEmpty)

        // A failed prefetch that nothing consumes is silent; consumed, it is the plain path's error.
        let unused = ModelRuntime(modelID: missing, acceleration: .forceCPU)
        unused.prefetchQuery(query)
        unused.finishIndexing()
        let prefetched = ModelRuntime(modelID: missing, acceleration: .forceCPU)
        prefetched.prefetchQuery(query)
        var got = ""
        do { _ = try prefetched.encodeQuery(query) } catch { got = "\(error)" }
        #expect(got == expected)

        // A failed background document load is thrown by the next call that needs the encoder.
        let indexing = ModelRuntime(modelID: missing, acceleration: .forceCPU)
        indexing.prepareIndexing(fileBytes: [100])
        #expect(throws: ColGrepError.self) { try indexing.tokenizeDocuments(["x"]) }
    }
}
