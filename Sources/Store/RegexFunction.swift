import CSQLite
import Foundation

/// The SQL function `regexp(pattern, text)` (so also `text REGEXP pattern`), backed by
/// `NSRegularExpression` (ICU: lookaround and backreferences work, flags inline as `(?mi)`).
///
/// Patterns are compiled once and cached by their text. Patterns with shapes that can backtrack
/// badly (`RegexPrefilter.mayBacktrackBadly`) run under time limits: a row whose match runs past
/// `rowTimeLimit`, or any row once the query has run for `queryTimeLimit`, counts as "no match"
/// (the reference's backtrack limit does the same); after `timeoutsBeforeGivingUp` such rows the
/// pattern is treated as catastrophic and every remaining row is "no match" at once, so a query
/// always finishes. `timeouts` tells the caller how many rows were cut short.
final class RegexFunction {
    /// Longest one row's match may run.
    let rowTimeLimit: Duration
    let queryTimeLimit: Duration
    let timeoutsBeforeGivingUp: Int
    private let clock = ContinuousClock()
    private var queryDeadline: ContinuousClock.Instant
    /// A compiled pattern with what its text tells about it.
    struct Compiled {
        let regex: NSRegularExpression
        let prefilter: RegexPrefilter
    }

    private var cache: [String: Compiled] = [:]
    /// Rows that hit the time limit since the last `resetQueryBudget()`.
    private(set) var timeouts = 0

    init(rowTimeLimit: Duration = .milliseconds(100), queryTimeLimit: Duration = .seconds(10), timeoutsBeforeGivingUp: Int = 3) {
        self.rowTimeLimit = rowTimeLimit
        self.queryTimeLimit = queryTimeLimit
        self.timeoutsBeforeGivingUp = timeoutsBeforeGivingUp
        queryDeadline = clock.now.advanced(by: queryTimeLimit)
    }

    /// Compiles (or fetches) `pattern`; throws `.invalidRegex` with ICU's reason.
    func compile(_ pattern: String) throws -> Compiled {
        if let cached = cache[pattern] { return cached }
        do {
            let compiled = Compiled(regex: try NSRegularExpression(pattern: pattern, options: []),
                                    prefilter: RegexPrefilter(pattern: pattern))
            if cache.count > 64 { cache.removeAll() }
            cache[pattern] = compiled
            return compiled
        } catch {
            throw StoreError.invalidRegex(pattern: pattern, message: Self.reason(error))
        }
    }

    /// Starts a query's time budget.
    func resetQueryBudget() {
        timeouts = 0
        queryDeadline = clock.now.advanced(by: queryTimeLimit)
    }

    /// Whether `pattern` matches somewhere in the UTF-8 `text`.
    func matches(_ pattern: Compiled, _ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard pattern.prefilter.mayMatch(text) else { return false }
        let string = String(decoding: text, as: UTF8.self)
        let range = NSRange(location: 0, length: string.utf16.count)
        guard pattern.prefilter.mayBacktrackBadly else {
            return pattern.regex.firstMatch(in: string, options: [], range: range) != nil
        }
        return matchesWithTimeLimit(pattern.regex, string, range)
    }

    /// A match attempt that gives up (false) past the time limit, through ICU's progress callbacks
    /// (called per start position, which is why only risky patterns take this path).
    private func matchesWithTimeLimit(_ regex: NSRegularExpression, _ text: String, _ range: NSRange) -> Bool {
        if timeouts >= timeoutsBeforeGivingUp { return false }
        let clock = clock
        let deadline = min(clock.now.advanced(by: rowTimeLimit), queryDeadline)
        var found = false
        var timedOut = false
        var calls = 0
        regex.enumerateMatches(in: text, options: [.reportProgress], range: range) { match, _, stop in
            if match != nil {
                found = true
                stop.pointee = true
                return
            }
            calls += 1
            if calls & 63 == 0, clock.now >= deadline {
                timedOut = true
                stop.pointee = true
            }
        }
        if timedOut && !found { timeouts += 1 }
        return found
    }

    /// Registers the function on `connection`, which keeps this object alive until it closes.
    func register(on connection: SQLiteConnection) throws {
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = sqlite3_create_function_v2(
            connection.handle, "regexp", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, context,
            { sqlContext, argc, argv in
                guard let sqlContext, let argv, argc == 2, let patternValue = argv[0], let textValue = argv[1] else { return }
                let function = Unmanaged<RegexFunction>.fromOpaque(sqlite3_user_data(sqlContext)).takeUnretainedValue()
                guard sqlite3_value_type(patternValue) != SQLITE_NULL, sqlite3_value_type(textValue) != SQLITE_NULL else {
                    sqlite3_result_null(sqlContext)
                    return
                }
                let pattern = RegexFunction.string(patternValue)
                do {
                    let compiled = try function.compile(pattern)
                    // Read the text (after compiling: value_text converts in place, value_bytes after it).
                    let bytes = sqlite3_value_text(textValue)
                    let text = UnsafeBufferPointer(start: bytes, count: bytes == nil ? 0 : Int(sqlite3_value_bytes(textValue)))
                    sqlite3_result_int(sqlContext, function.matches(compiled, text) ? 1 : 0)
                } catch {
                    sqlite3_result_error(sqlContext, "\(error)", -1)
                }
            },
            nil, nil,
            { pointer in
                guard let pointer else { return }
                Unmanaged<RegexFunction>.fromOpaque(pointer).release()
            }
        )
        guard rc == SQLITE_OK else { throw connection.lastError(rc) }
    }

    /// A value's text, embedded NUL bytes included.
    static func string(_ value: OpaquePointer) -> String {
        guard let bytes = sqlite3_value_text(value) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_value_bytes(value))), as: UTF8.self)
    }

    private static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let detail = nsError.userInfo["NSInvalidValue"] { return "\(nsError.localizedDescription) (\(detail))" }
        return nsError.localizedDescription
    }
}
