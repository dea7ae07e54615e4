import CodeUnits
import Foundation
import Plaid
import Store
import Tensor

/// The encode → pool → write part of indexing for one checkpoint batch. Chunks of units are
/// encoded on the calling thread while the previous chunk's vectors and rows are written on a
/// serial writer queue (at most two chunks in flight, so memory stays flat).
final class EncodePipeline: @unchecked Sendable {
    private let indexer: ProjectIndexer
    private let store: MetadataStore
    private(set) var plaid: PlaidIndex?
    private let writer = DispatchQueue(label: "colgrep.index.writer")
    private let inFlight = DispatchSemaphore(value: 2)
    private let errorLock = NSLock()
    private var writeError: Error?
    /// Store rows only, no encoding and no vectors (`IndexOptions.keywordOnly`).
    private let keywordOnly: Bool

    init(indexer: ProjectIndexer, store: MetadataStore, plaid: PlaidIndex?, keywordOnly: Bool = false) {
        self.indexer = indexer
        self.store = store
        self.plaid = plaid
        self.keywordOnly = keywordOnly
    }

    /// Encodes and stores `units` under `ids` (same order); returns when everything is on disk.
    func process(units: [CodeUnit], ids: [Int64]) throws {
        let chunk = indexer.options.chunkSize
        var start = 0
        while start < units.count {
            let end = min(units.count, start + chunk)
            let slice = Array(units[start..<end])
            let sliceIDs = Array(ids[start..<end])
            let vectors = keywordOnly ? [] : try encode(slice)
            if keywordOnly { indexer.progress.advance(units: slice.count, tokens: 0) }
            inFlight.wait()
            writer.async { [self] in
                defer { inFlight.signal() }
                if failed { return }
                do {
                    try write(units: slice, ids: sliceIDs, vectors: vectors)
                } catch {
                    fail(error)
                }
            }
            start = end
            if failed { break }
        }
        writer.sync {}
        errorLock.lock()
        defer { errorLock.unlock() }
        if let writeError { throw writeError }
    }

    private var failed: Bool {
        errorLock.lock()
        defer { errorLock.unlock() }
        return writeError != nil
    }

    private func fail(_ error: Error) {
        errorLock.lock()
        if writeError == nil { writeError = error }
        errorLock.unlock()
    }

    /// Embedding texts, deduplicated within the chunk, encoded once, pooled, copied back.
    private func encode(_ units: [CodeUnit]) throws -> [HostMatrix] {
        let texts = units.map { EmbeddingText.build(for: $0) }
        var uniqueIndex: [String: Int] = [:]
        var uniqueTexts: [String] = []
        var mapping: [Int] = []
        for t in texts {
            if let i = uniqueIndex[t] {
                mapping.append(i)
            } else {
                uniqueIndex[t] = uniqueTexts.count
                mapping.append(uniqueTexts.count)
                uniqueTexts.append(t)
            }
        }
        let encoded = try indexer.model.encodeDocuments(uniqueTexts)
        let factor = indexer.options.poolFactor
        let pooled = factor > 1 ? Profiler.shared.measure("pool") { encoded.map { TokenPooler.pool($0, factor: factor) } } : encoded
        indexer.progress.advance(units: units.count, tokens: encoded.reduce(0) { $0 + $1.rows })
        return mapping.map { pooled[$0] }
    }

    private func write(units: [CodeUnit], ids: [Int64], vectors: [HostMatrix]) throws {
        if keywordOnly {
            try Profiler.shared.measure("store") { try store.insert(zip(ids, units).map { Self.record($0.0, $0.1) }) }
            return
        }
        let documents = zip(ids, vectors).map { (id: $0.0, vectors: $0.1) }
        let backend = try indexer.model.computeBackend()
        if let plaid {
            try Profiler.shared.measure("codec + index append") { try plaid.append(documents, backend: backend) }
        } else {
            plaid = try Profiler.shared.measure("k-means + codec + index create") {
                try PlaidIndex.create(at: indexer.layout.vectorDirectory, documents: documents, config: PlaidConfig(), backend: backend)
            }
        }
        try Profiler.shared.measure("store") { try store.insert(zip(ids, units).map { Self.record($0.0, $0.1) }) }
    }

    static func record(_ id: Int64, _ u: CodeUnit) -> UnitRecord {
        UnitRecord(docID: id, file: u.file, name: u.name, qualifiedName: u.qualifiedName, line: u.line, endLine: u.endLine,
                   language: u.language, unitType: u.unitType.rawValue, signature: u.signature, docstring: u.docstring,
                   parameters: u.parameters, returnType: u.returnType, extends: u.extends, parentClass: u.parentClass,
                   calls: u.calls, calledBy: u.calledBy, complexity: u.complexity, hasLoops: u.hasLoops,
                   hasBranches: u.hasBranches, hasErrorHandling: u.hasErrorHandling, variables: u.variables,
                   imports: u.imports, code: u.code)
    }
}
