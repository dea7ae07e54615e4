#!/usr/bin/env python3
"""CPU by stage of one-shot colgrep searches, from `perf record -g` files (docs/PERFORMANCE.md, issue #6).

Usage: scripts/bench/cli_stage_profile.py HZ PERF_DATA...
  Record each search with `perf record -F HZ -g -o FILE colgrep ...` (HZ 4000 gives 0.25 ms per sample),
  then pass the files: prints a Markdown table of ms of CPU per stage, averaged over the files. A sample
  counts for the first stage (in the order below) with a function on its call chain, matched on the
  symbol's own name, so mangled parameter types do not count. Frames perf cannot unwind (libc, SQLite and
  libdispatch are built without frame pointers) and kernel work outside those stacks (page faults,
  malloc) land in "other".
"""
import collections, subprocess, sys

STAGES = [
    ("model: tokenizer load", ["$s10Tokenizers9TokenizerC10contentsOf"]),
    ("model: BERT init (weight copies)", ["$s7Encoder4BERTC6config"]),
    ("query: int8 decision key (Tensor)", ["$s6Tensor13Int8DecisionsC3Key", "$s6Tensor10CPUBackendC10int8Weight"]),
    ("model: other load", ["$s7ColGrep12ModelRuntimeC7loadNow", "$s7ColGrep13RoutedEncoderC14modelDirectory"]),
    ("query: encode (MiniLM forward)", ["$s7ColGrep12ModelRuntimeC14encodeQueryNow", "$s7ColGrep13RoutedEncoderC11encodeQuery",
                                        "$s6Tensor11IntraOpPool", "sgemm_", "blas_"]),
    ("plaid: open", ["$s5Plaid0A5IndexC4open"]),
    ("plaid: search", ["$s5Plaid0A5IndexC6search", "$s5Plaid13SearchContext", "residual_maxsim", "centroid_scores"]),
    ("store: literal scan", ["$s5Store08MetadataA0C6docIDs17whereCodeContains", "$s5Store08MetadataA0C6docIDs16whereCodeMatches"]),
    ("store: bm25", ["$s5Store08MetadataA0C5bm25"]),
    ("store: open", ["$s5Store08MetadataA0C4path8readOnly"]),
    ("rerank (Ranking.swift)", ["$s7ColGrep6RankerV"]),
    ("store: other reads", ["$s5Store", "sqlite3"]),
    ("freshness check (walk, state)", ["$s7ColGrep6EngineC6update", "$s9CodeUnits10FileWalker", "$s9CodeUnits8Parallel"]),
    ("search: other", ["$s7ColGrep15ProjectSearcher", "$s7ColGrep6EngineC"]),
    ("output", ["$s7ColGrep15OutputFormatter"]),
    ("argument parsing", ["$s14ArgumentParser"]),
    ("dynamic loading", ["_dl_", "do_lookup_x", "dl_main"]),
    ("Swift runtime lookups", ["swift_conformsToProtocol", "swift_getTypeByMangledName"]),
    ("idle-thread spinning (sched_yield)", ["sched_yield"]),
    ("process exit", ["do_exit", "exit_mmap", "__run_exit_handlers"]),
]


def matches(frame, key):
    return frame.startswith(key) if key.startswith("$s") else key in frame


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    hz, files = float(sys.argv[1]), sys.argv[2:]
    counts = collections.Counter()
    for path in files:
        script = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym"], capture_output=True, text=True, check=True).stdout
        for block in script.split("\n\n"):
            frames = [line.strip().split(None, 1)[-1] for line in block.strip().splitlines() if line.strip()]
            if not frames:
                continue
            stage = next((name for name, keys in STAGES if any(matches(f, k) for f in frames for k in keys)),
                         "other (page faults, malloc, unwound)")
            counts[stage] += 1
    ms = 1000.0 / hz / len(files)
    total = sum(counts.values())
    print("| stage | ms | share |\n|---|---|---|")
    for stage, count in counts.most_common():
        print(f"| {stage} | {count * ms:.1f} | {100 * count / total:.0f} % |")
    print(f"| total (perf-sampled CPU) | {total * ms:.1f} | |")


if __name__ == "__main__":
    main()
