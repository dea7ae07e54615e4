import Foundation
import Plaid
import Tensor
import Testing

/// A writer killed at any point (`PLAID_FAULT_POINT` makes it `_exit` there) leaves an index that
/// opens with either the old or the new contents, and the next write cleans up after it.
@Suite struct CrashSafetyTests {
    static let childDirectory = "PLAID_CRASH_CHILD_DIRECTORY"
    static let childOperation = "PLAID_CRASH_CHILD_OPERATION"

    /// What the parent builds first: documents 0..<150 (trained on all of them, no retraining unless asked).
    static func baseDocuments() -> [(id: Int64, vectors: HostMatrix)] { Array(documents(smallCorpus()).prefix(150)) }
    static func added() -> [(id: Int64, vectors: HostMatrix)] { Array(documents(smallCorpus())[150...]) }

    /// Runs in the child process only: performs the write named by the environment.
    @Test func crashChildWriter() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let path = environment[Self.childDirectory], let operation = environment[Self.childOperation] else { return }
        let index = try PlaidIndex.open(at: URL(fileURLWithPath: path))
        switch operation {
        case "append": try index.append(Self.added(), backend: nil)
        case "delete": try index.delete(ids: Set((0..<20).map(Int64.init)))
        default: try index.append(Self.added(), backend: nil)  // "retrain": the index was created with a small training set
        }
    }

    @Test(arguments: [
        ("append", "segment-partial-write", false), ("append", "append-after-segment", false), ("append", "before-manifest", false),
        ("append", "after-manifest", true), ("delete", "tombstones-partial-write", false), ("delete", "after-manifest", true),
        ("retrain", "codec-partial-write", false), ("retrain", "retrain-before-manifest", false),
    ])
    func killedWriterLeavesAConsistentIndex(operation: String, point: String, committed: Bool) throws {
        let directory = temporaryDirectory("crash\(operation)\(point)")
        defer { cleanUp(directory) }
        var config = testConfig()
        config.retrainGrowthFactor = operation == "retrain" ? 1.5 : 0
        config.compactionDeadShare = 0.9
        let base = Self.baseDocuments()
        _ = try PlaidIndex.create(at: directory, documents: base, config: config, backend: nil)
        let query = smallCorpus().queries[0]
        let before = try PlaidIndex.open(at: directory).search(query: query, topK: 10).map(\.id)

        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["--testing-library", "swift-testing", "--filter", "crashChildWriter"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.childDirectory] = directory.path
        environment[Self.childOperation] = operation
        environment["PLAID_FAULT_POINT"] = point
        child.environment = environment
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        child.waitUntilExit()
        #expect(child.terminationStatus == 86, "the writer did not reach \(point)")

        let reopened = try PlaidIndex.open(at: directory)
        let expectedCount = !committed ? base.count : operation == "delete" ? base.count - 20 : base.count + Self.added().count
        #expect(reopened.documentCount == expectedCount)
        if !committed {
            #expect(reopened.search(query: query, topK: 10).map(\.id) == before)
        }
        // The next write succeeds and removes the dead writer's leftovers.
        try reopened.append([(9_000, base[0].vectors)], backend: nil)
        let reference = try PlaidIndex.open(at: directory)
        #expect(reference.documentCount == expectedCount + 1)
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        #expect(names.allSatisfy { !$0.hasSuffix(".tmp") })
        #expect(names.filter { $0.hasPrefix("segment-") }.count == reference.segmentCount)
    }
}
