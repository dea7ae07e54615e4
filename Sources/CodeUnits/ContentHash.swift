import CXXHash
import Foundation

/// Content hashes of files (xxh3-64, as the reference stores per file).
public enum ContentHash {
    public static func xxh3(_ data: Data) -> UInt64 {
        data.withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) }
    }
}
