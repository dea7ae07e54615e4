import CCUDA
import Foundation

/// Tensor-core GEMMs through cuBLASLt: `D = epilogue(x · Wᵀ (+ bias)) + beta · C` for row-major
/// activations and PyTorch-layout weights. Plans (descriptors + the heuristic's algorithm) are cached
/// per shape, so a repeated shape costs one `cublasLtMatmul` call.
///
/// The workspace belongs to the caller (allocated before, released after this object), so that one
/// can be made on another thread than the one that owns the memory pool.
final class BLASLtMatmul {
    let context: CUDAContext
    let handle: cublasLtHandle_t
    let api: CCUDABLASLtAPI
    private let workspace: UInt64
    private var plans: [PlanKey: Plan] = [:]
    static let workspaceBytes = 32 << 20
    /// Whether (and how widely) a new shape's algorithm is chosen by timing (`COLGREP_CUBLASLT_TUNE`).
    var tuning = BLASLtTuning.environment
    /// Where timed choices are kept between processes (nil: timed in every process).
    let algorithmStore: BLASLtAlgorithmStore?
    /// The process's choices (the self-test gives a fresh one to see what the store alone provides).
    var tunedAlgorithms = BLASLtTunedAlgorithms.shared
    /// The GPU and libraries this handle runs on: part of every choice's key.
    let device: BLASLtDeviceIdentity

    /// cudaDataType values.
    enum DataType: Int32 {
        case float32 = 0   // CUDA_R_32F
        case bfloat16 = 14 // CUDA_R_16BF
    }

    enum Epilogue: Int32 {
        case none = 1      // CUBLASLT_EPILOGUE_DEFAULT
        case bias = 4      // CUBLASLT_EPILOGUE_BIAS
        case gelu = 32     // CUBLASLT_EPILOGUE_GELU (tanh approximation)
        case geluBias = 36 // CUBLASLT_EPILOGUE_GELU_BIAS
    }

    struct PlanKey: Hashable {
        var m: Int, n: Int, k: Int
        var input: Int32, output: Int32, compute: Int32
        var epilogue: Int32
    }

    final class Plan {
        let api: CCUDABLASLtAPI
        var desc: cublasLtMatmulDesc_t? = nil
        var a: cublasLtMatrixLayout_t? = nil
        var b: cublasLtMatrixLayout_t? = nil
        var d: cublasLtMatrixLayout_t? = nil
        var algo = cublasLtMatmulAlgo_t()
        /// The heuristic's answers in its order (one unless `BLASLtTuning` asks for more); `algo` is one of
        /// them, or a timed choice made on another row count of the same bucket.
        var candidates: [cublasLtMatmulAlgo_t] = []
        /// Set on a new plan whose algorithm is to be chosen by timing at its first run.
        var tunePending = false
        init(api: CCUDABLASLtAPI) { self.api = api }
        deinit {
            if let desc { _ = api.cublasLtMatmulDescDestroy(desc) }
            for layout in [a, b, d] { if let layout { _ = api.cublasLtMatrixLayoutDestroy(layout) } }
        }
    }

    /// A handle of `library` on `context`'s device; `workspace` is `workspaceBytes` of device memory; timed
    /// algorithm choices are read from and written to `algorithmStore`.
    init(context: CUDAContext, library: BLASLtLibrary, workspace: UInt64, algorithmStore: BLASLtAlgorithmStore?) throws {
        self.context = context
        api = library.api
        self.algorithmStore = algorithmStore
        device = BLASLtDeviceIdentity(name: context.name, architecture: context.architecture,
                                      driverVersion: context.libraries.driverVersion, blasLtVersion: library.version)
        var handle: cublasLtHandle_t? = nil
        let status = api.cublasLtCreate(&handle)
        guard status == 0, let handle else { throw CUDAError.blas(call: "cublasLtCreate", status: status) }
        self.handle = handle
        self.workspace = workspace
    }

    deinit {
        plans.removeAll()
        _ = api.cublasLtDestroy(handle)
    }

    /// Makes the plan of one shape without running it: the first plan of a process pays cuBLASLt's
    /// one-time heuristic initialisation (80–110 ms on an H200 host), so a background opening calls this.
    func plan(rows n: Int, outFeatures m: Int, inFeatures k: Int, type: DataType, epilogue: Epilogue) throws {
        let key = PlanKey(m: m, n: n, k: k, input: type.rawValue, output: type.rawValue, compute: Int32(CCUBLAS_COMPUTE_32F), epilogue: epilogue.rawValue)
        guard plans[key] == nil else { return }
        let start = ContinuousClock.now
        // The bias pointer only has to be a valid, aligned device address while planning: `run` sets the real one.
        plans[key] = try makePlan(key, biasPointer: epilogue == .bias || epilogue == .geluBias ? workspace : 0)
        let elapsed = ContinuousClock.now - start
        planningSeconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    private func check(_ status: cublasStatus_t, _ call: String) throws {
        if status != 0 { throw CUDAError.blas(call: call, status: status) }
    }

    /// Host seconds spent making plans (descriptors and cuBLASLt's heuristic query) so far: tells a
    /// start-up's heuristic cost from its first-kernel cost.
    private(set) var planningSeconds: Double = 0

    /// `d[n × m] = epilogue(x[n × k] · w[m × k]ᵀ + bias[m]) + beta · c[n × m]`, all row-major.
    func run(rows n: Int, outFeatures m: Int, inFeatures k: Int, x: UInt64, weight: UInt64, bias: UInt64?,
             c: UInt64?, beta: Float, d: UInt64, input: DataType, output: DataType, allowTF32: Bool = false,
             epilogue: Epilogue) throws {
        let compute = (input == .float32 && allowTF32) ? Int32(CCUBLAS_COMPUTE_32F_FAST_TF32) : Int32(CCUBLAS_COMPUTE_32F)
        let key = PlanKey(m: m, n: n, k: k, input: input.rawValue, output: output.rawValue, compute: compute, epilogue: epilogue.rawValue)
        let plan: Plan
        if let cached = plans[key] {
            plan = cached
        } else {
            let start = ContinuousClock.now
            plan = try makePlan(key, biasPointer: bias ?? 0, candidates: tuning.enabled && n >= tuning.minimumRows ? tuning.candidates : 1)
            plan.tunePending = tuning.enabled && n >= tuning.minimumRows
            let elapsed = ContinuousClock.now - start
            planningSeconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            plans[key] = plan
        }
        if let bias {
            var pointer = bias
            try check(api.cublasLtMatmulDescSetAttribute(plan.desc, Int32(CCUBLASLT_MATMUL_DESC_BIAS_POINTER), &pointer, 8), "set bias")
        }
        var alpha: Float = 1
        var betaValue: Float = c == nil ? 0 : beta
        let cPointer = c ?? d
        // D never aliases C or the operands here (`linear` writes a fresh matrix), so running the product
        // more than once (timing candidates) leaves the same result.
        func launch(_ algo: cublasLtMatmulAlgo_t) -> cublasStatus_t {
            var algo = algo
            return api.cublasLtMatmul(handle, plan.desc, &alpha,
                                      UnsafeRawPointer(bitPattern: UInt(weight)), plan.a,
                                      UnsafeRawPointer(bitPattern: UInt(x)), plan.b, &betaValue,
                                      UnsafeRawPointer(bitPattern: UInt(cPointer)), plan.d,
                                      UnsafeMutableRawPointer(bitPattern: UInt(d)), plan.d,
                                      &algo, UnsafeMutableRawPointer(bitPattern: UInt(workspace)),
                                      Self.workspaceBytes, context.computeStream)
        }
        if plan.tunePending {
            plan.tunePending = false
            let tuneKey = BLASLtTuning.key(key, device: device)
            if let chosen = tunedAlgorithms.algorithm(for: tuneKey) {
                // Chosen on another row count of this bucket: kept if it takes this one.
                if launch(chosen) == 0 {
                    plan.algo = chosen
                    return
                }
            } else if let stored = storedChoice(tuneKey, plan: plan), launch(stored) == 0 {
                // Timed by an earlier process on this device and libraries, and accepted by cuBLASLt for this plan.
                tunedAlgorithms.recordLoaded(stored, for: tuneKey)
                plan.algo = stored
                return
            } else if plan.candidates.count > 1 {
                plan.algo = try timedChoice(plan.candidates, key: tuneKey, launch: launch)
            }
        }
        try check(launch(plan.algo), "cublasLtMatmul(\(n)x\(m)x\(k))")
    }

    /// Runs every candidate `tuning.repeats` times, interleaved, with device events around each run; returns
    /// the one with the fastest single run (a candidate that fails to launch is left out) and records it.
    private func timedChoice(_ candidates: [cublasLtMatmulAlgo_t], key: BLASLtTuning.Key,
                             launch: (cublasLtMatmulAlgo_t) -> cublasStatus_t) throws -> cublasLtMatmulAlgo_t {
        let driver = context.driver
        var events: [CUevent] = []
        defer { for event in events { _ = driver.cuEventDestroy(event) } }
        var runs: [[(CUevent, CUevent)]] = Array(repeating: [], count: candidates.count)
        var usable = Array(repeating: true, count: candidates.count)
        for index in candidates.indices where launch(candidates[index]) != 0 { usable[index] = false }  // warm-up
        for _ in 0..<tuning.repeats {
            for index in candidates.indices where usable[index] {
                let start = try context.makeEvent(timing: true), end = try context.makeEvent(timing: true)
                events += [start, end]
                try context.check(driver.cuEventRecord(start, context.computeStream), "cuEventRecord")
                let status = launch(candidates[index])
                try context.check(driver.cuEventRecord(end, context.computeStream), "cuEventRecord")
                if status != 0 { usable[index] = false } else { runs[index].append((start, end)) }
            }
        }
        try context.synchronize()
        var best: [Float] = Array(repeating: .infinity, count: candidates.count)
        for index in candidates.indices where usable[index] {
            for (start, end) in runs[index] {
                var ms: Float = 0
                try context.check(driver.cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime")
                best[index] = min(best[index], ms)
            }
        }
        guard let chosen = best.indices.min(by: { best[$0] < best[$1] }), best[chosen].isFinite else { return candidates[0] }
        tunedAlgorithms.record(candidates[chosen], for: key, milliseconds: best, chosen: chosen)
        if let algorithmStore {
            // A cache that cannot be written (read-only home) costs the timing in every process, never an error.
            do { try algorithmStore.store(candidates[chosen].words, for: storeKey(key)) } catch { tunedAlgorithms.note("not kept: \(error)") }
        }
        return candidates[chosen]
    }

    /// The name of `key`'s choice in the kernel cache (with this handle's tuning width and workspace).
    func storeKey(_ key: BLASLtTuning.Key) -> BLASLtAlgorithmKey {
        BLASLtAlgorithmKey(shape: key, candidates: tuning.candidates, workspaceBytes: Self.workspaceBytes)
    }

    /// The stored choice for `key` if there is one and cuBLASLt accepts it for `plan` (its descriptors and this row
    /// count) within our workspace; nil sends the caller to timing, whose choice then replaces the file.
    private func storedChoice(_ key: BLASLtTuning.Key, plan: Plan) -> cublasLtMatmulAlgo_t? {
        guard let algorithmStore else { return nil }
        switch algorithmStore.load(storeKey(key)) {
        case .miss:
            return nil
        case .discarded(let reason):
            tunedAlgorithms.note("discarded \(reason)")
            return nil
        case .hit(let words):
            var algo = cublasLtMatmulAlgo_t(words: words)
            var result = cublasLtMatmulHeuristicResult_t()
            let status = api.cublasLtMatmulAlgoCheck(handle, plan.desc, plan.a, plan.b, plan.d, plan.d, &algo, &result)
            guard status == 0, result.state == 0, result.workspaceSize <= Self.workspaceBytes else {
                tunedAlgorithms.note("stored choice for \(key.rowBucket)x\(key.m)x\(key.k) refused by cublasLtMatmulAlgoCheck "
                                     + "(status \(status), state \(result.state), workspace \(result.workspaceSize)); timed again")
                return nil
            }
            return algo
        }
    }

    private func makePlan(_ key: PlanKey, biasPointer: UInt64, candidates requested: Int = 1) throws -> Plan {
        let plan = Plan(api: api)
        try check(api.cublasLtMatmulDescCreate(&plan.desc, key.compute, Int32(CCUDA_R_32F)), "cublasLtMatmulDescCreate")
        var transA = Int32(CCUBLAS_OP_T), transB = Int32(CCUBLAS_OP_N)
        try check(api.cublasLtMatmulDescSetAttribute(plan.desc, Int32(CCUBLASLT_MATMUL_DESC_TRANSA), &transA, 4), "set transA")
        try check(api.cublasLtMatmulDescSetAttribute(plan.desc, Int32(CCUBLASLT_MATMUL_DESC_TRANSB), &transB, 4), "set transB")
        var epilogue = UInt32(key.epilogue)
        try check(api.cublasLtMatmulDescSetAttribute(plan.desc, Int32(CCUBLASLT_MATMUL_DESC_EPILOGUE), &epilogue, 4), "set epilogue")
        if biasPointer != 0 {
            var pointer = biasPointer
            try check(api.cublasLtMatmulDescSetAttribute(plan.desc, Int32(CCUBLASLT_MATMUL_DESC_BIAS_POINTER), &pointer, 8), "set bias")
        }
        // Column-major view of row-major data: W (m × k row-major) is k × m column-major, used transposed;
        // x (n × k) is k × n; D (n × m) is m × n.
        try check(api.cublasLtMatrixLayoutCreate(&plan.a, key.input, UInt64(key.k), UInt64(key.m), Int64(key.k)), "layout A")
        try check(api.cublasLtMatrixLayoutCreate(&plan.b, key.input, UInt64(key.k), UInt64(key.n), Int64(key.k)), "layout B")
        try check(api.cublasLtMatrixLayoutCreate(&plan.d, key.output, UInt64(key.m), UInt64(key.n), Int64(key.m)), "layout D")
        var preference: cublasLtMatmulPreference_t? = nil
        try check(api.cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate")
        defer { _ = api.cublasLtMatmulPreferenceDestroy(preference) }
        var workspaceBytes = UInt64(Self.workspaceBytes)
        try check(api.cublasLtMatmulPreferenceSetAttribute(preference, Int32(CCUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES), &workspaceBytes, 8), "set workspace")
        var results = [cublasLtMatmulHeuristicResult_t](repeating: cublasLtMatmulHeuristicResult_t(), count: max(1, requested))
        var returned: Int32 = 0
        try check(api.cublasLtMatmulAlgoGetHeuristic(handle, plan.desc, plan.a, plan.b, plan.d, plan.d, preference, Int32(results.count), &results, &returned),
                  "cublasLtMatmulAlgoGetHeuristic(\(key.n)x\(key.m)x\(key.k))")
        plan.candidates = results.prefix(Int(returned)).filter { $0.state == 0 }.map(\.algo)
        guard let first = plan.candidates.first else {
            throw CUDAError.blas(call: "cublasLtMatmulAlgoGetHeuristic found no algorithm for \(key.n)x\(key.m)x\(key.k)", status: 15)
        }
        plan.algo = first
        return plan
    }
}
