import Foundation
import Testing
@testable import Tensor

struct UsableCoresTests {
    @Test func theSmallestLimitWins() {
        #expect(UsableCores.resolve(online: 16, affinity: 2, quota: nil) == 2)
        #expect(UsableCores.resolve(online: 16, affinity: 16, quota: 3) == 3)
        #expect(UsableCores.resolve(online: 4, affinity: nil, quota: nil) == 4)
        #expect(UsableCores.resolve(online: 0, affinity: 0, quota: 0) == 1)
        #expect(UsableCores.count >= 1 && UsableCores.count <= ProcessInfo.processInfo.activeProcessorCount)
    }

    @Test func cgroupQuotasParse() {
        #expect(UsableCores.quotaCores(cgroupV2: "max 100000\n") == nil)
        #expect(UsableCores.quotaCores(cgroupV2: "200000 100000\n") == 2)
        #expect(UsableCores.quotaCores(cgroupV2: "150000 100000") == 2)
        #expect(UsableCores.quotaCores(cgroupV2: "garbage") == nil)
        #expect(UsableCores.quotaCores(quota: "-1\n", period: "100000\n") == nil)
        #expect(UsableCores.quotaCores(quota: "50000", period: "100000") == 1)
    }

    @Test func aCgroupFolderIsRead() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-cgroup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(UsableCores.cgroupQuotaCores(root: root.path) == nil)
        try "300000 100000\n".write(to: root.appendingPathComponent("cpu.max"), atomically: true, encoding: .utf8)
        #expect(UsableCores.cgroupQuotaCores(root: root.path) == 3)
    }

    #if os(Linux)
    /// The mask's count agrees with the kernel's own account of this thread (`Cpus_allowed_list` in
    /// /proc/thread-self/status, e.g. "0-3,8"), whatever the machine or the `taskset` the suite runs under.
    @Test func theAffinityMaskIsCounted() throws {
        let status = try String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        let list = line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)
        let cpus = list.split(separator: ",").reduce(0) { total, range in
            let ends = range.split(separator: "-").compactMap { Int($0) }
            return total + (ends.count == 2 ? ends[1] - ends[0] + 1 : 1)
        }
        #expect(UsableCores.affinityCount() == cpus)
    }
    #endif
}
