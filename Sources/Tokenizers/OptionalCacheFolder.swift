import Foundation

/// Where an optional on-disk cache of colgrep lives (the parsed-tokenizer cache here, the fused-weight
/// cache in Encoder): `$XDG_CACHE_HOME/colgrep/<name>`, else `~/.cache/colgrep/<name>`.
public enum OptionalCacheFolder {
    /// The folder, or nil when `switchVariable` is `0`/`off`/`false`/`no` or there is no home folder
    /// (the cache is then simply not used).
    public static func resolve(_ name: String, disabledBy switchVariable: String,
                               environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let flag = environment[switchVariable]?.lowercased(), ["0", "off", "false", "no"].contains(flag) { return nil }
        let base: URL
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            base = URL(fileURLWithPath: xdg, isDirectory: true)
        } else if let home = environment["HOME"], !home.isEmpty {
            base = URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(".cache", isDirectory: true)
        } else {
            return nil
        }
        return base.appendingPathComponent("colgrep/\(name)", isDirectory: true)
    }
}
