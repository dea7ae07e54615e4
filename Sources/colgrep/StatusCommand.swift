import ArgumentParser
import ColGrep
import Foundation

/// `colgrep status [PATH]`: which index serves a project (reference §2.6 text).
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the index that serves a project (project, model, index folder).",
        discussion: "Example: colgrep status ~/src/myproject"
    )

    @Argument(help: "Project folder (default: current folder).")
    var path: String = "."

    @Option(name: .customLong("model"), help: "Model id (default: the configured model).")
    var model: String?

    @Flag(name: .customLong("verify"), help: "Check every index file's checksum (searches trust files unchanged since written).")
    var verify = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runReportingErrors {
            let engine = try Engine()
            print(try engine.statusText(path: path, model: model, verify: verify), terminator: "")
        }
    }
}

/// `colgrep clear [PATH] [--all]`.
struct ClearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear",
        abstract: "Delete the index of a project for the active model, or every index with --all.",
        discussion: "Examples:\n  colgrep clear            # this folder's index\n  colgrep clear --all      # every index"
    )

    @Argument(help: "Project folder (default: current folder).")
    var path: String = "."

    @Flag(name: [.customShort("a"), .customLong("all")], help: "Delete every index.")
    var all = false

    @Option(name: .customLong("model"), help: "Model id (default: the configured model).")
    var model: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runReportingErrors {
            let engine = try Engine()
            print(try engine.clear(path: path, model: model, all: all), terminator: "")
        }
    }
}

/// `colgrep set-model <ID>`.
struct SetModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-model",
        abstract: "Persist the default model (a Hugging Face id or a local model folder)."
    )

    @Argument(help: "Model id or folder.")
    var model: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runReportingErrors {
            let engine = try Engine()
            print(try engine.setModel(model))
        }
    }
}
