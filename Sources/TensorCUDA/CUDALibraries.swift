import CCUDA
import Foundation

/// The CUDA driver and NVRTC entry points, loaded once per process with `dlopen` (cuBLASLt, the
/// largest and slowest to load, separately: `BLASLtLibrary`).
///
/// Nothing here is linked at build time: on a machine without CUDA, `CUDALibraries.shared` is a
/// failure whose message says which library is missing and how to point colgrep at it.
final class CUDALibraries: @unchecked Sendable {
    // The function tables never change after loading, which is what makes sharing them safe.
    let driver: CCUDADriverAPI
    let nvrtc: CCUDANVRTCAPI
    /// CUDA driver version as an integer (13000 = 13.0).
    let driverVersion: Int32
    let nvrtcVersion: (major: Int32, minor: Int32)
    /// Seconds each `dlopen` took (start-up report).
    let loadSeconds: [(library: String, seconds: Double)]

    /// The process-wide libraries, or why they could not be loaded.
    static let shared: Result<CUDALibraries, CUDAError> = load(environment: ProcessInfo.processInfo.environment)

    /// Message of every load failure: what to install or where to point colgrep.
    static let fix = "install the NVIDIA driver and the CUDA toolkit (NVRTC, cuBLASLt), or set COLGREP_CUDA_LIBRARY_PATH to the folder holding them"

    static let driverNames = ["libcuda.so.1", "libcuda.so"]
    static let nvrtcNames = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]
    static let blasLtNames = ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"]

    /// Directories searched before the dynamic linker's own path: `COLGREP_CUDA_LIBRARY_PATH`
    /// (colon-separated), then `$CUDA_HOME/lib64`, `$CUDA_PATH/lib64` and the usual toolkit places.
    static func searchDirectories(environment: [String: String]) -> [String] {
        var directories: [String] = []
        if let explicit = environment["COLGREP_CUDA_LIBRARY_PATH"] {
            directories += explicit.split(separator: ":").map(String.init)
        }
        for variable in ["CUDA_HOME", "CUDA_PATH"] {
            if let root = environment[variable], !root.isEmpty {
                directories += ["\(root)/lib64", "\(root)/lib", "\(root)/targets/x86_64-linux/lib"]
            }
        }
        directories += ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu"]
        return directories
    }

    private init(driver: CCUDADriverAPI, nvrtc: CCUDANVRTCAPI, loadSeconds: [(library: String, seconds: Double)]) {
        self.loadSeconds = loadSeconds
        self.driver = driver
        self.nvrtc = nvrtc
        var version: Int32 = 0
        _ = driver.cuDriverGetVersion(&version)
        driverVersion = version
        var major: Int32 = 0, minor: Int32 = 0
        _ = nvrtc.nvrtcVersion(&major, &minor)
        nvrtcVersion = (major, minor)
    }

    static func load(environment: [String: String]) -> Result<CUDALibraries, CUDAError> {
        let directories = searchDirectories(environment: environment).joined(separator: ":")
        var timings: [(library: String, seconds: Double)] = []
        var clock = ContinuousClock.now
        func lap(_ name: String) {
            let now = ContinuousClock.now
            let elapsed = now - clock
            timings.append((name, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
            clock = now
        }
        if let connections = deviceConnectionsSetting(environment: environment) {
            setenv("CUDA_DEVICE_MAX_CONNECTIONS", connections, 0)
        }
        do {
            // The driver comes from the system path only unless the user names a folder explicitly.
            let driverLibrary = try open(names: driverNames, directories: environment["COLGREP_CUDA_LIBRARY_PATH"] ?? "", what: "CUDA driver", fix: fix)
            var driver = CCUDADriverAPI()
            try resolve(what: "CUDA driver") { ccuda_resolve_driver(driverLibrary, &driver, $0, $1) }
            lap("dlopen libcuda")
            // The driver's own initialisation (~170 ms on an H200 host) does not need NVRTC: it runs
            // on another thread while NVRTC loads (5–8 ms), so the first context finds it done.
            // `CUDAContext` calls `cuInit` again and reports its result. cuBLASLt (50–100 ms to load,
            // another 80–110 ms of one-time initialisation at its first plan) is no longer loaded here:
            // the backend opens it on a thread of its own once the context exists, and runs its own
            // GEMM meanwhile. `COLGREP_CUBLASLT_EARLY=1` starts loading it here, beside `cuInit`, as
            // before (for comparing the two orders).
            let driverInit = DispatchGroup()
            let initDriver = driver.cuInit
            DispatchQueue.global(qos: .userInitiated).async(group: driverInit) { _ = initDriver?(0) }
            defer { driverInit.wait() }
            if environment["COLGREP_CUBLASLT_EARLY"] == "1" {
                DispatchQueue.global(qos: .userInitiated).async { _ = BLASLtLibrary.shared }
            }
            let nvrtcLibrary = try open(names: nvrtcNames, directories: directories, what: "NVRTC", fix: fix)
            var nvrtc = CCUDANVRTCAPI()
            try resolve(what: "NVRTC") { ccuda_resolve_nvrtc(nvrtcLibrary, &nvrtc, $0, $1) }
            lap("dlopen libnvrtc")
            driverInit.wait()
            lap("driver init (overlapped with the above)")
            return .success(CUDALibraries(driver: driver, nvrtc: nvrtc, loadSeconds: timings))
        } catch let error as CUDAError {
            return .failure(error)
        } catch {
            return .failure(.unavailable("\(error)"))
        }
    }

    /// Hardware work queues per context that colgrep asks the driver for (`CUDA_DEVICE_MAX_CONNECTIONS`,
    /// read at `cuInit`). Fewer make the context faster to create; measured on an H200 host (session 8,
    /// interleaved runs): primary context 99–109 ms unset, 81–102 with 4, 60–64 with 2, 48–64 with 1; encoder
    /// throughput with 3 streams the same with 2 as with 8 (Ettin shape 17.85M vs 17.35M tokens/s, MiniLM
    /// shape 8.52M vs 8.49M). 2 keeps a compute and a copy queue apart.
    static let defaultDeviceConnections = 2

    /// The value colgrep sets for `CUDA_DEVICE_MAX_CONNECTIONS` before loading the driver, or nil where the
    /// user already set one (theirs stands).
    static func deviceConnectionsSetting(environment: [String: String]) -> String? {
        environment["CUDA_DEVICE_MAX_CONNECTIONS"] == nil ? String(defaultDeviceConnections) : nil
    }

    /// Opens the first library of `names` found; the error names every candidate and the fix.
    static func open(names: [String], directories: String, what: String, fix: String) throws -> UnsafeMutableRawPointer {
        var message = [CChar](repeating: 0, count: 512)
        let handle = withCStringArray(names) { list in
            ccuda_open_library(list, directories, &message, message.count)
        }
        guard let handle else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CUDAError.unavailable("\(what) library not found (tried \(names.joined(separator: ", ")): \(reason)); \(fix)")
        }
        return handle
    }

    static func resolve(what: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var message = [CChar](repeating: 0, count: 256)
        let status = message.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        if status != 0 {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CUDAError.unavailable("\(what) library is too old or not a CUDA library: \(reason)")
        }
    }

    /// The text of a driver error code.
    func errorString(_ code: CUresult) -> String {
        var text: UnsafePointer<CChar>? = nil
        _ = driver.cuGetErrorString(code, &text)
        return text.map { String(cString: $0) } ?? "unknown error"
    }

    /// Throws a `CUDAError` for a failed driver call.
    func check(_ code: CUresult, _ call: @autoclosure () -> String) throws {
        guard code != 0 else { return }
        switch code {
        case CUresult(CCUDA_ERROR_NO_BINARY_FOR_GPU), CUresult(CCUDA_ERROR_UNSUPPORTED_PTX_VERSION), CUresult(CCUDA_ERROR_INVALID_IMAGE):
            throw CUDAError.toolkitMismatch(
                "\(call()) failed (\(errorString(code))): kernels compiled by NVRTC \(nvrtcVersion.major).\(nvrtcVersion.minor) "
                    + "do not load on driver \(CUDALibraries.versionText(driverVersion)); update the driver or point "
                    + "COLGREP_CUDA_LIBRARY_PATH at an NVRTC no newer than the driver")
        case CUresult(CCUDA_ERROR_INSUFFICIENT_DRIVER):
            throw CUDAError.toolkitMismatch("\(call()): the installed driver \(CUDALibraries.versionText(driverVersion)) is older than the CUDA libraries need; update the NVIDIA driver")
        default:
            throw CUDAError.driver(call: call(), code: code, message: errorString(code))
        }
    }

    /// "13.0" from 13000.
    static func versionText(_ version: Int32) -> String { "\(version / 1000).\((version % 1000) / 10)" }
}

/// cuBLASLt's entry points, loaded once per process on first use (the backend's background opening).
final class BLASLtLibrary: @unchecked Sendable {
    let api: CCUDABLASLtAPI
    let version: Int
    /// Seconds the `dlopen` and symbol lookup took.
    let loadSeconds: Double

    private init(api: CCUDABLASLtAPI, loadSeconds: Double) {
        self.api = api
        self.loadSeconds = loadSeconds
        version = Int(api.cublasLtGetVersion())
    }

    /// The process-wide library, or why it could not be loaded.
    static let shared: Result<BLASLtLibrary, CUDAError> = load(environment: ProcessInfo.processInfo.environment)

    static func load(environment: [String: String]) -> Result<BLASLtLibrary, CUDAError> {
        let start = ContinuousClock.now
        do {
            let directories = CUDALibraries.searchDirectories(environment: environment).joined(separator: ":")
            let library = try CUDALibraries.open(names: CUDALibraries.blasLtNames, directories: directories, what: "cuBLASLt", fix: CUDALibraries.fix)
            var api = CCUDABLASLtAPI()
            try CUDALibraries.resolve(what: "cuBLASLt") { ccuda_resolve_blaslt(library, &api, $0, $1) }
            let elapsed = ContinuousClock.now - start
            return .success(BLASLtLibrary(api: api, loadSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
        } catch let error as CUDAError {
            return .failure(error)
        } catch {
            return .failure(.unavailable("\(error)"))
        }
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = duplicates.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
