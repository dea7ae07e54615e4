import Foundation

/// One line of a gitignore-style file, parsed with git's rules (`dir.c`): `!` negates, a trailing `/`
/// restricts to directories, a `/` anywhere but the end anchors the pattern to the file's directory,
/// otherwise it matches the basename at any depth; `\` escapes, unescaped trailing spaces are dropped.
struct GitignorePattern: Sendable {
    let glob: [UInt8]
    let negated: Bool
    let directoryOnly: Bool
    /// No `/` in the pattern: matched against the basename only.
    let basenameOnly: Bool

    init?(line rawLine: Substring) {
        var bytes = Array(rawLine.utf8)
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        if bytes.isEmpty || bytes[0] == UInt8(ascii: "#") { return nil }
        Self.trimTrailingSpaces(&bytes)
        var negated = false
        if bytes.first == UInt8(ascii: "!") {
            negated = true
            bytes.removeFirst()
        }
        var directoryOnly = false
        if bytes.last == UInt8(ascii: "/") {
            directoryOnly = true
            bytes.removeLast()
        }
        if bytes.isEmpty { return nil }
        let hasSlash = bytes.contains(UInt8(ascii: "/"))
        if bytes.first == UInt8(ascii: "/") { bytes.removeFirst() }
        self.glob = bytes
        self.negated = negated
        self.directoryOnly = directoryOnly
        self.basenameOnly = !hasSlash
    }

    /// git's `trim_trailing_spaces`: drop a run of trailing spaces unless the first is escaped.
    private static func trimTrailingSpaces(_ bytes: inout [UInt8]) {
        var lastSpace: Int?
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: " "):
                if lastSpace == nil { lastSpace = i }
            case UInt8(ascii: "\\"):
                i += 1
                if i >= bytes.count { return }
                lastSpace = nil
            default:
                lastSpace = nil
            }
            i += 1
        }
        if let s = lastSpace { bytes.removeSubrange(s...) }
    }

    /// `path` is relative to the directory holding the pattern's file; `basename` its last component.
    func matches(path: ArraySlice<UInt8>, basename: ArraySlice<UInt8>, isDirectory: Bool) -> Bool {
        if directoryOnly && !isDirectory { return false }
        if basenameOnly { return Wildmatch.matches(glob[...], basename, pathname: false) }
        return Wildmatch.matches(glob[...], path, pathname: true)
    }
}

/// The patterns of one ignore file (`.gitignore`, `.ignore`, `info/exclude`, the global excludes file),
/// relative to `base`: the directory holding it, as a root-relative prefix ending in `/` (or empty).
struct GitignoreFile: Sendable {
    enum Decision { case ignore, include }

    let base: [UInt8]
    let patterns: [GitignorePattern]

    init(base: String, contents: String) {
        var b = Array(base.utf8)
        if !b.isEmpty && b.last != UInt8(ascii: "/") { b.append(UInt8(ascii: "/")) }
        self.base = b
        var text = Substring(contents)
        if text.hasPrefix("\u{FEFF}") { text = text.dropFirst() }
        self.patterns = text.split(separator: "\n", omittingEmptySubsequences: false).compactMap(GitignorePattern.init(line:))
    }

    /// Reads `url`; a missing or unreadable file is simply an empty list (git ignores it too).
    init(base: String, url: URL) {
        let data = (try? Data(contentsOf: url)) ?? Data()
        self.init(base: base, contents: String(decoding: data, as: UTF8.self))
    }

    var isEmpty: Bool { patterns.isEmpty }

    /// The decision of the last matching pattern for a root-relative path, or nil when none matches
    /// (or the path is outside `base`).
    func decision(for path: [UInt8], isDirectory: Bool) -> Decision? {
        guard path.count > base.count, path.starts(with: base) else { return nil }
        let relative = path[base.count...]
        let basenameStart = relative.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? relative.startIndex
        let basename = relative[basenameStart...]
        for pattern in patterns.reversed() where pattern.matches(path: relative, basename: basename, isDirectory: isDirectory) {
            return pattern.negated ? .include : .ignore
        }
        return nil
    }
}
