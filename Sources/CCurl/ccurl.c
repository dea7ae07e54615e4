// See CCurl.h: libcurl through dlopen, so that a process which downloads nothing never loads it.
#define _GNU_SOURCE
#include "CCurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef CCurlHandle *(*EasyInit)(void);
typedef void (*EasyCleanup)(CCurlHandle *);
typedef int (*EasyPerform)(CCurlHandle *);
typedef const char *(*EasyStrerror)(int);
typedef int (*EasySetopt)(CCurlHandle *, int, ...);
typedef int (*EasyGetinfo)(CCurlHandle *, int, ...);
typedef CCurlList *(*SlistAppend)(CCurlList *, const char *);
typedef void (*SlistFreeAll)(CCurlList *);
typedef int (*GlobalInit)(long);

static struct {
    EasyInit easy_init;
    EasyCleanup easy_cleanup;
    EasyPerform easy_perform;
    EasyStrerror easy_strerror;
    EasySetopt easy_setopt;
    EasyGetinfo easy_getinfo;
    SlistAppend slist_append;
    SlistFreeAll slist_free_all;
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load(void) {
    static const char *const names[] = {
#if defined(__APPLE__)
        "libcurl.4.dylib", "/usr/lib/libcurl.4.dylib", "libcurl.dylib",
#else
        "libcurl.so.4", "libcurl.so", "libcurl-gnutls.so.4",
#endif
    };
    void *library = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !library; i++)
        library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(load_error, sizeof load_error,
                 "libcurl is not installed (tried %s): install it (e.g. apt install libcurl4) to download models",
                 names[0]);
        return;
    }
#define BIND(field, symbol)                                                                       \
    api.field = (__typeof__(api.field))dlsym(library, symbol);                                    \
    if (!api.field) {                                                                             \
        snprintf(load_error, sizeof load_error, "libcurl lacks %s: install libcurl 7.x or later", \
                 symbol);                                                                         \
        return;                                                                                   \
    }
    BIND(easy_init, "curl_easy_init")
    BIND(easy_cleanup, "curl_easy_cleanup")
    BIND(easy_perform, "curl_easy_perform")
    BIND(easy_strerror, "curl_easy_strerror")
    BIND(easy_setopt, "curl_easy_setopt")
    BIND(easy_getinfo, "curl_easy_getinfo")
    BIND(slist_append, "curl_slist_append")
    BIND(slist_free_all, "curl_slist_free_all")
#undef BIND
    GlobalInit global_init = (GlobalInit)dlsym(library, "curl_global_init");
    // CURL_GLOBAL_DEFAULT (3); curl_global_init is not thread-safe, hence inside the once.
    if (global_init && global_init(3) != 0) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        return;
    }
    load_error[0] = 0;
}

int ccurl_load(char *message, size_t length) {
    pthread_once(&load_once, load);
    if (api.easy_init && load_error[0] == 0) return 0;
    if (message && length) snprintf(message, length, "%s", load_error[0] ? load_error : "libcurl could not be loaded");
    return 1;
}

CCurlHandle *ccurl_easy_init(void) { return api.easy_init ? api.easy_init() : NULL; }
void ccurl_easy_cleanup(CCurlHandle *handle) {
    if (handle) api.easy_cleanup(handle);
}
int ccurl_easy_perform(CCurlHandle *handle) { return api.easy_perform(handle); }
const char *ccurl_easy_strerror(int code) { return api.easy_strerror(code); }
int ccurl_setopt_long(CCurlHandle *handle, int option, long value) { return api.easy_setopt(handle, option, value); }
int ccurl_setopt_pointer(CCurlHandle *handle, int option, void *value) { return api.easy_setopt(handle, option, value); }
int ccurl_setopt_string(CCurlHandle *handle, int option, const char *value) { return api.easy_setopt(handle, option, value); }
int ccurl_setopt_list(CCurlHandle *handle, int option, CCurlList *value) { return api.easy_setopt(handle, option, value); }
int ccurl_setopt_callback(CCurlHandle *handle, int option, CCurlDataCallback value) {
    return api.easy_setopt(handle, option, value);
}
int ccurl_getinfo_long(CCurlHandle *handle, int info, long *value) { return api.easy_getinfo(handle, info, value); }
int ccurl_getinfo_string(CCurlHandle *handle, int info, const char **value) {
    return api.easy_getinfo(handle, info, value);
}
CCurlList *ccurl_slist_append(CCurlList *list, const char *line) { return api.slist_append(list, line); }
void ccurl_slist_free_all(CCurlList *list) {
    if (list) api.slist_free_all(list);
}
