#!/usr/bin/env python3
"""Scores ranking variants offline on recorded dev-split searches (issue #6 tuning).

Traces come from `scripts/eval-device.sh run` (every hybrid search recorded through COLGREP_TRACE_JSON);
`colgrep debug replay-ranking` re-ranks them under each variant's environment with the search's own code,
and this script scores the top-10 files with shared/eval/score.py's NDCG@10 (file level, macro over repos).

    python3 scripts/eval/replay_tune.py --traces DIR --binary .build/release/colgrep \
        base alpha55:COLGREP_ALPHA=0.55 deep:COLGREP_KEYWORD_DEPTH=6,COLGREP_ALPHA=0.5

A variant is LABEL or LABEL:VAR=VALUE,VAR=VALUE (no variables: the defaults). Tune only on the dev split.
"""
import argparse, json, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"


def load_score_module(eval_dir: Path):
    sys.path.insert(0, str(eval_dir))
    import score  # shared/eval/score.py: load_tasks, file_rank, ndcg_at_k
    return score


def replay(binary: str, trace: Path, variants: list[str]) -> dict[str, list[list[str]]]:
    """Every variant's top files per traced search, from one replay process (the trace is read once)."""
    # --code-only: the eval's searches ran with it (semble's flags); traces that recorded the flag keep theirs.
    command = [binary, "debug", "replay-ranking", "--code-only", str(trace)] + [a for v in variants for a in ("--variant", v)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    results: dict[str, list[list[str]]] = {}
    for line in out.splitlines():
        item = json.loads(line)
        results.setdefault(item["variant"], []).append(item["files"])
    return results


def ndcg_for(score, tasks, results, prefix: str) -> list[float]:
    values = []
    for task, files in zip(tasks, results):
        files = score.dedupe([prefix + f for f in files])
        ranks = [r for r in (score.file_rank(files, t) for t in task.targets) if r is not None]
        values.append(score.ndcg_at_k(ranks, len(task.targets)))
    return values


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", required=True, type=Path)
    ap.add_argument("--binary", default=".build/release/colgrep")
    ap.add_argument("--eval", default=EVAL, type=Path)
    ap.add_argument("--per-repo", action="store_true")
    ap.add_argument("--per-category", action="store_true", help="also the micro mean per query category")
    ap.add_argument("variants", nargs="+")
    args = ap.parse_args()
    score = load_score_module(args.eval)
    repos = json.load(open(args.eval / "repos-dev.json"))
    names = {r["name"] for r in repos}
    tasks = score.load_tasks(args.eval / "annotations", names)
    variants = [v if ":" in v else v + ":" for v in args.variants]
    labels = [v.split(":", 1)[0] for v in variants]

    def one(repo):
        root = repo.get("benchmark_root") or ""
        per_variant = replay(args.binary, args.traces / f"{repo['name']}.jsonl", variants)
        repo_tasks = tasks[repo["name"]]
        scores = {}
        for label in labels:
            results = per_variant[label]
            assert len(results) == len(repo_tasks), f"{repo['name']}: {len(results)} traced searches, {len(repo_tasks)} tasks"
            scores[label] = ndcg_for(score, repo_tasks, results, root + "/" if root else "")
        return repo["name"], scores

    with ThreadPoolExecutor(max_workers=2) as pool:
        per_repo = dict(pool.map(one, repos))
    for label in labels:
        means = {name: sum(v[label]) / len(v[label]) for name, v in per_repo.items()}
        line = f"{label:24s} macro {sum(means.values()) / len(means):.4f}"
        if args.per_repo:
            line += " " + " ".join(f"{n}={m:.3f}" for n, m in sorted(means.items()))
        if args.per_category:
            by: dict[str, list[float]] = {}
            for name, v in per_repo.items():
                for task, value in zip(tasks[name], v[label]):
                    by.setdefault(task.category, []).append(value)
            line += " " + " ".join(f"{c}={sum(x) / len(x):.3f}({len(x)})" for c, x in sorted(by.items()))
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
