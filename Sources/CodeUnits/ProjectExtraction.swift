import Foundation

/// Walks a project and extracts every file in parallel, then links callers across the whole project:
/// the complete "walk → parse → units" stage in one call. Skips from both steps are counted together.
public struct ProjectExtraction: Sendable {
    public var files: [WalkedFile]
    /// Units of all files, in file order, with `called_by` resolved project-wide.
    public var units: [CodeUnit]
    public var skipped: [SkippedPath]
    /// Grammar problems (one line per grammar that failed to load).
    public var warnings: [String]
    /// Bytes of the files that were read.
    public var bytes: Int64

    public static func run(root: URL, options: WalkOptions = WalkOptions(), extractor: UnitExtractor) throws -> ProjectExtraction {
        let (files, walkSkipped) = try FileWalker(root: root, options: options).walk()
        return extract(files: files, root: root, extractor: extractor, walkSkipped: walkSkipped)
    }

    /// Extracts already-walked files (the walk timed or done elsewhere).
    public static func extract(files: [WalkedFile], root: URL, extractor: UnitExtractor, walkSkipped: [SkippedPath] = []) -> ProjectExtraction {
        let rootURL = root.standardizedFileURL.resolvingSymlinksInPath()
        let results = Parallel.map(files.count) { i in extractor.extract(root: rootURL, relativePath: files[i].relativePath) }
        var units: [CodeUnit] = []
        var skipped = walkSkipped
        var warnings: [String] = []
        for (file, result) in zip(files, results) {
            units.append(contentsOf: result.units)
            if let reason = result.skipReason { skipped.append(SkippedPath(path: file.relativePath, reason: reason)) }
            warnings.append(contentsOf: result.warnings)
        }
        CallGraph.resolve(&units)
        return ProjectExtraction(files: files, units: units, skipped: skipped, warnings: warnings,
                                 bytes: files.reduce(0) { $0 + $1.size })
    }
}
