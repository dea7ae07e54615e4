import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

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

/// Blocking HTTP over URLSession: a HEAD that stops at cross-host redirects (so the Hub's own
/// X-Repo-Commit / X-Linked-Etag headers are seen, as huggingface_hub does), and a GET that streams
/// into a file, resumes with a Range header and drops Authorization when redirected to another host.
enum HubHTTP {
    static func head(_ url: URL, headers: [String: String], timeout: TimeInterval = 15) throws -> HubResponse {
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "HEAD"
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        let transfer = Transfer(followCrossHost: false, output: nil, progress: nil)
        return try transfer.run(request)
    }

    /// Downloads `url` into `file`, appending from its current size when `resume` (Range request).
    /// Returns the final response; the caller checks the status.
    static func get(_ url: URL, headers: [String: String], into file: URL, progress: ProgressBar?) throws -> HubResponse {
        let fm = FileManager.default
        if !fm.fileExists(atPath: file.path) { _ = fm.createFile(atPath: file.path, contents: nil) }
        let existing = ((try? fm.attributesOfItem(atPath: file.path)[.size]) as? NSNumber)?.int64Value ?? 0
        var request = URLRequest(url: url, timeoutInterval: 60)
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        if existing > 0 { request.setValue("bytes=\(existing)-", forHTTPHeaderField: "Range") }
        let handle: FileHandle
        do {
            handle = try FileHandle(forWritingTo: file)
        } catch {
            throw HubError("cannot write \(file.path): \(error.localizedDescription); check the cache folder's permissions")
        }
        defer { try? handle.close() }
        let transfer = Transfer(followCrossHost: true, output: handle, progress: progress)
        transfer.resumeOffset = existing
        return try transfer.run(request)
    }

    /// One request's delegate; `run` blocks until it completes.
    private final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        private let followCrossHost: Bool
        private let output: FileHandle?
        private let progress: ProgressBar?
        private let done = DispatchSemaphore(value: 0)
        private var response: HTTPURLResponse?
        private var error: Error?
        private var body = Data()
        private var writeError: Error?
        var resumeOffset: Int64 = 0
        private var originalHost: String?

        init(followCrossHost: Bool, output: FileHandle?, progress: ProgressBar?) {
            self.followCrossHost = followCrossHost
            self.output = output
            self.progress = progress
        }

        func run(_ request: URLRequest) throws -> HubResponse {
            originalHost = request.url?.host
            let queue = OperationQueue()
            queue.maxConcurrentOperationCount = 1
            let session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: queue)
            session.dataTask(with: request).resume()
            done.wait()
            session.finishTasksAndInvalidate()
            if let writeError { throw HubError("cannot write the download: \(writeError.localizedDescription)") }
            if let error {
                // A redirect we declined completes as the 3xx response on some platforms, as an error on others.
                if let response, (300..<400).contains(response.statusCode) { return wrap(response) }
                throw HubUnreachable(reason: error.localizedDescription)
            }
            guard let response else { throw HubUnreachable(reason: "no HTTP response") }
            return wrap(response)
        }

        private func wrap(_ response: HTTPURLResponse) -> HubResponse {
            var headers: [String: String] = [:]
            for (k, v) in response.allHeaderFields {
                if let k = k as? String, let v = v as? String { headers[k.lowercased()] = v }
            }
            return HubResponse(status: response.statusCode, headers: headers,
                               body: String(decoding: body.prefix(2000), as: UTF8.self))
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            let crossHost = request.url?.host != originalHost
            if crossHost && !followCrossHost {
                self.response = response
                completionHandler(nil)
                return
            }
            var next = request
            if crossHost { next.setValue(nil, forHTTPHeaderField: "Authorization") }
            completionHandler(next)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            let http = response as? HTTPURLResponse
            self.response = http
            if let output, let http {
                if http.statusCode == 200 && resumeOffset > 0 {
                    // The server ignored the Range request: start the file over.
                    do { try output.truncate(atOffset: 0) } catch { writeError = error }
                    resumeOffset = 0
                }
                if (200..<300).contains(http.statusCode) {
                    _ = try? output.seekToEnd()
                    let length = http.expectedContentLength
                    progress?.start(total: length > 0 ? length + resumeOffset : nil, done: resumeOffset)
                }
            }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            if let output, let status = response?.statusCode, (200..<300).contains(status) {
                do { try output.write(contentsOf: data) } catch { writeError = error; dataTask.cancel() }
                progress?.advance(by: Int64(data.count))
            } else if body.count < 4096 {
                body.append(data)
            }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if let error, writeError == nil { self.error = error }
            progress?.finish()
            done.signal()
        }
    }
}
