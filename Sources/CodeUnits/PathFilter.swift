/// ColGREP's path rules applied on top of the ignore files (reference §1.2, `should_ignore`): hidden
/// components (except an allowed list), a fixed list of build/vendor/cache directory names matched
/// against every component, `extra_ignore`, and `force_include` which overrides both.
struct PathFilter: Sendable {
    static let allowedHidden: Set<String> = [
        ".github", ".gitlab", ".circleci", ".buildkite", ".claude", ".claude-plugin",
        ".gitlab-ci.yml", ".gitlab-ci.yaml", ".travis.yml",
    ]
    static let ignoredNames: [String] = [
        ".git", ".svn", ".hg", "node_modules", "vendor", "third_party", "third-party", "external", "target", "build",
        "dist", "out", "bin", "obj", "__pycache__", ".venv", "venv", ".env", "env", ".tox", ".nox", ".pytest_cache",
        ".mypy_cache", ".ruff_cache", "*.egg-info", ".eggs", ".next", ".nuxt", ".output", ".cache", ".parcel-cache",
        ".turbo", "go.sum", ".gradle", ".m2", ".idea", ".vscode", ".vs", "*.xcworkspace", "*.xcodeproj", "coverage",
        ".coverage", "htmlcov", ".nyc_output", "tmp", "temp", "logs", ".DS_Store",
    ]

    let forceInclude: [String]
    let extraIgnore: [String]

    /// `*suffix` matches by suffix, anything else exactly.
    private static func componentMatches(_ pattern: String, _ component: Substring) -> Bool {
        if pattern.hasPrefix("*") { return component.hasSuffix(pattern.dropFirst()) }
        return component == pattern
    }

    /// The fixed names split once: exact names for a set lookup, `*suffix` patterns kept apart.
    private static let ignoredExact = Set(ignoredNames.filter { !$0.hasPrefix("*") })
    private static let ignoredSuffixes = ignoredNames.filter { $0.hasPrefix("*") }.map { String($0.dropFirst()) }

    /// Whether a root-relative path (`/`-separated, no leading `/`) is excluded by these rules.
    func shouldIgnore(_ relativePath: String) -> Bool {
        if isForced(relativePath) { return false }
        return relativePath.split(separator: "/").contains(where: excludes)
    }

    /// `shouldIgnore(relativePath)` for a walker that reached `relativePath` by descending only into
    /// folders this filter kept: every component above `name` passed already, so only the last one is
    /// tested (the whole-path check of every component cost ~10 µs per entry, a third of a one-shot
    /// search's freshness walk).
    func shouldIgnore(entry name: String, relativePath: String) -> Bool {
        excludes(Substring(name)) && !isForced(relativePath)
    }

    /// A `force_include` pattern keeps the whole path (and everything under a kept folder).
    private func isForced(_ relativePath: String) -> Bool {
        forceInclude.contains { pattern in
            pattern.hasPrefix("*") ? relativePath.hasSuffix(pattern.dropFirst())
                : relativePath == pattern || relativePath.hasPrefix(pattern + "/")
        }
    }

    /// Whether one component excludes its path: hidden (not allowed), a fixed name or an `extra_ignore`
    /// pattern, unless a `force_include` pattern names the component.
    private func excludes(_ component: Substring) -> Bool {
        if !forceInclude.isEmpty && forceInclude.contains(where: { Self.componentMatches($0, component) }) { return false }
        if component.hasPrefix(".") && !Self.allowedHidden.contains(String(component)) { return true }
        if Self.ignoredExact.contains(String(component)) { return true }
        if Self.ignoredSuffixes.contains(where: { component.hasSuffix($0) }) { return true }
        return extraIgnore.contains { Self.componentMatches($0, component) }
    }
}
