/// The store's tables and their versions.
///
/// - `units`: the thin columns every search touches, keyed by the caller's stable doc id (the
///   rowid, so lookups are one B-tree probe); indexed by `file` for per-file deletes and prefixes.
/// - `unit_content`: the fat columns (code, signature, arrays as JSON text), read only for results.
/// - `keyword_index`: the FTS5 index over identifier-split text (`UnitRecord.keywordText`), keyed
///   by the same doc id. It is contentless: the text is not stored a second time (it is as large as
///   the code), because it can be derived again from the record. A delete re-derives the row's text
///   and hands it to FTS5's 'delete' command: never a rebuild, never a renumbering (the reference
///   up to 1.6.1 rebuilt FTS on any non-suffix delete; 1.6.2 moved to stable ids). Deriving the text
///   again is only exact while the tokenizer is unchanged, hence `keywordTokenizerVersion`.
///   The FTS5 tokenizer is `ascii` with `_` as a token character: the text is already split by
///   `IdentifierTokenizer`, so bigrams like `handler_stack` stay single terms with their own weight.
/// - `meta`: store-internal facts (the keyword tokenizer version, the keyword shard count, the store's
///   random id, the generation expected of each keyword shard file); `kv`: the product's own values.
/// - Keyword shards: with several, each shard is an FTS5 table in its own file and `keyword_index` stays
///   empty (`KeywordShards`).
enum Schema {
    /// `PRAGMA user_version` of the layout below. Bump it with every layout change.
    /// 2: the keyword index may be sharded (`keyword_shards`, `store_id`, generations in `meta`).
    static let version = 2
    /// The layout before keyword shards: the same tables, one keyword table. A writer migrates it in place
    /// to a one-shard store (it records the shard facts; nothing is rebuilt).
    static let unshardedVersion = 1
    /// Version of `IdentifierTokenizer` + `UnitRecord.keywordText`. Bump it with any change to
    /// either: a writer then re-derives the keyword index from the stored records at open (a
    /// migration, not a rebuild), and deletes never hand FTS5 text it did not index.
    static let keywordTokenizerVersion = 1

    static let tables = ["units", "unit_content", "keyword_index", "meta", "kv"]

    static let create = """
        CREATE TABLE units(
            doc_id INTEGER PRIMARY KEY,
            file TEXT NOT NULL,
            name TEXT NOT NULL,
            qualified_name TEXT NOT NULL,
            line INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            language TEXT NOT NULL,
            unit_type TEXT NOT NULL,
            complexity INTEGER NOT NULL,
            has_loops INTEGER NOT NULL,
            has_branches INTEGER NOT NULL,
            has_error_handling INTEGER NOT NULL
        );
        CREATE INDEX units_by_file ON units(file);
        CREATE TABLE unit_content(
            doc_id INTEGER PRIMARY KEY,
            signature TEXT NOT NULL,
            docstring TEXT,
            parameters TEXT NOT NULL,
            return_type TEXT,
            extends TEXT,
            parent_class TEXT,
            calls TEXT NOT NULL,
            called_by TEXT NOT NULL,
            variables TEXT NOT NULL,
            imports TEXT NOT NULL,
            code TEXT NOT NULL
        );
        CREATE VIRTUAL TABLE keyword_index USING fts5(body, content='', tokenize="ascii tokenchars '_'");
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
}
