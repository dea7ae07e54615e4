/// Git's `wildmatch` glob semantics over bytes (`*`, `?`, `[...]` with ranges, negation and POSIX
/// classes, `\` escapes, and `**` that crosses directories only as a whole path component), written
/// from git's documented behaviour so `.gitignore` decisions match `git check-ignore`.
enum Wildmatch {
    enum Outcome { case match, noMatch, abortAll, abortToStarStar }

    /// Whether `text` matches `pattern`. With `pathname`, `*`, `?` and classes never match `/`.
    static func matches(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>, pathname: Bool) -> Bool {
        let p = Array(pattern) + [0]
        let t = Array(text) + [0]
        return run(p, 0, t, 0, pathname) == .match
    }

    private static let slash = UInt8(ascii: "/")

    // `p` and `t` end with a 0 sentinel, as the C strings git walks do.
    private static func run(_ p: [UInt8], _ pStart: Int, _ t: [UInt8], _ tStart: Int, _ pathname: Bool) -> Outcome {
        var pi = pStart
        var ti = tStart
        while p[pi] != 0 {
            var pc = p[pi]
            let tc = t[ti]
            if tc == 0 && pc != UInt8(ascii: "*") { return .abortAll }
            switch pc {
            case UInt8(ascii: "\\"):
                pi += 1
                pc = p[pi]
                if tc != pc { return .noMatch }
            case UInt8(ascii: "?"):
                if pathname && tc == slash { return .noMatch }
            case UInt8(ascii: "*"):
                var matchSlash: Bool
                pi += 1
                if p[pi] == UInt8(ascii: "*") {
                    let prev = pi - 2
                    while p[pi] == UInt8(ascii: "*") { pi += 1 }
                    let atComponentStart = prev < 0 || p[prev] == slash
                    let atComponentEnd = p[pi] == 0 || p[pi] == slash
                        || (p[pi] == UInt8(ascii: "\\") && p[pi + 1] == slash)
                    if atComponentStart && atComponentEnd {
                        if p[pi] == slash && run(p, pi + 1, t, ti, pathname) == .match { return .match }
                        matchSlash = true
                    } else {
                        matchSlash = false
                    }
                } else {
                    matchSlash = !pathname
                }
                if p[pi] == 0 {
                    // A trailing `**` matches everything; a trailing `*` only within one component.
                    if !matchSlash && t[ti...].contains(slash) { return .noMatch }
                    return .match
                } else if !matchSlash && p[pi] == slash {
                    // One `*` followed by `/` matches the rest of the current component.
                    guard let s = t[ti...].firstIndex(of: slash) else { return .noMatch }
                    ti = s
                    break
                }
                var cur = ti
                while t[cur] != 0 {
                    let r = run(p, pi, t, cur, pathname)
                    if r != .noMatch {
                        if !matchSlash || r != .abortToStarStar { return r }
                    } else if !matchSlash && t[cur] == slash {
                        return .abortToStarStar
                    }
                    cur += 1
                }
                return .abortAll
            case UInt8(ascii: "["):
                pi += 1
                pc = p[pi]
                if pc == UInt8(ascii: "!") { pc = UInt8(ascii: "^") }
                let negated = pc == UInt8(ascii: "^")
                if negated { pi += 1; pc = p[pi] }
                var prev: UInt8 = 0
                var matched = false
                repeat {
                    if pc == 0 { return .abortAll }
                    if pc == UInt8(ascii: "\\") {
                        pi += 1
                        pc = p[pi]
                        if pc == 0 { return .abortAll }
                        if tc == pc { matched = true }
                    } else if pc == UInt8(ascii: "-") && prev != 0 && p[pi + 1] != 0 && p[pi + 1] != UInt8(ascii: "]") {
                        pi += 1
                        pc = p[pi]
                        if pc == UInt8(ascii: "\\") {
                            pi += 1
                            pc = p[pi]
                            if pc == 0 { return .abortAll }
                        }
                        if tc <= pc && tc >= prev { matched = true }
                        pc = 0
                    } else if pc == UInt8(ascii: "[") && p[pi + 1] == UInt8(ascii: ":") {
                        pi += 2
                        let s = pi
                        while p[pi] != 0 && p[pi] != UInt8(ascii: "]") { pi += 1 }
                        if p[pi] == 0 { return .abortAll }
                        let length = pi - s - 1
                        if length < 0 || p[pi - 1] != UInt8(ascii: ":") {
                            // No closing ":]": the "[" is an ordinary member of the set.
                            pi = s - 2
                            pc = UInt8(ascii: "[")
                            if tc == pc { matched = true }
                        } else {
                            let name = String(decoding: p[s..<(s + length)], as: UTF8.self)
                            guard let inClass = posixClass(name, tc) else { return .abortAll }
                            if inClass { matched = true }
                            pc = 0
                        }
                    } else if tc == pc {
                        matched = true
                    }
                    prev = pc
                    pi += 1
                    pc = p[pi]
                } while pc != UInt8(ascii: "]")
                if matched == negated || (pathname && tc == slash) { return .noMatch }
            default:
                if tc != pc { return .noMatch }
            }
            pi += 1
            ti += 1
        }
        return t[ti] != 0 ? .noMatch : .match
    }

    /// POSIX bracket classes in the C locale; nil for an unknown class name (git aborts the match).
    private static func posixClass(_ name: String, _ c: UInt8) -> Bool? {
        let isUpper = c >= 65 && c <= 90, isLower = c >= 97 && c <= 122, isDigit = c >= 48 && c <= 57
        switch name {
        case "alnum": return isUpper || isLower || isDigit
        case "alpha": return isUpper || isLower
        case "blank": return c == 32 || c == 9
        case "cntrl": return c < 32 || c == 127
        case "digit": return isDigit
        case "graph": return c > 32 && c < 127
        case "lower": return isLower
        case "print": return c >= 32 && c < 127
        case "punct": return c > 32 && c < 127 && !(isUpper || isLower || isDigit)
        case "space": return c == 32 || (c >= 9 && c <= 13)
        case "upper": return isUpper
        case "xdigit": return isDigit || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
        default: return nil
        }
    }
}
