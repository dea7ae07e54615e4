#!/usr/bin/env python3
"""Reads a COLGREP_TRACE file (Chrome trace-event JSON) and prints, per stage, when it first started and last
ended (seconds from the first event), its calls and busy seconds, sorted by start; then the threads' rows.
Usage: python3 scripts/bench/trace_spans.py trace.json [--from SECONDS]"""
import json, sys, collections

def main():
    path = sys.argv[1]
    since = float(sys.argv[sys.argv.index('--from') + 1]) if '--from' in sys.argv else 0.0
    events = [e for e in json.load(open(path))['traceEvents'] if e.get('ph') == 'X']
    spans = collections.defaultdict(lambda: [float('inf'), 0.0, 0, 0.0])
    for e in events:
        start, end = e['ts'] / 1e6, (e['ts'] + e['dur']) / 1e6
        if end < since:
            continue
        s = spans[e['name']]
        s[0], s[1], s[2], s[3] = min(s[0], start), max(s[1], end), s[2] + 1, s[3] + e['dur'] / 1e6
    print(f"{'stage':58s} {'first':>7s} {'last':>7s} {'calls':>6s} {'busy':>7s}")
    for name, (first, last, calls, busy) in sorted(spans.items(), key=lambda kv: kv[1][0]):
        print(f"{name[:58]:58s} {first:7.3f} {last:7.3f} {calls:6d} {busy:7.3f}")

if __name__ == '__main__':
    main()
