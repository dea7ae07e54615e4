// The system SQLite (Debian: libsqlite3-dev, built with FTS5).
#include <sqlite3.h>

// `sqlite3_config` is variadic, which Swift cannot call: one wrapper per option we set.
// SQLITE_CONFIG_MEMSTATUS: with statistics on (SQLite's default), every sqlite3_malloc and sqlite3_free
// of every connection takes one process-wide mutex. Only valid before SQLite initialises.
static inline int colgrep_sqlite_config_memstatus(int on) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, on);
}
