import Foundation

/// Whether this process can use a CUDA GPU, and if not, why.
public enum CUDAAvailability: Sendable, Equatable, CustomStringConvertible {
    /// The libraries loaded and at least one device is visible; the text names them.
    case available(String)
    /// The reason, ready to show ("GPU unavailable: …" comes from `description`).
    case unavailable(String)

    public var isAvailable: Bool {
        if case .available = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .available(let detail): return "GPU available: \(detail)"
        case .unavailable(let reason): return "GPU unavailable: \(reason)"
        }
    }

    /// Probes once per process: loads the libraries and opens device 0 without compiling anything.
    static let probed: CUDAAvailability = {
        switch probeContext {
        case .failure(let error):
            return .unavailable(Self.reason(error))
        case .success(let context):
            let libraries = context.libraries
            return .available("\(context.name) (\(context.architecture)), driver \(CUDALibraries.versionText(libraries.driverVersion)), NVRTC \(libraries.nvrtcVersion.major).\(libraries.nvrtcVersion.minor)")
        }
    }()

    /// The probe's context stays open: releasing the primary context would make the next backend
    /// pay for creating it again (about 100 ms).
    static var probeContext: Result<CUDAContext, Error> { timedProbe.context }

    /// Seconds the probe took (libraries, driver initialisation, device 0's primary context): the
    /// part of every GPU cold start that happens before any backend exists.
    static var probeSeconds: Double { timedProbe.seconds }

    /// The probe's steps in order: each library load, the driver's initialisation, device 0's context.
    static var probeSteps: [(step: String, seconds: Double)] { timedProbe.steps }

    private static let timedProbe: (context: Result<CUDAContext, Error>, seconds: Double, steps: [(step: String, seconds: Double)]) = {
        let begin = DispatchTime.now().uptimeNanoseconds
        let libraries = CUDALibraries.shared
        let loaded = DispatchTime.now().uptimeNanoseconds
        let context = Result { try CUDAContext(libraries: try libraries.get(), ordinal: 0) }
        let end = DispatchTime.now().uptimeNanoseconds
        var steps = (try? libraries.get())?.loadSeconds.map { (step: $0.library, seconds: $0.seconds) } ?? []
        steps.append((step: "device 0: context and streams", seconds: Double(end - loaded) / 1e9))
        probeRan.lock()
        probeRanValue = true
        probeRan.unlock()
        return (context, Double(end - begin) / 1e9, steps)
    }()

    /// Whether the probe has run in this process (asking does not run it).
    static var hasProbed: Bool {
        probeRan.lock()
        defer { probeRan.unlock() }
        return probeRanValue
    }
    private static let probeRan = NSLock()
    nonisolated(unsafe) private static var probeRanValue = false

    static func reason(_ error: Error) -> String {
        if case CUDAError.unavailable(let reason) = error { return reason }
        return "\(error)"
    }
}
