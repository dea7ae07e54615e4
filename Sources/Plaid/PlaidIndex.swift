import Foundation
import Tensor

/// A PLAID multi-vector index on disk: a trained residual codec plus immutable, memory-mapped
/// segments of documents, committed by atomically replacing `manifest.plaid`.
///
/// Document ids are chosen by the caller and never renumbered. Appending an id that exists replaces
/// that document. Deletes are tombstones; a later write rewrites a segment once its dead share passes
/// `PlaidConfig.compactionDeadShare`, and small segments are merged log-structured, so an update costs
/// about the size of what it adds, never a rewrite of the whole index. A writer killed at any point
/// leaves the previous index readable (its files are only ever added, then the manifest is renamed).
///
/// Searches may run concurrently with each other; writes need exclusive access (the product's lock).
public final class PlaidIndex: @unchecked Sendable {
    public let directory: URL
    var manifest: Manifest
    var codec: ResidualCodec
    var segments: [Segment]
    /// Deleted rows, by segment number.
    var dead: [Int: DeadRows]
    /// Where each live document is, built on first use (opening stays independent of the index size).
    var location: [Int64: Location] {
        locationLock.lock()
        defer { locationLock.unlock() }
        if let locationCache { return locationCache }
        let built = Self.locations(of: segments, dead: dead)
        locationCache = built
        return built
    }
    private var locationCache: [Int64: Location]?
    private let locationLock = NSLock()
    /// Large arrays searches reuse between queries (`SearchScratch`).
    let searchScratch = SearchScratch()
    /// Seconds per stage of the `create` that built this index (empty for an opened index).
    public internal(set) var buildStages: [(stage: String, seconds: Double)] = []
    /// Process CPU seconds per stage of that `create` (all threads).
    public internal(set) var buildStagesCPU: [(stage: String, seconds: Double)] = []
    /// Seconds per stage of the latest `append` or `delete` through this instance.
    public internal(set) var writeStages: [(stage: String, seconds: Double)] = []
    /// Live tokens above which this instance's writes merge no more segments into one (nil: no bound).
    /// A cold build that appends chunk after chunk sets it (`StreamedIndexBuilder`): merging every new
    /// segment into ever larger ones rewrites each vector ~log2(chunks) times, where a bound of an
    /// eighth of the build leaves ~10 segments after ~4 rewrites. Not stored: later writes merge as usual.
    public var mergeCeiling: Int?
    /// Segments this instance's writes leave unmerged (nil: none, every write merges as usual). A cold build
    /// sets it (`StreamedIndexBuilder`): its segments are its checkpoint groups, and merging them rewrote
    /// each appended vector about once more on the build's write lane (4.3 of its 16 s, large MiniLM set,
    /// session 7) for no change in what a search returns — rows keep their order merged or not. Past this
    /// count the usual rule merges again, so a huge build's segment count stays bounded. Not stored.
    public var mergeFreeSegments: Int?

    struct Location: Equatable {
        var segment: Int32
        var row: Int32
    }

    /// Live documents.
    public var documentCount: Int { segments.reduce(0) { $0 + $1.documentCount - (dead[$1.record.number]?.count ?? 0) } }
    /// Dimension of the vectors.
    public var dimension: Int { manifest.dim }
    /// The settings the index was created with.
    public var config: PlaidConfig { manifest.config }
    /// Number of centroids of the current codec.
    public var centroidCount: Int { manifest.centroidCount }
    /// Number of segment files (for tests and diagnostics).
    public var segmentCount: Int { segments.count }
    /// Bytes of the stored exact-stage centroid tables (a function of the centroids alone; 0 without them).
    public var exactCentroidBytes: Int { manifest.exactCentroids?.file.size ?? 0 }
    /// Bytes of all files the manifest names.
    public var bytesOnDisk: Int {
        manifest.segments.reduce(manifest.codec.size) { $0 + $1.file.size } + (manifest.tombstones?.size ?? 0)
            + exactCentroidBytes
    }
    /// Live tokens the index held when its codec was last trained.
    public var tokensAtTraining: Int { manifest.tokensAtTraining }
    /// Live document ids.
    public var documentIDs: [Int64] { Array(location.keys) }

    private init(directory: URL, manifest: Manifest, codec: ResidualCodec, segments: [Segment], dead: [Int: DeadRows],
                 location: [Int64: Location]?) {
        self.directory = directory
        self.manifest = manifest
        self.codec = codec
        self.segments = segments
        self.dead = dead
        self.locationCache = location
    }

    /// Where each live document is; a document id live twice means a damaged index.
    private static func locations(of segments: [Segment], dead: [Int: DeadRows], duplicate: ((Segment, Int64) throws -> Void)? = nil)
        rethrows -> [Int64: Location] {
        var location: [Int64: Location] = [:]
        location.reserveCapacity(segments.reduce(0) { $0 + $1.documentCount })
        for segment in segments {
            let deadRows = dead[segment.record.number]
            let number = Int32(segment.record.number)
            for row in 0..<segment.documentCount where !(deadRows?.contains(row) ?? false) {
                let id = segment.ids[row]
                if location.updateValue(Location(segment: number, row: Int32(row)), forKey: id) != nil {
                    try duplicate?(segment, id)
                }
            }
        }
        return location
    }

    // MARK: create and open

    /// Builds a new index in `directory` (created if needed; an index already there is replaced).
    /// The codec trains on a strided sample of `config.trainingDocuments` documents. With a `plan` (a
    /// build that streams the rest of its documents in with `append`), K is chosen for the planned
    /// totals instead of `documents` alone, and the retraining growth counts from the planned tokens.
    public static func create(at directory: URL, documents: [(id: Int64, vectors: HostMatrix)], config: PlaidConfig = PlaidConfig(),
                              backend: (any Backend)?, plan: CodecPlan? = nil) throws -> PlaidIndex {
        guard PlaidConfig.supportedBits.contains(config.nbits) else {
            throw PlaidError.invalidInput("nbits must be 1, 2, 4 or 8, got \(config.nbits)")
        }
        guard !documents.isEmpty else { throw PlaidError.invalidInput("an index needs at least one document to train its codec") }
        let dim = documents[0].vectors.cols
        var stages = StageClock()
        try validate(documents, dim: dim, existing: nil)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw PlaidError.io(file: directory.path, reason: error.localizedDescription)
        }
        let tokens = documents.reduce(0) { $0 + $1.vectors.rows }
        stages.lap("validate")
        var codec = trainCodec(documents: documents.count, tokens: tokens, vectors: { documents[$0].vectors.values }, dim: dim,
                               config: config, backend: backend, stages: &stages, plan: plan)
        let previous = try? Manifest.load(from: directory)
        var number = (previous?.nextFileNumber ?? 1)
        removeUnreferencedFiles(in: directory, keeping: previous?.referencedFiles ?? [Manifest.fileName])
        let codecRecord = try writeCodec(codec, number: number, to: directory)
        number += 1
        var exactRecord: ExactCentroidsRecord?
        if storesExactCentroids(codec) {
            // Kept with the codec: the encode below stores each token's norm from them.
            let tables = ExactCentroids(codec: codec)
            exactRecord = try writeExactCentroids(tables, codec: codec, codecName: codecRecord.name, number: number, to: directory)
            codec.exactCentroids = tables
            number += 1
        }
        let encoded = encode(documents, codec: codec, backend: backend)
        stages.lap("encode (assign + quantize)")
        let segmentRecord = try Segment.write(encoded, number: number, centroidCount: codec.centroidCount, to: directory)
        number += 1
        stages.lap("IVF + write")
        let manifest = Manifest(formatVersion: IndexFiles.formatVersion, generation: (previous?.generation ?? 0) + 1, dim: dim,
                                centroidCount: codec.centroidCount, config: config, codec: codecRecord, segments: [segmentRecord],
                                tombstones: nil, nextFileNumber: number, tokensAtTraining: max(encoded.tokens, plan?.tokens ?? 0),
                                exactCentroids: exactRecord)
        FaultInjection.hit("create-before-manifest")
        try manifest.commit(to: directory, written: [codecRecord.name, segmentRecord.file.name] + (exactRecord.map { [$0.file.name] } ?? []))
        stages.lap("commit (fsync)")
        removeUnreferencedFiles(in: directory, keeping: manifest.referencedFiles)
        let index = try open(at: directory, verification: .changedFiles)
        stages.lap("open")
        index.buildStages = stages.laps
        index.buildStagesCPU = stages.cpuLaps
        return index
    }

    /// Opens an index, memory-mapping its files. The manifest (checksummed), every file's header and
    /// size are always checked; `verification` says which files also get their checksum and structure
    /// checked (by default those changed since the index wrote them, so opening an untouched index
    /// costs the same at any size). A missing, truncated or damaged file throws `PlaidError.corrupt`
    /// (`needsRebuild`).
    public static func open(at directory: URL, verification: PlaidVerification = .changedFiles) throws -> PlaidIndex {
        let manifest = try Manifest.load(from: directory)
        var codec = try readCodec(manifest, directory: directory, verification: verification)
        codec.exactCentroids = readExactCentroids(manifest, codec: codec, directory: directory, verification: verification)
        var segments: [Segment] = []
        for record in manifest.segments {
            segments.append(try Segment(directory: directory, record: record, centroidCount: manifest.centroidCount,
                                        bytesPerToken: codec.bytesPerToken, verification: verification))
        }
        let dead = try readTombstones(manifest, segments: segments, directory: directory, verification: verification)
        var location: [Int64: Location]?
        if verification == .full {
            location = try locations(of: segments, dead: dead) { segment, id in
                throw PlaidError.corrupt(file: directory.appendingPathComponent(segment.record.file.name).path,
                                         reason: "document id \(id) is live twice")
            }
        }
        return PlaidIndex(directory: directory, manifest: manifest, codec: codec, segments: segments, dead: dead, location: location)
    }

    /// Opens an index checking every file's checksum (`true`) or only structure (`false`).
    public static func open(at directory: URL, verifyChecksums: Bool) throws -> PlaidIndex {
        try open(at: directory, verification: verifyChecksums ? .full : .structure)
    }

    /// Checks every file of the index against its checksum and structure (`colgrep status --verify`).
    public static func verify(at directory: URL) throws {
        _ = try open(at: directory, verification: .full)
    }

    // MARK: updates

    /// Adds documents with the frozen codec (an id already present is replaced). When the index has
    /// grown `config.retrainGrowthFactor` times since the codec was trained, the codec is retrained on
    /// a sample of the whole index and every document re-encoded.
    public func append(_ documents: [(id: Int64, vectors: HostMatrix)], backend: (any Backend)?) throws {
        guard !documents.isEmpty else { return }
        var stages = StageClock()
        try Self.validate(documents, dim: manifest.dim, existing: nil)
        try write(documents, encoded: nil, backend: backend, stages: &stages)
    }

    /// Documents encoded by the codec named `codecName` (`StreamedIndexBuilder` encodes a cold build's next
    /// group with a copy of the codec while this index writes the group before).
    struct EncodedAppend: @unchecked Sendable {
        var codecName: String
        var encoded: EncodedDocuments
    }

    /// This index's codec and its file name, for encoding outside a write (`EncodedAppend`). Read it only
    /// while no write runs.
    var codecForEncoding: (codec: ResidualCodec, name: String) { (codec, manifest.codec.name) }

    /// The write half of `append` (validated documents): `encoded` holds them already encoded, used when
    /// its codec is still this index's (a retrain in between re-encodes them here).
    func write(_ documents: [(id: Int64, vectors: HostMatrix)], encoded ready: EncodedAppend?, backend: (any Backend)?,
               stages: inout StageClock) throws {
        Self.removeUnreferencedFiles(in: directory, keeping: manifest.referencedFiles)
        var newDead = dead
        for place in locate(documents.map(\.id)).values { markDead(place, in: &newDead) }
        let addedTokens = documents.reduce(0) { $0 + $1.vectors.rows }
        let liveTokens = self.liveTokens(dead: newDead) + addedTokens
        if config.retrainGrowthFactor > 0, Double(liveTokens) >= config.retrainGrowthFactor * Double(manifest.tokensAtTraining) {
            try retrain(adding: documents, dead: newDead, backend: backend)
            stages.lap("retrain (k-means + re-encode every document)")
            writeStages = stages.laps
            return
        }
        var next = manifest.nextFileNumber
        stages.lap("validate + locate replaced ids")
        let encoded: EncodedDocuments
        if let ready, ready.codecName == manifest.codec.name {
            encoded = ready.encoded
        } else {
            encoded = Self.encode(documents, codec: codec, backend: backend)
            stages.lap("encode (assign + quantize)")
        }
        let record = try Segment.write(encoded, number: next, centroidCount: codec.centroidCount, to: directory)
        next += 1
        FaultInjection.hit("append-after-segment")
        let segment = try Segment(directory: directory, record: record, centroidCount: codec.centroidCount,
                                  bytesPerToken: codec.bytesPerToken, verification: .changedFiles)
        stages.lap("segment write")
        try commit(segments: segments + [segment], dead: newDead, nextFileNumber: next, written: [record.file.name], stages: &stages)
        writeStages = stages.laps
    }

    /// Deletes documents by id (unknown ids are ignored).
    public func delete(ids: Set<Int64>) throws {
        var newDead = dead
        var changed = false
        for place in locate(Array(ids)).values {
            markDead(place, in: &newDead)
            changed = true
        }
        guard changed else { return }
        Self.removeUnreferencedFiles(in: directory, keeping: manifest.referencedFiles)
        var stages = StageClock()
        try commit(segments: segments, dead: newDead, nextFileNumber: manifest.nextFileNumber, written: [], stages: &stages)
        writeStages = stages.laps
    }

    /// Where those of `ids` that are live are: from the location map when it is built (or many ids are
    /// asked), else by one pass over the segments' id arrays against the sorted ids, which for an
    /// update of a few documents costs far less than building the map of the whole index.
    func locate(_ ids: [Int64]) -> [Int64: Location] {
        locationLock.lock()
        let cached = locationCache
        locationLock.unlock()
        if cached != nil || ids.count > 1024 {
            let map = cached ?? location
            var found: [Int64: Location] = [:]
            for id in ids { if let place = map[id] { found[id] = place } }
            return found
        }
        let wanted = ids.sorted()
        guard let low = wanted.first, let high = wanted.last else { return [:] }
        var found: [Int64: Location] = [:]
        for segment in segments {
            let deadRows = dead[segment.record.number]
            let number = Int32(segment.record.number)
            for row in 0..<segment.documentCount {
                let id = segment.ids[row]
                guard id >= low, id <= high, Self.sortedContains(wanted, id), !(deadRows?.contains(row) ?? false) else { continue }
                found[id] = Location(segment: number, row: Int32(row))
            }
        }
        return found
    }

    private static func sortedContains(_ values: [Int64], _ value: Int64) -> Bool {
        var low = 0, high = values.count
        while low < high {
            let mid = (low + high) / 2
            if values[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low < values.count && values[low] == value
    }

    private func markDead(_ place: Location, in dead: inout [Int: DeadRows]) {
        let number = Int(place.segment)
        guard let segment = segments.first(where: { $0.record.number == number }) else { return }
        var rows = dead[number] ?? DeadRows(rows: segment.documentCount)
        rows.insert(Int(place.row))
        dead[number] = rows
    }

    private func liveTokens(dead: [Int: DeadRows]) -> Int {
        segments.reduce(0) { $0 + $1.record.tokens - deadTokens($1, dead[$1.record.number]) }
    }

    private func deadTokens(_ segment: Segment, _ rows: DeadRows?) -> Int {
        guard let rows, rows.count > 0 else { return 0 }
        var total = 0
        rows.forEach { total += segment.tokenRange($0).count }
        return total
    }

    /// Merges and compacts segments, writes tombstones and the manifest (the commit point), then
    /// adopts the new state and removes files no longer referenced.
    private func commit(segments proposed: [Segment], dead proposedDead: [Int: DeadRows], nextFileNumber: Int,
                        written alreadyWritten: [String], stages: inout StageClock) throws {
        var segments = proposed
        var dead = proposedDead
        var next = nextFileNumber
        var written = alreadyWritten
        // Log-structured merging: while the newest segment is at least half the size of the one before
        // it, merge the two; and rewrite any segment whose dead share is too high.
        func live(_ s: Segment) -> Int { s.record.tokens - deadTokens(s, dead[s.record.number]) }
        var merges: [[Segment]] = []
        while segments.count >= 2, segments.count > (mergeFreeSegments ?? 0),
              live(segments[segments.count - 2]) <= 2 * live(segments[segments.count - 1]),
              mergeCeiling.map({ live(segments[segments.count - 2]) + live(segments[segments.count - 1]) <= $0 }) ?? true {
            let pair = [segments[segments.count - 2], segments[segments.count - 1]]
            segments.removeLast(2)
            segments.append(try merge(pair, dead: &dead, next: &next, written: &written))
            merges.append(pair)
        }
        for (i, segment) in segments.enumerated() {
            let deadRows = dead[segment.record.number]?.count ?? 0
            if deadRows > 0, Double(deadRows) > config.compactionDeadShare * Double(segment.documentCount) {
                segments[i] = try merge([segment], dead: &dead, next: &next, written: &written)
            }
        }
        segments.removeAll { $0.documentCount == 0 }
        var manifest = self.manifest
        var codec = self.codec
        if Self.storesExactCentroids(codec), codec.exactCentroids == nil {
            // An index written before it stored the exact stage's tables (or whose tables could not be
            // trusted): stored once now, so that later searches map them instead of building them.
            let tables = ExactCentroids(codec: codec)
            manifest.exactCentroids = try Self.writeExactCentroids(tables, codec: codec, codecName: manifest.codec.name, number: next, to: directory)
            codec.exactCentroids = tables
            next += 1
            written.append(manifest.exactCentroids!.file.name)
            stages.lap("exact-stage tables")
        }
        manifest.generation += 1
        manifest.segments = segments.map(\.record)
        manifest.tombstones = try writeTombstones(dead, segments: segments, number: &next, written: &written)
        manifest.nextFileNumber = next
        stages.lap("merges + tombstones")
        FaultInjection.hit("before-manifest")
        try manifest.commit(to: directory, written: written)
        stages.lap("commit (fsync data + manifest, rename, fsync directory)")
        FaultInjection.hit("after-manifest")
        adopt(manifest: manifest, codec: codec, segments: segments, dead: dead)
        Self.removeUnreferencedFiles(in: directory, keeping: manifest.referencedFiles)
        stages.lap("adopt + clean up")
    }

    /// Rewrites `parts` (in order) as one segment without their dead rows.
    private func merge(_ parts: [Segment], dead: inout [Int: DeadRows], next: inout Int, written: inout [String]) throws -> Segment {
        var documents = EncodedDocuments()
        for part in parts {
            part.copyLive(into: &documents, dead: dead[part.record.number], bytesPerToken: codec.bytesPerToken)
            dead[part.record.number] = nil
        }
        let record = try Segment.write(documents, number: next, centroidCount: codec.centroidCount, to: directory)
        next += 1
        written.append(record.file.name)
        return try Segment(directory: directory, record: record, centroidCount: codec.centroidCount,
                           bytesPerToken: codec.bytesPerToken, verification: .changedFiles)
    }

    private func adopt(manifest: Manifest, codec: ResidualCodec, segments: [Segment], dead: [Int: DeadRows]) {
        let vanished = self.segments.filter { old in !segments.contains { $0.record.number == old.record.number } }
        let previous = Set(self.segments.map { $0.record.number })
        self.manifest = manifest
        self.codec = codec
        self.segments = segments
        self.dead = dead
        locationLock.lock()
        defer { locationLock.unlock() }
        // Not built yet: it will be built from the new state when first needed. Taken out of the
        // cache while it changes, so the changes happen in place (no copy of the whole map).
        guard var location = locationCache else { return }
        locationCache = nil
        defer { locationCache = location }
        // Locations: drop documents of vanished segments (merged ones: small, by the merge policy),
        // then index new segments and dead rows.
        for segment in vanished {
            let number = Int32(segment.record.number)
            for row in 0..<segment.documentCount where location[segment.ids[row]]?.segment == number {
                location[segment.ids[row]] = nil
            }
        }
        for segment in segments where !previous.contains(segment.record.number) {
            let deadRows = dead[segment.record.number]
            for row in 0..<segment.documentCount where !(deadRows?.contains(row) ?? false) {
                location[segment.ids[row]] = Location(segment: Int32(segment.record.number), row: Int32(row))
            }
        }
        for (number, rows) in dead {
            guard let segment = segments.first(where: { $0.record.number == number }) else { continue }
            rows.forEach { row in
                let id = segment.ids[row]
                if location[id] == Location(segment: Int32(number), row: Int32(row)) { location[id] = nil }
            }
        }
    }

    /// Retrains the codec on a sample of the live documents (decoded) and the new ones, and
    /// re-encodes everything into one segment.
    private func retrain(adding documents: [(id: Int64, vectors: HostMatrix)], dead: [Int: DeadRows], backend: (any Backend)?) throws {
        let replaced = Set(documents.map(\.id))
        var sources: [(segment: Segment, row: Int)] = []
        for segment in segments {
            let rows = dead[segment.record.number]
            for row in 0..<segment.documentCount where !(rows?.contains(row) ?? false) && !replaced.contains(segment.ids[row]) {
                sources.append((segment, row))
            }
        }
        let total = sources.count + documents.count
        let oldCodec = codec
        func vectors(_ i: Int) -> [Float] {
            i < sources.count ? oldCodec.decodeDocument(sources[i].segment, row: sources[i].row) : documents[i - sources.count].vectors.values
        }
        let dim = manifest.dim
        let tokens = sources.reduce(0) { $0 + $1.segment.tokenRange($1.row).count } + documents.reduce(0) { $0 + $1.vectors.rows }
        var stages = StageClock()
        var newCodec = Self.trainCodec(documents: total, tokens: tokens, vectors: vectors, dim: dim, config: config, backend: backend,
                                       stages: &stages)
        var next = manifest.nextFileNumber
        let codecRecord = try Self.writeCodec(newCodec, number: next, to: directory)
        next += 1
        var exactRecord: ExactCentroidsRecord?
        if Self.storesExactCentroids(newCodec) {
            // Kept with the codec, so the next commit of this instance sees them stored.
            let tables = ExactCentroids(codec: newCodec)
            exactRecord = try Self.writeExactCentroids(tables, codec: newCodec, codecName: codecRecord.name, number: next, to: directory)
            newCodec.exactCentroids = tables
            next += 1
        }
        var encoded = EncodedDocuments()
        let batch = 4096
        var start = 0
        while start < total {
            let end = min(total, start + batch)
            var chunk: [(id: Int64, vectors: HostMatrix)] = []
            for i in start..<end {
                let id = i < sources.count ? sources[i].segment.ids[sources[i].row] : documents[i - sources.count].id
                let values = vectors(i)
                chunk.append((id, HostMatrix(rows: values.count / dim, cols: dim, values: values)))
            }
            let part = Self.encode(chunk, codec: newCodec, backend: backend)
            encoded.ids.append(contentsOf: part.ids)
            let base = UInt64(encoded.codes.count)
            encoded.offsets.append(contentsOf: part.offsets.dropFirst().map { $0 + base })
            encoded.codes.append(contentsOf: part.codes)
            encoded.residuals.append(contentsOf: part.residuals)
            encoded.inverseNorms.append(contentsOf: part.inverseNorms)
            start = end
        }
        let record = try Segment.write(encoded, number: next, centroidCount: newCodec.centroidCount, to: directory)
        next += 1
        var manifest = self.manifest
        manifest.generation += 1
        manifest.centroidCount = newCodec.centroidCount
        manifest.codec = codecRecord
        manifest.exactCentroids = exactRecord
        manifest.segments = [record]
        manifest.tombstones = nil
        manifest.nextFileNumber = next
        manifest.tokensAtTraining = encoded.tokens
        FaultInjection.hit("retrain-before-manifest")
        try manifest.commit(to: directory, written: [codecRecord.name, record.file.name] + (exactRecord.map { [$0.file.name] } ?? []))
        let segment = try Segment(directory: directory, record: record, centroidCount: newCodec.centroidCount,
                                  bytesPerToken: newCodec.bytesPerToken, verification: .changedFiles)
        locationLock.lock()
        locationCache = nil
        locationLock.unlock()
        self.segments = []
        adopt(manifest: manifest, codec: newCodec, segments: [segment], dead: [:])
        Self.removeUnreferencedFiles(in: directory, keeping: manifest.referencedFiles)
    }

    // MARK: helpers

    static func validate(_ documents: [(id: Int64, vectors: HostMatrix)], dim: Int, existing: Set<Int64>?) throws {
        guard dim > 0, dim % 8 == 0 else { throw PlaidError.invalidInput("vector dimension must be a positive multiple of 8, got \(dim)") }
        var seen = Set<Int64>()
        seen.reserveCapacity(documents.count)
        // Through the buffer: iterating the array copied each element (a retain and a release of its vectors,
        // ~15 ms of one thread for 100k documents).
        try documents.withUnsafeBufferPointer { buffer in
            for i in buffer.indices {
                let id = buffer[i].id, cols = buffer[i].vectors.cols, rows = buffer[i].vectors.rows
                guard seen.insert(id).inserted else { throw PlaidError.invalidInput("document id \(id) appears twice") }
                guard cols == dim else { throw PlaidError.invalidInput("document \(id) has \(cols)-d vectors, the index holds \(dim)-d") }
                guard rows > 0 else { throw PlaidError.invalidInput("document \(id) has no vectors") }
            }
        }
        if let bad = firstNonFinite(documents) {
            throw PlaidError.invalidInput("document \(documents[bad].id) has a non-finite value")
        }
    }

    /// The position of the first document holding a NaN or an infinity (nil: none), checked on every core
    /// with a test the compiler vectorises: a cold build's appends check every pooled vector, and a
    /// per-value `isFinite` loop with an early exit cost ~1 ns a value (1.4 s of 16 s of appends for 7M
    /// 384-d vectors on 16 cores).
    static func firstNonFinite(_ documents: [(id: Int64, vectors: HostMatrix)]) -> Int? {
        let workers = min(UsableCores.count, max(1, documents.count / 16))
        let found = LockedFirst()
        let check: @Sendable (Int) -> Void = { worker in
            for index in stride(from: worker, to: documents.count, by: workers) where !allFinite(documents[index].vectors.values) {
                found.offer(index)
                return
            }
        }
        if workers == 1 { check(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: check) }
        return found.value
    }

    /// Whether no value is a NaN or an infinity: their exponent bits are all ones, and only then does
    /// adding 1 to the exponent field carry into the sign bit — an OR-reduction over integers, no branch.
    static func allFinite(_ values: [Float]) -> Bool {
        values.withUnsafeBufferPointer { buffer in
            var carried: UInt32 = 0
            for value in buffer { carried |= (value.bitPattern & 0x7F80_0000) &+ 0x0080_0000 }
            return carried & 0x8000_0000 == 0
        }
    }

    /// Trains a codec for `documents` documents holding `tokens` vectors: K by the reference formula
    /// (capped) — over the planned totals when a plan is given —, k-means on a strided sample of documents.
    static func trainCodec(documents: Int, tokens: Int, vectors: (Int) -> [Float], dim: Int, config: PlaidConfig,
                           backend: (any Backend)?, stages: inout StageClock, plan: CodecPlan? = nil) -> ResidualCodec {
        let sized = plan.map { (tokens: max($0.tokens, tokens), documents: max($0.documents, documents)) } ?? (tokens: tokens, documents: documents)
        let k = min(PlaidConfig.centroidCount(trainingTokens: sized.tokens, trainingDocuments: sized.documents), max(1, config.maxCentroids))
        let average = max(1, tokens / max(1, documents))
        let wanted = max(config.trainingDocuments, (k * max(1, config.maxPointsPerCentroid) + average - 1) / average)
        let sampleCount = min(documents, max(1, wanted))
        let chosen = (0..<sampleCount).map { vectors($0 * documents / sampleCount) }
        var starts = [Int](repeating: 0, count: sampleCount + 1)
        for (i, values) in chosen.enumerated() { starts[i + 1] = starts[i] + values.count }
        let total = starts[sampleCount], offsets = starts
        // Copied on every core: a 100k-unit 48-d build's sample (262k vectors, 50 MB) took one thread ~0.1 s,
        // serial time in a build whose goal is 1.2 s on 2 threads. The same floats in the same order.
        let sample = [Float](unsafeUninitializedCapacity: max(1, total)) { buffer, initialized in
            let output = UnsafeMutableSendablePointer(buffer.baseAddress!)
            let parts = total >= 1 << 20 ? min(UsableCores.count, 16, sampleCount) : 1
            let bounds = (0...parts).map { sampleCount * $0 / parts }
            let copy: @Sendable (Int) -> Void = { part in
                for i in bounds[part]..<bounds[part + 1] {
                    chosen[i].withUnsafeBufferPointer { (output.pointer + offsets[i]).initialize(from: $0.baseAddress!, count: $0.count) }
                }
            }
            if parts == 1 { copy(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: copy) }
            initialized = total
        }
        stages.lap("training sample")
        return ResidualCodec.train(sample: sample, k: k, dim: dim, config: config, backend: backend, stages: &stages)
    }

    /// Encodes documents in batches (about 256k tokens for a device, fewer on the CPU; each batch copied into one
    /// contiguous buffer, then assigned and quantised straight into the result's arrays).
    static func encode(_ documents: [(id: Int64, vectors: HostMatrix)], codec: ResidualCodec, backend: (any Backend)?,
                       assigner: CentroidAssigner? = nil, staging reusable: EncodeStaging? = nil,
                       times: UnsafeMutablePointer<CodecEncodeTimes>? = nil) -> EncodedDocuments {
        let totalTokens = documents.reduce(0) { $0 + $1.vectors.rows }
        let assigner = assigner ?? codec.makeAssigner(forRows: totalTokens)
        var result = EncodedDocuments()
        let bytes = codec.bytesPerToken
        result.ids = documents.map(\.id)
        result.offsets.reserveCapacity(documents.count + 1)
        for document in documents { result.offsets.append(result.offsets[result.offsets.count - 1] + UInt64(document.vectors.rows)) }
        let dim = codec.dim
        // Every code and every residual byte is written below (whole bytes per token when `dim · nbits` is a
        // multiple of 8, as every model's is), so none is zeroed first: zero-filling these and the staging
        // buffer (~0.5 GB a 384-d group) took most of a group's encode on the cold build's vector lane
        // (route-2: 4.8 s of encode laps against 0.9 s of gather + assign + quantize).
        let written = dim * codec.nbits % 8 == 0
        result.codes = [UInt16](unsafeUninitializedCapacity: totalTokens) { _, count in count = totalTokens }
        result.residuals = written
            ? [UInt8](unsafeUninitializedCapacity: totalTokens * bytes) { _, count in count = totalTokens * bytes }
            : [UInt8](repeating: 0, count: totalTokens * bytes)
        // Every token's norm is written by its chunk's encode.
        result.inverseNorms = [Float](unsafeUninitializedCapacity: totalTokens) { _, count in count = totalTokens }
        // Staging is only ever read where `gather` wrote it first; a cold build passes one it reuses for every
        // group (no fresh half-gigabyte of pages to fault in per 384-d group). Batches are cut by `capacity`,
        // not by the buffer's size (a reused one may be larger), so they stay the same.
        // Tokens per batch: a device's assignment wants large batches (fewer uploads and round trips); the CPU's
        // 4,096-row chunks only need enough of them to keep every core busy, and a small staging buffer is faulted in
        // once and stays in cache (a 48-d build's 63 MB one cost ~2 % of its CPU zeroing fresh pages, 2-core box).
        let batchTokens = backend == nil ? min(262_144, max(16_384, CentroidAssigner.chunkRows * UsableCores.count * 4)) : 262_144
        let capacity = min(totalTokens, batchTokens + batchTokens / 4) * dim
        let buffer = reusable.map { $0.reserve(floats: capacity) } ?? EncodeStaging(floats: capacity)
        var start = 0
        var tokenStart = 0
        result.codes.withUnsafeMutableBufferPointer { codes in
            result.residuals.withUnsafeMutableBufferPointer { residuals in
                result.inverseNorms.withUnsafeMutableBufferPointer { norms in
                    do {
                        let staging = buffer.floats.baseAddress!
                        while start < documents.count {
                            var end = start
                            var tokens = 0
                            while end < documents.count, tokens < batchTokens {
                                let rows = documents[end].vectors.rows
                                if tokens > 0, (tokens + rows) * dim > capacity { break }
                                end += 1
                                tokens += rows
                            }
                            // One document longer than the staging buffer is encoded from its own storage.
                            if end == start + 1, tokens * dim > capacity {
                                documents[start].vectors.values.withUnsafeBufferPointer { v in
                                    codec.encode(v.baseAddress!, count: tokens, assigner: assigner, backend: backend,
                                                 codes: codes.baseAddress! + tokenStart, residuals: residuals.baseAddress! + tokenStart * bytes,
                                                 inverseNorms: norms.baseAddress! + tokenStart, times: times)
                                }
                            } else {
                                let gather = ContinuousClock.now
                                Self.gather(documents[start..<end], into: staging, floats: tokens * dim)
                                times?.pointee.gatherSeconds += (ContinuousClock.now - gather).seconds
                                codec.encode(staging, count: tokens, assigner: assigner, backend: backend,
                                             codes: codes.baseAddress! + tokenStart, residuals: residuals.baseAddress! + tokenStart * bytes,
                                             inverseNorms: norms.baseAddress! + tokenStart, times: times)
                            }
                            tokenStart += tokens
                            start = end
                        }
                    }
                }
            }
        }
        return result
    }

    /// The staging buffer of `encode`, which a caller encoding many groups (a cold build) keeps and passes to
    /// every call. Not thread-safe: one encode at a time.
    final class EncodeStaging: @unchecked Sendable {
        private(set) var floats: UnsafeMutableBufferPointer<Float>

        init(floats count: Int = 0) { floats = .allocate(capacity: max(1, count)) }
        deinit { floats.deallocate() }

        /// Grows to at least `count` floats (contents not kept); returns self.
        func reserve(floats count: Int) -> EncodeStaging {
            if floats.count < count {
                floats.deallocate()
                floats = .allocate(capacity: count)
            }
            return self
        }
    }

    /// Copies the documents' vectors end to end into `destination` (`floats` in all): on every core for a
    /// large batch (a 384-d batch of 256k tokens is 400 MB, which one thread copied in ~80 ms per batch on the
    /// cold build's vector lane), in order on this thread for a small one.
    static func gather(_ documents: ArraySlice<(id: Int64, vectors: HostMatrix)>, into destination: UnsafeMutablePointer<Float>, floats: Int) {
        let parts = floats >= 1 << 20 ? min(UsableCores.count, 16, documents.count) : 1
        guard parts > 1 else {
            var position = 0
            for document in documents {
                document.vectors.values.withUnsafeBufferPointer { v in
                    (destination + position).update(from: v.baseAddress!, count: v.count)
                    position += v.count
                }
            }
            return
        }
        // Each part copies a run of whole documents to where the documents before them end.
        let first = documents.startIndex
        var offsets = [Int](repeating: 0, count: documents.count + 1)
        for (k, document) in documents.enumerated() { offsets[k + 1] = offsets[k] + document.vectors.values.count }
        let starts = offsets
        let output = UnsafeMutableSendablePointer(destination)
        let bounds = (0...parts).map { p in documents.count * p / parts }
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            for k in bounds[p]..<bounds[p + 1] {
                documents[first + k].vectors.values.withUnsafeBufferPointer { v in
                    (output.pointer + starts[k]).update(from: v.baseAddress!, count: v.count)
                }
            }
        }
    }

    /// Whether an index stores the exact stage's int16 centroid tables for its codec: 1, 2 and 4 bits
    /// (the 8-bit kernel reads the float centroids).
    static func storesExactCentroids(_ codec: ResidualCodec) -> Bool { codec.nbits != 8 }

    static func writeCodec(_ codec: ResidualCodec, number: Int, to directory: URL) throws -> FileRecord {
        // Sections 3–5 (group centres, offsets, members) are optional: readers of indexes written
        // before them read sections 0–2 only, and an index without them assigns exhaustively.
        var sections = [codec.centroids.withUnsafeBufferPointer { Data(buffer: $0) }, IndexFiles.data(codec.cutoffs),
                        IndexFiles.data(codec.weights)]
        if let groups = codec.groups {
            sections += [IndexFiles.data(groups.centers), IndexFiles.data(groups.offsets), IndexFiles.data(groups.members)]
        }
        return try IndexFiles.writeSectioned(kind: .codec, sections: sections,
                                             to: directory.appendingPathComponent(String(format: "codec-%08d.plaid", number)))
    }

    static func readCodec(_ manifest: Manifest, directory: URL, verification: PlaidVerification) throws -> ResidualCodec {
        let url = directory.appendingPathComponent(manifest.codec.name)
        let file = try SectionedFile(url: url, kind: .codec, record: manifest.codec, verification: verification)
        let buckets = 1 << manifest.config.nbits
        // The centroids stay in the mapping (12.5 MB at K = 8,192, 384-d: a copy cost every search ~5 ms).
        let centroids = FloatRows(mapped: try file.array(0, of: Float.self, count: manifest.centroidCount * manifest.dim), owner: file.file)
        let cutoffs = Array(try file.array(1, of: Float.self, count: buckets - 1))
        let weights = Array(try file.array(2, of: Float.self, count: buckets))
        // A trusted file holds what was written and checked then; scanning its 12 MB of centroids again
        // would cost every one-shot search several milliseconds.
        guard file.trusted || (centroids.allSatisfy(\.isFinite) && cutoffs.allSatisfy(\.isFinite) && weights.allSatisfy(\.isFinite)
                               && zip(cutoffs, cutoffs.dropFirst()).allSatisfy({ $0 <= $1 })) else {
            throw PlaidError.corrupt(file: url.path, reason: "codec holds non-finite or unordered values")
        }
        var groups: CentroidGroups?
        if file.sections.count >= 6 {
            let offsetCount = file.sections[4].count / 4
            guard offsetCount >= 2 else { throw PlaidError.corrupt(file: url.path, reason: "codec holds an empty centroid group table") }
            let offsets = Array(try file.array(4, of: Int32.self, count: offsetCount))
            let centers = Array(try file.array(3, of: Float.self, count: (offsetCount - 1) * manifest.dim))
            let members = Array(try file.array(5, of: Int32.self, count: manifest.centroidCount))
            let candidate = CentroidGroups(centers: centers, offsets: offsets, members: members)
            guard candidate.isValid(centroidCount: manifest.centroidCount, dim: manifest.dim) else {
                throw PlaidError.corrupt(file: url.path, reason: "codec holds an inconsistent centroid group table")
            }
            groups = candidate
        }
        return ResidualCodec(dim: manifest.dim, nbits: manifest.config.nbits, centroids: centroids, cutoffs: cutoffs, weights: weights,
                             groups: groups)
    }

    /// Writes the exact stage's int16 centroid tables of `codec` (1/2/4-bit codecs) as a file of their own,
    /// derived from the codec file named in the record, so that a search maps them instead of building
    /// them (~7 ms of CPU per one-shot search at K = 8,192, 384-d).
    static func writeExactCentroids(_ tables: ExactCentroids, codec: ResidualCodec, codecName: String, number: Int,
                                    to directory: URL) throws -> ExactCentroidsRecord {
        let file = try IndexFiles.writeSectioned(kind: .exactCentroids, sections: tables.sections(centroidCount: codec.centroidCount),
                                                 to: directory.appendingPathComponent(String(format: "exact-%08d.plaid", number)))
        return ExactCentroidsRecord(file: file, codec: codecName)
    }

    /// The stored exact-stage tables of the manifest's codec, or nil when there are none, they were made
    /// from another codec file, or their file is missing, damaged, not proven unchanged, of another layout
    /// version or shape: the search then builds them from the centroids (a derived file never fails an
    /// open, and the next write stores it again).
    static func readExactCentroids(_ manifest: Manifest, codec: ResidualCodec, directory: URL,
                                   verification: PlaidVerification) -> ExactCentroids? {
        guard storesExactCentroids(codec), let record = manifest.exactCentroids, record.codec == manifest.codec.name,
              let file = try? SectionedFile(url: directory.appendingPathComponent(record.file.name), kind: .exactCentroids, record: record.file,
                                            verification: verification),
              file.trusted else { return nil }
        return ExactCentroids.mapped(file.sections[...], centroidCount: codec.centroidCount, dim: codec.dim, owner: file.file)
    }

    /// Tombstones file: one section of (segment number, row) u32 pairs.
    private func writeTombstones(_ dead: [Int: DeadRows], segments: [Segment], number: inout Int,
                                 written: inout [String]) throws -> FileRecord? {
        // Unchanged tombstones keep their file.
        if dead == self.dead, let current = manifest.tombstones { return current }
        var pairs: [UInt32] = []
        for segment in segments {
            guard let rows = dead[segment.record.number], rows.count > 0 else { continue }
            rows.forEach { row in
                pairs.append(UInt32(segment.record.number))
                pairs.append(UInt32(row))
            }
        }
        guard !pairs.isEmpty else { return nil }
        let record = try IndexFiles.writeSectioned(kind: .tombstones, sections: [IndexFiles.data(pairs)],
                                                   to: directory.appendingPathComponent(String(format: "tombstones-%08d.plaid", number)))
        number += 1
        written.append(record.name)
        return record
    }

    static func readTombstones(_ manifest: Manifest, segments: [Segment], directory: URL,
                               verification: PlaidVerification) throws -> [Int: DeadRows] {
        guard let record = manifest.tombstones else { return [:] }
        let url = directory.appendingPathComponent(record.name)
        let file = try SectionedFile(url: url, kind: .tombstones, record: record, verification: verification)
        let count = file.sections.first.map { $0.count / 4 } ?? 0
        let pairs = try file.array(0, of: UInt32.self, count: count)
        guard count % 2 == 0 else { throw PlaidError.corrupt(file: url.path, reason: "odd number of values") }
        let sizes = Dictionary(uniqueKeysWithValues: segments.map { ($0.record.number, $0.documentCount) })
        var dead: [Int: DeadRows] = [:]
        for i in stride(from: 0, to: count, by: 2) {
            let number = Int(pairs[i]), row = Int(pairs[i + 1])
            guard let size = sizes[number], row < size else {
                throw PlaidError.corrupt(file: url.path, reason: "tombstone for a row that does not exist")
            }
            dead[number, default: DeadRows(rows: size)].insert(row)
        }
        return dead
    }

    /// Deletes files of this index that `keeping` does not name (earlier states, interrupted writers).
    static func removeUnreferencedFiles(in directory: URL, keeping: Set<String>) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for name in names where !keeping.contains(name) {
            let ours = name.hasSuffix(".plaid") || (name.hasPrefix(".") && name.hasSuffix(".tmp") && name.contains(".plaid."))
            if ours { try? FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
        }
    }
}

extension ResidualCodec {
    /// The reconstructed vectors of one stored document, row-major.
    func decodeDocument(_ segment: Segment, row: Int) -> [Float] {
        let range = segment.tokenRange(row)
        var out: [Float] = []
        out.reserveCapacity(range.count * dim)
        for t in range {
            out.append(contentsOf: decode(code: Int(segment.codes[t]), packed: segment.residuals.baseAddress! + t * bytesPerToken))
        }
        return out
    }
}

/// The smallest of the positions offered by concurrent workers.
private final class LockedFirst: @unchecked Sendable {
    private let lock = NSLock()
    private var smallest: Int?

    func offer(_ position: Int) {
        lock.lock()
        if smallest.map({ position < $0 }) ?? true { smallest = position }
        lock.unlock()
    }

    var value: Int? {
        lock.lock()
        defer { lock.unlock() }
        return smallest
    }
}
