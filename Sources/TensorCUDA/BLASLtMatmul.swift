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
        init(api: CCUDABLASLtAPI) { self.api = api }
        deinit {
            if let desc { _ = api.cublasLtMatmulDescDestroy(desc) }
            for layout in [a, b, d] { if let layout { _ = api.cublasLtMatrixLayoutDestroy(layout) } }
        }
    }

    /// A handle of `library` on `context`'s device; `workspace` is `workspaceBytes` of device memory.
    init(context: CUDAContext, library: BLASLtLibrary, workspace: UInt64) throws {
        self.context = context
        api = library.api
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
            plan = try makePlan(key, biasPointer: bias ?? 0)
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
        try check(api.cublasLtMatmul(handle, plan.desc, &alpha,
                                     UnsafeRawPointer(bitPattern: UInt(weight)), plan.a,
                                     UnsafeRawPointer(bitPattern: UInt(x)), plan.b, &betaValue,
                                     UnsafeRawPointer(bitPattern: UInt(cPointer)), plan.d,
                                     UnsafeMutableRawPointer(bitPattern: UInt(d)), plan.d,
                                     &plan.algo, UnsafeMutableRawPointer(bitPattern: UInt(workspace)),
                                     Self.workspaceBytes, context.computeStream), "cublasLtMatmul(\(n)x\(m)x\(k))")
    }

    private func makePlan(_ key: PlanKey, biasPointer: UInt64) throws -> Plan {
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
        var result = cublasLtMatmulHeuristicResult_t()
        var returned: Int32 = 0
        try check(api.cublasLtMatmulAlgoGetHeuristic(handle, plan.desc, plan.a, plan.b, plan.d, plan.d, preference, 1, &result, &returned),
                  "cublasLtMatmulAlgoGetHeuristic(\(key.n)x\(key.m)x\(key.k))")
        guard returned > 0 else {
            throw CUDAError.blas(call: "cublasLtMatmulAlgoGetHeuristic found no algorithm for \(key.n)x\(key.m)x\(key.k)", status: 15)
        }
        plan.algo = result.algo
        return plan
    }
}
