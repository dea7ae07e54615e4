import CSQLite
import Foundation

/// Two FTS5 auxiliary functions that let a keyword index split over several FTS5 tables (one per
/// `KeywordShards` shard) rank exactly as one table's `bm25()` would.
///
/// FTS5's bm25 of a row D for a query of phrases p is
/// `−Σ_p IDF(p) · f(p,D)·(k1+1) / (f(p,D) + k1·(1 − b + b·|D|/avgdl))`, k1 = 1.2, b = 0.75,
/// `IDF(p) = log((N − n(p) + 0.5) / (n(p) + 0.5))` clamped to 1e-6 when not positive, N the table's rows,
/// avgdl its tokens ÷ N, n(p) the rows matching phrase p alone (one column, so no column weights).
/// Only f(p,D) and |D| belong to the row; N, the token total and every n(p) are table-wide. A shard
/// reports its own figures with `colgrep_keyword_stats`, the caller sums them over the shards, and
/// `colgrep_bm25` scores each shard's rows with the sums: the single table's score, computed in the
/// same order of operations.
enum KeywordRanking {
    /// `colgrep_keyword_stats(table)`: a BLOB of native Int64s `[rows, tokens, n(0), …, n(P−1)]` of this
    /// shard. In a MATCH query n(p) counts the rows matching phrase p; in a plain scan there are no phrases.
    static let statsFunction = "colgrep_keyword_stats"
    /// `colgrep_bm25(table, rows, tokens, hits)`: the row's bm25 with table-wide `rows`, `tokens` and
    /// `hits` (a BLOB of native Int64 n(p), one per phrase of the MATCH expression).
    static let scoreFunction = "colgrep_bm25"

    /// Registers both functions on `connection` (they live in that connection's FTS5 module and apply to
    /// every FTS5 table it reaches).
    static func register(on connection: SQLiteConnection) throws {
        let api = try fts5API(connection)
        for (name, function) in [(statsFunction, statsImplementation), (scoreFunction, scoreImplementation)] {
            guard let create = api.pointee.xCreateFunction else {
                throw StoreError.sqlite(path: connection.path, code: SQLITE_ERROR, message: "FTS5 offers no xCreateFunction")
            }
            let rc = create(api, name, nil, function, nil)
            guard rc == SQLITE_OK else {
                throw StoreError.sqlite(path: connection.path, code: rc, message: "cannot register the FTS5 function \(name)")
            }
        }
    }

    /// The connection's `fts5_api` (documented way: `SELECT fts5(?1)` with a pointer bound as "fts5_api_ptr").
    private static func fts5API(_ connection: SQLiteConnection) throws -> UnsafeMutablePointer<fts5_api> {
        var raw: OpaquePointer?
        var rc = sqlite3_prepare_v2(connection.handle, "SELECT fts5(?1)", -1, &raw, nil)
        guard rc == SQLITE_OK, let statement = raw else { throw connection.lastError(rc) }
        defer { sqlite3_finalize(statement) }
        var api: UnsafeMutablePointer<fts5_api>?
        rc = withUnsafeMutablePointer(to: &api) { slot in
            // The type name must outlive the statement: a static string's bytes do.
            _ = pointerTypeName.utf8Start.withMemoryRebound(to: CChar.self, capacity: pointerTypeName.utf8CodeUnitCount) { name in
                sqlite3_bind_pointer(statement, 1, UnsafeMutableRawPointer(slot), name, nil)
            }
            return sqlite3_step(statement)
        }
        guard rc == SQLITE_ROW || rc == SQLITE_DONE else { throw connection.lastError(rc) }
        guard let api, api.pointee.iVersion >= 2 else {
            throw StoreError.fts5Unavailable(sqliteVersion: String(cString: sqlite3_libversion()))
        }
        return api
    }

    private static let pointerTypeName: StaticString = "fts5_api_ptr"

    // MARK: - the functions

    private static let statsImplementation: fts5_extension_function = { api, fts, context, _, _ in
        guard let api, let fts else { return }
        let phrases = Int(api.pointee.xPhraseCount(fts))
        var figures = [Int64](repeating: 0, count: 2 + phrases)
        var rc = api.pointee.xRowCount(fts, &figures[0])
        if rc == SQLITE_OK { rc = api.pointee.xColumnTotalSize(fts, -1, &figures[1]) }
        for phrase in 0..<phrases where rc == SQLITE_OK {
            var hits: Int64 = 0
            rc = api.pointee.xQueryPhrase(fts, Int32(phrase), &hits, countRow)
            figures[2 + phrase] = hits
        }
        guard rc == SQLITE_OK else { sqlite3_result_error_code(context, rc); return }
        figures.withUnsafeBytes { bytes in
            sqlite3_result_blob64(context, bytes.baseAddress, sqlite3_uint64(bytes.count), sqliteTransient)
        }
    }

    private static let countRow: @convention(c) (UnsafePointer<Fts5ExtensionApi>?, OpaquePointer?, UnsafeMutableRawPointer?) -> Int32 = { _, _, counter in
        counter?.assumingMemoryBound(to: Int64.self).pointee += 1
        return SQLITE_OK
    }

    /// Per-query data kept by FTS5 between rows (`xSetAuxdata`): `[avgdl, IDF(0…P−1), f(0…P−1)]`.
    private static let scoreImplementation: fts5_extension_function = { api, fts, context, count, values in
        guard let api, let fts, let values else { return }
        let phrases = Int(api.pointee.xPhraseCount(fts))
        var data = api.pointee.xGetAuxdata(fts, 0)?.assumingMemoryBound(to: Double.self)
        if data == nil {
            guard count == 3, let made = queryData(phrases, rows: sqlite3_value_int64(values[0]),
                                                   tokens: sqlite3_value_int64(values[1]), hits: values[2]) else {
                sqlite3_result_error(context, "colgrep_bm25: expects the table-wide row count, token count and one Int64 hit count per phrase", -1)
                return
            }
            let rc = api.pointee.xSetAuxdata(fts, made, free)
            guard rc == SQLITE_OK else { sqlite3_result_error_code(context, rc); return }
            data = made
        }
        guard let data else { return }
        let k1 = 1.2, b = 0.75
        let avgdl = data[0]
        let idf = data + 1, frequency = data + 1 + phrases
        for phrase in 0..<phrases { frequency[phrase] = 0 }
        var instances: Int32 = 0
        var rc = api.pointee.xInstCount(fts, &instances)
        var index: Int32 = 0
        while rc == SQLITE_OK && index < instances {
            var phrase: Int32 = 0, column: Int32 = 0, offset: Int32 = 0
            rc = api.pointee.xInst(fts, index, &phrase, &column, &offset)
            if rc == SQLITE_OK { frequency[Int(phrase)] += 1.0 }
            index += 1
        }
        var rowTokens: Int32 = 0
        if rc == SQLITE_OK { rc = api.pointee.xColumnSize(fts, -1, &rowTokens) }
        guard rc == SQLITE_OK else { sqlite3_result_error_code(context, rc); return }
        let length = Double(rowTokens)
        var score = 0.0
        for phrase in 0..<phrases {
            let f = frequency[phrase]
            score += idf[phrase] * ((f * (k1 + 1.0)) / (f + k1 * (1 - b + b * length / avgdl)))
        }
        sqlite3_result_double(context, -1.0 * score)
    }

    /// avgdl and every phrase's IDF from the table-wide figures, in a `malloc`ed block FTS5 frees.
    private static func queryData(_ phrases: Int, rows: Int64, tokens: Int64, hits: OpaquePointer?) -> UnsafeMutablePointer<Double>? {
        guard rows > 0, let bytes = sqlite3_value_blob(hits), Int(sqlite3_value_bytes(hits)) == phrases * 8 else { return nil }
        guard let block = malloc(MemoryLayout<Double>.stride * (1 + 2 * phrases))?.assumingMemoryBound(to: Double.self) else { return nil }
        block[0] = Double(tokens) / Double(rows)
        for phrase in 0..<phrases {
            let n = bytes.loadUnaligned(fromByteOffset: phrase * 8, as: Int64.self)
            let idf = log((Double(rows - n) + 0.5) / (Double(n) + 0.5))
            block[1 + phrase] = idf <= 0.0 ? 1e-6 : idf
        }
        return block
    }

    /// Decodes a `colgrep_keyword_stats` BLOB.
    static func decodeStats(_ bytes: UnsafeBufferPointer<UInt8>) -> [Int64] {
        (0..<bytes.count / 8).map { UnsafeRawBufferPointer(bytes).loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
    }
}
