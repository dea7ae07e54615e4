import ArgumentParser
import ColGrep
import Foundation

/// The default command: `colgrep [QUERY] [PATH…]` (reference §5.1).
struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search code by meaning and keywords (the default command).",
        discussion: """
        Examples:
          colgrep "retry with exponential backoff"          # hybrid search of the current folder
          colgrep "parse config file" src/ lib/             # several folders, results merged
          colgrep -e 'TODO|FIXME' "error handling"          # regex prefilter + semantic ranking
          colgrep -e fetch -F -w                            # grep-like: every line matching the literal word
          colgrep "http client" --include '*.{py,pyi}' --exclude-dir tests
          colgrep --json -k 5 "database connection pool"    # JSON for tools (absolute paths)
          colgrep -l "authentication"                       # file names only
          colgrep -n 6 "rate limiter"                       # show code around the relevant lines

        The index is built on first use and brought up to date before every search (only changed files
        are re-read; pass --no-update to skip). One index per (project, model) under $COLGREP_DATA_DIR.

        A search is answered by a resident query server when one runs (same binary, same environment; started
        in the background by the first search, it keeps the model and the mapped index, watches the project
        for changes, and exits after 10 idle minutes). Its output is the same; an update too long to run
        without its progress bar at a terminal, or any trouble, and the search runs in-process.
        COLGREP_NO_SERVER=1 or `colgrep settings --no-server` turns it off.

        Fusion of the semantic and keyword rankings: weighted reciprocal ranks (k = 10, alpha 0.55), which
        ranked better than ColGREP's min-max scores (alpha 0.60) on our dev split; COLGREP_RRF_K=0 and
        --alpha 0.60 give ColGREP's fusion back.
        Where ColGREP's README and its code disagree, colgrep follows the code:
          • -k defaults to 15 (10 with -n), -n to 20 lines of context (README: 25 / 6);
          • paths are relative to the current folder by default; --json paths are always absolute;
          • tests, compat and example files are demoted (×0.30) unless the query mentions test/spec/benchmark.
        """
    )

    @Argument(help: "What to look for, in plain words or identifiers.")
    var query: String?

    @Argument(help: "Folders or files to search (default: current folder).")
    var paths: [String] = []

    @Option(name: [.customShort("k"), .customLong("results")], help: "Number of results (default 15, 10 with -n; every match with -e).")
    var results: Int?

    @Option(name: [.customShort("n"), .customLong("lines")], help: "Lines of context to show around relevant lines (default display: 20).")
    var lines: Int?

    @Option(name: [.customShort("e"), .customLong("pattern")], help: "Regex prefilter (ERE; BRE escapes accepted).")
    var pattern: String?

    @Flag(name: [.customShort("E"), .customLong("extended-regexp")], help: "Accepted for grep compatibility (ERE is the default).")
    var extendedRegexp = false

    @Flag(name: [.customShort("F"), .customLong("fixed-strings")], help: "Treat -e as a literal string.")
    var fixedStrings = false

    @Flag(name: [.customShort("w"), .customLong("word-regexp")], help: "Match -e only as a whole word.")
    var wordRegexp = false

    @Flag(name: [.customShort("s"), .customLong("case-sensitive")], help: "Case-sensitive -e (default: insensitive).")
    var caseSensitive = false

    @Flag(name: [.customShort("l"), .customLong("files-only")], help: "Print matching file names only.")
    var filesOnly = false

    @Flag(name: [.customShort("c"), .customLong("content")], help: "Print the full code of each result.")
    var content = false

    @Flag(name: .customLong("json"), help: "Print a JSON array of {unit, score}.")
    var json = false

    @Flag(name: [.customShort("r"), .customLong("recursive")], help: "Accepted for grep compatibility (always recursive).")
    var recursive = false

    @Option(name: .customLong("include"), help: "Only files matching this glob (repeatable; {a,b} and implicit **/).")
    var include: [String] = []

    @Option(name: .customLong("exclude"), help: "Skip files matching this glob (repeatable).")
    var exclude: [String] = []

    @Option(name: .customLong("exclude-dir"), help: "Skip a directory name or glob (repeatable).")
    var excludeDir: [String] = []

    @Flag(name: .customLong("code-only"), help: "Drop text and config files (Markdown, YAML, JSON…).")
    var codeOnly = false

    @Flag(name: .customLong("semantic-only"), help: "Semantic ranking only, no keyword fusion or re-ranking.")
    var semanticOnly = false

    @Flag(name: .customLong("fts-only"), help: .hidden)
    var ftsOnly = false

    @Option(name: .customLong("alpha"), help: "Weight of the semantic side in fusion, 0…1 (default 0.55; env COLGREP_ALPHA).")
    var alpha: Double?

    @Flag(name: .customLong("no-update"), help: "Search the index as it is, without updating it first.")
    var noUpdate = false

    @Flag(name: .customLong("static-batch"), help: "Accepted for compatibility (batches are always token-budgeted).")
    var staticBatch = false

    @Flag(name: .customLong("stats"), help: "Print per-index statistics and exit.")
    var stats = false

    @Flag(name: .customLong("reset-stats"), help: "Reset search counters and exit.")
    var resetStats = false

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runReportingErrors {
            let engine = try Engine()
            if stats { print(engine.statsText(), terminator: ""); return }
            if resetStats { print(engine.resetStats(), terminator: ""); return }
            try execute(engine: engine)
            QueryServerEntry.startServerIfWanted(config: engine.config)
            // Done: end the process without tearing down the model, the index maps and the store one object
            // at a time (the engine keeps them alive; `exit` flushes stdio and runs the profile report).
            Foundation.exit(0)
        }
    }

    /// Whether a query server may run this command: a search (not `--stats`, `--reset-stats`), and no
    /// flag that changes the process itself (`--devices` sets an environment variable, `--force-gpu`
    /// loads a GPU model per run).
    var isServable: Bool {
        !stats && !resetStats && global.devices == nil && !global.forceGPU
    }

    /// The search and everything it prints, without ending the process: the in-process path and the
    /// query server (once per request) both run this.
    func execute(engine: Engine) throws {
        guard query != nil || pattern != nil else {
            throw ColGrepError.usage("nothing to search for: give a QUERY or -e PATTERN (see colgrep --help)")
        }
        if let alpha, !(0...1).contains(alpha) { throw ColGrepError.usage("--alpha must be between 0 and 1") }
        let mode = try global.acceleration()
        let resolved = QueryArguments.resolve(query: query, rest: paths, pattern: pattern) {
            FileManager.default.fileExists(atPath: ($0 as NSString).expandingTildeInPath)
        }
        var request = SearchRequest(query: resolved.query, paths: resolved.paths)
        request.pattern = resolved.pattern
        request.fixedStrings = fixedStrings
        request.wordRegexp = wordRegexp
        request.caseSensitive = caseSensitive
        request.explicitK = results
        request.contextLines = lines
        request.include = include
        request.exclude = exclude
        request.excludeDir = excludeDir
        request.codeOnly = codeOnly
        request.semanticOnly = semanticOnly || engine.config.hybridSearch == false
        request.keywordOnly = ftsOnly
        request.alpha = alpha
        request.noUpdate = noUpdate
        request.model = modelOptions.model
        request.noPool = modelOptions.noPool
        request.poolFactor = modelOptions.poolFactor
        request.yes = modelOptions.yes

        let outcome = try engine.search(request, acceleration: mode, progress: Progress.standardErrorIfTerminal())
        let outputMode: OutputMode
        if json {
            outputMode = .json
        } else if filesOnly {
            outputMode = .filesOnly
        } else if content || (lines ?? 0) > 0 || engine.config.verbose == true {
            outputMode = .verbose(contextLines: lines ?? engine.config.defaultN ?? 20, wholeUnit: content)
        } else {
            outputMode = .compact
        }
        let matcher = request.pattern.map {
            LineMatcher(pattern: $0, fixedStrings: fixedStrings, wordRegexp: wordRegexp, caseSensitive: caseSensitive)
        }
        let formatter = OutputFormatter(mode: outputMode, relativePaths: engine.config.relativePaths ?? true,
                                        matcher: matcher, color: global.useColor)
        FileHandle.standardOutput.write(Data(formatter.render(outcome.hits, query: request.query).utf8))
        if request.pattern != nil, results != nil, case .compact = outputMode, !outcome.hits.isEmpty {
            printError("Showing matches from top \(outcome.hits.count) document(s); omit -k to see every match.")
        }
    }
}

/// `colgrep init [PATH]`: build or update the index without searching.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Build or update the index of a project.",
        discussion: """
        Examples:
          colgrep init                    # index the current folder
          colgrep init ~/src/app -y       # no prompt for very large projects
          colgrep init --dry-run          # count files and units without encoding
          colgrep init --list-files       # print the files that would be indexed

        A first build checkpoints every few thousand units: Ctrl-C (or a kill) loses at most the \
        current batch, and running the command again resumes where it stopped.
        """
    )

    @Argument(help: "Project folder (default: current folder).")
    var path: String = "."

    @Flag(name: .customLong("dry-run"), help: "Walk and parse only: report files and units, write nothing.")
    var dryRun = false

    @Flag(name: .customLong("list-files"), help: "Print the files that would be indexed, write nothing.")
    var listFiles = false

    @Option(name: .customLong("batch-size"), help: "Accepted for compatibility (batches are token-budgeted).")
    var batchSize: Int?

    @Option(name: .customLong("encode-batch-size"), help: "Accepted for compatibility.")
    var encodeBatchSize: Int?

    @Option(name: .customLong("index-chunk-size"), help: "Units per pipeline chunk (default 1024).")
    var indexChunkSize: Int?

    @Flag(name: .customLong("static-batch"), help: "Accepted for compatibility.")
    var staticBatch = false

    /// Keyword index only, no embeddings (FTS tuning and evaluation); a later normal search rebuilds.
    @Flag(name: .customLong("fts-only"), help: .hidden)
    var ftsOnly = false

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runReportingErrors {
            let engine = try Engine()
            let mode = try global.acceleration()
            var options = IndexOptions(model: engine.config.model(override: modelOptions.model),
                                       poolFactor: engine.config.poolFactor(noPool: modelOptions.noPool, override: modelOptions.poolFactor))
            options.assumeYes = modelOptions.yes
            options.acceleration = mode
            if let indexChunkSize { options.chunkSize = max(64, indexChunkSize) }
            options.keywordOnly = ftsOnly
            options.residualBits = engine.config.residualBits
            let (root, isDir) = try PathResolver.canonical(path)
            guard isDir else { throw ColGrepError.usage("\(path) is a file; `colgrep init` takes a project folder") }
            if listFiles || dryRun {
                let preview = try engine.preview(root: root, options: options, countUnits: dryRun)
                if listFiles { for f in preview.files { print(f) } }
                if dryRun {
                    print("Would index \(preview.files.count) files (\(preview.units) units) in \(root) [\(options.model)]")
                }
                return
            }
            let summary = try engine.index(root: root, options: options, progress: Progress.standardErrorIfTerminal())
            printError(summary.line)
        }
    }
}
