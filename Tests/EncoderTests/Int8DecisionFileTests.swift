import Foundation
import Testing
@testable import Encoder

@Suite struct Int8DecisionFileTests {
    func temporaryFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("int8-\(UUID().uuidString.prefix(8))/cpu.json")
    }

    /// Choices survive into a new instance (a later process); two writers keep each other's entries.
    @Test func choicesPersistAcrossInstancesAndWriters() throws {
        let url = temporaryFile()
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let first = Int8DecisionFile(url: url), second = Int8DecisionFile(url: url)
        #expect(first.choice(for: "w1") == nil)
        first.record(true, for: "w1")
        second.record(false, for: "w2")
        let later = Int8DecisionFile(url: url)
        #expect(later.choice(for: "w1") == true)
        #expect(later.choice(for: "w2") == false)
        #expect(later.choice(for: "w3") == nil)
    }

    /// A damaged file is no choice at all (measured again), and is replaced by the next record.
    @Test func aDamagedFileIsIgnoredThenRewritten() throws {
        let url = temporaryFile()
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("{\"w1\": tru".utf8).write(to: url)
        let file = Int8DecisionFile(url: url)
        #expect(file.choice(for: "w1") == nil)
        file.record(true, for: "w1")
        #expect(Int8DecisionFile(url: url).choice(for: "w1") == true)
    }

    /// An unwritable place only loses the speed-up.
    @Test func anUnwritableFolderOnlyCostsTheCache() {
        let file = Int8DecisionFile(url: URL(fileURLWithPath: "/proc/colgrep-int8/cpu.json"))
        file.record(true, for: "w1")
        #expect(Int8DecisionFile(url: URL(fileURLWithPath: "/proc/colgrep-int8/cpu.json")).choice(for: "w1") == nil)
    }

    @Test func cpuIdentityIsStable() {
        #expect(Int8DecisionFile.cpuIdentity() == Int8DecisionFile.cpuIdentity())
        #expect(Int8DecisionFile.cpuIdentity().hasPrefix("cpu-"))
    }
}
