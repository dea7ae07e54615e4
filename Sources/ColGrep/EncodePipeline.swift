import CodeUnits
import Foundation
import Plaid
import Store
import Tensor

/// The tokenize → encode → pool → write part of indexing for one checkpoint batch, as a bounded
/// pipeline of chunks: while chunk i encodes on the calling thread, chunk i + 1's embedding texts are
/// built and tokenized on a preparing queue, and chunk i − 1 is pooled and compressed into the vector
/// index on a serial writer queue while its metadata rows go into SQLite on a second one (the two
/// files are independent, and `reconcile` drops ids a crash left on one side only). At most one chunk
/// is prepared ahead and two wait for each writer, so memory stays flat however large the batch, and
/// the encoder never waits for the cheaper CPU stages.
final class EncodePipeline: @unchecked Sendable {
    private let indexer: ProjectIndexer
    private let store: MetadataStore
    private(set) var plaid: PlaidIndex?
    private let writer = DispatchQueue(label: "colgrep.index.writer")
    private let storeWriter = DispatchQueue(label: "colgrep.index.store-writer")
    private let storeInFlight = DispatchSemaphore(value: 2)
    private let preparer = DispatchQueue(label: "colgrep.index.prepare")
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

    /// A chunk ready for the encoder: its units, ids, the token ids of its distinct embedding texts,
    /// and for each unit the index of its text among them.
    private struct PreparedChunk {
        var units: [CodeUnit]
        var ids: [Int64]
        var tokens: [[Int32]]
        var mapping: [Int]
    }

    /// Encodes and stores `units` under `ids` (same order); returns when everything is on disk.
    func process(units: [CodeUnit], ids: [Int64]) throws {
        let chunk = max(1, indexer.options.chunkSize)
        let starts = Array(stride(from: 0, to: units.count, by: chunk))
        guard !starts.isEmpty else { return }
        if keywordOnly {
            // No model, no vectors: only the store rows, chunk by chunk.
            for start in starts {
                let range = start..<min(units.count, start + chunk)
                try writeRecords(units: Array(units[range]), ids: Array(ids[range]))
                indexer.progress.advance(units: range.count, tokens: 0)
            }
            return
        }
        _ = try indexer.model.load()
        func prepareAsync(_ n: Int) -> ResultBox<PreparedChunk> {
            let box = ResultBox<PreparedChunk>()
            let range = starts[n]..<min(units.count, starts[n] + chunk)
            preparer.async { [self] in
                box.set(Result { try prepare(units: Array(units[range]), ids: Array(ids[range])) })
            }
            return box
        }
        var next = prepareAsync(0)
        for n in starts.indices {
            preparer.sync {}
            guard let result = next.get() else { break }
            let prepared = try result.get()
            if n + 1 < starts.count { next = prepareAsync(n + 1) }
            let encoded = try indexer.model.encodeDocuments(prepared: prepared.tokens)
            indexer.progress.advance(units: prepared.units.count, tokens: encoded.reduce(0) { $0 + $1.rows })
            inFlight.wait()
            writer.async { [self] in
                defer { inFlight.signal() }
                if failed { return }
                do {
                    let pooled = pool(encoded)
                    try writeVectors(ids: prepared.ids, vectors: prepared.mapping.map { pooled[$0] })
                } catch {
                    fail(error)
                }
            }
            storeInFlight.wait()
            storeWriter.async { [self] in
                defer { storeInFlight.signal() }
                if failed { return }
                do {
                    try writeRecords(units: prepared.units, ids: prepared.ids)
                } catch {
                    fail(error)
                }
            }
            if failed { break }
        }
        preparer.sync {}
        writer.sync {}
        storeWriter.sync {}
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

    /// Embedding texts, deduplicated within the chunk, tokenized once.
    private func prepare(units: [CodeUnit], ids: [Int64]) throws -> PreparedChunk {
        var uniqueIndex: [String: Int] = [:]
        var uniqueTexts: [String] = []
        var mapping: [Int] = []
        mapping.reserveCapacity(units.count)
        Profiler.shared.measure("embedding text") {
            for unit in units {
                let text = EmbeddingText.build(for: unit)
                if let i = uniqueIndex[text] {
                    mapping.append(i)
                } else {
                    uniqueIndex[text] = uniqueTexts.count
                    mapping.append(uniqueTexts.count)
                    uniqueTexts.append(text)
                }
            }
        }
        return PreparedChunk(units: units, ids: ids, tokens: try indexer.model.tokenizeDocuments(uniqueTexts), mapping: mapping)
    }

    private func pool(_ encoded: [HostMatrix]) -> [HostMatrix] {
        let factor = indexer.options.poolFactor
        guard factor > 1 else { return encoded }
        return Profiler.shared.measure("pool") { encoded.parallelMap { TokenPooler.pool($0, factor: factor) } }
    }

    private func writeRecords(units: [CodeUnit], ids: [Int64]) throws {
        try Profiler.shared.measure("store") { try store.insert(zip(ids, units).map { Self.record($0.0, $0.1) }) }
    }

    private func writeVectors(ids: [Int64], vectors: [HostMatrix]) throws {
        let documents = zip(ids, vectors).map { (id: $0.0, vectors: $0.1) }
        let backend = try indexer.model.computeBackend()
        if let plaid {
            try Profiler.shared.measure("codec + index append") { try plaid.append(documents, backend: backend) }
        } else {
            let nbits = indexer.options.residualBits ?? PlaidConfig.defaultBits(dimension: documents.first?.vectors.cols ?? 0)
            plaid = try Profiler.shared.measure("k-means + codec + index create") {
                try PlaidIndex.create(at: indexer.layout.vectorDirectory, documents: documents, config: PlaidConfig(nbits: nbits), backend: backend)
            }
        }
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
