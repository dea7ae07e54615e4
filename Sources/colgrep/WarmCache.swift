import ArgumentParser
import ColGrep
import Foundation

/// `colgrep warm-cache [--provider cpu|cuda|all]`: prepares what a first run would otherwise pay for.
struct WarmCacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warm-cache",
        abstract: "Compile and cache the GPU kernels and calibrate the CPU/GPU cost model.",
        discussion: """
            cpu: calibrates the CPU's cost (model load, per-token cost at this machine's threads).
            cuda: opens the GPU, compiles the kernels into $XDG_CACHE_HOME/colgrep/kernels (or loads them), \
            times cuBLASLt's GEMM algorithms for the model's shapes and keeps the choices there too, \
            and calibrates the GPU (context, kernel compile and cache load, weight upload, per-batch and \
            per-token costs). all: both. Prints each step with its duration, or that there is nothing to do.
            """)

    @Option(help: "Which caches to prepare: cpu, cuda or all.")
    var provider: String = "all"

    @Option(name: .customLong("model"), help: "Model folder (default: the configured model's local folder).")
    var model: String?

    @Flag(help: "Measure again even when a calibration is stored.")
    var recalibrate = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        guard var provider = CacheWarmer.Provider(rawValue: provider.lowercased()) else {
            throw ValidationError("--provider must be cpu, cuda or all")
        }
        try runReportingErrors {
            // --force-cpu leaves the GPU alone; --force-gpu makes a missing GPU an error.
            switch try global.acceleration() {
            case .forceCPU:
                if provider == .cuda { throw ColGrepError.usage("--provider cuda contradicts --force-cpu") }
                provider = .cpu
            case .forceGPU:
                if provider == .all { provider = .cuda }
                if provider == .cpu { throw ColGrepError.usage("--provider cpu contradicts --force-gpu") }
            case .auto:
                break
            }
            let directory = try ModelFolder.resolve(model)
            try CacheWarmer(modelDirectory: directory).run(provider: provider, recalibrate: recalibrate) { print($0) }
        }
    }
}

/// The model folder warm-cache works on: `--model` or the configured model (a folder, or a model in
/// the Hugging Face cache; warm-cache never downloads).
enum ModelFolder {
    static func resolve(_ option: String?) throws -> URL {
        let config = try ColGrepConfig.load(from: DataPaths.fromEnvironment())
        return try CacheWarmer.localModel(option ?? config.model(override: nil))
    }
}
