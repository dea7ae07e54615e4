#!/usr/bin/env python3
"""Interleaved A/B of one-shot colgrep searches (docs/PERFORMANCE.md, "CLI end to end (issue #6)").

Usage: scripts/bench/cli_ab.py --project DIR [--runs N] [--check] [--env NAME:KEY=VALUE ...] NAME=BINARY [NAME=BINARY ...]
  Runs each question (default: the five of cli_table.sh) with every binary in turn, with and without
  --no-update, N times (default 5), plus ripgrep for the same question's words, and prints the p50 wall
  time (perf_counter) and p50 CPU time (user+sys from wait4, microsecond resolution) per binary and mode.
  The binaries alternate run by run, so a busy machine slows them alike. The environment is passed through:
  set COLGREP_DATA_DIR, COLGREP_FALLBACK_MODEL, XDG_CACHE_HOME as for the index being searched
  (cli_table.sh's values, e.g. COLGREP_DATA_DIR=$OUT/data-NAME, XDG_CACHE_HOME=$OUT/xdg-cache).
  --check first runs every binary on CHECK_QUERIES (the five plus identifiers and code fragments), plain and
  with --json -k 20, and stops unless all binaries print byte-identical output.
  --score-tolerance T (with --check): --json outputs that differ only in their scores, each by at most T, with
  the same units in the same order, count as the same (reported with the largest difference): for binaries
  whose query vectors differ in the last bits (another GEMM rounding order), where the plain output — paths
  and lines — must still be byte-identical.
  --env NAME:KEY=VALUE sets a variable for one binary's runs only, so one binary can run twice, e.g.
  `--env inproc:COLGREP_NO_SERVER=1 --env served:COLGREP_SERVER_REQUIRED=1 inproc=BIN served=BIN`.
  A binary whose environment requires the query server is first called until a server answers; its CPU
  figure is then the client's CPU plus the server's (the CPU time its threads gained during the run, read
  from /proc/PID/task/*/schedstat of every `__colgrep-query-server` process), so served runs are not
  flattered by work done in another process.
Example:
  COLGREP_DATA_DIR=/tmp/colgrep-cli-bench/data-large XDG_CACHE_HOME=/tmp/colgrep-cli-bench/xdg-cache \\
    scripts/bench/cli_ab.py --project /tmp/colgrep-cli-bench/large before=/tmp/colgrep-old after=.build/release/colgrep
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time

QUERIES = ["error handling when a file cannot be read", "parse command line arguments", "retry with backoff",
           "compute a hash of the content", "sort results by score"]
RG_PATTERNS = ["error|cannot read", "parse.*arg", "retry|backoff", "hash", "sort.*score"]
CHECK_QUERIES = QUERIES + ["readValue(", "return null;", "if (p.hasToken(JsonToken.FIELD_NAME)) {", "ObjectMapper",
                           "deserialize a polymorphic type", "cache of serializers", "JsonNode equality"]


ENVS = {}


def env_for(name):
    return {**os.environ, **ENVS.get(name, {})}


def server_cpu_ms():
    """CPU time so far of every query server's live threads (ns-resolution schedstat), in ms."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"__colgrep-query-server" not in f.read():
                    continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except OSError:
            continue
    return total / 1e6


def score_difference(outputs):
    """Largest score difference between --json outputs that list the same units in the same order, else None."""
    try:
        parsed = [json.loads(o) for o in outputs]
    except ValueError:
        return None
    def units(results):
        return [(r["unit"]["file"], r["unit"]["line"], json.dumps({k: v for k, v in r.items() if k != "score"}, sort_keys=True))
                for r in results]
    if any(units(p) != units(parsed[0]) for p in parsed):
        return None
    return max((abs(a["score"] - b["score"]) for p in parsed for a, b in zip(p, parsed[0])), default=0.0)


def outputs_match(binaries, tolerance=None):
    """True when every binary prints the same bytes for every check question (plain and --json -k 20); with a
    tolerance, --json outputs may differ in their scores by at most that much."""
    same, identical, worst = True, 0, 0.0
    for question in CHECK_QUERIES:
        for extra in ([], ["--json", "-k", "20"]):
            printed = {name: subprocess.run([binary, "--no-update", *extra, question], capture_output=True, env=env_for(name)).stdout
                       for name, binary in binaries}
            if len(set(printed.values())) == 1:
                identical += 1
                continue
            difference = score_difference(list(printed.values())) if extra and tolerance is not None else None
            if difference is not None and difference <= tolerance:
                worst = max(worst, difference)
                continue
            same = False
            print(f"DIFFERENT output for {question!r} {' '.join(extra)}: " +
                  ", ".join(f"{n} {len(o)} bytes" for n, o in printed.items()))
    total = len(CHECK_QUERIES) * 2
    if tolerance is None:
        print(f"output check: {total} searches, " + ("byte-identical" if same else "DIFFERENCES above"))
    else:
        print(f"output check: {total} searches, {identical} byte-identical, {total - identical} same units and order with "
              f"scores within {worst:.3g}" + ("" if same else "; DIFFERENCES above"))
    return same


def run(argv, name=None):
    served = ENVS.get(name, {}).get("COLGREP_SERVER_REQUIRED") == "1"
    server_before = server_cpu_ms() if served else 0
    begin = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_for(name))
    _, status, usage = os.wait4(process.pid, 0)
    wall = (time.perf_counter() - begin) * 1000
    cpu = (usage.ru_utime + usage.ru_stime) * 1000
    if served:
        if status != 0:
            sys.exit(f"{name}: not served (status {status}): {argv}")
        cpu += server_cpu_ms() - server_before
    return wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True, help="indexed project folder the searches run in")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="compare the binaries' outputs first")
    parser.add_argument("--score-tolerance", type=float, help="with --check: --json scores may differ by this much")
    parser.add_argument("--env", action="append", default=[], help="NAME:KEY=VALUE for one binary's runs")
    parser.add_argument("binaries", nargs="+", help="NAME=BINARY")
    args = parser.parse_args()
    for spec in args.env:
        name, assignment = spec.split(":", 1)
        key, value = assignment.split("=", 1)
        ENVS.setdefault(name, {})[key] = value
    binaries = [spec.split("=", 1) for spec in args.binaries]
    if any(len(b) != 2 for b in binaries):
        sys.exit("give binaries as NAME=BINARY")
    os.chdir(args.project)
    for name, binary in binaries:  # start the query server of a binary that must be served
        if ENVS.get(name, {}).get("COLGREP_SERVER_REQUIRED") == "1":
            for _ in range(100):
                if subprocess.run([binary, "--no-update", QUERIES[0]], capture_output=True, env=env_for(name)).returncode == 0:
                    break
                time.sleep(0.2)
    if args.check and not outputs_match(binaries, args.score_tolerance):
        sys.exit(1)
    for _, binary in binaries:  # warm the page cache (and any caches the binary writes)
        run([binary, "-k", "10", QUERIES[0]], name)
    rg = shutil.which("rg")
    times = {}
    for _ in range(args.runs):
        for question, pattern in zip(QUERIES, RG_PATTERNS):
            for name, binary in binaries:
                times.setdefault((name, "query"), []).append(run([binary, "-k", "10", question], name))
                times.setdefault((name, "--no-update"), []).append(run([binary, "--no-update", "-k", "10", question], name))
            if rg:
                times.setdefault(("ripgrep", "rg -i"), []).append(run([rg, "-i", "-n", "-e", pattern, "."]))
    for (name, mode), values in times.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"{name:12s} {mode:12s} wall p50 {wall:7.1f} ms   cpu p50 {cpu:7.1f} ms   (n={len(values)})")
    print("load average %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main()
