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

    /// Whether a root-relative path (`/`-separated, no leading `/`) is excluded by these rules.
    func shouldIgnore(_ relativePath: String) -> Bool {
        for pattern in forceInclude {
            if pattern.hasPrefix("*") {
                if relativePath.hasSuffix(pattern.dropFirst()) { return false }
            } else if relativePath == pattern || relativePath.hasPrefix(pattern + "/") {
                return false
            }
        }
        for component in relativePath.split(separator: "/") {
            if forceInclude.contains(where: { Self.componentMatches($0, component) }) { continue }
            if component.hasPrefix(".") && !Self.allowedHidden.contains(String(component)) { return true }
            if Self.ignoredNames.contains(where: { Self.componentMatches($0, component) }) { return true }
            if extraIgnore.contains(where: { Self.componentMatches($0, component) }) { return true }
        }
        return false
    }
}
