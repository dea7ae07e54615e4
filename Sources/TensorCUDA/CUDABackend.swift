import CCUDA
import Foundation
import Tensor

/// The CUDA implementation of `Backend`: kernels compiled by NVRTC for the device's exact
/// architecture (cached on disk), tensor-core GEMMs with fused epilogues (cuBLASLt, opened on a thread
/// of its own, and our own kernel while it opens), a flash-attention kernel over packed
/// variable-length sequences, and a device memory pool behind every result.
///
/// Not thread-safe: one backend serves one thread at a time (make one per thread or per device).
public final class CUDABackend: Backend, HostBorrowingBackend {
    /// Whether a GPU can be used in this process, with the reason when not. Probed once.
    public static var availability: CUDAAvailability { CUDAAvailability.probed }
    /// Seconds this process's CUDA probe took (libraries, driver init, first context); probes if it has not run.
    public static var probeSeconds: Double { CUDAAvailability.probeSeconds }
    /// The probe's steps (library loads, driver initialisation, device 0's context); probes if it has not run.
    public static var probeSteps: [(step: String, seconds: Double)] { CUDAAvailability.probeSteps }
    /// Whether this process has probed CUDA (asking does not probe).
    public static var driverProbed: Bool { CUDAAvailability.hasProbed }
    /// CUDA devices visible to this process (after `CUDA_VISIBLE_DEVICES`); 0 without a usable driver.
    public static var visibleDeviceCount: Int { (try? CUDAAvailability.probeContext.get())?.visibleDeviceCount ?? 0 }

    public let precision: CUDAPrecision
    /// The cuBLASLt algorithms chosen by timing in this process (`COLGREP_CUBLASLT_TUNE`) or loaded from the kernel
    /// cache, one line per shape, then any cache entry discarded or refused.
    public static var cuBLASLtTuningSummary: [String] { BLASLtTunedAlgorithms.shared.summary }
    /// Shapes whose cuBLASLt algorithm this process chose by timing, and shapes whose choice came from the kernel cache.
    public static var cuBLASLtTuningCounts: (timed: Int, loaded: Int) { BLASLtTunedAlgorithms.shared.counts }
    public let name: String
    /// Time of each start-up step, in order (library load, context, kernel modules, cuBLASLt).
    public internal(set) var startupSteps: [StartupStep] = []
    /// Use the exact fp32-arithmetic attention kernel even where the tensor-core one applies.
    public var forceScalarAttention = false
    /// Which kernel assigns vectors to centroids (`nearestCentroids`, k-means); `COLGREP_NEAREST_KERNEL`
    /// (`tensor-core`, `plain`, `gemm`) sets the initial value.
    public var nearestCentroidKernel: NearestCentroidKernel = .environment
    /// Which GEMM `linear` runs in bf16; `COLGREP_GEMM` sets the initial value.
    public var matmulEngine: MatmulEngine = .environment
    /// `linear` calls that ran on our own GEMM kernel so far (the rest went to cuBLASLt).
    public private(set) var ownMatmulCount = 0
    /// Leave a bf16 layer norm or GeGLU whose result goes straight into a `linear` to that linear's GEMM,
    /// which computes it while loading its input (our own kernel, whatever `matmulEngine` says): one
    /// pass over the activations fewer each. `COLGREP_FUSE=1` sets the initial value.
    public var fusesPrologues = ProcessInfo.processInfo.environment["COLGREP_FUSE"] == "1"
    /// `linear` calls that computed a deferred layer norm or GeGLU in their GEMM so far.
    public private(set) var fusedPrologueCount = 0
    /// Which GEMMs of 256-wide inputs run on the row-resident kernel, with the layer norm before them and the
    /// GeGLU after them fused in (`CUDAResidentGemm.swift`); `COLGREP_RESIDENT_GEMM` sets the initial value.
    public var residentFusion: ResidentGemmFusion = .environment
    /// GEMMs that ran on the row-resident kernel so far.
    public internal(set) var residentGemmCount = 0
    /// Run the GEMMs followed by the exact GELU or GeGLU on the warpgroup-MMA kernel with the activation fused,
    /// where it is loaded (`CUDAWarpgroupGemm.swift`); `COLGREP_WGMMA=0` sets the initial value to false.
    public var usesWarpgroupGemm = WarpgroupGemmSetting.environment
    /// GEMMs that ran on the warpgroup-MMA kernel so far.
    public internal(set) var warpgroupGemmCount = 0
    /// Nearest-centroid launches of the warpgroup-MMA kernel (`km_assign_wgmma`) so far.
    public internal(set) var warpgroupAssignCount = 0
    /// Gather the embedding rows, add the positions and layer-norm them in one kernel where it applies
    /// (`CUDAEmbedding.swift`); `COLGREP_FUSED_EMBED=0` sets the initial value to false (the ops one by one).
    public var fusesEmbedding = ProcessInfo.processInfo.environment["COLGREP_FUSED_EMBED"] != "0"
    /// `embed` calls that ran the fused kernel so far.
    public internal(set) var fusedEmbedCount = 0
    /// The warpgroup-MMA GEMM (compute capability 9.0, bf16), with its shared memory allowed; nil elsewhere.
    var warpgroupGemmKernel: CUfunction?
    /// The k-means modules loaded so far, by padded dimension.
    var kmeansModules: [Int: KMeansKernels] = [:]
    /// Bytes of host rows per chunk when k-means streams vectors up (two chunks in flight; the self-test
    /// makes it small to cross many chunk boundaries). Bulk assignment keeps 64 MiB: its kernels run once per chunk,
    /// and 8 MiB chunks measured slower (10M 48-d vectors: 0.130–0.138 s against 0.113–0.117; session 10).
    var uploadChunkBytes = 64 << 20
    /// Bytes of each host copy and DMA inside such a chunk (`streamRows`): the pinned upload buffers never grow past
    /// this (plus a quarter); the self-test makes it small to split chunks into several pieces.
    var uploadStagingBytes = 8 << 20
    /// The coarse-to-fine tables of the last grouped bulk assignment (`cachedGroupTables`).
    var groupTableCache: GroupTableCache?
    /// The centroid table of the last exhaustive bulk assignment (`cachedCentroidTable`).
    var centroidTableCache: CentroidTableCache?
    /// The pinned buffers of a device-resident k-means copy (`CUDAResidentRows`), between runs; made once.
    var residentStaging: [PinnedBuffer]?
    var residentStagingMade = false
    /// Bytes per chunk of that copy, and rows per pass of its assignment (the self-test makes both small).
    var residentChunkBytes = ResidentRowsPlan.chunkBytes
    var residentRowsPerPass = ResidentRowsPlan.assignRowsPerPass
    /// Rows up to this wide are held on the device for a k-means run (`COLGREP_GPU_RESIDENT`; the self-test widens it).
    var residentMaximumDim = CUDABackend.initialResidentMaximumDim
    let residentStagingLock = NSLock()
    /// Left while `growUploadStagingInBackground` is growing `uploadStaging`; its users wait for it first.
    let uploadStagingGrowth = DispatchGroup()
    /// When set, every op is bracketed by device events; `profileReport()` sums their times per op.
    public var profiling = false
    private var profileEvents: [(name: String, start: CUevent, end: CUevent)] = []
    private var spareEvents: [CUevent] = []

    let context: CUDAContext
    let pool: DeviceMemoryPool
    /// cuBLASLt opening on its own thread since `init`; `blas` waits for it, `linear` only looks.
    private let blasOpening: BLASLtOpening
    private var openedBLAS: BLASLtMatmul?
    /// The cuBLASLt workspace, allocated here so the opening thread never touches the pool.
    private let blasWorkspace: DeviceBlock
    /// Our own GEMM kernel (bf16 only), and the output columns of its tile (`COLGREP_GEMM_TILE_COLS`: 64 or 128).
    private var gemmKernel: CUfunction?
    /// The gemm module's row-resident kernel (`KernelSource.gemmResident`), with its shared memory allowed.
    var residentGemmKernel: CUfunction?
    private let gemmTileCols = ProcessInfo.processInfo.environment["COLGREP_GEMM_TILE_COLS"] == "128" ? 128 : KernelSource.gemmTile.cols
    let compiler: KernelCompiler
    private var core: [String: CUfunction] = [:]
    private var modules: [CUmodule] = []
    /// Each attention module's kernel and the query-tile rows it covers per block.
    private var attentionModules: [String: (kernel: CUfunction, tileRows: Int)] = [:]
    private let idsStaging: PinnedBuffer
    private let downloadStaging: PinnedBuffer
    /// Where `downloadBlock` lands results (reused pinned buffers on loan to the blocks).
    let resultArena: PinnedArena
    /// Two pinned buffers that host data crosses on its way up (chunked, double-buffered uploads).
    let uploadStaging: [PinnedBuffer]
    private let copyDone: CUevent
    private var ropeTables: [RopeKey: (positions: Int, table: CUDAMatrix)] = [:]
    /// The current batch's layout per query-tile size (global and sliding-window kernels may tile differently).
    private var batchCache: [Int: (cuSeqlens: [Int32], layout: BatchLayout)] = [:]

    /// A packed batch's description on the device.
    private struct BatchLayout {
        var tiles: CUDAMatrix
        var tileCount: Int
    }

    /// One step of start-up and how long it took.
    public struct StartupStep: Sendable, CustomStringConvertible {
        public var step: String
        public var seconds: Double
        public var description: String { "\(step): \(String(format: "%.1f", seconds * 1000)) ms" }
    }

    private struct RopeKey: Hashable { var theta: Float; var headDim: Int }

    /// Opens CUDA device `device` (an index among those `CUDA_VISIBLE_DEVICES` leaves visible),
    /// loading or compiling the element-wise kernels. Attention kernels load at first use or in `prepare`.
    public init(device: Int = 0, precision: CUDAPrecision = .bf16,
                kernelCache: KernelCache? = KernelCache(directory: KernelCache.defaultDirectory())) throws {
        var clock = ContinuousClock.now
        var steps: [StartupStep] = []
        func lap(_ step: String) {
            let now = ContinuousClock.now
            let elapsed = now - clock
            steps.append(StartupStep(step: step, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
            clock = now
        }
        let libraries = try CUDALibraries.shared.get()
        lap("load driver, NVRTC and cuBLASLt (first use in process: \(libraries.loadSeconds.map { "\($0.library) \(Int(($0.seconds * 1000).rounded())) ms" }.joined(separator: ", ")))")
        context = try CUDAContext(libraries: libraries, ordinal: device)
        lap("driver init, device \(device) and context")
        self.precision = precision
        pool = DeviceMemoryPool(allocator: context)
        compiler = KernelCompiler(libraries: libraries, cache: kernelCache)
        idsStaging = try PinnedBuffer(context: context)
        downloadStaging = try PinnedBuffer(context: context)
        resultArena = PinnedArena(context: context)
        uploadStaging = [try PinnedBuffer(context: context), try PinnedBuffer(context: context)]
        copyDone = try context.makeEvent()
        blasWorkspace = try pool.allocate(bytes: BLASLtMatmul.workspaceBytes)
        blasOpening = BLASLtOpening(context: context, workspace: blasWorkspace.pointer, type: precision == .bf16 ? .bfloat16 : .float32,
                                    algorithmStore: kernelCache.map { BLASLtAlgorithmStore(cache: $0) })
        lap("streams, staging, cuBLASLt workspace (cuBLASLt itself opening on a second thread)")
        name = "cuda:\(device) (\(context.name), \(context.architecture), \(precision.rawValue))"
        let (coreModule, origin) = try loadModule(name: EncoderKernelModules.core, source: KernelSource.core, options: precisionOptions)
        for kernel in KernelSource.coreKernels + (precision == .bf16 ? KernelSource.bf16CoreKernels : []) {
            core[kernel] = try context.function(coreModule, kernel)
        }
        lap("core kernels (\(origin.rawValue))")
        if precision == .bf16 {
            // Without it every GEMM goes to cuBLASLt (waiting for it to open): slower start, same results.
            do {
                let (gemmModule, gemmOrigin) = try loadModule(name: EncoderKernelModules.gemm, source: KernelSource.gemm, options: precisionOptions + ["-DGM_BN=\(gemmTileCols)"])
                gemmKernel = try context.function(gemmModule, KernelSource.gemmKernel)
                lap("gemm kernel (\(gemmOrigin.rawValue))")
                do {
                    residentGemmKernel = try loadResidentGemm(gemmModule)
                } catch {
                    // A GPU whose blocks cannot have 101 KiB of shared memory: the fusion is simply off.
                    lap("row-resident gemm kernel unavailable, layer norm and GeGLU in passes of their own: \(error)")
                }
            } catch {
                lap("gemm kernel unavailable, cuBLASLt only: \(error)")
            }
            if usesWarpgroupGemm {
                do {
                    if let kernel = try loadWarpgroupGemm() {
                        warpgroupGemmKernel = kernel
                        lap("warpgroup gemm kernel (\(WarpgroupGemmSetting.compiledArchitecture))")
                    }
                } catch {
                    // An NVRTC without sm_90a, or a driver that refuses the shared memory: the activations run in passes of their own.
                    lap("warpgroup gemm kernel unavailable, GELU and GeGLU in passes of their own: \(error)")
                }
            }
        }
        startupSteps = steps
    }

    /// cuBLASLt, waiting for its opening thread if it has not finished (the error says why it failed).
    var blas: BLASLtMatmul {
        get throws {
            if let openedBLAS { return openedBLAS }
            let opened = try blasOpening.wait()
            noteBLASOpened(opened)
            return opened
        }
    }

    /// Waits until cuBLASLt has opened (from then on `automatic` GEMMs run on it); throws why it could not open.
    public func waitForCuBLASLt() throws { _ = try blas }

    /// GEMMs with fewer rows keep cuBLASLt's heuristic choice; larger ones have their algorithm chosen by timing.
    public static var cuBLASLtTunedMinimumRows: Int { BLASLtTuning.environment.minimumRows }

    /// cuBLASLt if its opening has finished, without waiting.
    private var blasIfReady: BLASLtMatmul? {
        if let openedBLAS { return openedBLAS }
        guard let opened = blasOpening.ready else { return nil }
        noteBLASOpened(opened)
        return opened
    }

    private func noteBLASOpened(_ opened: BLASLtMatmul) {
        openedBLAS = opened
        let parts = blasOpening.steps.map { "\($0.step) \(String(format: "%.1f", $0.seconds * 1000)) ms" }.joined(separator: ", ")
        startupSteps.append(StartupStep(step: "cuBLASLt ready after \(ownMatmulCount) GEMMs on our own kernel (second thread: \(parts))",
                                        seconds: blasOpening.steps.reduce(0) { $0 + $1.seconds }))
    }

    deinit {
        for entry in profileEvents { spareEvents += [entry.start, entry.end] }
        for event in spareEvents { _ = context.driver.cuEventDestroy(event) }
        batchCache.removeAll()
        ropeTables.removeAll()
        try? context.makeCurrent()
        _ = context.driver.cuStreamSynchronize(context.computeStream)
        _ = context.driver.cuEventDestroy(copyDone)
        for module in modules { _ = context.driver.cuModuleUnload(module) }
        // The opening thread may still be using the workspace: it goes back to the pool only after.
        _ = try? blasOpening.wait()
        openedBLAS = nil
        pool.release(blasWorkspace)
    }

    var precisionOptions: [String] { precision == .bf16 ? ["-DCG_BF16=1"] : ["-DCG_BF16=0"] }

    /// Loads (or compiles for `architecture`, by default the device's own) a module of kernels.
    func loadModule(name: String, source: String, options: [String], architecture: String? = nil) throws -> (CUmodule, KernelCompiler.Origin) {
        let built = try compiler.binary(module: name, source: source, architecture: architecture ?? context.architecture, options: options)
        let module = try context.loadModule(built.image)
        modules.append(module)
        return (module, built.origin)
    }

    /// Loads (or compiles) the attention kernels for these head dimensions now rather than at first use,
    /// so start-up cost is paid once and reported in `startupSteps`.
    public func prepare(headDims: [Int]) throws {
        for headDim in headDims {
            _ = try attentionKernel(headDim: headDim, windowed: false)
            _ = try attentionKernel(headDim: headDim, windowed: true)
        }
    }

    /// Whether `attention` runs the tensor-core kernel for this head dimension.
    func usesTensorCoreAttention(headDim: Int) -> Bool {
        !forceScalarAttention && precision == .bf16 && KernelSource.tensorCoreHeadDims.contains(headDim)
    }

    /// The attention kernel `attention` launches for this head dimension, from its own module (loaded or
    /// compiled on first use).
    /// Global and sliding-window layers may have kernels of different shapes (`AttentionKernelShape.chosen`);
    /// where the shapes agree both use one module.
    private func attentionKernel(headDim: Int, windowed: Bool) throws -> (kernel: CUfunction, tileRows: Int) {
        let tensorCore = usesTensorCoreAttention(headDim: headDim)
        let name = EncoderKernelModules.attention(headDim: headDim, tensorCore: tensorCore)
        guard headDim >= 2, headDim <= 128, headDim % 2 == 0 else {
            throw CUDAError.invalidArgument("attention head dimension \(headDim) is not supported (even, 2…128)")
        }
        var options = precisionOptions + ["-DCG_HEAD_DIM=\(headDim)"]
        // The scalar kernel covers 64 query rows a block (one thread each).
        var tileRows = 64
        if tensorCore {
            let shape = AttentionKernelShape.chosen(headDim: headDim, windowed: windowed)
            options += shape.compilerOptions
            tileRows = shape.queryTileRows
        }
        let loadedKey = ([name] + options).joined(separator: " ")
        if let loaded = attentionModules[loadedKey] { return loaded }
        let start = ContinuousClock.now
        let (module, origin) = try loadModule(name: name, source: tensorCore ? KernelSource.attentionTensorCore : KernelSource.attentionScalar,
                                              options: options)
        let kernel = try context.function(module, tensorCore ? KernelSource.attentionTensorCoreKernel : KernelSource.attentionScalarKernel)
        attentionModules[loadedKey] = (kernel, tileRows)
        let elapsed = ContinuousClock.now - start
        startupSteps.append(StartupStep(step: "\(name) kernels (\(origin.rawValue))",
                                        seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
        return (kernel, tileRows)
    }

    // MARK: memory

    /// A pooled matrix; an out-of-memory error says how many rows would have fit.
    func makeMatrix(rows: Int, cols: Int, type: CUDAElementType? = nil) throws -> CUDAMatrix {
        let type = type ?? precision.elementType
        let bytes = max(rows * cols * type.size, 1)
        do {
            return CUDAMatrix(rows: rows, cols: cols, elementType: type, block: try pool.allocate(bytes: bytes), pool: pool)
        } catch CUDAError.outOfMemory(let requested, let free, let total, _) {
            let fitRows = bytes > 0 ? max(0, rows * free / max(bytes, 1)) : 0
            throw CUDAError.outOfMemory(requestedBytes: requested, freeBytes: free, totalBytes: total,
                                        hint: "A \(rows) × \(cols) activation did not fit; batches of about \(fitRows / 2) tokens would (lower the token budget, or free the GPU).")
        }
    }

    /// The CUDA matrix behind `matrix`, its values computed now if they were deferred.
    func cuda(_ matrix: any DeviceMatrix, _ role: String) throws -> CUDAMatrix {
        let m = try cudaKeepingDeferred(matrix, role)
        if let deferred = m.deferred {
            switch deferred {
            case .layerNorm(let source, let weight, let bias, let eps):
                m.adoptStorage(of: try layerNormNow(try cuda(source, role), weight: weight, bias: bias, eps: eps))
            case .geglu(let source):
                m.adoptStorage(of: try gegluNow(try cuda(source, role)))
            }
        }
        return m
    }

    /// The CUDA matrix behind `matrix`, deferred or not (for `linear`, which can compute a deferred prologue itself).
    func cudaKeepingDeferred(_ matrix: any DeviceMatrix, _ role: String) throws -> CUDAMatrix {
        guard let matrix = matrix as? CUDAMatrix else {
            throw CUDAError.invalidArgument("\(role) is a \(type(of: matrix)), not a matrix of this CUDA backend")
        }
        return matrix
    }

    private func function(_ name: String) -> CUfunction { core[name]! }
    func coreFunction(_ name: String) -> CUfunction { core[name]! }

    private func gridFor(_ count: Int, threads: Int = 256) -> Int {
        max(1, min((count + threads - 1) / threads, context.multiprocessorCount * 32))
    }

    func launchElementwise(_ name: String, count: Int, _ arguments: [KernelArgument]) throws {
        guard count > 0 else { return }
        try context.launch(function(name), grid: (gridFor(count), 1, 1), block: (256, 1, 1), arguments)
    }

    private func launchRowWarps(_ name: String, rows: Int, _ arguments: [KernelArgument]) throws {
        guard rows > 0 else { return }
        try context.launch(function(name), grid: ((rows + 3) / 4, 1, 1), block: (128, 1, 1), arguments)
    }

    // MARK: Backend — copies

    public func upload(_ matrix: HostMatrix) throws -> any DeviceMatrix {
        try profiled("upload") {
            try uploadMatrix(matrix.values, rows: matrix.rows, cols: matrix.cols)
        }
    }

    /// Weights straight from the memory-mapped checkpoint into the pinned staging buffers (one host copy
    /// fewer than `upload`, and no fresh pages for an intermediate array). Copied before returning.
    public func uploadBorrowing(_ values: UnsafePointer<Float>, rows: Int, cols: Int, owner: AnyObject) throws -> any DeviceMatrix {
        try profiled("upload") {
            try uploadMatrix(values, rows: rows, cols: cols)
        }
    }

    /// Uploads through two pinned staging buffers on the copy stream, so the host copy of one chunk
    /// overlaps the DMA of the previous one; bf16 conversion runs on the device.
    func uploadMatrix(_ values: [Float], rows: Int, cols: Int) throws -> CUDAMatrix {
        precondition(values.count == rows * cols, "upload: \(values.count) values for \(rows) × \(cols)")
        return try values.withUnsafeBufferPointer { try uploadMatrix($0.baseAddress, rows: rows, cols: cols) }
    }

    /// `COLGREP_UPLOAD=pageable`: uploads copy from the caller's (pageable) memory through the driver's own
    /// staging instead of our page-locked buffers (compared at start-up, where the buffers are not allocated yet).
    static let pageableUploads = ProcessInfo.processInfo.environment["COLGREP_UPLOAD"] == "pageable"

    /// Host seconds spent in uploads so far, and the part of them that went to page-locking the two
    /// staging buffers (start-up reports: weights are the first upload).
    public var uploadTiming: (hostSeconds: Double, pinnedAllocationSeconds: Double) {
        (uploadSeconds, uploadStaging.reduce(0) { $0 + $1.allocationSeconds })
    }
    private var uploadSeconds: Double = 0

    /// `uploadMatrix` from `rows × cols` floats anywhere in host memory (a memory-mapped checkpoint:
    /// no intermediate array).
    func uploadMatrix(_ values: UnsafePointer<Float>?, rows: Int, cols: Int) throws -> CUDAMatrix {
        let start = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - start
            uploadSeconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        try context.makeCurrent()
        let out = try makeMatrix(rows: rows, cols: cols)
        let total = rows * cols
        guard total > 0, let values else { return out }
        // Floats per chunk (4 MiB): small enough that the two pinned staging buffers cost little to
        // allocate at start-up (weights are the first upload; page-locking measured ~0.55 ms per MiB on an
        // H200 host), large enough that DMA stays efficient.
        let chunk = 1 << 20
        var temporaries: [CUDAMatrix] = []
        if precision == .bf16 {
            for _ in 0..<2 { temporaries.append(try makeMatrix(rows: 1, cols: min(chunk, total), type: .float32)) }
            // The pool may hand back a temporary that an earlier upload's conversion is still reading.
            try context.order(context.copyStream, after: context.computeStream, event: copyDone)
        }
        let source = UnsafeRawBufferPointer(start: values, count: total * 4)
        var offset = 0
        var slot = 0
        while offset < total {
            let count = min(chunk, total - offset)
            uploadStagingGrowth.wait()
            let staging = uploadStaging[slot]
            let destination = precision == .bf16 ? temporaries[slot].pointer : out.pointer + UInt64(offset * 4)
            if Self.pageableUploads {
                // Straight from the caller's memory (the driver stages it): no page-locked buffer to allocate
                // and no host copy of ours; the slot's previous conversion must be done reading its temporary.
                try context.check(context.driver.cuStreamWaitEvent(context.copyStream, staging.lastUse, 0), "cuStreamWaitEvent")
                try context.check(context.driver.cuMemcpyHtoDAsync(destination, UnsafeRawPointer(source.baseAddress! + offset * 4), count * 4, context.copyStream), "cuMemcpyHtoDAsync")
            } else {
                let host = try staging.acquire(bytes: count * 4)
                Self.copyInParallel(to: host, from: source.baseAddress! + offset * 4, bytes: count * 4)
                try context.check(context.driver.cuMemcpyHtoDAsync(destination, host, count * 4, context.copyStream), "cuMemcpyHtoDAsync")
            }
            try context.order(context.computeStream, after: context.copyStream, event: copyDone)
            if precision == .bf16 {
                try launchElementwise("convert_f32_to_act", count: count, [
                    .pointer(temporaries[slot].pointer), .pointer(out.pointer + UInt64(offset * 2)), .int64(Int64(count)),
                ])
            }
            try staging.markUsed(on: context.computeStream)
            offset += count
            slot ^= 1
        }
        return out
    }

    /// A host copy split over the cores for large blocks (weights out of a memory-mapped checkpoint:
    /// page faults and memory bandwidth, both faster from several threads).
    static func copyInParallel(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bytes: Int) {
        let to = UInt(bitPattern: destination), from = UInt(bitPattern: source)
        inParallelSlices(units: bytes, unitBytes: 1, alignment: 64) { range in
            UnsafeMutableRawPointer(bitPattern: to + UInt(range.lowerBound))!
                .copyMemory(from: UnsafeRawPointer(bitPattern: from + UInt(range.lowerBound))!, byteCount: range.count)
        }
    }

    /// `body` over consecutive slices of `0..<units` (each a multiple of `alignment` units but the last), on up to one
    /// thread per core, none under 512 KiB of `unitBytes`-sized units; on the calling thread when one slice does.
    /// Why so many: at 8 slices of 1 MiB (an 8 MiB staging piece) the k-means row feed copied 17-21 GB/s on the 16-core
    /// H100 host, where 16 slices rounding the same rows to bf16 read them at 44 GB/s (session 27).
    static func inParallelSlices(units: Int, unitBytes: Int, alignment: Int = 1, _ body: @Sendable (Range<Int>) -> Void) {
        guard units > 0 else { return }
        let minimumBytes = 1 << 19
        let slices = min(max(8, UsableCores.count), (units * unitBytes + minimumBytes - 1) / minimumBytes, units)
        guard slices > 1 else { return body(0..<units) }
        let per = ((units + slices - 1) / slices + alignment - 1) / alignment * alignment
        DispatchQueue.concurrentPerform(iterations: slices) { index in
            let start = index * per
            guard start < units else { return }
            body(start..<min(units, start + per))
        }
    }

    public func download(_ matrix: any DeviceMatrix) throws -> HostMatrix {
        try profiled("download") {
            let m = try cuda(matrix, "download source")
            return HostMatrix(rows: m.rows, cols: m.cols, values: try downloadFloats(m))
        }
    }

    /// bf16 results cross the bus as bf16 (half the bytes, no conversion kernel) and are widened
    /// while each group is copied out of the pinned staging buffer: one host copy in all.
    public func download(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> [HostMatrix] {
        try profiled("download") {
            let m = try cuda(matrix, "download source")
            if let bad = rowGroups.lazy.flatMap({ $0 }).first(where: { $0 < 0 || $0 >= m.rows }) {
                throw CUDAError.invalidArgument("download: row \(bad) is outside the \(m.rows)-row matrix")
            }
            guard m.count > 0 else { return rowGroups.map { _ in HostMatrix(rows: 0, cols: m.cols, values: []) } }
            try context.makeCurrent()
            let elementBytes = m.elementType == .bfloat16 ? 2 : 4
            let bytes = m.count * elementBytes
            let host = try downloadStaging.acquire(bytes: bytes)
            try context.order(context.copyStream, after: context.computeStream, event: copyDone)
            try context.check(context.driver.cuMemcpyDtoHAsync(host, m.pointer, bytes, context.copyStream), "cuMemcpyDtoHAsync")
            try downloadStaging.markUsed(on: context.copyStream)
            try context.check(context.driver.cuEventSynchronize(downloadStaging.lastUse), "cuEventSynchronize")
            let cols = m.cols
            if elementBytes == 2 {
                let source = host.assumingMemoryBound(to: UInt16.self)
                return HostMatrix.gatheringRows(rowGroups, cols: cols) { row, destination in
                    let from = source + row * cols
                    for column in 0..<cols { destination[column] = Float(bitPattern: UInt32(from[column]) << 16) }
                }
            }
            let source = host.assumingMemoryBound(to: Float.self)
            return HostMatrix.gatheringRows(rowGroups, cols: cols) { row, destination in
                destination.update(from: source + row * cols, count: cols)
            }
        }
    }

    /// The kept rows are compacted on the device (a gather, skipped when every row is kept in order),
    /// widened to fp32 there, and copied by DMA straight into a reused pinned buffer of `resultArena` that
    /// the block holds until it is freed: no host copy and no allocation per sequence. When every arena
    /// buffer is on loan (a consumer holding many blocks), the copy lands in a fresh pageable block.
    public func downloadBlock(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> HostRowBlock {
        try profiled("download") {
            let m = try cuda(matrix, "download source")
            if let bad = rowGroups.lazy.flatMap({ $0 }).first(where: { $0 < 0 || $0 >= m.rows }) {
                throw CUDAError.invalidArgument("download: row \(bad) is outside the \(m.rows)-row matrix")
            }
            let offsets = HostRowBlock.offsets(sizes: rowGroups.map(\.count))
            let rows = offsets.last!, cols = m.cols
            guard rows > 0, cols > 0 else { return HostRowBlock(cols: cols, offsets: offsets) { _ in } }
            try context.makeCurrent()
            var source = m
            if !rowGroups.joined().elementsEqual(0..<m.rows) {
                guard m.elementType == precision.elementType else {
                    throw CUDAError.invalidArgument("download: a \(m.elementType) matrix on a \(precision.rawValue) backend")
                }
                source = try gatherRows(m, ids: rowGroups.joined().map { Int32($0) })
            }
            if source.elementType == .bfloat16 {
                let wide = try makeMatrix(rows: source.rows, cols: cols, type: .float32)
                try launchElementwise("convert_act_to_f32", count: source.count, [.pointer(source.pointer), .pointer(wide.pointer), .int64(Int64(source.count))])
                source = wide
            }
            let bytes = rows * cols * 4
            try context.order(context.copyStream, after: context.computeStream, event: copyDone)
            if let buffer = try resultArena.take(bytes: bytes) {
                try context.check(context.driver.cuMemcpyDtoHAsync(buffer.pointer, source.pointer, bytes, context.copyStream), "cuMemcpyDtoHAsync")
                let done = context.driver.cuStreamSynchronize(context.copyStream)
                let arena = resultArena
                if done != 0 {
                    arena.giveBack(buffer)
                    try context.check(done, "cuStreamSynchronize")
                }
                return HostRowBlock(borrowing: UnsafePointer(buffer.pointer.assumingMemoryBound(to: Float.self)), cols: cols, offsets: offsets) {
                    arena.giveBack(buffer)
                }
            }
            return try HostRowBlock(cols: cols, offsets: offsets) { destination in
                try context.check(context.driver.cuMemcpyDtoHAsync(UnsafeMutableRawPointer(destination), source.pointer, bytes, context.copyStream), "cuMemcpyDtoHAsync")
                try context.check(context.driver.cuStreamSynchronize(context.copyStream), "cuStreamSynchronize")
            }
        }
    }

    func downloadFloats(_ m: CUDAMatrix) throws -> [Float] {
        try context.makeCurrent()
        guard m.count > 0 else { return [] }
        var source = m
        if m.elementType == .bfloat16 {
            source = try makeMatrix(rows: m.rows, cols: m.cols, type: .float32)
            try launchElementwise("convert_act_to_f32", count: m.count, [.pointer(m.pointer), .pointer(source.pointer), .int64(Int64(m.count))])
        }
        let bytes = m.count * 4
        let host = try downloadStaging.acquire(bytes: bytes)
        try context.order(context.copyStream, after: context.computeStream, event: copyDone)
        try context.check(context.driver.cuMemcpyDtoHAsync(host, source.pointer, bytes, context.copyStream), "cuMemcpyDtoHAsync")
        try downloadStaging.markUsed(on: context.copyStream)
        try context.check(context.driver.cuEventSynchronize(downloadStaging.lastUse), "cuEventSynchronize")
        return [Float](unsafeUninitializedCapacity: m.count) { buffer, initialized in
            buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: bytes) { $0.update(from: host.assumingMemoryBound(to: UInt8.self), count: bytes) }
            initialized = m.count
        }
    }

    /// Copies 32-bit integers to a fresh device buffer through pinned memory, in stream order.
    func uploadInts(_ values: [Int32]) throws -> CUDAMatrix {
        let out = try makeMatrix(rows: 1, cols: values.count, type: .float32)
        guard !values.isEmpty else { return out }
        let bytes = values.count * 4
        let host = try idsStaging.acquire(bytes: bytes)
        values.withUnsafeBytes { host.copyMemory(from: $0.baseAddress!, byteCount: bytes) }
        try context.check(context.driver.cuMemcpyHtoDAsync(out.pointer, host, bytes, context.computeStream), "cuMemcpyHtoDAsync")
        try idsStaging.markUsed(on: context.computeStream)
        return out
    }

    // MARK: Backend — ops

    public func gather(_ table: any DeviceMatrix, ids: [Int32]) throws -> any DeviceMatrix {
        try profiled("gather") {
            try context.makeCurrent()
            let t = try cuda(table, "embedding table")
            try checkIDs(ids, of: t)
            return try gatherRows(t, ids: ids)
        }
    }

    /// Throws unless every id is a row of `table` (the kernels read rows unchecked).
    func checkIDs(_ ids: [Int32], of table: CUDAMatrix) throws {
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= table.rows }) {
            throw CUDAError.invalidArgument("token id \(bad) is outside the embedding table (\(table.rows) rows)")
        }
    }

    /// Rows `ids` (already checked) of `t`, whose elements are activations of this backend's precision.
    private func gatherRows(_ t: CUDAMatrix, ids: [Int32]) throws -> CUDAMatrix {
        let out = try makeMatrix(rows: ids.count, cols: t.cols)
        guard !ids.isEmpty else { return out }
        let deviceIDs = try uploadInts(ids)
        let vectorized = precision == .bf16 && t.cols % 8 == 0
        let arguments: [KernelArgument] = [
            .pointer(t.pointer), .pointer(deviceIDs.pointer), .pointer(out.pointer), .int32(Int32(ids.count)), .int32(Int32(t.cols)),
        ]
        if vectorized {
            try launchRowWarps("gather_rows_vec8", rows: ids.count, arguments)
        } else {
            try context.launch(function("gather_rows"), grid: (ids.count, 1, 1), block: (min(256, (t.cols + 31) / 32 * 32), 1, 1), arguments)
        }
        return out
    }

    public func layerNorm(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        try profiled("layerNorm") {
            try context.makeCurrent()
            let input = try cuda(x, "layerNorm input")
            let w = try cuda(weight, "layerNorm weight")
            let b = try bias.map { try cuda($0, "layerNorm bias") }
            guard w.count == input.cols, b == nil || b!.count == input.cols else {
                throw CUDAError.invalidArgument("layerNorm of \(input.cols) columns with weight \(w.rows)×\(w.cols)")
            }
            if defersLayerNorm(of: input) {
                return CUDAMatrix(rows: input.rows, cols: input.cols, elementType: precision.elementType,
                                  deferred: .layerNorm(source: input, weight: w, bias: b, eps: eps), pool: pool)
            }
            return try layerNormNow(input, weight: w, bias: b, eps: eps)
        }
    }

    /// Whether `layerNorm` of `input` is left to the GEMM that reads it: only where the GEMM's prologue computes exactly
    /// what layer_norm_vec8 would.
    func defersLayerNorm(of input: CUDAMatrix) -> Bool {
        (fusesPrologues && gemmKernel != nil && input.cols % 8 == 0 && input.cols <= 1024) || residentTakesLayerNorm(of: input)
    }

    private func layerNormNow(_ input: CUDAMatrix, weight w: CUDAMatrix, bias b: CUDAMatrix?, eps: Float) throws -> CUDAMatrix {
        let out = try makeMatrix(rows: input.rows, cols: input.cols)
        let vectorized = precision == .bf16 && input.cols % 8 == 0 && input.cols <= 1024
        if vectorized && input.cols <= 512 && Self.narrowLayerNorm && input.rows > 0 {
            // Four rows per warp, 16 per 128-thread block; the same values as layer_norm_vec8.
            try context.launch(function("layer_norm_vec8_narrow"), grid: ((input.rows + 15) / 16, 1, 1), block: (128, 1, 1), [
                .pointer(input.pointer), .pointer(w.pointer), .pointer(b?.pointer ?? 0), .pointer(out.pointer),
                .int32(Int32(input.rows)), .int32(Int32(input.cols)), .float(eps),
            ])
            return out
        }
        try launchRowWarps(vectorized ? "layer_norm_vec8" : "layer_norm", rows: input.rows, [
            .pointer(input.pointer), .pointer(w.pointer), .pointer(b?.pointer ?? 0), .pointer(out.pointer),
            .int32(Int32(input.rows)), .int32(Int32(input.cols)), .float(eps),
        ])
        return out
    }

    /// Rows up to 512 wide go to the four-rows-per-warp layer norm (`COLGREP_LAYER_NORM_NARROW=0`: one row per warp).
    static let narrowLayerNorm = ProcessInfo.processInfo.environment["COLGREP_LAYER_NORM_NARROW"] != "0"

    public func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?,
                       activation: Activation, residual: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        let deferredInput = (x as? CUDAMatrix)?.deferred
        let prologueName = deferredInput.map { if case .geglu = $0 { return " geglu→" } else { return " norm→" } } ?? ""
        return try profiled("linear\(prologueName) \(weight.rows)x\(weight.cols)\(activation == .none ? "" : " \(activation)")\(residual != nil ? " +residual" : "")") {
            try context.makeCurrent()
            let given = try cudaKeepingDeferred(x, "linear input")
            let w = try cuda(weight, "linear weight")
            let b = try bias.map { try cuda($0, "linear bias") }
            let r = try residual.map { try cuda($0, "linear residual") }
            guard given.cols == w.cols else {
                throw CUDAError.invalidArgument("linear: input has \(given.cols) columns but the weight is \(w.rows)×\(w.cols) (out × in)")
            }
            guard b == nil || b!.count == w.rows else { throw CUDAError.invalidArgument("linear: bias of \(b!.count) for \(w.rows) outputs") }
            guard r == nil || (r!.rows == given.rows && r!.cols == w.rows) else {
                throw CUDAError.invalidArgument("linear: residual \(r!.rows)×\(r!.cols) for a \(given.rows)×\(w.rows) output")
            }
            if given.deferred != nil, given.rows > 0, residentFusion == .all, activation == .none, r == nil, runsResident(given, weight: w) {
                return try residentLinear(given, weight: w, bias: b, geglu: false)
            }
            let out = try makeMatrix(rows: given.rows, cols: w.rows)
            guard given.rows > 0 else { return out }
            if given.deferred != nil && !fusesPrologues { _ = try cuda(given, "linear input") }  // a layer norm left for the resident kernel
            let fusable = fusesPrologues && given.deferred != nil && MatmulEngine.own.usesOwnKernel(precision: precision, rows: given.rows, inFeatures: w.cols, cuBLASLtReady: true)
            if let gemmKernel, fusable || (given.deferred == nil
                                           && matmulEngine.usesOwnKernel(precision: precision, rows: given.rows, inFeatures: w.cols, cuBLASLtReady: blasIfReady != nil)) {
                // One kernel: (layer norm or GeGLU of the input,) GEMM, bias, activation and residual, rounded to bf16 once.
                let kind: Int32 = activation == .none ? 0 : (activation == .gelu ? 1 : 2)
                var source = given, lnWeight: UInt64 = 0, lnBias: UInt64 = 0, eps: Float = 0, gated: Int32 = 0
                switch given.deferred {
                case .layerNorm(let normed, let weight, let bias, let epsilon)?:
                    source = try cuda(normed, "linear input"); lnWeight = weight.pointer; lnBias = bias?.pointer ?? 0; eps = epsilon
                case .geglu(let up)?:
                    source = try cuda(up, "linear input"); gated = 1
                case nil:
                    break
                }
                try context.launch(gemmKernel, grid: ((w.rows + gemmTileCols - 1) / gemmTileCols,
                                                      (given.rows + KernelSource.gemmTile.rows - 1) / KernelSource.gemmTile.rows, 1),
                                   block: (128, 1, 1), [
                                       .pointer(source.pointer), .pointer(w.pointer), .pointer(b?.pointer ?? 0), .pointer(r?.pointer ?? 0),
                                       .pointer(out.pointer), .int32(Int32(given.rows)), .int32(Int32(w.rows)), .int32(Int32(w.cols)), .int32(kind),
                                       .pointer(lnWeight), .pointer(lnBias), .float(eps), .int32(gated),
                                   ])
                ownMatmulCount += 1
                if given.deferred != nil { fusedPrologueCount += 1 }
                return out
            }
            let input = try cuda(given, "linear input")
            if activation == .gelu, r == nil, runsWarpgroup(inFeatures: w.cols, outFeatures: w.rows) {
                // cuBLASLt's GELU is the tanh form: the exact one would be a pass of its own. (So on Hopper the exact form
                // runs here even under COLGREP_CUDA_FAST_GELU: faster than cuBLASLt with either.)
                return try warpgroupLinear(input, weight: w, bias: b, activation: activation, geglu: false, into: out)
            }
            let type: BLASLtMatmul.DataType = precision == .bf16 ? .bfloat16 : .float32
            let (epilogue, fuseGELU, fuseResidual) = linearEpilogue(activation: activation, hasBias: b != nil, hasResidual: r != nil)
            try blas.run(rows: input.rows, outFeatures: w.rows, inFeatures: w.cols, x: input.pointer, weight: w.pointer,
                         bias: b?.pointer, c: fuseResidual ? r?.pointer : nil, beta: 1, d: out.pointer,
                         input: type, output: type, epilogue: epilogue)
            if !fuseGELU && activation != .none {
                let kind: Int32 = activation == .gelu ? 1 : 2
                if precision == .bf16 && out.count % 8 == 0 {
                    // 16-byte accesses: with 2-byte ones the exact GELU pass over MiniLM's tokens × 1536 cost 118 device-ms a pass (session 7).
                    try launchElementwise("epilogue_vec8", count: out.count / 8, [
                        .pointer(out.pointer), .pointer(r?.pointer ?? 0), .int64(Int64(out.count / 8)), .int32(kind),
                    ])
                    return out
                }
                try launchElementwise("epilogue", count: out.count, [
                    .pointer(out.pointer), .pointer(0), .pointer(r?.pointer ?? 0), .int64(Int64(out.rows)), .int32(Int32(out.cols)), .int32(kind),
                ])
            }
            return out
        }
    }

    /// `COLGREP_CUDA_FAST_GELU=1` lets cuBLASLt's tanh GELU stand in for the exact (erf) GELU in bf16 mode.
    static let fastGELURequested = ProcessInfo.processInfo.environment["COLGREP_CUDA_FAST_GELU"] == "1"

    /// How `linear` maps onto cuBLASLt's epilogues. cuBLASLt fuses bias, and the residual through beta·C;
    /// its GELU is the tanh form, fused for models whose activation is the tanh form. The exact (erf) GELU
    /// (MiniLM's) runs in its own pass by default, as the reference computes it. With
    /// `COLGREP_CUDA_FAST_GELU=1` the tanh form stands in for it in bf16 mode: the two differ by at most
    /// 4.7e-4 (at x ≈ −2.7), parity stays 0.99993 minimum per-token cosine, and MiniLM encodes ~20 % faster
    /// on an H200 (10.9M tokens/s measured with it; the separate pass costs 118 device-ms of 554 a pass), but the dev-split retrieval eval moved by run-to-run noise in
    /// both directions (hybrid 0.8482 vs 0.8509 exact, semantic 0.7136 vs 0.7106, same binary, session 7),
    /// so speed alone does not justify departing from the reference's function by default. fp32 mode
    /// always keeps the exact form. Never with a residual (which must be added after GELU).
    func linearEpilogue(activation: Activation, hasBias: Bool, hasResidual: Bool)
        -> (epilogue: BLASLtMatmul.Epilogue, fuseGELU: Bool, fuseResidual: Bool) {
        let fuseGELU = (activation == .geluTanh || (activation == .gelu && Self.fastGELURequested)) && precision == .bf16 && !hasResidual
        let epilogue: BLASLtMatmul.Epilogue = fuseGELU ? (hasBias ? .geluBias : .gelu) : (hasBias ? .bias : .none)
        return (epilogue, fuseGELU, activation == .none)
    }

    public func geglu(_ x: any DeviceMatrix) throws -> any DeviceMatrix {
        try profiled("geglu") {
            try context.makeCurrent()
            let input = try cuda(x, "geglu input")
            guard input.cols % 2 == 0 else { throw CUDAError.invalidArgument("geglu needs an even column count, got \(input.cols)") }
            if fusesPrologues, gemmKernel != nil, (input.cols / 2) % 8 == 0 {
                return CUDAMatrix(rows: input.rows, cols: input.cols / 2, elementType: precision.elementType, deferred: .geglu(source: input), pool: pool)
            }
            return try gegluNow(input)
        }
    }

    private func gegluNow(_ input: CUDAMatrix) throws -> CUDAMatrix {
        let half = input.cols / 2
        let out = try makeMatrix(rows: input.rows, cols: half)
        let vectorized = precision == .bf16 && half % 8 == 0
        try launchElementwise(vectorized ? "geglu_vec8" : "geglu", count: vectorized ? out.count / 8 : out.count, [.pointer(input.pointer), .pointer(out.pointer), .int64(Int64(input.rows)), .int32(Int32(half))])
        return out
    }

    public func add(_ a: any DeviceMatrix, _ b: any DeviceMatrix) throws -> any DeviceMatrix {
        try profiled("add") {
            try context.makeCurrent()
            let left = try cuda(a, "add left"), right = try cuda(b, "add right")
            guard left.rows == right.rows, left.cols == right.cols else {
                throw CUDAError.invalidArgument("add of \(left.rows)×\(left.cols) and \(right.rows)×\(right.cols)")
            }
            let out = try makeMatrix(rows: left.rows, cols: left.cols)
            try launchElementwise("add_elementwise", count: out.count, [.pointer(left.pointer), .pointer(right.pointer), .pointer(out.pointer), .int64(Int64(out.count))])
            return out
        }
    }

    public func l2Normalize(_ x: any DeviceMatrix) throws -> any DeviceMatrix {
        try profiled("l2Normalize") {
            try context.makeCurrent()
            let input = try cuda(x, "l2Normalize input")
            let out = try makeMatrix(rows: input.rows, cols: input.cols)
            try launchRowWarps("l2_normalize", rows: input.rows, [.pointer(input.pointer), .pointer(out.pointer), .int32(Int32(input.rows)), .int32(Int32(input.cols))])
            return out
        }
    }

    public func attention(_ qkv: any DeviceMatrix, batch: PackedBatch, heads: Int, headDim: Int,
                          rotary: Rotary?, window: Int?) throws -> any DeviceMatrix {
        try profiled("attention \(window == nil ? "global" : "local") d=\(headDim)") {
            try context.makeCurrent()
            let input = try cuda(qkv, "attention qkv")
            guard input.cols == 3 * heads * headDim, input.rows == batch.tokenCount else {
                throw CUDAError.invalidArgument("attention: qkv is \(input.rows)×\(input.cols), expected \(batch.tokenCount)×\(3 * heads * headDim)")
            }
            let (kernel, tileRows) = try attentionKernel(headDim: headDim, windowed: window != nil)
            let out = try makeMatrix(rows: input.rows, cols: heads * headDim)
            guard batch.tokenCount > 0 else { return out }
            let layout = try deviceLayout(of: batch, tileRows: tileRows)
            let rope = try rotary.map { try ropeTable(theta: $0.theta, headDim: headDim, positions: batch.maxSequenceLength) }
            let windowHalf = Int32(window.map { $0 / 2 } ?? -1)
            let useTensorCores = usesTensorCoreAttention(headDim: headDim)
            let scale = 1 / Float(headDim).squareRoot()
            if useTensorCores {
            // RoPE is applied inside the kernel while q and k tiles are loaded.
            try context.launch(kernel, grid: (layout.tileCount, heads, 1), block: (128, 1, 1), [
                .pointer(input.pointer), .pointer(out.pointer), .pointer(layout.tiles.pointer),
                .pointer(rope?.pointer ?? 0), .int32(Int32(heads)), .int32(windowHalf), .float(scale * 1.4426950408889634),
            ])
        } else {
            try context.launch(kernel, grid: (layout.tileCount, heads, 1), block: (64, 1, 1), [
                .pointer(input.pointer), .pointer(out.pointer), .pointer(layout.tiles.pointer),
                .pointer(rope?.pointer ?? 0), .int32(Int32(heads)), .int32(windowHalf), .float(scale),
            ])
        }
        return out
        }
    }

    /// The list of `tileRows`-row query tiles (sequence start, sequence end, first row, 0: the kernels' int4) on the
    /// device, reused while the batch repeats (every layer of one forward pass sees the same batch).
    private func deviceLayout(of batch: PackedBatch, tileRows: Int) throws -> BatchLayout {
        if let cached = batchCache[tileRows], cached.cuSeqlens == batch.cuSeqlens { return cached.layout }
        var tiles: [Int32] = []
        for s in 0..<batch.sequenceCount {
            let range = batch.range(of: s)
            for q0 in stride(from: range.lowerBound, to: range.upperBound, by: tileRows) {
                tiles += [Int32(range.lowerBound), Int32(range.upperBound), Int32(q0), 0]
            }
        }
        // uploadInts reuses one pinned buffer; it waits for the previous copy before overwriting it.
        let layout = BatchLayout(tiles: try uploadInts(tiles), tileCount: tiles.count / 4)
        batchCache[tileRows] = (batch.cuSeqlens, layout)
        return layout
    }

    /// (cos, sin) for every position < capacity and frequency, as HF computes them: inverse frequencies
    /// and angles in fp32, cos/sin of that fp32 angle.
    private func ropeTable(theta: Float, headDim: Int, positions: Int) throws -> CUDAMatrix {
        let key = RopeKey(theta: theta, headDim: headDim)
        if let cached = ropeTables[key], cached.positions >= positions { return cached.table }
        var capacity = 512
        while capacity < positions { capacity *= 2 }
        let half = headDim / 2
        var values = [Float](repeating: 0, count: capacity * half * 2)
        let inverse = (0..<half).map { i in 1 / powf(theta, Float(2 * i) / Float(headDim)) }
        for p in 0..<capacity {
            for i in 0..<half {
                let angle = Double(Float(p) * inverse[i])
                values[(p * half + i) * 2] = Float(cos(angle))
                values[(p * half + i) * 2 + 1] = Float(sin(angle))
            }
        }
        let table = try makeMatrix(rows: capacity, cols: half * 2, type: .float32)
        let bytes = values.count * 4
        let host = try idsStaging.acquire(bytes: bytes)
        values.withUnsafeBytes { host.copyMemory(from: $0.baseAddress!, byteCount: bytes) }
        try context.check(context.driver.cuMemcpyHtoDAsync(table.pointer, host, bytes, context.computeStream), "cuMemcpyHtoDAsync")
        try idsStaging.markUsed(on: context.computeStream)
        ropeTables[key] = (capacity, table)
        return table
    }

    /// Records a device event pair around `body` when profiling.
    func profiled<T>(_ name: String, _ body: () throws -> T) throws -> T {
        guard profiling else { return try body() }
        func event() throws -> CUevent { try spareEvents.popLast() ?? context.makeEvent(timing: true) }
        let start = try event(), end = try event()
        try context.check(context.driver.cuEventRecord(start, context.computeStream), "cuEventRecord")
        let result = try body()
        try context.check(context.driver.cuEventRecord(end, context.computeStream), "cuEventRecord")
        profileEvents.append((name, start, end))
        return result
    }

    /// Device milliseconds per op name since the last report (waits for the device), largest first.
    public func profileReport() throws -> [(op: String, milliseconds: Double, calls: Int)] {
        try synchronize()
        var totals: [String: (Double, Int)] = [:]
        for entry in profileEvents {
            var ms: Float = 0
            try context.check(context.driver.cuEventElapsedTime(&ms, entry.start, entry.end), "cuEventElapsedTime")
            let old = totals[entry.name] ?? (0, 0)
            totals[entry.name] = (old.0 + Double(ms), old.1 + 1)
            spareEvents += [entry.start, entry.end]
        }
        profileEvents.removeAll()
        return totals.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.milliseconds > $1.milliseconds }
    }

    /// Waits for all queued device work (for timing).
    public func synchronize() throws {
        try context.makeCurrent()
        try context.synchronize()
    }

    /// Bytes the pool has taken from the driver, and how many of them sit unused in its free lists.
    public var memoryPoolBytes: (allocated: Int, cached: Int) { (pool.allocatedBytes, pool.cachedBytes) }
}
