import Foundation

/// The per-index exclusive lock (`<index>/.lock`, `flock`). Searches try it without waiting and
/// fall back to the existing index; indexing waits up to 5 s, retrying every 500 ms (reference §1.1).
public final class IndexLock {
    private var fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        release()
    }

    /// Non-blocking attempt: nil when another process holds the lock.
    public static func tryAcquire(_ url: URL) throws -> IndexLock? {
        let fd = try openLockFile(url)
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return IndexLock(fd: fd) }
        close(fd)
        return nil
    }

    /// Waits up to `timeout` seconds, then fails with the reference's message.
    public static func acquire(_ url: URL, timeout: TimeInterval = 5, retry: TimeInterval = 0.5) throws -> IndexLock {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let lock = try tryAcquire(url) { return lock }
            if Date() >= deadline {
                throw ColGrepError.locked("Timed out waiting for index lock (\(url.path)): another colgrep process is indexing this project. Wait for it to finish, then retry.")
            }
            Thread.sleep(forTimeInterval: retry)
        }
    }

    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    private static func openLockFile(_ url: URL) throws -> Int32 {
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(url.path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw ColGrepError.io("cannot open lock file \(url.path): \(String(cString: strerror(errno))). Check that the colgrep data directory is writable (COLGREP_DATA_DIR).")
        }
        return fd
    }
}
