import CKernels

/// glibc malloc's settings for colgrep's processes, set once at start, before the worker threads exist.
///
/// glibc gives each thread an arena whose heap starts at 32 KiB of a 64 MiB reservation and grows by
/// `mprotect`, a page or so at a time; every such call takes the process's address-space lock for
/// writing, so during parsing 64 tree-sitter workers growing their arenas queued on it (perf of a cold
/// index on 64 cores: 4.2 % of all CPU samples spinning in `osq_lock` under `mprotect` from `malloc`;
/// docs/PERFORMANCE.md, session 16). With a top pad of 64 MiB a new arena's heap is made writable whole
/// when it is created (memory is still committed only when touched) and is not trimmed back, so it is
/// never grown or shrunk again. Setting the pad fixes the mmap threshold, so that is set too: blocks up to
/// 32 MiB (glibc's own ceiling for it) come from the arenas instead of a fresh `mmap`/`munmap` pair each.
/// The cost is that freed memory stays with the process until it exits, which suits commands that index
/// or search and exit; the query server (which outlives many requests) is intercepted before this runs.
public enum ProcessMemorySettings {
    /// `COLGREP_MALLOC_DEFAULTS=1` keeps glibc's defaults, for measuring against them.
    public static let environmentKey = "COLGREP_MALLOC_DEFAULTS"
    static let topPadBytes: Int32 = 64 << 20
    static let trimThresholdBytes: Int32 = 64 << 20
    static let mmapThresholdBytes: Int32 = 32 << 20

    /// Applies the settings unless the environment asks for glibc's defaults; true when every setting
    /// was accepted (false where malloc is not glibc's).
    @discardableResult
    public static func apply(environment: [String: String]) -> Bool {
        guard environment[environmentKey] != "1" else { return false }
        return ck_malloc_settings(topPadBytes, trimThresholdBytes, mmapThresholdBytes) == 1
    }
}
