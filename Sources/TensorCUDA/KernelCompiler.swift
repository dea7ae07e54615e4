import CCUDA
import Foundation

/// Compiles CUDA C to a cubin for the device's exact architecture with NVRTC, through the disk cache.
struct KernelCompiler {
    let libraries: CUDALibraries
    let cache: KernelCache?

    /// How a module was obtained, for start-up reports.
    enum Origin: String, Sendable {
        case cache = "cache hit"
        case compiled = "compiled"
    }

    var compilerVersion: String { "\(libraries.nvrtcVersion.major).\(libraries.nvrtcVersion.minor)" }

    func key(module: String, source: String, architecture: String, options: [String]) -> KernelCacheKey {
        KernelCacheKey(module: module, source: source, architecture: architecture,
                       driverVersion: libraries.driverVersion, compilerVersion: compilerVersion, options: options)
    }

    /// The cubin for `source`, from the cache when an intact entry exists, else compiled and stored.
    /// A cache that cannot be written (read-only home) costs a compile per process, never an error.
    func binary(module: String, source: String, architecture: String, options: [String]) throws -> (image: [UInt8], origin: Origin, note: String?) {
        let key = key(module: module, source: source, architecture: architecture, options: options)
        var note: String? = nil
        if let cache {
            switch cache.load(key) {
            case .hit(let image): return (image, .cache, nil)
            case .discarded(let reason): note = "discarded cache entry \(reason)"
            case .miss: break
            }
        }
        let image = try compile(source: source, name: "\(module).cu", architecture: architecture, options: options)
        if let cache {
            do { try cache.store(image, for: key) } catch { note = [note, "\(error)"].compactMap { $0 }.joined(separator: "; ") }
        }
        return (image, .compiled, note)
    }

    func compile(source: String, name: String, architecture: String, options: [String]) throws -> [UInt8] {
        let api = libraries.nvrtc
        var program: nvrtcProgram? = nil
        var status = api.nvrtcCreateProgram(&program, source, name, 0, nil, nil)
        guard status == 0, program != nil else { throw CUDAError.compile("nvrtcCreateProgram: \(message(status))") }
        defer { _ = api.nvrtcDestroyProgram(&program) }
        let allOptions = ["--gpu-architecture=\(architecture)", "--std=c++17"] + options
        status = withCStringArray(allOptions) { list in api.nvrtcCompileProgram(program, Int32(allOptions.count), list) }
        if status != 0 {
            var size = 0
            _ = api.nvrtcGetProgramLogSize(program, &size)
            var log = [CChar](repeating: 0, count: max(size, 1))
            _ = api.nvrtcGetProgramLog(program, &log)
            let text = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CUDAError.compile("\(message(status)) for \(architecture): \(text.prefix(4000))")
        }
        var size = 0
        status = api.nvrtcGetCUBINSize(program, &size)
        guard status == 0, size > 0 else {
            throw CUDAError.toolkitMismatch("NVRTC \(compilerVersion) produced no cubin for \(architecture) (\(message(status))); use an NVRTC that knows this GPU")
        }
        var image = [CChar](repeating: 0, count: size)
        status = api.nvrtcGetCUBIN(program, &image)
        guard status == 0 else { throw CUDAError.compile("nvrtcGetCUBIN: \(message(status))") }
        return image.map { UInt8(bitPattern: $0) }
    }

    private func message(_ status: nvrtcResult) -> String {
        guard let text = libraries.nvrtc.nvrtcGetErrorString(status) else { return "error \(status)" }
        return String(cString: text)
    }
}
