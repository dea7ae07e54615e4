import CXXHash
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-level helpers of the on-disk index: atomic writes, memory mapping, checksums and the
/// sectioned binary layout shared by codec, segment and tombstone files.
///
/// A binary file is: magic `PLAIDBIN`, format version (u32), kind (u32), section count (u32), padding,
/// then `count` (offset u64, length u64) pairs, then the sections, each aligned to 64 bytes. Its size
/// and XXH3-64 checksum are recorded in the manifest, which is the only place that names it.
enum IndexFiles {
    /// 2: segments hold each token's `1/‖c + r‖` (`TokenInverseNorms`); 3: 8-bit segments too. An index of
    /// another version is refused with `PlaidError.unsupportedFormat` (`needsRebuild`): the product rebuilds it.
    static let formatVersion = 3
    static let magic: [UInt8] = Array("PLAIDBIN".utf8)

    enum Kind: UInt32 { case codec = 1, segment = 2, tombstones = 3, exactCentroids = 4 }

    /// XXH3-64 of a byte range.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits(bytes.baseAddress, bytes.count)
    }

    static func align(_ value: Int) -> Int { (value + 63) & ~63 }

    static func appendInteger<T: FixedWidthInteger>(_ data: inout Data, _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    /// Bytes of an array, for a section: the array's own storage, not a copy (the Data holds the array, so the
    /// storage lives, unchanged, as long as the Data does). A 1.2M-token segment's sections are ~40 MB, which the
    /// copy wrote to fresh pages on the build's one-thread path (~30 ms of page faults and copying).
    static func data<T>(_ array: [T]) -> Data {
        guard !array.isEmpty else { return Data() }
        let kept = array
        return kept.withUnsafeBytes { bytes in
            Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), count: bytes.count,
                 deallocator: .custom { _, _ in withExtendedLifetime(kept) {} })
        }
    }

    /// Writes sections in the binary layout to `url` (a new name: nothing refers to it until a
    /// manifest naming it is committed, which also flushes it to disk) and returns what the manifest
    /// records about it.
    static func writeSectioned(kind: Kind, sections: [Data], to url: URL) throws -> FileRecord {
        let headerSize = 24 + 16 * sections.count
        var offsets: [Int] = []
        var position = align(headerSize)
        for section in sections {
            offsets.append(position)
            position = align(position + section.count)
        }
        var header = Data(capacity: position)
        header.append(contentsOf: magic)
        appendInteger(&header, UInt32(formatVersion))
        appendInteger(&header, kind.rawValue)
        appendInteger(&header, UInt32(sections.count))
        appendInteger(&header, UInt32(0))
        for (i, section) in sections.enumerated() {
            appendInteger(&header, UInt64(offsets[i]))
            appendInteger(&header, UInt64(section.count))
        }
        var pieces: [Data] = [header]
        var written = header.count
        for (i, section) in sections.enumerated() {
            pieces.append(Data(count: offsets[i] - written))
            pieces.append(section)
            written = offsets[i] + section.count
        }
        pieces.append(Data(count: position - written))
        let partialPoint = kind == .segment ? "segment-partial-write" : "\(kind)-partial-write"
        return try writeFile(pieces, to: url, sync: false, faultPoint: partialPoint)
    }

    /// Writes the concatenation of `pieces` to `url` (created or truncated), optionally flushing it,
    /// and returns its size, checksum and stamp.
    static func writeFile(_ pieces: [Data], to url: URL, sync: Bool, faultPoint: String? = nil) throws -> FileRecord {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw PlaidError.io(file: url.path, reason: String(cString: strerror(errno))) }
        let state = XXH3_createState()
        defer { XXH3_freeState(state) }
        XXH3_64bits_reset(state)
        var failure: PlaidError?
        var total = 0
        for (index, piece) in pieces.enumerated() where failure == nil {
            if let faultPoint, index == pieces.count / 2 {
                FaultInjection.hit(faultPoint) { fsync(fd) }
            }
            piece.withUnsafeBytes { bytes in
                guard bytes.count > 0 else { return }
                XXH3_64bits_update(state, bytes.baseAddress, bytes.count)
                var done = 0
                while done < bytes.count {
                    let n = write(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30))
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 {
                        failure = .io(file: url.path, reason: String(cString: strerror(errno)))
                        return
                    }
                    done += n
                }
                total += bytes.count
            }
        }
        if failure == nil, sync, fsync(fd) != 0 { failure = .io(file: url.path, reason: String(cString: strerror(errno))) }
        var info = stat()
        if failure == nil, fstat(fd, &info) != 0 { failure = .io(file: url.path, reason: String(cString: strerror(errno))) }
        close(fd)
        if let failure {
            unlink(url.path)
            throw failure
        }
        return FileRecord(name: url.lastPathComponent, size: total, checksum: XXH3_64bits_digest(state), stamp: FileStamp(info))
    }

    /// Flushes files to disk, all at once (concurrent fsyncs share the file system's journal commits).
    static func syncFiles(_ urls: [URL]) throws {
        let failures = FailureList()
        DispatchQueue.concurrentPerform(iterations: urls.count) { i in
            let fd = open(urls[i].path, O_RDONLY)
            if fd < 0 || fsync(fd) != 0 {
                failures.add(PlaidError.io(file: urls[i].path, reason: String(cString: strerror(errno))))
            }
            if fd >= 0 { close(fd) }
        }
        if let failure = failures.first { throw failure }
    }

    /// Errors collected from concurrent workers.
    private final class FailureList: @unchecked Sendable {
        private let lock = NSLock()
        private var errors: [PlaidError] = []
        func add(_ error: PlaidError) { lock.lock(); errors.append(error); lock.unlock() }
        var first: PlaidError? { lock.lock(); defer { lock.unlock() }; return errors.first }
    }

    static func syncDirectory(_ directory: URL) {
        let fd = open(directory.path, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}

/// A read-only memory mapping of a whole file, unmapped when released.
final class MappedFile: @unchecked Sendable {
    let url: URL
    let bytes: UnsafeRawBufferPointer
    /// The file's stamp when it was mapped.
    let stamp: FileStamp
    private let mapped: Bool

    init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw errno == ENOENT ? PlaidError.corrupt(file: url.path, reason: "file missing") : PlaidError.io(file: url.path, reason: reason)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw PlaidError.io(file: url.path, reason: String(cString: strerror(errno))) }
        let size = Int(info.st_size)
        stamp = FileStamp(info)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapped = false
            return
        }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), pointer != MAP_FAILED else {
            throw PlaidError.io(file: url.path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: pointer, count: size)
        mapped = true
    }

    deinit {
        if mapped, let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}

/// The sections of a mapped binary file, checked against the manifest's record of it.
struct SectionedFile {
    let file: MappedFile
    let sections: [UnsafeRawBufferPointer]

    /// True when the file's contents were proven to be what was written: its checksum was verified
    /// now, or its stamp shows it has not changed since it was written and checked.
    let trusted: Bool

    init(url: URL, kind: IndexFiles.Kind, record: FileRecord, verification: PlaidVerification) throws {
        let file = try MappedFile(url: url)
        let bytes = file.bytes
        let name = url.lastPathComponent
        let expectedSize = record.size
        guard bytes.count == expectedSize else {
            throw PlaidError.corrupt(file: url.path, reason: "size \(bytes.count) bytes, the manifest records \(expectedSize) (truncated or replaced)")
        }
        guard bytes.count >= 24, Array(bytes[0..<8]) == IndexFiles.magic else {
            throw PlaidError.corrupt(file: url.path, reason: "not a PLAID index file (bad magic)")
        }
        let version = Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian)
        guard version == IndexFiles.formatVersion else {
            throw PlaidError.unsupportedFormat(file: url.path, found: version, expected: IndexFiles.formatVersion)
        }
        guard bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian == kind.rawValue else {
            throw PlaidError.corrupt(file: url.path, reason: "holds another kind of data than \(name) should")
        }
        let unchanged = record.stamp != nil && record.stamp == file.stamp
        let verify = verification == .full || (verification == .changedFiles && !unchanged)
        if verify, IndexFiles.checksum(bytes) != record.checksum {
            throw PlaidError.corrupt(file: url.path, reason: "checksum mismatch (the file was modified or damaged)")
        }
        trusted = verify || unchanged
        let count = Int(bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self).littleEndian)
        guard count < 64, 24 + 16 * count <= bytes.count else {
            throw PlaidError.corrupt(file: url.path, reason: "bad section table")
        }
        var sections: [UnsafeRawBufferPointer] = []
        for i in 0..<count {
            let offset = Int(bytes.loadUnaligned(fromByteOffset: 24 + 16 * i, as: UInt64.self).littleEndian)
            let length = Int(bytes.loadUnaligned(fromByteOffset: 32 + 16 * i, as: UInt64.self).littleEndian)
            guard offset >= 0, length >= 0, offset % 64 == 0, offset <= bytes.count, length <= bytes.count - offset else {
                throw PlaidError.corrupt(file: url.path, reason: "section \(i) lies outside the file")
            }
            sections.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
        }
        self.file = file
        self.sections = sections
    }

    /// Section `index` viewed as `count` values of `T` (64-byte aligned, so typed access is safe).
    func array<T>(_ index: Int, of type: T.Type, count: Int) throws -> UnsafeBufferPointer<T> {
        guard index < sections.count else {
            throw PlaidError.corrupt(file: file.url.path, reason: "section \(index) missing")
        }
        let section = sections[index]
        guard section.count == count * MemoryLayout<T>.stride else {
            throw PlaidError.corrupt(file: file.url.path, reason: "section \(index) holds \(section.count) bytes, expected \(count * MemoryLayout<T>.stride)")
        }
        guard count > 0, let base = section.baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: base.assumingMemoryBound(to: T.self), count: count)
    }
}

extension FileStamp {
    init(_ info: stat) {
        #if canImport(Darwin)
        let modified = info.st_mtimespec, changed = info.st_ctimespec
        #else
        let modified = info.st_mtim, changed = info.st_ctim
        #endif
        self.init(inode: UInt64(info.st_ino), size: Int(info.st_size),
                  modifiedNanoseconds: Int64(modified.tv_sec) * 1_000_000_000 + Int64(modified.tv_nsec),
                  changedNanoseconds: Int64(changed.tv_sec) * 1_000_000_000 + Int64(changed.tv_nsec))
    }
}

/// How much of an index `PlaidIndex.open` checks beyond the manifest, the headers and the sizes.
public enum PlaidVerification: Sendable {
    /// Checksums of every file, then structural checks (the `--verify` path).
    case full
    /// Checksums and structural checks of files whose stamp (inode, size, change times) differs from
    /// the one recorded when they were written: a file replaced, rewritten or edited in place since.
    /// Files the index wrote and nobody touched since open without reading their contents.
    case changedFiles
    /// Structural checks only, no checksums (tests, diagnostics).
    case structure
}

/// Test hook: when `PLAID_FAULT_POINT` names a point the writer reaches, the process exits at once
/// (`_exit`, no cleanup), as a crash or `kill -9` would leave it.
enum FaultInjection {
    static let point = ProcessInfo.processInfo.environment["PLAID_FAULT_POINT"]

    static func hit(_ name: String, before exiting: () -> Void = {}) {
        guard let point, point == name else { return }
        exiting()
        _exit(86)
    }
}
