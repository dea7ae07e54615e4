import Foundation
import TensorCUDA

/// Lets a CLI process open fewer GPUs than `all` when its run is small (`GPUCountPlanner` decides how
/// many): the driver initialises every GPU that `CUDA_VISIBLE_DEVICES` shows it, so the list is cut to
/// the first N before the driver starts. Once per process, and never in a query server, whose later,
/// larger runs could not open the GPUs again.
public final class RunSizedGPUNarrowing: @unchecked Sendable {
    /// How the environment and the driver are reached (the process's own, or a stand-in in tests).
    public struct Environment: Sendable {
        public var get: @Sendable (String) -> String?
        public var set: @Sendable (String, String) -> Void
        /// GPUs the driver lists without initialising it (nil: no NVIDIA driver).
        public var installedGPUs: @Sendable () -> Int?
        /// Whether CUDA has initialised in this process (the driver reads the list once, at `cuInit`).
        public var driverStarted: @Sendable () -> Bool

        public init(get: @escaping @Sendable (String) -> String?, set: @escaping @Sendable (String, String) -> Void,
                    installedGPUs: @escaping @Sendable () -> Int?, driverStarted: @escaping @Sendable () -> Bool) {
            self.get = get
            self.set = set
            self.installedGPUs = installedGPUs
            self.driverStarted = driverStarted
        }

        public static let process = Environment(
            get: { getenv($0).map { String(cString: $0) } },
            set: { setenv($0, $1, 1) },
            installedGPUs: { DeviceSelection.installedGPUCount() },
            driverStarted: { CUDABackend.driverProbed })
    }

    public static let process = RunSizedGPUNarrowing(environment: .process)

    private let environment: Environment
    private let allowed = LockedValue(false)
    private static let key = "CUDA_VISIBLE_DEVICES"

    public init(environment: Environment) {
        self.environment = environment
    }

    /// Allows narrowing where every GPU is selected (`--devices` / `COLGREP_GPU_DEVICES` unset or `all`) and
    /// more than one is visible. Call on the main thread before any other thread exists: with the list
    /// unset it is set to the driver's own (`0,1,…`: the same GPUs in the same order), so that narrowing
    /// it later, from the thread that plans the run, replaces an existing entry (glibc swaps the pointer
    /// and never frees the old text) instead of growing the environment array beside threads that read it.
    public func allow() {
        guard (try? DeviceSelection(parsing: environment.get(DeviceSelection.environmentKey))) == .all else { return }
        if environment.get(Self.key) == nil {
            guard let installed = environment.installedGPUs(), installed > 1 else { return }
            environment.set(Self.key, (0..<installed).map(String.init).joined(separator: ","))
        }
        guard let visible = listedCount(), visible > 1 else { return }
        allowed.withLock { $0 = true }
    }

    /// GPUs the list shows while narrowing is still possible (allowed, not done, driver not started); else nil.
    public var narrowableCount: Int? {
        guard allowed.withLock({ $0 }), !environment.driverStarted() else { return nil }
        return listedCount()
    }

    /// Shows the driver only the first `count` GPUs of the list, once. Returns the new list, or nil if
    /// nothing changed (not allowed, already narrowed, the driver started, or `count` covers the list).
    @discardableResult
    public func narrow(toFirst count: Int) -> String? {
        allowed.withLock { allowed -> String? in
            guard allowed, count > 0, !environment.driverStarted(), let current = environment.get(Self.key),
                  let narrowed = DeviceSelection.narrowedVisibleDevices(selection: .ordinals(Array(0..<count)), visible: current, installed: nil),
                  narrowed != current else { return nil }
            allowed = false
            environment.set(Self.key, narrowed)
            return narrowed
        }
    }

    /// Entries of the list (nil: unset or malformed).
    private func listedCount() -> Int? {
        environment.get(Self.key).flatMap(DeviceSelection.visibleEntries)?.count
    }
}
