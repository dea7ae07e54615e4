import CCUDA
import Dispatch
import Foundation
import Tensor

/// k-means with every vector in device memory (issue #7): the rows are copied up once on a stream and thread
/// of their own, starting before the host has drawn the training sample; the sample is gathered from them on
/// the device (`km_gather_rows`), Lloyd trains on it (`lloydOnDevice`), and the final assignment reads them
/// where they are, in passes that bound its scratch. Only centroids and one code per vector come back. Where the
/// assignment reads bf16 rows anyway (`residentRowFormat`), the rows are held as those: rounded on the host while
/// staged, half the bytes over the link and in device memory.
extension CUDABackend: ResidentKMeansBackend {
    /// `COLGREP_GPU_RESIDENT`: `0` keeps the chunked path everywhere (vectors streamed up for Lloyd's sample and again
    /// for the assignment), `all` holds rows of any width; by default rows up to `defaultResidentMaximumDim` wide, and
    /// rows held as bf16 up to `defaultBF16ResidentMaximumDim`.
    static let residentSetting = ProcessInfo.processInfo.environment["COLGREP_GPU_RESIDENT"] ?? ""
    /// Measured (docs/PERFORMANCE.md, session 10; one H200, 10M vectors, K = 32,768): at 48-d the resident path's first
    /// run is 0.293–0.318 s against main's 0.318–0.383; at 128-d its bulk assignment is bound by the tensor-core search
    /// (0.27 s of kernels), the copy of 5.12 GB did not finish behind Lloyd (0.07–0.11 s waited) and the first run was
    /// 0.695–0.750 s against main's 0.651–0.659, so wide fp32 rows keep main's chunked path.
    static let defaultResidentMaximumDim = 64
    /// Rows held as bf16 are held up to this width by default: the grouped search on tensor cores made the 128-d
    /// assignment's kernels short enough that streaming its rows bounded it, and bf16 rows (2.56 GB for 10M) can cross
    /// behind the sample and Lloyd.
    static let defaultBF16ResidentMaximumDim = 128
    /// `COLGREP_GPU_RESIDENT_BF16=0`: resident rows stay fp32 (for measuring).
    static let residentBF16Setting = ProcessInfo.processInfo.environment["COLGREP_GPU_RESIDENT_BF16"] != "0"
    static var initialResidentMaximumDim: Int {
        switch residentSetting {
        case "0": return 0
        case "all": return .max
        default: return defaultResidentMaximumDim
        }
    }

    /// Whether `dim`-wide rows are held on the device for their k-means run (when they fit).
    func holdsRowsResident(dim: Int) -> Bool {
        if dim <= residentMaximumDim { return true }
        return Self.residentSetting.isEmpty && dim <= Self.defaultBF16ResidentMaximumDim && residentRowFormat(dim: dim).isBF16
    }

    /// How resident rows are held: as the assignment's padded bf16 rows where it reads those (a bf16 build searching
    /// exhaustively, or grouped on tensor cores), else fp32.
    func residentRowFormat(dim: Int) -> StreamedRowFormat {
        guard Self.residentBF16Setting, precision == .bf16,
              maximumProbes(dim: dim, lloyd: false) == 0 || coarseToFineOnTensorCores(dim: dim) else { return .float32 }
        return .bf16(paddedDim: KMeansKernels.paddedDim(dim))
    }

    public func beginResidentRows(points: UnsafePointer<Float>, count: Int, dim: Int) throws -> (any ResidentKMeansRows)? {
        guard holdsRowsResident(dim: dim) else { return nil }
        try context.makeCurrent()
        let info = context.memoryInfo()
        guard ResidentRowsPlan(count: count, dim: dim, freeBytes: info.free, cachedBytes: pool.cachedBytes).fits,
              let staging = takeResidentStaging() else { return nil }
        let rows = try CUDAResidentRows(backend: self, points: points, count: count, dim: dim, format: residentRowFormat(dim: dim), staging: staging)
        growUploadStagingInBackground()
        return rows
    }

    /// Lloyd's sample crosses next, in pieces of `uploadStagingBytes` through the two upload buffers: they are grown to
    /// that size now, page-locked on another thread while the host draws the sample, instead of inside the sample's
    /// upload (~0.55 ms a MiB, ~11 ms for the two buffers the first time; session 30). `streamRows` and `uploadMatrix`
    /// wait for it; as before, the buffers have one user at a time (here the k-means run that is starting).
    func growUploadStagingInBackground() {
        guard uploadStaging.contains(where: { $0.capacity < uploadStagingBytes }) else { return }
        uploadStagingGrowth.enter()
        let job = StagingGrowth(buffers: uploadStaging, bytes: uploadStagingBytes, context: context, group: uploadStagingGrowth)
        DispatchQueue.global(qos: .userInitiated).async { job.run() }
    }

    /// The background copy's two pinned buffers (made on first use, kept for later runs), or nil while another
    /// run holds them (that run's caller then streams its rows).
    func takeResidentStaging() -> [PinnedBuffer]? {
        residentStagingLock.lock()
        defer { residentStagingLock.unlock() }
        if let staging = residentStaging {
            residentStaging = nil
            return staging
        }
        guard !residentStagingMade else { return nil }
        guard let made = try? [PinnedBuffer(context: context), PinnedBuffer(context: context)] else { return nil }
        residentStagingMade = true
        return made
    }

    func giveBackResidentStaging(_ staging: [PinnedBuffer]) {
        residentStagingLock.lock()
        residentStaging = staging
        residentStagingLock.unlock()
    }
}

/// One run's rows on the device, being copied or copied.
final class CUDAResidentRows: ResidentKMeansRows, @unchecked Sendable {
    let backend: CUDABackend
    let count: Int
    let dim: Int
    /// `count` rows in `format` (fp32 of `dim`, or bf16 of the padded width), filled by the copy stream; the compute
    /// stream waits for `uploaded` in `finishUpload`.
    let rows: CUDAMatrix
    let format: StreamedRowFormat
    /// Bytes of one row on the device.
    let rowBytes: Int
    private let stream: CUstream
    private let uploaded: CUevent
    private let done = DispatchSemaphore(value: 0)
    private var staging: [PinnedBuffer]?
    /// Written by the copy thread before it signals `done`, read after.
    private var copyError: (any Error)?
    private var finished = false
    private var finishError: (any Error)?
    /// The backend's `residentChunkBytes` when the copy began (read on the copy thread).
    private let chunkBytes: Int
    /// The assignment's passes over the rows, and an event per pass recorded on the copy stream once its rows are
    /// queued: a pass waits only for its own rows, so the end of the copy overlaps the assignment of what landed.
    let passes: [Range<Int>]
    private let passLanded: [CUevent]
    /// Passes whose event is recorded, and whether the copy thread has ended (guarded by `progress`).
    private var passesQueued = 0
    private var copyEnded = false
    private let progress = NSCondition()

    init(backend: CUDABackend, points: UnsafePointer<Float>, count: Int, dim: Int, format: StreamedRowFormat, staging: [PinnedBuffer]) throws {
        self.backend = backend
        self.count = count
        self.dim = dim
        self.format = format
        rowBytes = format.deviceRowBytes(dim: dim)
        chunkBytes = backend.residentChunkBytes
        passes = ResidentRowsPlan.passes(count: count, rowsPerPass: backend.residentRowsPerPass)
        let context = backend.context
        do {
            switch format {
            case .float32: rows = try backend.makeMatrix(rows: count, cols: dim, type: .float32)
            case .bf16(let paddedDim): rows = try backend.makeMatrix(rows: count, cols: paddedDim, type: .bfloat16)
            }
            var created: CUstream? = nil
            try context.check(context.driver.cuStreamCreate(&created, UInt32(CCUDA_STREAM_NON_BLOCKING)), "cuStreamCreate")
            stream = created!
        } catch {
            backend.giveBackResidentStaging(staging)
            throw error
        }
        var events: [CUevent] = []
        do {
            for _ in 0..<(passes.count + 1) { events.append(try context.makeEvent()) }
            // The pool hands out blocks in compute-stream order: the copy must not land before the compute stream's
            // earlier work on this block (a previous owner's) is done.
            try context.order(stream, after: context.computeStream, event: events[0])
        } catch {
            for event in events { _ = context.driver.cuEventDestroy(event) }
            _ = context.driver.cuStreamDestroy(stream)
            backend.giveBackResidentStaging(staging)
            throw error
        }
        uploaded = events[0]
        passLanded = Array(events.dropFirst())
        self.staging = staging
        // The copy thread: each chunk's host copy into one pinned buffer (split over the cores) overlaps the DMA
        // of the other; the caller meanwhile draws the sample on its own thread.
        let job = CopyJob(rows: self, source: UnsafeRawPointer(points), destination: rows.pointer)
        DispatchQueue.global(qos: .userInitiated).async { job.run() }
    }

    /// What the copy thread holds (the host rows stay valid until `finishUpload` has returned).
    private struct CopyJob: @unchecked Sendable {
        let rows: CUDAResidentRows
        let source: UnsafeRawPointer
        let destination: UInt64

        func run() {
            do {
                try rows.copy(from: source, to: destination)
            } catch {
                rows.copyError = error
            }
            rows.progress.lock()
            rows.copyEnded = true
            rows.progress.broadcast()
            rows.progress.unlock()
            rows.done.signal()
        }
    }

    private func copy(from source: UnsafeRawPointer, to destination: UInt64) throws {
        let context = backend.context
        try context.makeCurrent()
        // `COLGREP_KM_TRACE=1`: when the copy's last chunk was queued (whether it finishes behind Lloyd).
        let began = ContinuousClock.now
        defer {
            if KMeansStepTrace.enabled {
                FileHandle.standardError.write(Data(String(format: "km-trace resident copy n=%d queued in %.4f s\n", count,
                                                           KMeansStepTrace.seconds(ContinuousClock.now - began)).utf8))
            }
        }
        let plan = RowUploadPlan(count: count, rowBytes: dim * 4, chunkBytes: chunkBytes)
        let points = source.assumingMemoryBound(to: Float.self)
        for (index, chunk) in plan.chunks.enumerated() {
            let buffer = staging![index % 2]
            let offset = chunk.lowerBound * rowBytes, bytes = chunk.count * rowBytes
            let host = try buffer.acquire(bytes: bytes)  // waits for this buffer's previous DMA
            format.copy(points + chunk.lowerBound * dim, rows: chunk.count, dim: dim, into: host)
            try context.check(context.driver.cuMemcpyHtoDAsync(destination + UInt64(offset), host, bytes, stream), "cuMemcpyHtoDAsync")
            try buffer.markUsed(on: stream)
            // Every pass whose last row is now queued gets its event.
            let queued = ResidentRowsPlan.passesCovered(passes, byRows: chunk.upperBound)
            for pass in passesQueued..<queued {
                try context.check(context.driver.cuEventRecord(passLanded[pass], stream), "cuEventRecord")
            }
            if queued != passesQueued {
                progress.lock()
                passesQueued = queued
                progress.broadcast()
                progress.unlock()
            }
        }
        try context.check(context.driver.cuEventRecord(uploaded, stream), "cuEventRecord")
    }

    @discardableResult func finishUpload() throws -> Double {
        if !finished {
            let start = ContinuousClock.now
            done.wait()
            finished = true
            let context = backend.context
            try context.makeCurrent()
            if let copyError {
                // Nothing may still read the pinned buffers when they go back.
                _ = context.driver.cuStreamSynchronize(stream)
                finishError = copyError
            } else {
                do {
                    try context.check(context.driver.cuStreamWaitEvent(context.computeStream, uploaded, 0), "cuStreamWaitEvent")
                } catch {
                    _ = context.driver.cuStreamSynchronize(stream)
                    finishError = error
                }
            }
            // The buffers' `lastUse` events order their next use after this copy's DMAs.
            if let staging { backend.giveBackResidentStaging(staging) }
            staging = nil
            if finishError == nil {
                let elapsed = ContinuousClock.now - start
                return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            }
        }
        if let finishError { throw finishError }
        return 0
    }

    deinit {
        if !finished {
            done.wait()
            _ = backend.context.driver.cuStreamSynchronize(stream)
            if let staging { backend.giveBackResidentStaging(staging) }
        } else if finishError != nil {
            _ = backend.context.driver.cuStreamSynchronize(stream)
        }
        for event in [uploaded] + passLanded { _ = backend.context.driver.cuEventDestroy(event) }
        _ = backend.context.driver.cuStreamDestroy(stream)
    }

    /// Makes the compute stream wait for the rows of `passes[index]`: at once when the whole copy is finished,
    /// else once the copy thread has queued them (a failed copy throws its error).
    private func waitForPass(_ index: Int) throws {
        if finished {
            try finishUpload()
            return
        }
        progress.lock()
        while passesQueued <= index && !copyEnded { progress.wait() }
        let queued = passesQueued > index
        progress.unlock()
        guard queued else {
            try finishUpload()
            return
        }
        let context = backend.context
        try context.check(context.driver.cuStreamWaitEvent(context.computeStream, passLanded[index], 0), "cuStreamWaitEvent")
    }

    func lloydIterations(sample: [Int32]?, centroids: [Float], iterations: Int, exhaustiveIterations: Int, probes: Int,
                         grouping: (_ centroids: [Float], _ iteration: Int) -> CentroidGroupTable?) throws -> [Float] {
        try finishUpload()
        let k = centroids.count / dim
        guard k > 0, centroids.count == k * dim else {
            throw CUDAError.invalidArgument("resident lloydIterations: \(centroids.count) centroid values of dimension \(dim)")
        }
        let kernels = try backend.kmeansKernels(dim: dim)
        var points = rows, n = count
        var indices: CUDAMatrix? = nil
        if let sample {
            guard !sample.isEmpty, sample.allSatisfy({ $0 >= 0 && Int($0) < count }) else {
                throw CUDAError.invalidArgument("resident lloydIterations: a sample index outside 0..<\(count)")
            }
            indices = try backend.makeMatrix(rows: 1, cols: sample.count, type: .float32)  // 4-byte slots holding Int32
            try sample.withUnsafeBytes { try backend.copyPageable($0, to: indices!.pointer) }
            n = sample.count
        }
        // Lloyd's sums want fp32 rows: gathered from fp32 rows, or widened from the bf16 ones (every row when no sample).
        if format.isBF16 {
            points = try backend.makeMatrix(rows: n, cols: dim, type: .float32)
            try backend.launchElementwise("km_gather_rows_act", kernels: kernels, count: n * dim, [
                .pointer(rows.pointer), .pointer(indices?.pointer ?? 0), .int64(Int64(n)), .int32(Int32(dim)), .pointer(points.pointer),
            ])
        } else if let indices {
            points = try backend.makeMatrix(rows: n, cols: dim, type: .float32)
            try backend.launchElementwise("km_gather_rows", kernels: kernels, count: n * dim, [
                .pointer(rows.pointer), .pointer(indices.pointer), .int64(Int64(n)), .int32(Int32(dim)), .pointer(points.pointer),
            ])
        }
        return try backend.lloydOnDevice(kernels, x32: points, count: n, dim: dim, k: k, centroids: centroids, iterations: iterations,
                                         exhaustiveIterations: exhaustiveIterations, probes: probes, grouping: grouping)
    }

    func assignNearest(centroids: [Float], groups: CentroidGroupTable?, probes: Int, into codes: UnsafeMutablePointer<Int32>) throws {
        let k = centroids.count / dim
        guard k > 0, centroids.count == k * dim else {
            throw CUDAError.invalidArgument("resident assignNearest: \(centroids.count) centroid values of dimension \(dim)")
        }
        let context = backend.context
        // `COLGREP_KM_TRACE=1`: the steps' seconds summed over the passes on stderr, the device synchronized between them.
        var clock = ContinuousClock.now
        var traced: [(step: String, seconds: Double)] = []
        func mark(_ step: String) throws {
            guard KMeansStepTrace.enabled else { return }
            try context.synchronize()
            let elapsed = ContinuousClock.now - clock
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            if let at = traced.firstIndex(where: { $0.step == step }) { traced[at].seconds += seconds } else { traced.append((step, seconds)) }
            clock = ContinuousClock.now
        }
        defer {
            if KMeansStepTrace.enabled {
                for (step, seconds) in traced {
                    FileHandle.standardError.write(Data(String(format: "km-trace resident assign d=%d n=%d %@ %.4f s\n", dim, count, step, seconds).utf8))
                }
            }
        }
        let kernels = try backend.kmeansKernels(dim: dim)
        let labels = try backend.makeMatrix(rows: 1, cols: count, type: .float32)  // 4-byte slots holding Int32
        let rowBytes = UInt64(rowBytes)
        let heldAsBF16 = format.isBF16
        // An event after each pass's kernels: its codes come down while later passes run.
        var passDone: [CUevent] = []
        defer { for event in passDone { _ = context.driver.cuEventDestroy(event) } }
        func passQueued() throws {
            passDone.append(try context.makeEvent())
            try context.check(context.driver.cuEventRecord(passDone.last!, context.computeStream), "cuEventRecord")
        }
        if let groups, probes > 0 {
            let tables = try backend.uploadGroupTables(centroids: centroids, dim: dim, groups: groups)
            let p = min(probes, tables.groups)
            let scratch = try backend.makeCoarseToFineScratch(capacity: passes[0].count, probes: p, groups: tables.groups, convertingFor: kernels)
            // bf16 rows the tensor cores cannot take (rows over 128 wide, or `COLGREP_GPU_COARSE_MMA=0` set after the
            // copy began) are widened to fp32 a pass at a time.
            let onTensorCores = backend.coarseToFineTensorCore(kernels) != nil && tables.rowsAct != nil
            let widened = heldAsBF16 && !onTensorCores ? try backend.makeMatrix(rows: passes[0].count, cols: dim, type: .float32) : nil
            try mark("tables and scratch")
            for (index, pass) in passes.enumerated() {
                try waitForPass(index)
                try mark("rows landed")
                let at = rows.pointer + UInt64(pass.lowerBound) * rowBytes
                let vectors: CUDABackend.CoarseToFineVectors
                if let widened {
                    try backend.launchElementwise("km_gather_rows_act", kernels: kernels, count: pass.count * dim, [
                        .pointer(at), .pointer(0), .int64(Int64(pass.count)), .int32(Int32(dim)), .pointer(widened.pointer),
                    ])
                    vectors = .float32(widened.pointer)
                } else {
                    vectors = heldAsBF16 ? .act(at) : .float32(at)
                }
                try backend.coarseToFine(kernels, tables: tables, vectors: vectors, rows: pass.count, dim: dim, probes: p, scratch: scratch,
                                         out: labels.pointer + UInt64(pass.lowerBound * 4),
                                         traced: KMeansStepTrace.enabled ? { try mark("km_c2f_\($0)") } : nil)
                try passQueued()
            }
        } else {
            let source = try backend.uploadFloat32(centroids, rows: k, cols: dim)
            let (table, bias) = try backend.makeCentroidTable(kernels, count: k)
            try backend.prepareCentroids(kernels, source: source.pointer, sourceIsFloat32: true, count: k, dim: dim, euclidean: true,
                                         table: table, bias: bias)
            // fp32 rows are converted to the kernels' padded rows a pass at a time; bf16 rows are those already.
            let act = heldAsBF16 ? nil : try backend.makeMatrix(rows: passes[0].count, cols: kernels.paddedDim)
            try mark("centroid table")
            for (index, pass) in passes.enumerated() {
                try waitForPass(index)
                try mark("rows landed")
                var vectors = rows.pointer + UInt64(pass.lowerBound) * rowBytes
                if let act {
                    try backend.convertRows(kernels, source: vectors, rows: pass.count, dim: dim, destination: act.pointer)
                    try mark("convert")
                    vectors = act.pointer
                }
                try backend.fusedAssign(kernels, vectors: vectors, rows: pass.count, table: table, bias: bias,
                                        out: labels.pointer + UInt64(pass.lowerBound * 4))
                try passQueued()
                try mark("fused assign")
            }
        }
        // The host's code pages faulted in on the cores while the queued kernels run (the caller hands fresh memory: 40 MB
        // for 10M rows, whose faults the driver's pageable copy would otherwise take one page at a time, on one thread).
        let address = UInt(bitPattern: codes)
        CUDABackend.inParallelSlices(units: count, unitBytes: 4, alignment: 1024) { range in
            UnsafeMutablePointer<Int32>(bitPattern: address)!.advanced(by: range.lowerBound).initialize(repeating: -1, count: range.count)
        }
        // Pass by pass on the copy stream, each after its own kernels (a copy to pageable memory returns once done): all
        // but the last pass's 4 MB cross while later passes run, where one copy after the last pass took 6–8 ms at 10M
        // rows (session 30).
        for (index, pass) in passes.enumerated() {
            try context.check(context.driver.cuStreamWaitEvent(context.copyStream, passDone[index], 0), "cuStreamWaitEvent")
            try context.check(context.driver.cuMemcpyDtoHAsync(UnsafeMutableRawPointer(codes + pass.lowerBound), labels.pointer + UInt64(pass.lowerBound * 4),
                                                               pass.count * 4, context.copyStream), "cuMemcpyDtoHAsync")
        }
        try context.check(context.driver.cuStreamSynchronize(context.copyStream), "cuStreamSynchronize")
        try context.synchronize()
        try mark("codes download")
        try finishUpload()
    }
}

/// What the growing thread holds: nothing else touches the buffers until `group` is left.
private struct StagingGrowth: @unchecked Sendable {
    let buffers: [PinnedBuffer]
    let bytes: Int
    let context: CUDAContext
    let group: DispatchGroup

    func run() {
        defer { group.leave() }
        guard (try? context.makeCurrent()) != nil else { return }
        for buffer in buffers { _ = try? buffer.acquire(bytes: bytes) }
    }
}
