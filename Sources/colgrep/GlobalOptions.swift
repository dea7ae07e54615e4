import ArgumentParser
import ColGrep
import Foundation

/// Flags every command accepts (reference §5.1 "global").
struct GlobalOptions: ParsableArguments {
    @Flag(name: .customLong("force-cpu"), help: "Run everything on the CPU (also FORCE_CPU=1 / COLGREP_FORCE_CPU=1).")
    var forceCPU = false

    @Flag(name: .customLong("force-gpu"), help: "Encode on the GPU or fail with the reason (also FORCE_GPU=1 / COLGREP_FORCE_GPU=1).")
    var forceGPU = false

    @Option(name: .customLong("devices"), help: ArgumentHelp(
        "GPUs to encode on: all (default), none, or indices such as 0,2 (after CUDA_VISIBLE_DEVICES; also COLGREP_GPU_DEVICES). Only the listed GPUs are initialised, and they are numbered from 0 in reports. With all, an index run opens only as many GPUs as its size pays for (each costs ~0.2 s to start); list them to use every one.",
        valueName: "all|none|i,j"))
    var devices: String?

    @Option(name: .customLong("color"), help: "Colour output: auto, always or never.")
    var color: ColorWhen = .auto

    /// `--devices` is checked here and handed to every part of the process through the one
    /// environment variable they all read.
    mutating func validate() throws {
        guard let devices else { return }
        do {
            _ = try DeviceSelection(parsing: devices)
        } catch {
            throw ValidationError("\(error)")
        }
        setenv(DeviceSelection.environmentKey, devices, 1)
    }

    func acceleration() throws -> AccelerationMode {
        try AccelerationMode.resolve(forceCPU: forceCPU, forceGPU: forceGPU)
    }

    var useColor: Bool {
        switch color {
        case .always: return true
        case .never: return false
        case .auto:
            // A query server answers for its client's terminal (its own output is a capture).
            let terminal = ServedRequest.current?.standardOutputIsTerminal ?? (isatty(STDOUT_FILENO) == 1)
            return terminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        }
    }
}

enum ColorWhen: String, ExpressibleByArgument, CaseIterable {
    case auto, always, never
}

/// Model and pooling flags shared by `init` and the search (which indexes on demand).
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model"), help: "Model id or local folder (default: config, else lightonai/LateOn-Code-edge; offline → bundled MiniLM fallback).")
    var model: String?

    @Flag(name: .customLong("no-pool"), help: "Keep every token vector (pool factor 1).")
    var noPool = false

    @Option(name: .customLong("pool-factor"), help: "Token pooling factor for newly indexed units (default 2).")
    var poolFactor: Int?

    @Flag(name: [.customShort("y"), .customLong("yes")], help: "Do not ask before indexing more than 30,000 units.")
    var yes = false
}

/// Writes to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Runs `body`, turning product errors into a message on stderr and the error's exit code.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ColGrepError {
        printError("Error: \(error.description)")
        throw ExitCode(error.exitCode)
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("Error: \(error)")
        throw ExitCode(1)
    }
}
