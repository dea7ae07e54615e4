import Foundation

/// A cheap look at a database file before SQLite opens it (100 header bytes and the file size, no
/// page reads), so garbage or truncated files are caught at open without a full `quick_check`
/// (too slow to run on every search of a large index).
enum DatabaseFileCheck {
    enum Verdict: Equatable {
        /// No file, or an empty one (SQLite creates the database on first write).
        case empty
        /// The header is sound and the file is as long as the header says.
        case plausible
        /// The file is shorter than the header says. A writer mid-checkpoint can show this briefly,
        /// so the caller confirms with `quick_check` before calling it corrupt.
        case suspicious(String)
        /// Not a SQLite database, or too damaged for SQLite to read.
        case corrupt(String)
    }

    private static let magic = Array("SQLite format 3\0".utf8)

    static func inspect(path: String) -> Verdict {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return FileManager.default.fileExists(atPath: path) ? .corrupt("the file cannot be read") : .empty
        }
        defer { try? handle.close() }
        let size: UInt64
        do { size = try handle.seekToEnd(); try handle.seek(toOffset: 0) } catch { return .corrupt("the file cannot be read") }
        if size == 0 { return .empty }
        guard let data = try? handle.read(upToCount: 100), data.count == 100 else {
            return .corrupt("the file is \(size) bytes, shorter than a SQLite header")
        }
        let header = [UInt8](data)
        guard Array(header[0..<16]) == magic else { return .corrupt("not a SQLite database (bad header)") }
        let rawPageSize = Int(header[16]) << 8 | Int(header[17])
        let pageSize = rawPageSize == 1 ? 65536 : rawPageSize
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            return .corrupt("invalid page size \(rawPageSize) in the header")
        }
        if size % UInt64(pageSize) != 0 {
            return .suspicious("the file size \(size) is not a multiple of the page size \(pageSize)")
        }
        // The in-header page count is only valid when the change counter matches "version valid for".
        let changeCounter = bigEndian32(header, 24)
        let validFor = bigEndian32(header, 92)
        let pageCount = UInt64(bigEndian32(header, 28))
        if changeCounter == validFor, pageCount > 0, size < pageCount * UInt64(pageSize) {
            return .suspicious("the file holds \(size / UInt64(pageSize)) of the \(pageCount) pages its header announces (truncated)")
        }
        return .plausible
    }

    private static func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }
}
