"""The training-curve numbers of docs/measurements/rl-ladder.md from runs' metrics.jsonl: training success as means
over windows of updates (5 by default: 12,800 env steps at 32 envs x 80 steps), and the diagnostics that explain a
flat curve, first window -> last window.

    python docs/measurements/scripts/windows.py RUN [RUN ...] [--window 5]
"""

import argparse
import json
from pathlib import Path

import numpy as np

DIAGNOSTICS = ("losses/explained_variance", "losses/approx_kl", "losses/clip_frac", "losses/kl_init",
               "losses/grad_norm", "losses/entropy", "losses/aug_policy", "train/policy_lr")


def summarise(run: Path, window: int) -> str:
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
    updates = [r for r in rows if "train/updates" in r]
    if not updates:
        raise SystemExit(f"{run}: no update rows in metrics.jsonl")
    lines = [f"{run}: {len(updates)} updates, {updates[-1]['train/env_steps']:,} env steps"]
    # train/success: the episodes that began each rollout (runs from 2026-12-08); before, it also counted episodes
    # refilled mid-rollout (rollouts longer than an episode only): train/success_with_refills in newer runs
    for key, label in (("train/success", "training success"), ("train/success_with_refills", "with refills")):
        if any(key in r for r in updates):
            succ = [r.get(key, np.nan) for r in updates]
            wins = [np.nanmean(succ[i:i + window]) for i in range(0, len(succ), window)]
            lines.append(f"  {label}, {window}-update windows: " + " ".join(f"{w:.2f}" for w in wins))
    for key in DIAGNOSTICS:
        vals = [r[key] for r in updates if key in r]
        if vals:
            lines.append(f"  {key}: {np.mean(vals[:window]):.4g} -> {np.mean(vals[-window:]):.4g}")
    t = {k: sum(r.get(f"time/{k}_s", 0.0) for r in updates) for k in ("sim", "policy", "update")}
    total = sum(t.values()) or 1.0
    lines.append("  time split: " + " / ".join(f"{k} {v / total:.0%}" for k, v in t.items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--window", type=int, default=5)
    args = ap.parse_args()
    if args.window < 1:
        raise SystemExit(f"--window must be >= 1, got {args.window}")
    for run in args.runs:
        print(summarise(run, args.window))


if __name__ == "__main__":
    main()
