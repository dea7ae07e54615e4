import Foundation
import Tensor

/// The cold start of one device, step by step.
public struct ColdStartTimings: Sendable, Equatable {
    /// Libraries, driver and context (0 on a CPU).
    public var contextSeconds: Double
    /// Loading or compiling kernels (0 on a CPU).
    public var kernelSeconds: Double
    /// Whether the kernels were compiled (an empty cache) rather than loaded.
    public var kernelsCompiled: Bool
    /// Reading the model and placing its weights on the device.
    public var weightSeconds: Double

    public init(contextSeconds: Double = 0, kernelSeconds: Double = 0, kernelsCompiled: Bool = false, weightSeconds: Double) {
        self.contextSeconds = contextSeconds
        self.kernelSeconds = kernelSeconds
        self.kernelsCompiled = kernelsCompiled
        self.weightSeconds = weightSeconds
    }

    public var totalSeconds: Double { contextSeconds + kernelSeconds + weightSeconds }
}

/// A device the calibrator can time: its cold start, then synthetic batches of known sizes.
public protocol CalibrationTarget: AnyObject {
    var info: DeviceInfo { get }
    /// Performs the cold start now and reports its steps.
    func coldStart() throws -> ColdStartTimings
    /// Encodes `count` synthetic sequences of `length` tokens as one batch.
    func encodeSynthetic(count: Int, length: Int) throws
}

/// One timed synthetic batch.
public struct CalibrationSample: Sendable, Equatable {
    public var tokens: Int
    public var seconds: Double
}

/// Measures a device's per-batch and per-token costs by timing synthetic batches of known sizes
/// (the fastest of a few repetitions each), within a time budget, and fitting
/// `seconds = perBatch + tokens × perToken` by least squares.
public struct Calibrator: Sendable {
    /// Batch shapes (sequences, length) from small to large.
    public var shapes: [(count: Int, length: Int)]
    /// Repetitions per shape (the fastest counts: noise only ever adds time).
    public var repetitions: Int
    /// Stop adding shapes once this much time went into measuring (at least two shapes run).
    public var budgetSeconds: Double

    public init(shapes: [(count: Int, length: Int)], repetitions: Int = 2, budgetSeconds: Double) {
        self.shapes = shapes
        self.repetitions = max(1, repetitions)
        self.budgetSeconds = budgetSeconds
    }

    /// CPU shapes: a few thousand tokens, a few hundred milliseconds on a laptop core pair.
    public static let cpu = Calibrator(shapes: [(2, 64), (4, 128), (8, 128), (8, 256)], budgetSeconds: 0.4)
    /// GPU shapes: large enough for the per-token cost to show above launch overhead.
    public static let gpu = Calibrator(shapes: [(8, 128), (64, 256), (128, 256), (256, 256)], budgetSeconds: 0.5)

    /// Tokens a full calibration encodes (warm-up included): a run smaller than this is cheaper to
    /// encode on the CPU than to calibrate for.
    public var totalTokens: Int {
        shapes[0].count * shapes[0].length + repetitions * shapes.reduce(0) { $0 + $1.count * $1.length }
    }

    /// Cold start, one untimed warm-up batch, then the timed shapes.
    public func measure(_ target: CalibrationTarget) throws -> (coldStart: ColdStartTimings, cost: DeviceCost, samples: [CalibrationSample]) {
        let cold = try target.coldStart()
        let first = shapes[0]
        try target.encodeSynthetic(count: first.count, length: first.length)
        let begin = ProfileClock.now()
        var samples: [CalibrationSample] = []
        for shape in shapes {
            if samples.count >= 2, ProfileClock.seconds(since: begin) > budgetSeconds { break }
            var best = Double.infinity
            for _ in 0..<repetitions {
                let start = ProfileClock.now()
                try target.encodeSynthetic(count: shape.count, length: shape.length)
                best = min(best, ProfileClock.seconds(since: start))
            }
            samples.append(CalibrationSample(tokens: shape.count * shape.length, seconds: best))
        }
        var cost = Self.fit(samples)
        cost.coldStartSeconds = cold.totalSeconds
        return (cold, cost, samples)
    }

    /// Least-squares line through the samples; a negative intercept or slope (noise on tiny
    /// batches) falls back to a line through the origin and the largest batch.
    public static func fit(_ samples: [CalibrationSample]) -> DeviceCost {
        guard let largest = samples.max(by: { $0.tokens < $1.tokens }), largest.tokens > 0 else {
            return DeviceCost(coldStartSeconds: 0, perBatchSeconds: 0, perTokenSeconds: 1e-6)
        }
        let through = DeviceCost(coldStartSeconds: 0, perBatchSeconds: 0,
                                 perTokenSeconds: max(largest.seconds / Double(largest.tokens), 1e-12))
        let n = Double(samples.count)
        let xs = samples.map { Double($0.tokens) }, ys = samples.map(\.seconds)
        let mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
        let sxx = zip(xs, xs).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - mx) }
        let sxy = zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        guard samples.count >= 2, sxx > 0 else { return through }
        let slope = sxy / sxx
        let intercept = my - slope * mx
        guard slope > 0, intercept >= 0 else { return through }
        return DeviceCost(coldStartSeconds: 0, perBatchSeconds: intercept, perTokenSeconds: slope)
    }
}

/// Describes this machine for `CostModelKey`: host name, CPU model, logical cores.
public enum MachineIdentity {
    public static func current() -> String {
        let host = ProcessInfo.processInfo.hostName
        let cores = UsableCores.count
        return "\(host) | \(cpuModel() ?? "unknown cpu") | \(cores) cores"
    }

    static func cpuModel() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    /// A model's identity: its folder name, weight file size and modification time (a new
    /// download or fine-tune is another model).
    public static func model(at directory: URL) -> String {
        let weights = directory.appendingPathComponent("model.safetensors")
        let attributes = try? FileManager.default.attributesOfItem(atPath: weights.path)
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(directory.standardizedFileURL.path) | \(size) bytes | \(Int(modified))"
    }
}
