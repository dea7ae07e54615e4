import CXXHash
import Foundation

/// Size and checksum of one immutable index file, as the manifest records it.
struct FileRecord: Codable, Equatable, Sendable {
    var name: String
    var size: Int
    var checksum: UInt64
    /// The file's identity when it was written and checked (absent in indexes of earlier builds,
    /// whose files are then verified in full on every open).
    var stamp: FileStamp?
}

/// What `stat` says about a file: any rewrite, replacement or in-place change alters the inode, the
/// size or the change time (which user code cannot set), so a file whose stamp still matches holds
/// the bytes that were checksummed when it was written (git's index uses the same test).
struct FileStamp: Codable, Equatable, Sendable {
    var inode: UInt64
    var size: Int
    var modifiedNanoseconds: Int64
    var changedNanoseconds: Int64
}

/// One segment: an immutable file of documents with their codes, residuals and IVF.
struct SegmentRecord: Codable, Equatable, Sendable {
    /// Stable number (also in the file name); tombstones refer to rows by it.
    var number: Int
    var file: FileRecord
    var documents: Int
    var tokens: Int
}

/// A file derived from the codec file named `codec` (the exact stage's centroid tables): used only
/// while the manifest's codec is that file.
struct ExactCentroidsRecord: Codable, Equatable, Sendable {
    var file: FileRecord
    var codec: String
}

/// The index's table of contents. Renaming a new manifest over the old one commits a write: files it
/// does not name are leftovers of an earlier state or of an interrupted writer.
struct Manifest: Codable, Equatable, Sendable {
    static let fileName = "manifest.plaid"

    var formatVersion: Int
    var generation: Int
    var dim: Int
    var centroidCount: Int
    var config: PlaidConfig
    var codec: FileRecord
    var segments: [SegmentRecord]
    var tombstones: FileRecord?
    var nextFileNumber: Int
    /// Live tokens in the index when the codec was trained (drives retraining).
    var tokensAtTraining: Int
    /// The exact stage's int16 centroid tables, derived from the codec (absent in indexes of earlier
    /// builds, whose next write adds them; an earlier build's write drops them again).
    var exactCentroids: ExactCentroidsRecord? = nil

    /// Names of all files this manifest references.
    var referencedFiles: Set<String> {
        var names: Set<String> = [Manifest.fileName, codec.name]
        for segment in segments { names.insert(segment.file.name) }
        if let tombstones { names.insert(tombstones.name) }
        if let exactCentroids { names.insert(exactCentroids.file.name) }
        return names
    }

    /// JSON, a newline, and the XXH3-64 of the JSON in hex (so truncation or damage is detected).
    func serialized() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = try encoder.encode(self)
        let hash = data.withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) }
        data.append(contentsOf: Array("\n\(String(hash, radix: 16))\n".utf8))
        return data
    }

    static func load(from directory: URL) throws -> Manifest {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { throw PlaidError.missing(directory: directory.path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PlaidError.io(file: url.path, reason: error.localizedDescription)
        }
        let bytes = [UInt8](data)
        // Layout: JSON '\n' hex '\n'.
        guard bytes.last == UInt8(ascii: "\n"),
              let split = bytes.dropLast().lastIndex(of: UInt8(ascii: "\n")) else {
            throw PlaidError.corrupt(file: url.path, reason: "truncated manifest (no checksum line)")
        }
        let json = Array(bytes[..<split])
        let recorded = String(decoding: bytes[(split + 1)..<(bytes.count - 1)], as: UTF8.self)
        let actual = json.withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) }
        guard UInt64(recorded, radix: 16) == actual else {
            throw PlaidError.corrupt(file: url.path, reason: "manifest checksum mismatch")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(json)) } catch {
            throw PlaidError.corrupt(file: url.path, reason: "unreadable manifest: \(error)")
        }
        guard manifest.formatVersion == IndexFiles.formatVersion else {
            throw PlaidError.unsupportedFormat(file: url.path, found: manifest.formatVersion, expected: IndexFiles.formatVersion)
        }
        guard manifest.dim > 0, manifest.dim % 8 == 0, PlaidConfig.supportedBits.contains(manifest.config.nbits),
              manifest.centroidCount > 0, manifest.centroidCount <= 1 << 16 else {
            throw PlaidError.corrupt(file: url.path, reason: "impossible settings in manifest")
        }
        return manifest
    }

    /// Commits: flushes the new data files `written` (names in `directory`) and the new manifest to
    /// disk together, renames the manifest into place, then flushes the directory once. A crash before
    /// the rename leaves the previous manifest, and every file it names, untouched.
    func commit(to directory: URL, written: [String]) throws {
        let url = directory.appendingPathComponent(Manifest.fileName)
        let temp = directory.appendingPathComponent(".\(Manifest.fileName).\(getpid()).tmp")
        _ = try IndexFiles.writeFile([try serialized()], to: temp, sync: false)
        try IndexFiles.syncFiles(written.map { directory.appendingPathComponent($0) } + [temp])
        FaultInjection.hit("before-manifest-rename")
        guard rename(temp.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp.path)
            throw PlaidError.io(file: url.path, reason: reason)
        }
        IndexFiles.syncDirectory(directory)
    }
}
