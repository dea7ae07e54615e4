// The few libcurl "easy" entry points the Hub download client uses, loaded with dlopen on the first
// download. Linking libcurl at build time would load it and its ~30 dependent libraries (TLS, Kerberos,
// LDAP, ...) into every colgrep process, ~10 ms of CPU at each start, though only a model download
// needs it. Written by us from libcurl's public API documentation: no curl header is needed to build.
// libcurl's setopt/getinfo are variadic; the typed wrappers here make the calls Swift cannot.
#ifndef CCURL_H
#define CCURL_H
#include <stddef.h>

/// An easy handle (CURL *) and a header list (struct curl_slist *), opaque to Swift.
typedef struct CCurlHandle CCurlHandle;
typedef struct CCurlList CCurlList;

/// libcurl's write and header callback: returns the bytes taken (anything else aborts the transfer).
typedef size_t (*CCurlDataCallback)(char *data, size_t size, size_t count, void *context);

// Option and info numbers of libcurl's stable ABI (curl.h: CURLOPTTYPE_LONG 0, OBJECTPOINT 10000,
// FUNCTIONPOINT 20000; CURLINFO_STRING 0x100000, CURLINFO_LONG 0x200000).
enum {
    CCURLOPT_WRITEDATA = 10001,
    CCURLOPT_URL = 10002,
    CCURLOPT_ERRORBUFFER = 10010,
    CCURLOPT_WRITEFUNCTION = 20011,
    CCURLOPT_USERAGENT = 10018,
    CCURLOPT_LOW_SPEED_LIMIT = 19,
    CCURLOPT_LOW_SPEED_TIME = 20,
    CCURLOPT_HTTPHEADER = 10023,
    CCURLOPT_HEADERDATA = 10029,
    CCURLOPT_NOBODY = 44,
    CCURLOPT_FOLLOWLOCATION = 52,
    CCURLOPT_CONNECTTIMEOUT = 78,
    CCURLOPT_HEADERFUNCTION = 20079,
    CCURLOPT_HTTPGET = 80,
    CCURLOPT_NOSIGNAL = 99,
    CCURLINFO_RESPONSE_CODE = 0x200000 + 2,
    CCURLINFO_REDIRECT_URL = 0x100000 + 31,
    CCURL_ERROR_SIZE = 256,
};

/// Loads libcurl once (thread-safe) and runs curl_global_init. Returns 0 on success; otherwise fills
/// `message` (NUL-terminated, at most `length` bytes) with why (which libraries were tried).
int ccurl_load(char *message, size_t length);

CCurlHandle *ccurl_easy_init(void);
void ccurl_easy_cleanup(CCurlHandle *handle);
int ccurl_easy_perform(CCurlHandle *handle);
const char *ccurl_easy_strerror(int code);
int ccurl_setopt_long(CCurlHandle *handle, int option, long value);
int ccurl_setopt_pointer(CCurlHandle *handle, int option, void *value);
int ccurl_setopt_string(CCurlHandle *handle, int option, const char *value);
int ccurl_setopt_list(CCurlHandle *handle, int option, CCurlList *value);
int ccurl_setopt_callback(CCurlHandle *handle, int option, CCurlDataCallback value);
int ccurl_getinfo_long(CCurlHandle *handle, int info, long *value);
int ccurl_getinfo_string(CCurlHandle *handle, int info, const char **value);
/// Appends a copy of `line` to `list` (NULL starts one); NULL when out of memory.
CCurlList *ccurl_slist_append(CCurlList *list, const char *line);
void ccurl_slist_free_all(CCurlList *list);

#endif
