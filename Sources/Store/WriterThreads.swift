import Foundation

/// Long-lived threads of their own for the parts of one store write that run side by side (the row
/// writer and one writer per keyword shard file; their commits): part 0 runs on the calling thread, part
/// i ≥ 1 always on thread i.
///
/// Until session 10 these parts ran through `DispatchQueue.concurrentPerform`, whose helpers come from
/// the process's shared worker pool, the one where the tokenizer, the embedding texts, the pooling and the
/// row preparation run their core-wide loops during a cold index. Threads of their own start every part at
/// once whatever that pool is doing (measured on the GPU machine: the last part starts ≤ 2 ms after the
/// write posts it; the pool had not been delaying them measurably either, docs/PERFORMANCE.md, session 10),
/// and let each part measure its own thread's CPU, kernel time and run-queue wait (`ThreadUsage`), the
/// figures that tell a writer slowed by its neighbours from one starved of cores.
final class WriterThreads: @unchecked Sendable {
    /// Parts one `run` executes (the caller's included).
    let count: Int
    /// What the threads share; they hold it, not this object, so that releasing this object stops them.
    private let shared: Shared

    /// `count` parts: `count − 1` threads are started, named `<name>-1` … (part 0 is the caller's).
    init(count: Int, name: String) {
        self.count = max(1, count)
        shared = Shared(threads: self.count - 1)
        for part in 1..<self.count {
            let label = "\(name)-\(part)"
            let thread = Thread { [shared] in
                WriterThreads.nameKernelThread(label)
                shared.loop(part: part)
            }
            thread.name = label
            thread.start()
        }
    }

    deinit {
        shared.stop()
    }

    /// Gives the calling thread `label` as its kernel name (`comm`, at most 15 bytes: longer ones are cut),
    /// the name `top -H`, `perf` and `/proc/<pid>/task/*/comm` show. Foundation's `Thread.name` does not set
    /// it on Linux, so every writer thread showed its process's name and a profile could not tell them apart.
    static func nameKernelThread(_ label: String) {
        #if os(Linux)
        // Written through /proc: glibc's pthread_setname_np and prctl are not visible to Swift here.
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(label.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #endif
    }

    /// Runs `body(part)` for every part at once, part 0 on the calling thread, and returns when every
    /// part has returned, with each part's usage of its thread while it ran (index = part). A thread runs
    /// its part after whatever was `post`ed to it before. One `run` at a time (the store's writer lock
    /// serializes them).
    func run(_ body: (Int) -> Void) -> [ThreadUsage] {
        let posted = ThreadUsage.now()
        return withoutActuallyEscaping(body) { body in
            let tickets = (1..<count).map { part in shared.post(part: part, posted: posted) { body(part) } }
            let start = ThreadUsage.Mark()
            body(0)
            let own = start.usageSince(posted: posted)
            return [own] + tickets.map(shared.wait)
        }
    }

    /// A part queued on one thread by `post`: `wait` returns once it has run.
    final class Ticket: @unchecked Sendable {
        fileprivate var done = false
        fileprivate var usage = ThreadUsage()
    }

    /// Queues `body` on thread `part` (1 ≤ part < `count`) behind what was queued there before, and
    /// returns at once: the store's keyword shard writers go on with the next write's rows while the
    /// caller finishes this one (`MetadataStore`'s lookahead).
    func post(part: Int, _ body: @escaping () -> Void) -> Ticket {
        precondition(part >= 1 && part < count)
        return shared.post(part: part, posted: ThreadUsage.now(), body)
    }

    /// Waits for a posted part and returns its usage of its thread.
    func wait(_ ticket: Ticket) -> ThreadUsage {
        shared.wait(ticket)
    }

    /// The hand-over between the caller and the threads: one queue of parts per thread, run in order.
    private final class Shared: @unchecked Sendable {
        private struct Job {
            var body: () -> Void
            let ticket: Ticket
            let posted: UInt64
        }
        private let condition = NSCondition()
        private var queues: [[Job]]
        private var stopping = false

        init(threads: Int) {
            queues = Array(repeating: [], count: threads + 1)
        }

        func post(part: Int, posted: UInt64, _ body: @escaping () -> Void) -> Ticket {
            let ticket = Ticket()
            condition.lock()
            queues[part].append(Job(body: body, ticket: ticket, posted: posted))
            condition.broadcast()
            condition.unlock()
            return ticket
        }

        func wait(_ ticket: Ticket) -> ThreadUsage {
            condition.lock()
            defer { condition.unlock() }
            while !ticket.done { condition.wait() }
            return ticket.usage
        }

        func stop() {
            condition.lock()
            stopping = true
            condition.broadcast()
            condition.unlock()
        }

        /// Thread `part`'s loop: its queued parts in order; it returns once stopped with nothing queued.
        func loop(part: Int) {
            while true {
                condition.lock()
                while queues[part].isEmpty && !stopping { condition.wait() }
                if queues[part].isEmpty {
                    condition.unlock()
                    return
                }
                var job: Job? = queues[part].removeFirst()
                condition.unlock()
                let start = ThreadUsage.Mark()
                job!.body()
                let usage = start.usageSince(posted: job!.posted)
                let ticket = job!.ticket
                // Dropped before the part counts as done: `run`'s caller lends a non-escaping closure.
                job = nil
                condition.lock()
                ticket.usage = usage
                ticket.done = true
                condition.broadcast()
                condition.unlock()
            }
        }
    }
}

/// What one thread spent on one part of a write: CPU (user + system, `CLOCK_THREAD_CPUTIME_ID`), the
/// kernel's share of it, time runnable but waiting for a core (`/proc/thread-self/schedstat`), and how long
/// after the write posted it the part started. Work that gets slower beside other busy threads shows as
/// more CPU for the same part; a writer starved of cores as run-queue wait; a part that waited for a
/// worker as start delay. `wall` is the part's own wall time, from its start to its end.
struct ThreadUsage: Sendable, Equatable {
    var cpu: UInt64 = 0
    var system: UInt64 = 0
    var runQueueWait: UInt64 = 0
    var startDelay: UInt64 = 0
    var wall: UInt64 = 0

    /// Nanoseconds on the monotonic clock.
    static func now() -> UInt64 { StageClock.now() }

    /// The calling thread's counters at one instant.
    struct Mark {
        let wall = StageClock.now()
        let cpu = StageClock.threadCPU()
        let system = ThreadUsage.threadSystemTime()
        let wait = ThreadUsage.threadRunQueueWait()

        /// The calling thread's usage since this mark (the same thread must call it).
        func usageSince(posted: UInt64) -> ThreadUsage {
            let end = Mark()
            return ThreadUsage(cpu: end.cpu &- cpu, system: end.system &- system, runQueueWait: end.wait &- wait,
                               startDelay: wall &- min(wall, posted), wall: end.wall &- wall)
        }
    }

    /// System (kernel) CPU nanoseconds of the calling thread (`getrusage(RUSAGE_THREAD)`; 0 where unsupported).
    static func threadSystemTime() -> UInt64 {
        var usage = rusage()
        #if os(Linux)
        // RUSAGE_THREAD (1): glibc defines it only under _GNU_SOURCE.
        guard getrusage(__rusage_who_t(1), &usage) == 0 else { return 0 }
        #else
        return 0
        #endif
        return UInt64(usage.ru_stime.tv_sec) * 1_000_000_000 + UInt64(usage.ru_stime.tv_usec) * 1_000
    }

    /// Nanoseconds the calling thread has spent runnable on a run queue, waiting for a core (the second
    /// field of `/proc/thread-self/schedstat`; 0 where the kernel does not keep it).
    static func threadRunQueueWait() -> UInt64 {
        #if os(Linux)
        let fd = open("/proc/thread-self/schedstat", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 96)
        let read = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
        guard read > 0 else { return 0 }
        return parseRunQueueWait(schedstat: buffer[..<read])
        #else
        return 0
        #endif
    }

    /// The second whitespace-separated number of a schedstat line ("on-cpu-ns wait-ns timeslices"); 0 if absent.
    static func parseRunQueueWait<S: Sequence<UInt8>>(schedstat: S) -> UInt64 {
        var field = 0, value: UInt64 = 0, inNumber = false
        for byte in schedstat {
            if byte >= 48 && byte <= 57 {
                if !inNumber { inNumber = true; value = 0 }
                value = value &* 10 &+ UInt64(byte - 48)
            } else if inNumber {
                inNumber = false
                if field == 1 { return value }
                field += 1
            }
        }
        return inNumber && field == 1 ? value : 0
    }

    /// The part-by-part usages of a write summed: CPU, system and run-queue wait over every thread;
    /// `busiest` the CPU of the busiest part, `latestStart` the largest start delay.
    static func summary(_ usages: [ThreadUsage]) -> (total: ThreadUsage, busiest: UInt64, latestStart: UInt64) {
        var total = ThreadUsage()
        for usage in usages {
            total.cpu &+= usage.cpu
            total.system &+= usage.system
            total.runQueueWait &+= usage.runQueueWait
        }
        return (total, usages.map(\.cpu).max() ?? 0, usages.map(\.startDelay).max() ?? 0)
    }
}
