import ArgumentParser
import Foundation
import ColGrep
import Tensor

/// The `colgrep` command line. Subcommands are small value types, one file each.
@main
struct Colgrep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "colgrep",
        abstract: "Semantic code search: a ColBERT model fused with full-text search.",
        version: ColGrepVersion.string,
        subcommands: [SearchCommand.self, InitCommand.self, StatusCommand.self, ClearCommand.self, SettingsCommand.self,
                      SetModelCommand.self, WarmCacheCommand.self, DebugCommand.self, BenchCommand.self],
        defaultSubcommand: SearchCommand.self
    )

    /// Every command first makes sure OpenBLAS runs its real kernels: an OpenBLAS older than the CPU
    /// (Debian's 0.3.21 on Sapphire Rapids) loads generic ones that encode about 5× slower, in
    /// indexing and query encoding alike, and the only cure is to start again with the core type set.
    static func main() async {
        QueryServerEntry.interceptIfServed()
        BLASCoreType.relaunchIfGeneric()
        ProcessMemorySettings.apply(environment: ProcessInfo.processInfo.environment)
        do {
            var command = try parseAsRoot()
            // After `--devices` is parsed, before any thread or CUDA starts.
            DeviceSelection.narrowVisibleDevicesForSelection()
            // A CLI run may then open fewer GPUs than `all` when it is small (never a query server).
            RunSizedGPUNarrowing.process.allow()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Developer tools whose JSON output later stages and outside checks rely on (hidden from --help).
struct DebugCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug",
        abstract: "Inspect tokenization, embeddings and code units as JSON.",
        shouldDisplay: false,
        subcommands: [
            DebugTokenize.self,
            DebugEmbed.self,
            DebugUnits.self,
            DebugGPUSelfTest.self,
            DebugGPUEmbed.self,
            DebugReplayRanking.self,
            DebugCPUKernels.self,
        ]
    )
}

/// Benchmarks: each prints a ratio against a peer measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure colgrep's stages against peers on the same inputs.",
        subcommands: [
            BenchEncoder.self,
            BenchUnits.self,
            BenchSearchCommand.self,
            BenchTokenizer.self,
            BenchEncoderGPU.self,
            BenchGPUAssign.self,
            BenchGPUKMeans.self,
            BenchGPUCodec.self,
            BenchSchedulerOverhead.self,
            BenchRecall.self,
            BenchBuild.self,
            BenchIndexStages.self,
            BenchStreamedCodec.self,
        ]
    )
}
