/// How many of the visible GPUs a run should open, chosen before the driver starts.
///
/// The driver initialises every GPU it sees before the first context, and the kernel tears each one
/// down at exit: on the four-H200 machine `GPU probe: driver init` took 186–234 ms with one GPU visible,
/// 407–484 with two, 608–838 with four, and a process ended 0.12–0.14 s after its report with one GPU,
/// 0.37–0.39 s with four (docs/PERFORMANCE.md, session 18). A user's `init` of the transformers corpus
/// (7.2M tokens) took 1.50–1.60 s with one GPU visible and 2.13–2.24 s with four. So `all` opens only
/// as many GPUs as the run's size pays for: the last stored cost model's GPU figures say how fast each
/// encodes, and each GPU opened costs its teardown plus its share of the driver's initialisation, less
/// what of that initialisation runs beside the run's parsing (the probe starts after the walk, beside
/// the parse, and the first batch waits for the parse and the call graph anyway).
public enum GPUCountPlanner {
    /// The kernel's teardown of one GPU's state at process exit (session 18: 0.12–0.14 s with one
    /// GPU, 0.20–0.24 with two, 0.37–0.39 with four), which no in-process clock sees.
    public static let teardownSecondsPerGPU = 0.08

    /// The driver's initialisation per visible GPU before one was measured on this machine.
    public static let defaultDriverInitSecondsPerGPU = 0.2

    /// Parsing speed per core that no machine measured so far beats (this 2-core box: 3.7 MB/s a core
    /// for parse and units; the four-H200 host: 1.7–2.0 MB/s a core on 64 cores, plus 0.2 s of call
    /// graph for 100 MB; docs/PERFORMANCE.md, session 22), so that the time before the first batch is
    /// never overestimated and no driver start is counted as hidden that the parse would not hide.
    public static let parseBytesPerSecondPerCore = 4e6

    /// The least time a run over `bytes` of files on `cores` spends before its first batch can encode.
    public static func secondsBeforeEncoding(bytes: Int, cores: Int) -> Double {
        Double(max(0, bytes)) / (Double(max(1, cores)) * parseBytesPerSecondPerCore)
    }

    /// The choice and the figures behind it.
    public struct Choice: Sendable, Equatable {
        /// GPUs to open, 1 ... visible.
        public var count: Int
        /// Estimated seconds until the run's encoding is done plus the GPUs' start and teardown, by GPU count.
        public var estimates: [Int: Double]

        /// One line for the profile.
        public func summary(visible: Int, tokens: Int) -> String {
            let figures = estimates.keys.sorted().map { "\($0): \(ProfileFormat.seconds(estimates[$0]!).trimmingCharacters(in: .whitespaces))" }
            return "GPUs: \(count) of \(visible) opened for this run's size (about \(tokens) tokens; estimated by GPU count "
                + figures.joined(separator: ", ") + ")"
        }
    }

    /// The number of GPUs that finishes `work` soonest, fewer on a tie; nil when the stored model
    /// has no GPU figures (the first run on this machine opens every GPU and measures them) or only
    /// one GPU is visible. `hint`'s GPUs stand for every visible one (a host's GPUs are alike; a GPU
    /// never measured takes the first one's figures).
    public static func choose(hint: CostModel, visible: Int, work: WorkSize, kernelsCached: Bool,
                              hostThreads: Int, lanesPerGPU: Int) -> Choice? {
        guard visible > 1, !hint.gpus.isEmpty, work.tokens > 0 else { return nil }
        let driverInit = hint.driverInitSecondsPerGPU ?? defaultDriverInitSecondsPerGPU
        var estimates: [Int: Double] = [:]
        var best: (count: Int, seconds: Double)?
        for count in 1...visible {
            let gpus = (0..<count).map { hint.gpus[$0 < hint.gpus.count ? $0 : 0] }
            let inputs = RoutingInputs(mode: .auto, work: work, cpu: hint.cpu, gpus: gpus, gpusAvailable: count,
                                       kernelsCached: kernelsCached, hostThreads: hostThreads, lanesPerGPU: lanesPerGPU)
            let plan = RoutingPlanner.plan(inputs)
            guard let encode = plan.estimatedSeconds else { return nil }
            let driverDelay = max(0, Double(count) * driverInit - work.secondsBeforeEncoding)
            let seconds = encode + driverDelay + Double(count) * teardownSecondsPerGPU
            estimates[count] = seconds
            if best == nil || seconds < best!.seconds { best = (count, seconds) }
        }
        guard let best else { return nil }
        return Choice(count: best.count, estimates: estimates)
    }
}
