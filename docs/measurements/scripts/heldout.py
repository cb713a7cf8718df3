"""The held-out curve of RL runs in docs/measurements/rl-ladder.md: every snapshot a run kept (`--snapshot-every`)
and its final model, evaluated on the same pinned episodes as the start, each compared with the start episode by
episode (exact McNemar).

    python docs/measurements/scripts/heldout.py START.json RUN [RUN ...] [--episodes 128 --seeds 1000] [--steps N ...]

START.json is the starting model's `rl4vla eval` results on those episodes; several, comma-separated (evaluations
with other `--sample-seed`s), are pooled as one arm. Each model's results are written
beside it as RUN/snapshots/model_<env steps>.eval.json (RUN/model.eval.json), and reused when they exist, so a
killed script resumes. Prints one table per run: env steps, success with its Wilson 95% interval, p against the
start; `--plot FILE` draws the curves. With several runs (an arm's seeds), a last table pools them at every env
step they share: success over all their episodes and p against the start (`rl4vla compare START RUN1,RUN2,...`:
the exact test stratified by episode, the start's one run counted once).
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from rl4vla.eval.compare import compare_results
from rl4vla.eval.results import as_runs, pool_runs
from rl4vla.eval.stats import wilson_interval


def models(run: Path) -> list[tuple[int, Path]]:
    """(env steps, checkpoint) of the run's snapshots and its final model, in order of env steps."""
    out = [(int(m.group(1)), p) for p in (run / "snapshots").glob("model_*.pt")
           if (m := re.fullmatch(r"model_(\d+)\.pt", p.name))]
    final = run / "model.pt"
    if final.exists() and (run / "metrics.jsonl").exists():  # the final model: the last update's env steps
        rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
        done = max((r["train/env_steps"] for r in rows if "train/env_steps" in r), default=None)
        if done is not None and all(s != done for s, _ in out):
            out.append((int(done), final))
    return sorted(out)


def evaluate(ckpt: Path, label: str, episodes: int, seeds: int, workers: str) -> Path:
    res = ckpt.with_suffix(".eval.json")
    if not res.exists():
        subprocess.run(["rl4vla", "eval", "--policy", str(ckpt), "--episodes", str(episodes), "--seeds", str(seeds),
                        "--env.workers", workers, "--torch-threads", "1", "--label", label,
                        "--out", str(res)], check=True, stdout=sys.stderr)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start", help="the starting model's results on the pinned episodes (comma-separated: several "
                    "evaluations of it, pooled)")
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--episodes", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--workers", default="1", help="env workers of each evaluation (default 1: beside training)")
    ap.add_argument("--steps", type=int, nargs="*", help="evaluate only the models at these env steps (default: all)")
    ap.add_argument("--plot", type=Path, help="write the curves to this PNG")
    args = ap.parse_args()
    start = as_runs(args.start.split(","), "START")
    s0 = pool_runs(start)["conditions"]["in-distribution"]
    curves, results = {}, {}
    for run in args.runs:
        print(f"{run} (start {s0['successes']}/{s0['episodes']} = {s0['success_rate']:.3f})")
        print(f"  {'env steps':>9s}  {'success':>15s}  {'Wilson 95%':>12s}  {'p vs start':>10s}")
        pts, results[run] = [], {}
        todo = [(s, c) for s, c in models(run) if not args.steps or s in args.steps]
        if not todo:
            print("  no snapshots/model_*.pt and no model.pt (at --steps) yet")
        for steps, ckpt in todo:
            doc = json.loads(evaluate(ckpt, f"{run.name}@{steps}", args.episodes, args.seeds, args.workers).read_text())
            r = doc["conditions"]["in-distribution"]
            lo, hi = wilson_interval(r["successes"], r["episodes"])
            p = compare_results(start, doc)["conditions"]["all"]["p"]
            print(f"  {steps:9,d}  {r['success_rate']:.3f} ({r['successes']:3d}/{r['episodes']})  "
                  f"[{lo:.2f}, {hi:.2f}]  {p:10.3f}")
            pts.append((steps, r["success_rate"], lo, hi))
            results[run][steps] = doc
        curves[str(run)] = pts
        sys.stdout.flush()
    shared = sorted(set.intersection(*(set(r) for r in results.values()))) if len(results) > 1 else []
    if shared:
        print(f"pooled over {len(results)} runs")
        for steps in shared:
            docs = [results[run][steps] for run in args.runs]
            row = compare_results(start, docs)["conditions"]["all"]  # the start's one run counts once
            wins = sum(d["conditions"]["in-distribution"]["successes"] for d in docs)
            print(f"  {steps:9,d}  {row['b']:.3f} ({wins:3d}/{row['n'] * len(docs)})  "
                  f"{'':12s}  {row['p']:10.3f}")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name, pts in curves.items():
            x = [0] + [p[0] for p in pts]
            y = [s0["success_rate"]] + [p[1] for p in pts]
            lo = [wilson_interval(s0["successes"], s0["episodes"])[0]] + [p[2] for p in pts]
            hi = [wilson_interval(s0["successes"], s0["episodes"])[1]] + [p[3] for p in pts]
            ax.plot(x, y, marker="o", label=Path(name).name)
            ax.fill_between(x, lo, hi, alpha=0.15)
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"held-out success ({s0['episodes']} pinned episodes)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
