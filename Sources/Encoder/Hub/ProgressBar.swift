import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line download progress bar on stderr, drawn only when stderr is a terminal.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private var total: Int64?
    private var done: Int64 = 0
    private var lastDraw = Date.distantPast
    private var drawn = false

    /// Returns nil when stderr is not a terminal (logs and pipes stay clean).
    init?(label: String) {
        guard isatty(STDERR_FILENO) != 0 else { return nil }
        self.label = label
    }

    func start(total: Int64?, done: Int64) {
        self.total = total
        self.done = done
        draw(force: true)
    }

    func advance(by bytes: Int64) {
        done += bytes
        draw(force: false)
    }

    func finish() {
        guard drawn else { return }
        draw(force: true)
        FileHandle.standardError.write(Data("\n".utf8))
        drawn = false
    }

    private func draw(force: Bool) {
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        drawn = true
        let mb = { (b: Int64) in String(format: "%.1f MB", Double(b) / 1_048_576) }
        var line = "\rdownloading \(label)  \(mb(done))"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 30
            let filled = Int(fraction * Double(width))
            line += " / \(mb(total)) [" + String(repeating: "#", count: filled)
                + String(repeating: ".", count: width - filled) + "] \(Int(fraction * 100))%"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }
}
