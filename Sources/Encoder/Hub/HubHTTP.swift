import CCurl
import Foundation

/// Status and headers of a Hub response (header names lowercased).
struct HubResponse: Sendable {
    let status: Int
    let headers: [String: String]
    let body: String

    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Whether a transport error means "the Hub cannot be reached" (then the cache is used instead).
struct HubUnreachable: Error {
    let reason: String
}

/// Blocking HTTP over libcurl, loaded with dlopen on the first request (`CCurl`): a search process never
/// downloads, and linking libcurl (as FoundationNetworking's URLSession does) would load it and its ~30
/// libraries into every process. A HEAD stops at cross-host redirects (so the Hub's own X-Repo-Commit /
/// X-Linked-Etag headers are seen, as huggingface_hub does); a GET streams into a file, resumes with a
/// Range header and drops Authorization when redirected to another host. Redirects are followed here,
/// one request at a time, so that both rules hold whatever the libcurl version.
enum HubHTTP {
    /// Redirects followed before giving up (libcurl's and URLSession's default is higher; the Hub uses one).
    static let maxRedirects = 10

    static func head(_ url: URL, headers: [String: String], timeout: TimeInterval = 15) throws -> HubResponse {
        var headers = headers
        headers["Accept-Encoding"] = "identity"
        let transfer = Transfer(output: nil, progress: nil)
        return try transfer.run(url, headers: headers, head: true, followCrossHost: false, timeout: timeout)
    }

    /// Downloads `url` into `file`, appending from its current size when `resume` (Range request).
    /// Returns the final response; the caller checks the status.
    static func get(_ url: URL, headers: [String: String], into file: URL, progress: ProgressBar?) throws -> HubResponse {
        let fm = FileManager.default
        if !fm.fileExists(atPath: file.path) { _ = fm.createFile(atPath: file.path, contents: nil) }
        let existing = ((try? fm.attributesOfItem(atPath: file.path)[.size]) as? NSNumber)?.int64Value ?? 0
        var headers = headers
        if existing > 0 { headers["Range"] = "bytes=\(existing)-" }
        let handle: FileHandle
        do {
            handle = try FileHandle(forWritingTo: file)
        } catch {
            throw HubError("cannot write \(file.path): \(error.localizedDescription); check the cache folder's permissions")
        }
        defer { try? handle.close() }
        let transfer = Transfer(output: handle, progress: progress)
        transfer.resumeOffset = existing
        return try transfer.run(url, headers: headers, head: false, followCrossHost: true, timeout: 60)
    }

    /// One request with its redirects; libcurl's callbacks reach it through their context pointer, on the
    /// calling thread, while `curl_easy_perform` runs.
    private final class Transfer {
        private let output: FileHandle?
        private let progress: ProgressBar?
        var resumeOffset: Int64 = 0
        // The response being received (reset at every status line: redirects, 1xx).
        private var status = 0
        private var headers: [String: String] = [:]
        private var body = Data()
        private var writeError: Error?

        init(output: FileHandle?, progress: ProgressBar?) {
            self.output = output
            self.progress = progress
        }

        func run(_ url: URL, headers requestHeaders: [String: String], head: Bool, followCrossHost: Bool,
                 timeout: TimeInterval) throws -> HubResponse {
            defer { progress?.finish() }
            var message = [CChar](repeating: 0, count: 512)
            guard ccurl_load(&message, message.count) == 0 else {
                throw HubUnreachable(reason: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            let originalHost = url.host
            var current = url
            var requestHeaders = requestHeaders
            for _ in 0...HubHTTP.maxRedirects {
                let location = try perform(current, headers: requestHeaders, head: head, timeout: timeout)
                guard (300..<400).contains(status), let location, let next = URL(string: location) else {
                    return response()
                }
                let crossHost = next.host != originalHost
                if crossHost && !followCrossHost { return response() }
                if crossHost { requestHeaders = requestHeaders.filter { $0.key.lowercased() != "authorization" } }
                current = next
            }
            throw HubUnreachable(reason: "more than \(HubHTTP.maxRedirects) redirects from \(url.absoluteString)")
        }

        /// One request; returns the redirect target libcurl resolved from a Location header, if any.
        private func perform(_ url: URL, headers requestHeaders: [String: String], head: Bool,
                             timeout: TimeInterval) throws -> String? {
            guard let easy = ccurl_easy_init() else { throw HubUnreachable(reason: "curl_easy_init failed") }
            defer { ccurl_easy_cleanup(easy) }
            var list: OpaquePointer?
            for (key, value) in requestHeaders { list = ccurl_slist_append(list, "\(key): \(value)") }
            defer { ccurl_slist_free_all(list) }
            let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CCURL_ERROR_SIZE))
            defer { errorBuffer.deallocate() }
            errorBuffer[0] = 0
            status = 0
            headers = [:]
            body = Data()

            let seconds = max(1, Int(timeout.rounded(.up)))
            let context = Unmanaged.passUnretained(self).toOpaque()
            ccurl_setopt_string(easy, Int32(CCURLOPT_URL), url.absoluteString)
            ccurl_setopt_long(easy, Int32(CCURLOPT_NOSIGNAL), 1)
            ccurl_setopt_long(easy, Int32(CCURLOPT_FOLLOWLOCATION), 0)
            ccurl_setopt_long(easy, Int32(head ? CCURLOPT_NOBODY : CCURLOPT_HTTPGET), 1)
            ccurl_setopt_long(easy, Int32(CCURLOPT_CONNECTTIMEOUT), seconds)
            // The request's timeout is an idle timeout (as URLRequest's was): under 1 byte/s for that long.
            ccurl_setopt_long(easy, Int32(CCURLOPT_LOW_SPEED_LIMIT), 1)
            ccurl_setopt_long(easy, Int32(CCURLOPT_LOW_SPEED_TIME), seconds)
            ccurl_setopt_string(easy, Int32(CCURLOPT_USERAGENT), "colgrep")
            ccurl_setopt_list(easy, Int32(CCURLOPT_HTTPHEADER), list)
            ccurl_setopt_pointer(easy, Int32(CCURLOPT_ERRORBUFFER), errorBuffer)
            ccurl_setopt_callback(easy, Int32(CCURLOPT_HEADERFUNCTION)) { data, size, count, context in
                let bytes = size * count
                guard let data, let context else { return bytes }
                Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                    .received(headerLine: UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: bytes))
                return bytes
            }
            ccurl_setopt_pointer(easy, Int32(CCURLOPT_HEADERDATA), context)
            ccurl_setopt_callback(easy, Int32(CCURLOPT_WRITEFUNCTION)) { data, size, count, context in
                let bytes = size * count
                guard let data, let context else { return bytes }
                let taken = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                    .received(data: UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: bytes))
                return taken ? bytes : 0
            }
            ccurl_setopt_pointer(easy, Int32(CCURLOPT_WRITEDATA), context)

            let code = withExtendedLifetime(self) { ccurl_easy_perform(easy) }
            if let writeError { throw HubError("cannot write the download: \(writeError.localizedDescription)") }
            guard code == 0 else {
                let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: ccurl_easy_strerror(code))
                throw HubUnreachable(reason: detail)
            }
            var location: UnsafePointer<CChar>?
            guard ccurl_getinfo_string(easy, Int32(CCURLINFO_REDIRECT_URL), &location) == 0, let location else { return nil }
            return String(cString: location)
        }

        private func response() -> HubResponse {
            HubResponse(status: status, headers: headers, body: String(decoding: body.prefix(2000), as: UTF8.self))
        }

        /// One header line: a status line starts a response, the blank line ends its headers.
        func received(headerLine raw: UnsafeBufferPointer<UInt8>) {
            var end = raw.count
            while end > 0, raw[end - 1] == UInt8(ascii: "\r") || raw[end - 1] == UInt8(ascii: "\n") { end -= 1 }
            let line = Substring(String(decoding: UnsafeBufferPointer(rebasing: raw[..<end]), as: UTF8.self))
            if line.hasPrefix("HTTP/") {
                let fields = line.split(separator: " ", maxSplits: 2)
                status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
                headers = [:]
                body = Data()
            } else if line.isEmpty {
                if status >= 200 { headersEnded() }
            } else if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                // Repeated headers are joined as URLSession joined them.
                headers[name] = headers[name].map { "\($0), \(value)" } ?? value
            }
        }

        private func headersEnded() {
            guard let output else { return }
            if status == 200 && resumeOffset > 0 {
                // The server ignored the Range request: start the file over.
                do { try output.truncate(atOffset: 0) } catch { writeError = error }
                resumeOffset = 0
            }
            if (200..<300).contains(status) {
                _ = try? output.seekToEnd()
                let length = headers["content-length"].flatMap { Int64($0) }
                progress?.start(total: length.map { $0 + resumeOffset }, done: resumeOffset)
            }
        }

        /// Body bytes: into the file for a 2xx download, else the first 4 kB kept for error messages.
        /// Returns false to abort the transfer (a write failed).
        func received(data: UnsafeBufferPointer<UInt8>) -> Bool {
            if let output, (200..<300).contains(status) {
                do { try output.write(contentsOf: Data(data)) } catch { writeError = error; return false }
                progress?.advance(by: Int64(data.count))
            } else if body.count < 4096 {
                body.append(data)
            }
            return true
        }
    }
}

