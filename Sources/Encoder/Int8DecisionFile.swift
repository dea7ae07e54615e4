import Foundation
import Tensor
import Tokenizers

/// The CPU backend's measured int8-or-fp32 choice per weight, kept on disk so that a later process on
/// this machine (an incremental update: one file's batch of ≥ 256 rows) neither spends ~0.5 s timing every
/// weight again nor risks choosing differently from the build that wrote the index.
///
/// One JSON object per CPU model (`$XDG_CACHE_HOME/colgrep/int8/<cpu hash>.json`), name → choice, the names
/// from `Int8Decisions.archiveKey` (weight content, kernel, threads, thresholds). Written to a temporary name
/// and renamed; a file that cannot be read or parsed is ignored (the choice is measured again), one that
/// cannot be written only costs the speed-up. `COLGREP_INT8_CACHE=off` disables it.
final class Int8DecisionFile: Int8DecisionArchive, @unchecked Sendable {
    let url: URL
    private let lock = NSLock()
    private var choices: [String: Bool]?

    init(url: URL) {
        self.url = url
    }

    /// Installs the standard file as the process's archive, once (later calls are free).
    static func installStandard() {
        _ = standardInstall
    }

    private static let standardInstall: Void = {
        guard let folder = OptionalCacheFolder.resolve("int8", disabledBy: "COLGREP_INT8_CACHE") else { return }
        Int8Decisions.useArchive(Int8DecisionFile(url: folder.appendingPathComponent("\(cpuIdentity()).json")))
    }()

    func choice(for name: String) -> Bool? {
        lock.withLock { loaded()[name] }
    }

    func record(_ choice: Bool, for name: String) {
        lock.withLock {
            // Re-read first: another process may have added choices since this one loaded the file.
            choices = read()
            choices?[name] = choice
            write(choices ?? [name: choice])
        }
    }

    private func loaded() -> [String: Bool] {
        if let choices { return choices }
        let fresh = read()
        choices = fresh
        return fresh
    }

    private func read() -> [String: Bool] {
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Bool] else { return [:] }
        return object
    }

    private func write(_ values: [String: Bool]) {
        guard let data = try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys]) else { return }
        let folder = url.deletingLastPathComponent()
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        guard (try? data.write(to: temporary)) != nil else { return }
        if rename(temporary.path, url.path) != 0 { try? FileManager.default.removeItem(at: temporary) }
    }

    /// A short stable name of this machine's processor (its model name and core count): a home folder
    /// shared between machines keeps one file per kind of CPU.
    static func cpuIdentity() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }.map(String.init) ?? "unknown cpu"
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in "\(model)|\(ProcessInfo.processInfo.processorCount)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        return "cpu-" + String(hash, radix: 16)
    }
}
