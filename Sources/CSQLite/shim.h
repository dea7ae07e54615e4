// The system SQLite (Debian: libsqlite3-dev, built with FTS5).
#include <sqlite3.h>
