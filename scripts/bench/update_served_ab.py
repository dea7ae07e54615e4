#!/usr/bin/env python3
"""Search after touching one file, in-process vs through the query server (docs/PERFORMANCE.md, issue #6).

Usage: scripts/bench/update_served_ab.py --project DIR --file REL [--rounds N] [--query Q] NAME=BINARY [NAME=BINARY ...]
  Each round, for each binary in turn: append a comment line to FILE, then run `BINARY -k 10 QUERY` twice —
  in-process (COLGREP_NO_SERVER=1) and served (COLGREP_SERVER_REQUIRED=1; the file is touched again first) —
  so every timed search first updates the index for one changed file. Prints wall and CPU per run and the
  medians; served CPU adds the query server's threads (schedstat) to the client's. Run it on a copy of an
  indexed project (the file grows by one line per run), with COLGREP_DATA_DIR etc. set for its index.
"""
import argparse, os, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_ab import server_cpu_ms  # noqa: E402  (the query server's CPU, counted the same way in both scripts)


def timed(argv, env, served):
    before = server_cpu_ms() if served else 0
    begin = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - begin) * 1000
    cpu = (usage.ru_utime + usage.ru_stime) * 1000 + (server_cpu_ms() - before if served else 0)
    if status != 0 or b"changed: 1" not in err:
        sys.exit(f"{argv}: status {status}, no one-file update: {err.decode(errors='replace')}")
    return wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--query", default="retry with backoff")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    os.chdir(args.project)
    results = {}
    for binary_spec in args.binaries:
        name, binary = binary_spec.split("=", 1)
        env = {**os.environ, "COLGREP_SERVER_REQUIRED": "1"}
        for _ in range(100):  # start this binary's server
            if subprocess.run([binary, "--no-update", "x"], capture_output=True, env=env).returncode == 0:
                break
            time.sleep(0.2)
    for _ in range(args.rounds):
        for binary_spec in args.binaries:
            name, binary = binary_spec.split("=", 1)
            for mode, extra in (("in-process", {"COLGREP_NO_SERVER": "1"}), ("served", {"COLGREP_SERVER_REQUIRED": "1"})):
                with open(args.file, "a") as f:
                    f.write("// touch\n")
                value = timed([binary, "-k", "10", args.query], {**os.environ, **extra}, mode == "served")
                results.setdefault((name, mode), []).append(value)
                print(f"{name:8s} {mode:10s} wall {value[0]:7.1f} ms  cpu {value[1]:7.1f} ms", flush=True)
    for (name, mode), values in results.items():
        print(f"{name:8s} {mode:10s} p50 wall {statistics.median(v[0] for v in values):7.1f} ms  "
              f"cpu {statistics.median(v[1] for v in values):7.1f} ms  (n={len(values)})")
    print("load average %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main()
