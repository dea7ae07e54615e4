import Foundation
import Tensor
@testable import Encoder

/// Paths and readers shared by the Encoder tests.
enum Fixtures {
    static let directory = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static let tinyModernBERT = directory.appending(path: "tiny-modernbert")
    /// The real all-MiniLM-L6-v2 that scripts/setup.sh provisions into .deps (ignored by git).
    static let miniLM = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appending(path: ".deps/models/all-MiniLM-L6-v2")
    static var hasMiniLM: Bool { FileManager.default.fileExists(atPath: miniLM.appending(path: "model.safetensors").path) }

    static func json(_ url: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    static func ids(_ value: Any?) -> [Int32] { (value as! [NSNumber]).map { Int32(truncating: $0) } }

    static func matrix(_ value: Any?) -> [[Float]] { (value as! [[NSNumber]]).map { $0.map(\.floatValue) } }

    /// A scratch copy of the tiny model folder that a test may damage.
    static func scratchCopy(of source: URL = tinyModernBERT) throws -> URL {
        let target = FileManager.default.temporaryDirectory.appending(path: "enc-test-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: source, to: target)
        return target
    }
}

/// Cosine of every row pair; the parity bound is on the worst row.
func minimumRowCosine(_ a: HostMatrix, _ b: [[Float]]) -> Float {
    precondition(a.rows == b.count, "row counts differ: \(a.rows) vs \(b.count)")
    var worst: Float = 1
    for (i, expected) in b.enumerated() {
        let row = Array(a.row(i))
        var dot: Double = 0, na: Double = 0, nb: Double = 0
        for (x, y) in zip(row, expected) { dot += Double(x) * Double(y); na += Double(x * x); nb += Double(y * y) }
        worst = min(worst, na == 0 && nb == 0 ? 1 : Float(dot / (na.squareRoot() * nb.squareRoot())))
    }
    return worst
}
