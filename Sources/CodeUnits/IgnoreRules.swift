import Foundation

/// The ignore files in force for one directory, with the precedence of ripgrep's `ignore` crate:
/// `.ignore` (deepest first), then `.gitignore` (deepest first), then `.git/info/exclude`, then the
/// global excludes file. Git files apply only inside a git repository (`require_git`).
/// Paths given to `isIgnored` are relative to `matchRoot` (the repository root, else the walk root).
struct IgnoreRules: Sendable {
    private(set) var dotIgnore: [GitignoreFile] = []
    private(set) var gitignore: [GitignoreFile] = []
    private(set) var repositoryLevel: [GitignoreFile] = []
    let insideGitRepository: Bool

    init(insideGitRepository: Bool) {
        self.insideGitRepository = insideGitRepository
    }

    /// Rules for a child directory: this directory's own ignore files added on top.
    func entering(directory: URL, relativeToMatchRoot base: String) -> IgnoreRules {
        var next = self
        let ignore = GitignoreFile(base: base, url: directory.appendingPathComponent(".ignore"))
        if !ignore.isEmpty { next.dotIgnore.append(ignore) }
        if insideGitRepository {
            let git = GitignoreFile(base: base, url: directory.appendingPathComponent(".gitignore"))
            if !git.isEmpty { next.gitignore.append(git) }
        }
        return next
    }

    mutating func addRepositoryLevel(_ file: GitignoreFile) {
        if !file.isEmpty { repositoryLevel.append(file) }
    }

    /// No ignore file in force: nothing to match.
    var isEmpty: Bool { dotIgnore.isEmpty && gitignore.isEmpty && repositoryLevel.isEmpty }

    func isIgnored(_ path: [UInt8], isDirectory: Bool) -> Bool {
        for file in dotIgnore.reversed() {
            if let d = file.decision(for: path, isDirectory: isDirectory) { return d == .ignore }
        }
        for file in gitignore.reversed() {
            if let d = file.decision(for: path, isDirectory: isDirectory) { return d == .ignore }
        }
        for file in repositoryLevel {
            if let d = file.decision(for: path, isDirectory: isDirectory) { return d == .ignore }
        }
        return false
    }

    /// Sets up the rules for a walk of `root`: finds the enclosing repository, reads `info/exclude`
    /// and the global excludes file, and the ignore files of the directories between the repository
    /// root and `root`. Returns the rules (before `root`'s own files) and `root`'s path prefix
    /// relative to the match root (empty or ending in `/`).
    static func forWalk(root: URL, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> (rules: IgnoreRules, matchRoot: URL, rootPrefix: String)
    {
        guard let repository = enclosingRepository(of: root) else {
            return (IgnoreRules(insideGitRepository: false), root, "")
        }
        var rules = IgnoreRules(insideGitRepository: true)
        if let gitDir = gitDirectory(of: repository) {
            rules.addRepositoryLevel(GitignoreFile(base: "", url: gitDir.appendingPathComponent("info/exclude")))
            if let global = globalExcludesFile(environment: environment, repositoryConfig: gitDir.appendingPathComponent("config")) {
                rules.addRepositoryLevel(GitignoreFile(base: "", url: global))
            }
        }
        let rootComponents = root.standardizedFileURL.pathComponents
        let repoComponents = repository.standardizedFileURL.pathComponents
        let between = Array(rootComponents.dropFirst(repoComponents.count))
        var directory = repository
        var prefix = ""
        for component in between {
            rules = rules.entering(directory: directory, relativeToMatchRoot: prefix)
            directory = directory.appendingPathComponent(component)
            prefix += component + "/"
        }
        return (rules, repository, prefix)
    }

    /// The nearest directory at or above `url` that holds a `.git` entry (directory or worktree file).
    static func enclosingRepository(of url: URL) -> URL? {
        var current = url.standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: current.appendingPathComponent(".git").path) { return current }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { return nil }
            current = parent
        }
    }

    /// `.git` itself, or the directory a `gitdir:` file points to (worktrees, submodules).
    static func gitDirectory(of repository: URL) -> URL? {
        let dotGit = repository.appendingPathComponent(".git")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isDirectory) else { return nil }
        if isDirectory.boolValue { return dotGit }
        guard let text = try? String(contentsOf: dotGit, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("gitdir:") }) else { return nil }
        let path = line.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespaces)
        let target = path.hasPrefix("/") ? URL(fileURLWithPath: path) : repository.appendingPathComponent(path)
        // A linked worktree's info/exclude lives in the common directory.
        let common = target.appendingPathComponent("commondir")
        if let c = try? String(contentsOf: common, encoding: .utf8) {
            let trimmed = c.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.hasPrefix("/") ? URL(fileURLWithPath: trimmed) : target.appendingPathComponent(trimmed).standardizedFileURL
        }
        return target
    }

    /// git's `core.excludesFile` (repository config, then `$XDG_CONFIG_HOME/git/config`, then
    /// `~/.gitconfig`), defaulting to `$XDG_CONFIG_HOME/git/ignore` (`~/.config/git/ignore`).
    static func globalExcludesFile(environment: [String: String], repositoryConfig: URL?) -> URL? {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let xdg = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config"
        var configs: [URL] = []
        if let r = repositoryConfig { configs.append(r) }
        configs.append(URL(fileURLWithPath: xdg + "/git/config"))
        configs.append(URL(fileURLWithPath: home + "/.gitconfig"))
        for config in configs {
            if let value = coreExcludesFile(in: config) {
                let expanded = value.hasPrefix("~/") ? home + value.dropFirst(1) : value
                return URL(fileURLWithPath: expanded)
            }
        }
        return URL(fileURLWithPath: xdg + "/git/ignore")
    }

    /// The `excludesFile` value of the `[core]` section of a git config file, if any.
    static func coreExcludesFile(in config: URL) -> String? {
        guard let text = try? String(contentsOf: config, encoding: .utf8) else { return nil }
        var inCore = false
        var found: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                inCore = line.lowercased().hasPrefix("[core]") || line.lowercased() == "[core]"
                continue
            }
            guard inCore, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            if key == "excludesfile" {
                var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                found = value
            }
        }
        return found
    }
}
