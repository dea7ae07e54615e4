import CCUDA
import Foundation

/// Which kernel `CUDABackend` assigns vectors to centroids with.
public enum NearestCentroidKernel: String, Sendable, CaseIterable {
    /// The warpgroup-MMA kernel (bf16, compute capability 9.0, up to 128 dimensions) where it loaded, else the fused
    /// tensor-core kernel where its tile fits in shared memory, else the portable one.
    case automatic
    /// The warpgroup-MMA kernel (`km_assign_wgmma`, Hopper); falls back as `automatic` does where it does not apply.
    case warpgroup
    /// The tensor-core kernel (bf16, `km_assign_mma`), even where the warpgroup kernel applies (for A/B); falls back to
    /// `plain` where it does not apply.
    case tensorCore = "tensor-core"
    /// The portable fused kernel (`km_assign_plain`, fp32 arithmetic), the fallback of a HIP port.
    case plain
    /// A cuBLASLt GEMM writing scores in chunks, then a row argmax (the session-3 path; checks and comparisons).
    case gemm

    /// `COLGREP_NEAREST_KERNEL`, else `automatic`.
    static var environment: NearestCentroidKernel {
        ProcessInfo.processInfo.environment["COLGREP_NEAREST_KERNEL"].flatMap { NearestCentroidKernel(rawValue: $0) } ?? .automatic
    }
}

/// The grouped search's tensor-core kernels (`km_c2f_top_mma`, `km_c2f_fine_mma`) with their dynamic shared bytes.
struct CoarseToFineTensorCoreKernels {
    let top: CUfunction
    let topSharedBytes: Int
    let fine: CUfunction
    let fineSharedBytes: Int
}

/// The k-means module built for one padded dimension: its functions and, in bf16, the tensor-core
/// assignment kernel with its launch shape.
struct KMeansKernels {
    /// The dimension rounded up to a multiple of 16 (rows are stored this wide, zero-padded).
    let paddedDim: Int
    let functions: [String: CUfunction]
    /// The tensor-core kernel, its warps along the vector tile (32 vectors each) and dynamic shared bytes.
    let tensorCore: (function: CUfunction, warpsM: Int, sharedBytes: Int)?
    /// The warpgroup-MMA kernel of its own sm_90a module (`CUDAKMeansWarpgroup.swift`), where it loaded.
    var warpgroup: (function: CUfunction, plan: KMeansWarpgroupPlan)? = nil
    /// The coarse-to-fine search on tensor cores, in bf16 builds up to 128 padded dimensions where its tiles fit.
    var coarseToFineTensorCore: CoarseToFineTensorCoreKernels? = nil

    func callAsFunction(_ name: String) -> CUfunction { functions[name]! }

    static func paddedDim(_ dim: Int) -> Int { (dim + 15) / 16 * 16 }
    /// Centroid rows rounded up to whole 128-row tiles.
    static func paddedCount(_ k: Int) -> Int { (k + KernelSource.kmeansCentroidTile - 1) / KernelSource.kmeansCentroidTile * KernelSource.kmeansCentroidTile }

    /// Shared memory of the tensor-core kernel: the vector tile and one or two centroid tiles, rows padded
    /// by 16 bytes.
    static func tensorCoreSharedBytes(paddedDim: Int, warpsM: Int, centroidBuffers: Int = 1) -> Int {
        (32 * warpsM + centroidBuffers * KernelSource.kmeansCentroidTile) * (paddedDim + 8) * 2
    }

    /// Dynamic shared memory of `km_c2f_fine_mma`: a tile of entry vectors and one of centroids, rows padded by 16 bytes.
    static func coarseToFineTensorCoreSharedBytes(paddedDim: Int) -> Int {
        (CUDABackend.coarseToFineTileRows + KernelSource.kmeansCoarseToFineMMAColumns) * (paddedDim + 8) * 2
    }

    /// Dynamic shared memory of `km_c2f_top_mma`: `km_c2f_fine_mma`'s tiles and the tile's fp32 scores (rows of 64 + 1).
    static func coarseToFineTopSharedBytes(paddedDim: Int) -> Int {
        coarseToFineTensorCoreSharedBytes(paddedDim: paddedDim) + CUDABackend.coarseToFineTileRows * (KernelSource.kmeansCoarseToFineMMAColumns + 1) * 4
    }

    /// Warps along the vector tile for the tensor-core kernel: `COLGREP_KM_WM` (4 or 8) when it fits,
    /// else 8 (256 vectors a block: half the centroid re-reads of 4) when its tile fits in
    /// `maxSharedBytes`, else 4, else nil (the portable kernel).
    static func warpsM(paddedDim: Int, maxSharedBytes: Int, requested: Int? = environmentWarpsM, centroidBuffers: Int = 1) -> Int? {
        let candidates = requested.map { [$0] } ?? [8, 4]
        return candidates.first { tensorCoreSharedBytes(paddedDim: paddedDim, warpsM: $0, centroidBuffers: centroidBuffers) <= maxSharedBytes }
    }

    /// Warps along the vector tile and centroid buffers. Two buffers (the next tile stored while this
    /// one is scored: one barrier a tile) up to 64 dimensions, where the vector fragments also stay in
    /// registers and 512 threads still fit their registers; wider rows would spill with two. The
    /// buffer count falls back to one where two do not fit; `COLGREP_KM_NB` (1 or 2) overrides.
    static func tensorCorePlan(paddedDim: Int, maxSharedBytes: Int, requestedWarps: Int? = environmentWarpsM,
                               requestedBuffers: Int? = environmentBuffers) -> (warpsM: Int, centroidBuffers: Int)? {
        for buffers in requestedBuffers.map({ [$0, 1] }) ?? (paddedDim <= 64 ? [2, 1] : [1]) {
            if let wm = warpsM(paddedDim: paddedDim, maxSharedBytes: maxSharedBytes, requested: requestedWarps, centroidBuffers: buffers) {
                return (wm, buffers)
            }
        }
        return nil
    }

    static let environmentWarpsM: Int? = ProcessInfo.processInfo.environment["COLGREP_KM_WM"].flatMap { Int($0) }.flatMap { [4, 8].contains($0) ? $0 : nil }
    static let environmentBuffers: Int? = ProcessInfo.processInfo.environment["COLGREP_KM_NB"].flatMap { Int($0) }.flatMap { [1, 2].contains($0) ? $0 : nil }
}

extension CUDABackend {
    /// Loads (or compiles) the k-means module for `dim`-wide rows.
    func kmeansKernels(dim: Int) throws -> KMeansKernels {
        let paddedDim = KMeansKernels.paddedDim(dim)
        if let loaded = kmeansModules[paddedDim] { return loaded }
        var optIn: Int32 = 0
        try context.check(context.driver.cuDeviceGetAttribute(&optIn, Int32(CCUDA_ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN), context.device),
                          "cuDeviceGetAttribute(shared memory opt-in)")
        let plan = precision == .bf16 ? KMeansKernels.tensorCorePlan(paddedDim: paddedDim, maxSharedBytes: Int(optIn)) : nil
        let warpsM = plan?.warpsM
        let start = ContinuousClock.now
        let (module, origin) = try loadModule(name: "kmeans-\(paddedDim)", source: KernelSource.kmeans,
                                              options: precisionOptions + ["-DCG_KM_DP=\(paddedDim)", "-DCG_KM_WM=\(warpsM ?? 4)",
                                                                           "-DCG_KM_NB=\(plan?.centroidBuffers ?? 1)"])
        var functions: [String: CUfunction] = [:]
        for name in KernelSource.kmeansKernels { functions[name] = try context.function(module, name) }
        var tensorCore: (CUfunction, Int, Int)? = nil
        if let warpsM {
            let function = try context.function(module, KernelSource.kmeansMMAKernel)
            let shared = KMeansKernels.tensorCoreSharedBytes(paddedDim: paddedDim, warpsM: warpsM, centroidBuffers: plan?.centroidBuffers ?? 1)
            try context.check(context.driver.cuFuncSetAttribute(function, Int32(CCUDA_FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES), Int32(shared)),
                              "cuFuncSetAttribute(km_assign_mma, \(shared) shared bytes)")
            tensorCore = (function, warpsM, shared)
        }
        var coarseToFine: CoarseToFineTensorCoreKernels? = nil
        let fineShared = KMeansKernels.coarseToFineTensorCoreSharedBytes(paddedDim: paddedDim)
        let topShared = KMeansKernels.coarseToFineTopSharedBytes(paddedDim: paddedDim)
        // The top kernel also holds a 2,048-entry histogram and a tile of biases statically.
        if precision == .bf16, paddedDim <= 128, topShared + 9 * 1024 <= Int(optIn) {
            let names = KernelSource.kmeansCoarseToFineMMAKernels
            func function(_ name: String, sharedBytes: Int) throws -> CUfunction {
                let loaded = try context.function(module, name)
                try context.check(context.driver.cuFuncSetAttribute(loaded, Int32(CCUDA_FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES), Int32(sharedBytes)),
                                  "cuFuncSetAttribute(\(name), \(sharedBytes) shared bytes)")
                return loaded
            }
            coarseToFine = CoarseToFineTensorCoreKernels(top: try function(names.top, sharedBytes: topShared), topSharedBytes: topShared,
                                                         fine: try function(names.fine, sharedBytes: fineShared), fineSharedBytes: fineShared)
        }
        let kernels = KMeansKernels(paddedDim: paddedDim, functions: functions, tensorCore: tensorCore,
                                    warpgroup: loadWarpgroupAssign(paddedDim: paddedDim, maxSharedBytes: Int(optIn)),
                                    coarseToFineTensorCore: coarseToFine)
        kmeansModules[paddedDim] = kernels
        let elapsed = ContinuousClock.now - start
        startupSteps.append(StartupStep(step: "kmeans-\(paddedDim) kernels (\(origin.rawValue))",
                                        seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
        return kernels
    }

    /// Centroid rows (`count × dim` at `source`, fp32 or this backend's activations) padded into `table`
    /// (`paddedCount × paddedDim` activations) with their biases (−½‖c‖² or 0; −∞ for padding rows).
    func prepareCentroids(_ kernels: KMeansKernels, source: UInt64, sourceIsFloat32: Bool, count: Int, dim: Int,
                          euclidean: Bool, table: CUDAMatrix, bias: CUDAMatrix) throws {
        let paddedCount = KMeansKernels.paddedCount(count)
        try context.launch(kernels(sourceIsFloat32 ? "km_prepare_f32" : "km_prepare_act"), grid: ((paddedCount + 3) / 4, 1, 1), block: (128, 1, 1), [
            .pointer(source), .int32(Int32(count)), .int32(Int32(paddedCount)), .int32(Int32(dim)), .int32(euclidean ? 1 : 0),
            .pointer(table.pointer), .pointer(bias.pointer),
        ])
    }

    /// A padded centroid table and its biases, allocated for `count` centroids.
    func makeCentroidTable(_ kernels: KMeansKernels, count: Int) throws -> (table: CUDAMatrix, bias: CUDAMatrix) {
        let paddedCount = KMeansKernels.paddedCount(count)
        return (try makeMatrix(rows: paddedCount, cols: kernels.paddedDim), try makeMatrix(rows: 1, cols: paddedCount, type: .float32))
    }

    /// The index of the best centroid for each of `rows` padded vectors at `vectors`, written as Int32 at
    /// `out`: the fused kernel (warpgroup MMA or tensor cores where they apply and `nearestCentroidKernel` allows;
    /// `AssignKernel.chosen`).
    func fusedAssign(_ kernels: KMeansKernels, vectors: UInt64, rows: Int, table: CUDAMatrix, bias: CUDAMatrix, out: UInt64) throws {
        guard rows > 0 else { return }
        let arguments: [KernelArgument] = [.pointer(vectors), .int64(Int64(rows)), .pointer(table.pointer), .pointer(bias.pointer),
                                           .int32(Int32(table.rows)), .pointer(out)]
        switch AssignKernel.chosen(nearestCentroidKernel, warpgroupLoaded: kernels.warpgroup != nil, tensorCoreLoaded: kernels.tensorCore != nil) {
        case .warpgroup:
            let (function, plan) = kernels.warpgroup!
            try profiled(KernelSource.kmeansWarpgroupKernel) {
                try context.launch(function, grid: ((rows + plan.rows - 1) / plan.rows, 1, 1), block: (plan.threads, 1, 1),
                                   sharedBytes: plan.sharedBytes, arguments)
            }
            warpgroupAssignCount += 1
        case .tensorCore:
            let mma = kernels.tensorCore!
            let tile = 32 * mma.warpsM
            try profiled(KernelSource.kmeansMMAKernel) {
                try context.launch(mma.function, grid: ((rows + tile - 1) / tile, 1, 1), block: (64 * mma.warpsM, 1, 1),
                                   sharedBytes: mma.sharedBytes, arguments)
            }
        case .plain:
            try profiled("km_assign_plain") {
                try context.launch(kernels("km_assign_plain"), grid: ((rows + 63) / 64, 1, 1), block: (256, 1, 1), arguments)
            }
        }
    }

    /// fp32 rows at `source` (`rows × dim`) into padded activation rows at `destination`.
    func convertRows(_ kernels: KMeansKernels, source: UInt64, rows: Int, dim: Int, destination: UInt64) throws {
        try launchElementwise("km_convert_rows", kernels: kernels, count: rows * kernels.paddedDim, [
            .pointer(source), .pointer(destination), .int64(Int64(rows)), .int32(Int32(dim)),
        ])
    }

    /// −½‖c‖² of `count` fp32 rows (`dim` wide) at `matrix` into `out` (`km_half_sq_norms`: the host's double sum, bit for bit).
    func halfSquaredNorms(_ kernels: KMeansKernels, of matrix: CUDAMatrix, count: Int, dim: Int, into out: CUDAMatrix) throws {
        try launchElementwise("km_half_sq_norms", kernels: kernels, count: count, [
            .pointer(matrix.pointer), .int64(Int64(count)), .int32(Int32(dim)), .pointer(out.pointer),
        ])
    }

    /// A grid-stride kernel of the k-means module over `count` elements.
    func launchElementwise(_ name: String, kernels: KMeansKernels, count: Int, _ arguments: [KernelArgument]) throws {
        guard count > 0 else { return }
        let blocks = max(1, min((count + 255) / 256, context.multiprocessorCount * 32))
        try context.launch(kernels(name), grid: (blocks, 1, 1), block: (256, 1, 1), arguments)
    }
}
