import ArgumentParser
import ColGrep
import Foundation
import Tensor

/// Where the command line meets the resident query server (`ColGrep/Server/`).
///
/// A search is first offered to a server started from the same binary with the same environment; it answers
/// with exactly the bytes and exit status the in-process search would give (for a client at a terminal: the
/// same colours; the transient progress line of a short update is not drawn, and a long update — its progress
/// bar and prompt need the client's terminal — is declined and runs in-process). When none is listening the
/// search runs in-process, then starts one in the background for the next search. Off with
/// `COLGREP_NO_SERVER=1` or `colgrep settings --no-server`; never used with `COLGREP_PROFILE` (the profile is
/// this process's) or for other commands.
enum QueryServerEntry {
    /// The hidden first argument that makes the executable a server.
    static let serveArgument = "__colgrep-query-server"
    /// `COLGREP_SERVER_REQUIRED=1`: a search the server does not answer fails with `notServedStatus`
    /// instead of running in-process (for tests and benchmarks; not part of the server's key).
    static let requiredVariable = "COLGREP_SERVER_REQUIRED"
    static let notServedStatus: Int32 = 75
    /// Set (only) across `main`'s OpenBLAS relaunch after a client's attempt; not part of the server's key.
    static let triedVariable = "COLGREP_SERVER_TRIED"
    /// Set when no server answered: the in-process search starts one when it is done.
    nonisolated(unsafe) private static var endpointToStart: QueryServerEndpoint?

    /// Runs first in `main`, before the OpenBLAS relaunch: serves (and exits) when this process is a server, prints a server's answer
    /// (and exits) when one ran the search, else returns and the command line runs as usual.
    static func interceptIfServed() {
        // OpenBLAS is not loaded here: it is bound on the first BLAS call (`Sources/CBLAS`), which also stops
        // its spinning worker threads, so a client that is served never loads it.
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == serveArgument {
            // A server computes: OpenBLAS's kernels first (this may start the process again), as `main` does.
            BLASCoreType.relaunchIfGeneric()
            QueryServer.closeInheritedDescriptors()
            guard let endpoint = QueryServerEndpoint.current() else { exit(1) }
            let server = QueryServer(endpoint: endpoint, idleSeconds: QueryServer.idleSeconds(), handler: handle)
            exit(server.run())
        }
        let environment = ProcessInfo.processInfo.environment
        if let tried = environment[triedVariable] {
            // The image before `main`'s OpenBLAS relaunch already asked (and found no server to use).
            unsetenv(triedVariable)
            if tried == "start" { endpointToStart = QueryServerEndpoint.current() }
            return
        }
        guard isEnabled(environment), mayServe(arguments), let endpoint = QueryServerEndpoint.current(environment: environment) else { return }
        // Runs before `main`'s OpenBLAS relaunch (a client computes nothing: the exec would double its
        // start-up).
        switch QueryClient.attempt(arguments, endpoint: endpoint) {
        case .served(let reply):
            QueryClient.emit(reply)
            exit(reply.status)
        case .inProcess(let startServer):
            if environment[requiredVariable] == "1" {
                // Tests and benchmarks that must measure the served path: no silent fallback.
                if startServer { QueryClient.startServer(endpoint: endpoint, serveArgument: serveArgument) }
                FileHandle.standardError.write(Data("colgrep: no query server answered (\(requiredVariable)=1)\n".utf8))
                exit(notServedStatus)
            }
            if startServer { endpointToStart = endpoint }
            // `main` is about to start this process again for OpenBLAS: tell that image not to ask twice
            // (a server that declined or went silent would cost its wait twice).
            if environment["OPENBLAS_CORETYPE"] == nil, BLASCoreType.better != nil {
                setenv(triedVariable, startServer ? "start" : "1", 1)
            }
        }
    }

    /// After an in-process search that found no server: start one unless the settings say no.
    static func startServerIfWanted(config: ColGrepConfig) {
        guard let endpoint = endpointToStart, config.queryServer != false else { return }
        endpointToStart = nil
        QueryClient.startServer(endpoint: endpoint, serveArgument: serveArgument)
    }

    static func isEnabled(_ environment: [String: String]) -> Bool {
        let off = environment["COLGREP_NO_SERVER"].map { !$0.isEmpty && $0 != "0" } ?? false
        let profiling = environment["COLGREP_PROFILE"].map { !$0.isEmpty } ?? false
        return !off && !profiling
    }

    /// Arguments a server may take: the default search command. Other subcommands, help, version, stats
    /// and the flags that change the process (`--devices` sets an environment variable, `--force-gpu`)
    /// stay in-process. Checked by the client before it connects and by the server before it parses.
    static func mayServe(_ arguments: [String]) -> Bool {
        guard let first = arguments.first else { return false }
        let others = Colgrep.configuration.subcommands.compactMap { $0.configuration.commandName }.filter { $0 != "search" } + ["help"]
        if others.contains(first) { return false }
        let refused: Set<String> = ["-h", "--help", "--version", "--stats", "--reset-stats", "--force-gpu"]
        return !arguments.contains { refused.contains($0) || $0.hasPrefix("--devices") || $0 == serveArgument }
    }

    /// The server's handler: parses the arguments as the command line would and runs the search.
    static func handle(_ request: QueryWire.Request) -> QueryServer.Outcome {
        guard mayServe(request.arguments) else { return .declined }
        let parsed: ParsableCommand
        do {
            parsed = try Colgrep.parseAsRoot(request.arguments)
        } catch {
            return .declined
        }
        guard let search = parsed as? SearchCommand, search.isServable else { return .declined }
        let engine: Engine
        do {
            engine = try Engine()
        } catch {
            return .declined
        }
        if engine.config.queryServer == false { return .declinedAndStop }
        _ = ResidentCache.shared.takeOpenFailure()
        _ = ResidentCache.shared.takeDecline()
        let client = ServedRequest(standardOutputIsTerminal: request.terminal.output, standardErrorIsTerminal: request.terminal.error)
        let status: Int32 = ServedRequest.with(client) {
            do {
                try runReportingErrors { try search.execute(engine: engine) }
                return 0
            } catch let code as ExitCode {
                return code.rawValue
            } catch {
                return 1
            }
        }
        // An index the server could not open is never repaired here, and a long update for a terminal is the
        // client's: its own search decides (what this request printed is dropped).
        let declined = ResidentCache.shared.takeDecline()
        return ResidentCache.shared.takeOpenFailure() || declined ? .declined : .ran(status)
    }
}
