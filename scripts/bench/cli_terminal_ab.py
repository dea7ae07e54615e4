#!/usr/bin/env python3
"""One-shot searches on a pseudo-terminal vs on pipes, in-process and served (docs/PERFORMANCE.md, issue #6).

Usage: scripts/bench/cli_terminal_ab.py --project DIR [--runs N] BINARY
  For each of cli_ab.py's five questions, N times, runs `BINARY -k 10 QUESTION` four ways in turn: standard output
  and error on a new pseudo-terminal (what an interactive user runs) or on /dev/null, each in-process
  (COLGREP_NO_SERVER=1) and served (COLGREP_SERVER_REQUIRED=1; each environment's server is started first), and
  prints the p50 wall time and p50 CPU time (client wait4 + the query servers' threads, as cli_ab.py counts them).
  Set COLGREP_DATA_DIR etc. as for cli_ab.py.
"""
import argparse, os, pty, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_ab import QUERIES, server_cpu_ms  # noqa: E402


def run(binary, question, terminal, env):
    served = env.get("COLGREP_SERVER_REQUIRED") == "1"
    before = server_cpu_ms() if served else 0
    if terminal:
        master, slave = pty.openpty()
        out = err = slave
    else:
        out = err = subprocess.DEVNULL
    begin = time.perf_counter()
    process = subprocess.Popen([binary, "-k", "10", question], stdout=out, stderr=err, env={**os.environ, **env})
    if terminal:
        os.close(slave)
        while True:
            try:
                if not os.read(master, 65536):
                    break
            except OSError:  # EIO: the last writer closed the terminal
                break
    _, status, usage = os.wait4(process.pid, 0)
    wall = (time.perf_counter() - begin) * 1000
    if terminal:
        os.close(master)
    cpu = (usage.ru_utime + usage.ru_stime) * 1000 + (server_cpu_ms() - before if served else 0)
    return os.waitstatus_to_exitcode(status), wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("binary")
    args = parser.parse_args()
    os.chdir(args.project)
    modes = {"terminal in-process": (True, {"COLGREP_NO_SERVER": "1"}), "terminal served": (True, {"COLGREP_SERVER_REQUIRED": "1"}),
             "pipe in-process": (False, {"COLGREP_NO_SERVER": "1"}), "pipe served": (False, {"COLGREP_SERVER_REQUIRED": "1"})}
    for terminal, env in modes.values():  # start each served environment's server
        if env.get("COLGREP_SERVER_REQUIRED") == "1":
            for _ in range(100):
                if run(args.binary, QUERIES[0], terminal, env)[0] == 0:
                    break
                time.sleep(0.2)
    times = {name: [] for name in modes}
    for _ in range(args.runs):
        for question in QUERIES:
            for name, (terminal, env) in modes.items():
                status, wall, cpu = run(args.binary, question, terminal, env)
                if status != 0:
                    sys.exit(f"{name}: status {status} for {question!r}")
                times[name].append((wall, cpu))
    for name, values in times.items():
        print(f"{name:20s} wall p50 {statistics.median(v[0] for v in values):7.1f} ms   "
              f"cpu p50 {statistics.median(v[1] for v in values):7.1f} ms   (n={len(values)})")
    print("load average %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main()
