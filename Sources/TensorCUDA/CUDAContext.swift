import CCUDA
import Foundation

/// One CUDA device opened for compute: its primary context, a compute stream and a copy stream,
/// pinned host staging buffers, and the raw allocator under the memory pool.
///
/// The primary context is shared with the CUDA runtime inside cuBLASLt, so both see the same memory.
final class CUDAContext: DeviceAllocator, @unchecked Sendable {
    let libraries: CUDALibraries
    let ordinal: Int
    let device: CUdevice
    let context: CUcontext
    let name: String
    /// "sm_90" for an H100.
    let architecture: String
    let computeCapability: (major: Int, minor: Int)
    let multiprocessorCount: Int
    let totalMemory: Int
    /// Devices the driver shows this process (after `CUDA_VISIBLE_DEVICES`).
    let visibleDeviceCount: Int
    /// Kernels, GEMMs and stream-ordered copies run here.
    let computeStream: CUstream
    /// Copies that overlap compute (weight upload chunks, result download) run here.
    let copyStream: CUstream

    var driver: CCUDADriverAPI { libraries.driver }

    /// Opens device `ordinal` among the devices `CUDA_VISIBLE_DEVICES` leaves visible.
    init(libraries: CUDALibraries, ordinal: Int) throws {
        self.libraries = libraries
        self.ordinal = ordinal
        let driver = libraries.driver
        let initResult = driver.cuInit(0)
        if initResult == CUresult(CCUDA_ERROR_NO_DEVICE) {
            throw CUDAError.unavailable("the NVIDIA driver reports no CUDA device (CUDA_VISIBLE_DEVICES=\(ProcessInfo.processInfo.environment["CUDA_VISIBLE_DEVICES"] ?? "unset"))")
        }
        if initResult == CUresult(CCUDA_ERROR_INSUFFICIENT_DRIVER) {
            throw CUDAError.toolkitMismatch("the NVIDIA driver is too old for this CUDA (cuInit: \(libraries.errorString(initResult)))")
        }
        guard initResult == 0 else {
            throw CUDAError.unavailable("cuInit failed: \(libraries.errorString(initResult)) (error \(initResult))")
        }
        var count: Int32 = 0
        try libraries.check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount")
        visibleDeviceCount = Int(count)
        guard count > 0 else { throw CUDAError.unavailable("no CUDA device is visible (CUDA_VISIBLE_DEVICES=\(ProcessInfo.processInfo.environment["CUDA_VISIBLE_DEVICES"] ?? "unset"))") }
        guard ordinal >= 0, ordinal < Int(count) else {
            throw CUDAError.unavailable("device \(ordinal) requested but only \(count) CUDA device(s) are visible (indices 0..<\(count); CUDA_VISIBLE_DEVICES renumbers them)")
        }
        var device: CUdevice = 0
        try libraries.check(driver.cuDeviceGet(&device, Int32(ordinal)), "cuDeviceGet")
        self.device = device
        var nameBuffer = [CChar](repeating: 0, count: 256)
        _ = driver.cuDeviceGetName(&nameBuffer, Int32(nameBuffer.count), device)
        name = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        func attribute(_ id: Int32) throws -> Int {
            var value: Int32 = 0
            try libraries.check(driver.cuDeviceGetAttribute(&value, id, device), "cuDeviceGetAttribute(\(id))")
            return Int(value)
        }
        let major = try attribute(Int32(CCUDA_ATTR_COMPUTE_CAPABILITY_MAJOR))
        let minor = try attribute(Int32(CCUDA_ATTR_COMPUTE_CAPABILITY_MINOR))
        computeCapability = (major, minor)
        architecture = "sm_\(major)\(minor)"
        multiprocessorCount = try attribute(Int32(CCUDA_ATTR_MULTIPROCESSOR_COUNT))
        var total = 0
        try libraries.check(driver.cuDeviceTotalMem(&total, device), "cuDeviceTotalMem")
        totalMemory = total
        guard major >= 7 else {
            throw CUDAError.unavailable("\(name) (\(architecture)) is older than the Volta generation this backend needs")
        }
        // How waits behave (CUDAWaitPolicy). Best effort: a driver that refuses (another user of the primary
        // context set it first) leaves its own policy, which only costs CPU.
        _ = driver.cuDevicePrimaryCtxSetFlags(device, CUDAWaitPolicy.current().contextFlags)
        var context: CUcontext? = nil
        try libraries.check(driver.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain")
        self.context = context!
        try libraries.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        var compute: CUstream? = nil
        var copy: CUstream? = nil
        try libraries.check(driver.cuStreamCreate(&compute, UInt32(CCUDA_STREAM_NON_BLOCKING)), "cuStreamCreate")
        try libraries.check(driver.cuStreamCreate(&copy, UInt32(CCUDA_STREAM_NON_BLOCKING)), "cuStreamCreate")
        computeStream = compute!
        copyStream = copy!
    }

    deinit {
        _ = driver.cuCtxSetCurrent(context)
        _ = driver.cuStreamSynchronize(computeStream)
        _ = driver.cuStreamSynchronize(copyStream)
        _ = driver.cuStreamDestroy(computeStream)
        _ = driver.cuStreamDestroy(copyStream)
        _ = driver.cuDevicePrimaryCtxRelease(device)
    }

    /// Makes this device's context current on the calling thread (cheap; every entry point calls it).
    func makeCurrent() throws {
        try libraries.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
    }

    func check(_ code: CUresult, _ call: @autoclosure () -> String) throws {
        try libraries.check(code, call())
    }

    // MARK: DeviceAllocator

    func allocate(bytes: Int) throws -> UInt64 {
        var pointer: CUdeviceptr = 0
        let code = driver.cuMemAlloc(&pointer, bytes)
        if code == CUresult(CCUDA_ERROR_OUT_OF_MEMORY) {
            let info = memoryInfo()
            throw CUDAError.outOfMemory(requestedBytes: bytes, freeBytes: info.free, totalBytes: info.total, hint: "")
        }
        try check(code, "cuMemAlloc(\(bytes))")
        return pointer
    }

    func free(_ pointer: UInt64) {
        _ = driver.cuMemFree(pointer)
    }

    func memoryInfo() -> (free: Int, total: Int) {
        var free = 0, total = 0
        _ = driver.cuMemGetInfo(&free, &total)
        return (free, total)
    }

    // MARK: streams and events

    func synchronize() throws {
        try check(driver.cuStreamSynchronize(computeStream), "cuStreamSynchronize")
    }

    func makeEvent(timing: Bool = false) throws -> CUevent {
        var event: CUevent? = nil
        try check(driver.cuEventCreate(&event, UInt32(timing ? CCUDA_EVENT_DEFAULT : CCUDA_EVENT_DISABLE_TIMING)), "cuEventCreate")
        return event!
    }

    /// Makes `waiting` wait for everything queued so far on `on`.
    func order(_ waiting: CUstream, after on: CUstream, event: CUevent) throws {
        try check(driver.cuEventRecord(event, on), "cuEventRecord")
        try check(driver.cuStreamWaitEvent(waiting, event, 0), "cuStreamWaitEvent")
    }

    // MARK: modules and launches

    func loadModule(_ image: [UInt8]) throws -> CUmodule {
        var module: CUmodule? = nil
        try image.withUnsafeBytes { try check(driver.cuModuleLoadData(&module, $0.baseAddress), "cuModuleLoadData") }
        return module!
    }

    func function(_ module: CUmodule, _ name: String) throws -> CUfunction {
        var function: CUfunction? = nil
        try check(driver.cuModuleGetFunction(&function, module, name), "cuModuleGetFunction(\(name))")
        return function!
    }

    /// Launches `function` on the compute stream with the arguments in declaration order.
    func launch(_ function: CUfunction, grid: (Int, Int, Int), block: (Int, Int, Int), sharedBytes: Int = 0,
                _ arguments: [KernelArgument]) throws {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(arguments.count, 1) * 8, alignment: 8)
        defer { storage.deallocate() }
        var slots: [UnsafeMutableRawPointer?] = []
        slots.reserveCapacity(arguments.count)
        for (index, argument) in arguments.enumerated() {
            let slot = storage + index * 8
            switch argument {
            case .pointer(let value): slot.storeBytes(of: value, as: UInt64.self)
            case .int32(let value): slot.storeBytes(of: value, as: Int32.self)
            case .int64(let value): slot.storeBytes(of: value, as: Int64.self)
            case .float(let value): slot.storeBytes(of: value, as: Float.self)
            }
            slots.append(slot)
        }
        let code = slots.withUnsafeMutableBufferPointer { buffer in
            driver.cuLaunchKernel(function, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2),
                                  UInt32(block.0), UInt32(block.1), UInt32(block.2),
                                  UInt32(sharedBytes), computeStream, buffer.baseAddress, nil)
        }
        try check(code, "cuLaunchKernel")
    }
}

/// One kernel argument, passed by value.
enum KernelArgument {
    case pointer(UInt64)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
}

/// Page-locked host memory for fast, asynchronous copies; reused between calls.
final class PinnedBuffer {
    let context: CUDAContext
    private(set) var pointer: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    /// Recorded after the last copy that reads or writes this buffer.
    let lastUse: CUevent
    /// Seconds spent in `cuMemHostAlloc` so far (page-locking is slow: start-up reports it).
    private(set) var allocationSeconds: Double = 0

    init(context: CUDAContext) throws {
        self.context = context
        lastUse = try context.makeEvent()
    }

    deinit {
        if let pointer { _ = context.driver.cuMemFreeHost(pointer) }
        _ = context.driver.cuEventDestroy(lastUse)
    }

    /// Waits until the previous copy is done, grows to `bytes` if needed, and returns the buffer.
    func acquire(bytes: Int) throws -> UnsafeMutableRawPointer {
        try context.check(context.driver.cuEventSynchronize(lastUse), "cuEventSynchronize")
        if bytes > capacity {
            if let pointer { _ = context.driver.cuMemFreeHost(pointer) }
            pointer = nil
            capacity = 0
            // A quarter of headroom: batches vary a little in size, and pinned allocations are slow.
            let size = max(bytes + bytes / 4, 1 << 20)
            var raw: UnsafeMutableRawPointer? = nil
            let start = ContinuousClock.now
            try context.check(context.driver.cuMemHostAlloc(&raw, size, 0), "cuMemHostAlloc(\(size))")
            let elapsed = ContinuousClock.now - start
            allocationSeconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            pointer = raw
            capacity = size
        }
        return pointer!
    }

    func markUsed(on stream: CUstream) throws {
        try context.check(context.driver.cuEventRecord(lastUse, stream), "cuEventRecord")
    }
}
