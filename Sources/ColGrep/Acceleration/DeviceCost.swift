/// The seed's cost terms for one device, measured by calibration:
/// time = cold start + batches × per-batch overhead + tokens × per-token cost.
public struct DeviceCost: Codable, Sendable, Equatable {
    /// Seconds before the first batch can run (GPU: context, kernels, weight upload; CPU: model load).
    public var coldStartSeconds: Double
    /// Fixed seconds per batch (launches, copies, synchronisation).
    public var perBatchSeconds: Double
    /// Seconds per token once running.
    public var perTokenSeconds: Double

    public init(coldStartSeconds: Double, perBatchSeconds: Double, perTokenSeconds: Double) {
        self.coldStartSeconds = coldStartSeconds
        self.perBatchSeconds = perBatchSeconds
        self.perTokenSeconds = perTokenSeconds
    }

    /// Seconds to encode one batch of `tokens` tokens on a warm device.
    public func batchSeconds(tokens: Int) -> Double {
        perBatchSeconds + Double(tokens) * perTokenSeconds
    }

    /// Tokens per second on a warm device when batches hold `tokenBudget` tokens.
    public func throughput(tokenBudget: Int) -> Double {
        let batch = batchSeconds(tokens: tokenBudget)
        return batch > 0 ? Double(tokenBudget) / batch : .infinity
    }

    /// Seconds to encode `tokens` tokens from cold, in batches of `tokenBudget`.
    public func runSeconds(tokens: Int, tokenBudget: Int) -> Double {
        guard tokens > 0 else { return 0 }
        let batches = (tokens + max(1, tokenBudget) - 1) / max(1, tokenBudget)
        return coldStartSeconds + Double(batches) * perBatchSeconds + Double(tokens) * perTokenSeconds
    }

    /// The cost of one lane of a device that `lanes` lanes share: the device's throughput is split
    /// between them, so a lane's batch takes `lanes` times the device's share of it while the others
    /// are busy (the end of a run, with fewer lanes busy, only runs faster). The cold start is the device's.
    public func sharedBy(lanes: Int) -> DeviceCost {
        let share = Double(max(1, lanes))
        return DeviceCost(coldStartSeconds: coldStartSeconds, perBatchSeconds: perBatchSeconds * share, perTokenSeconds: perTokenSeconds * share)
    }
}
