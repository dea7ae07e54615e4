import Foundation
import Testing
@testable import Encoder

/// The offline-fallback notice is shown once per Hugging Face cache folder, the network is not retried
/// on every call, and it is retried once the remembered failure is older than the retry interval.
@Suite struct ModelAvailabilityTests {
    let scratch = FileManager.default.temporaryDirectory.appending(path: "enc-memo-\(UUID().uuidString)")

    /// A client whose endpoint nothing listens on (port 9, discard), so every download fails at once.
    func unreachableHub(cache: String) -> HubClient {
        HubClient(environment: ["HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": scratch.appending(path: cache).path])
    }

    @Test func noticeIsShownOnceAndTheNetworkIsNotRetriedUntilTheIntervalPasses() throws {
        let memo = ModelAvailabilityMemo(file: scratch.appending(path: "memo.json"), retryInterval: 3600)
        let hub = unreachableHub(cache: "hub")
        let fallback = Fixtures.tinyModernBERT

        let first = try ModelLocator.resolution("acme/absent", fallback: fallback, hub: hub, memo: memo)
        #expect(first.directory == fallback)
        let notice = try #require(first.notice)
        #expect(notice.contains("acme/absent") && notice.contains("offline fallback tiny-modernbert") && notice.contains("127.0.0.1:9"))
        let recorded = try #require(memo.record(repo: "acme/absent", revision: "main", hub: hub))

        // Within the interval: the fallback at once, silently, the record untouched (no new attempt).
        let second = try ModelLocator.resolution("acme/absent", fallback: fallback, hub: hub, memo: memo)
        #expect(second.directory == fallback && second.notice == nil)
        #expect(memo.record(repo: "acme/absent", revision: "main", hub: hub) == recorded)

        // Past the interval: the network is tried again (the record is refreshed), still without a notice.
        let stale = ModelAvailabilityMemo(file: memo.file, retryInterval: 0)
        let third = try ModelLocator.resolution("acme/absent", fallback: fallback, hub: hub, memo: stale)
        #expect(third.directory == fallback && third.notice == nil)
        let refreshed = try #require(memo.record(repo: "acme/absent", revision: "main", hub: hub))
        #expect(refreshed.checked > recorded.checked, "the Hub was tried again")
    }

    @Test func eachCacheFolderAndModelGetsItsOwnNotice() throws {
        let memo = ModelAvailabilityMemo(file: scratch.appending(path: "memo.json"))
        let fallback = Fixtures.tinyModernBERT
        #expect(try ModelLocator.resolution("acme/absent", fallback: fallback, hub: unreachableHub(cache: "a"), memo: memo).notice != nil)
        #expect(try ModelLocator.resolution("acme/absent", fallback: fallback, hub: unreachableHub(cache: "b"), memo: memo).notice != nil)
        #expect(try ModelLocator.resolution("acme/other", fallback: fallback, hub: unreachableHub(cache: "a"), memo: memo).notice != nil)
        #expect(try ModelLocator.resolution("acme/absent", fallback: fallback, hub: unreachableHub(cache: "b"), memo: memo).notice == nil)
    }

    @Test func withoutAFallbackEveryCallTriesAndFails() throws {
        let memo = ModelAvailabilityMemo(file: scratch.appending(path: "memo.json"))
        let hub = unreachableHub(cache: "hub")
        for _ in 0..<2 {
            #expect(throws: EncoderError.self) { try ModelLocator.resolution("acme/absent", fallback: nil, hub: hub, memo: memo) }
        }
        #expect(memo.record(repo: "acme/absent", revision: "main", hub: hub) == nil)
    }

    @Test func aCorruptOrUnwritableMemoOnlyMeansTheNoticeRepeats() throws {
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let corrupt = scratch.appending(path: "corrupt.json")
        try Data("{not json".utf8).write(to: corrupt)
        let hub = unreachableHub(cache: "hub")
        let memo = ModelAvailabilityMemo(file: corrupt)
        #expect(try ModelLocator.resolution("acme/absent", fallback: Fixtures.tinyModernBERT, hub: hub, memo: memo).notice != nil)
        #expect(memo.record(repo: "acme/absent", revision: "main", hub: hub) != nil)
        let unwritable = ModelAvailabilityMemo(file: URL(fileURLWithPath: "/proc/colgrep-memo/memo.json"))
        for _ in 0..<2 {
            #expect(try ModelLocator.resolution("acme/absent", fallback: Fixtures.tinyModernBERT, hub: hub, memo: unwritable).notice != nil)
        }
    }
}
