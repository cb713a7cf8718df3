"""Paired comparison of two results files evaluated on the same pinned episodes."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rl4vla.eval.results import (
    Results,
    as_runs,
    check_same_episodes,
    logged_updates,
    split_key,
    training_results,
)
from rl4vla.eval.stats import paired_test

ALL = "all"  # the pooled row over every shared episode


def training_arms(a: Sequence[str], b: Sequence[str], updates: tuple[int, int] | None = None
                  ) -> tuple[list, list]:
    """The two arms of `compare` with each RL run directory replaced by its training episodes (training_results).

    Run directories pair only when they drew the same scenes: the same condition, --episode-seed, --env.num-envs,
    algorithm and group settings (ValueError naming the field otherwise). updates None: the updates every run
    directory logged. Results files pass through unchanged; `updates` with no run directory is a ValueError."""
    runs = [p for p in [*a, *b] if os.path.isdir(p)]
    if not runs:
        if updates:
            raise ValueError("--updates selects the training episodes of RL run directories; A and B are results "
                             "files")
        return list(a), list(b)

    def scenes(p: str) -> dict:  # what decides the scenes each update begins on
        c = json.loads((Path(p) / "config.json").read_text()) if (Path(p) / "config.json").exists() else {}
        keys = ("condition", "episode_seed", "episode_pool", "algo", "group_size", "same_init")
        return {**{k: c.get(k) for k in keys}, "env.num_envs": (c.get("env") or {}).get("num_envs")}

    ref = scenes(runs[0])
    for p in runs[1:]:
        for k, v in scenes(p).items():
            if v != ref[k]:
                raise ValueError(f"{p} and {runs[0]} drew different training scenes: {k} {v!r} != {ref[k]!r}; runs "
                                 f"pair on their training episodes only with the same {k}")
    if updates is None:
        updates = (1, min(logged_updates(p) for p in runs))
    return ([training_results(p, updates) if p in runs else p for p in a],
            [training_results(p, updates) if p in runs else p for p in b])


def run_outcomes(docs_a: Sequence[dict], docs_b: Sequence[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{condition: (A's outcomes (ka, n), B's outcomes (kb, n))}, runs x episodes, plus ALL.

    Every run of both arms must have been evaluated on the same pinned episodes (one manifest hash)."""
    first = docs_a[0]
    for d in list(docs_a[1:]) + list(docs_b):
        check_same_episodes(first, d)
    sa = np.array([d["outcomes"]["success"] for d in docs_a], bool)  # (ka, n)
    sb = np.array([d["outcomes"]["success"] for d in docs_b], bool)  # (kb, n)
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(first["outcomes"]["keys"]):
        groups.setdefault(split_key(k)[0], []).append(i)
    out = {name: (sa[:, idx], sb[:, idx]) for name, idx in groups.items()}
    out[ALL] = (sa, sb)
    return out


def compare_results(a: Results | Sequence[Results], b: Results | Sequence[Results], test: str = "mcnemar",
                    alpha: float = 0.05, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Per-condition difference B - A in success with a paired test over the shared episodes.

    `a`, `b`: a results path or loaded document, or a sequence of them: runs of policy A and of policy B (e.g.
    training seeds of an RL arm, or one evaluation of its starting checkpoint), all on the same pinned episodes.
    The episode is the unit: the test compares, episode by episode, how often A's runs and B's runs succeed
    (`rl4vla.eval.stats.paired_test`; McNemar's exact test for one run each, its stratified form for several).
    So a run shared by every comparison, such as the starting checkpoint's, counts once, however many seeds
    of the arm face it; and the arms may have different numbers of runs.
    Raises ValueError when two runs' manifest hashes differ, or a path is listed twice.
    Returns {"a", "b" (labels), "runs": [ka, kb], "manifest_hash", "test", "alpha", "conditions": {name:
    {"dimension", "n", "a", "b", "diff", "a_only", "b_only", "p", "ci", "significant"}}, "dimensions": {dim:
    {"a", "b", "diff", "n", "p", "significant"}}}; the condition "all" pools every episode, and a dimension's
    test pools its conditions' episodes (its diff is the difference of the per-condition averages, averaged
    over the runs). Significance is per row, uncorrected for the number of rows.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    docs_a, docs_b = as_runs(a, "A"), as_runs(b, "B")
    outcomes = run_outcomes(docs_a, docs_b)
    rows = {}
    for name, (oa, ob) in outcomes.items():
        r = paired_test(oa, ob, test=test, n_boot=n_boot, seed=seed, alpha=alpha)
        r.pop("runs")
        dim = "-" if name == ALL else docs_a[0]["conditions"][name]["dimension"]
        rows[name] = {"dimension": dim, **r, "significant": bool(r["p"] < alpha)}
    dims = {}
    for d, da in docs_a[0]["dimensions"].items():
        members = [n for n in da["conditions"] if n in outcomes]
        if not members or any(d not in x["dimensions"] for x in docs_a + docs_b):
            continue
        # the test pools the dimension's episodes; diff stays the difference of the per-condition averages
        r = paired_test(np.concatenate([outcomes[n][0] for n in members], axis=1),
                        np.concatenate([outcomes[n][1] for n in members], axis=1),
                        test=test, n_boot=n_boot, seed=seed, alpha=alpha)
        sa = float(np.mean([x["dimensions"][d]["success"] for x in docs_a]))
        sb = float(np.mean([x["dimensions"][d]["success"] for x in docs_b]))
        dims[d] = {"a": sa, "b": sb, "diff": sb - sa, "n": r["n"], "p": r["p"], "significant": bool(r["p"] < alpha)}
    return {"a": " + ".join(x["label"] for x in docs_a), "b": " + ".join(x["label"] for x in docs_b),
            "runs": [len(docs_a), len(docs_b)], "manifest_hash": docs_a[0]["manifest_hash"],
            "test": test, "alpha": alpha, "conditions": rows, "dimensions": dims}


def format_comparison(cmp: dict) -> str:
    """A plain-text table of compare_results: '*' marks rows with p < alpha."""
    ka, kb = cmp.get("runs", (1, 1))
    pooled = f", {ka} runs of A and {kb} of B, stratified by episode" if (ka, kb) != (1, 1) else ""
    only = ("A only", "B only") if (ka, kb) == (1, 1) else ("A more", "B more")  # episodes each arm won
    lines = [f"B - A: {cmp['b']} - {cmp['a']}  (paired {cmp['test']}{pooled}, alpha {cmp['alpha']}, "
             f"manifest {cmp['manifest_hash']})",
             f"{'condition':26s} {'n':>5s} {'A':>6s} {'B':>6s} {'B-A':>7s} {only[0]:>6s} {only[1]:>6s} {'p':>8s}"]
    for name, r in cmp["conditions"].items():
        mark = " *" if r["significant"] else ""
        lines.append(f"{name:26s} {r['n']:5d} {r['a']:6.3f} {r['b']:6.3f} {r['diff']:+7.3f} {r['a_only']:6d} "
                     f"{r['b_only']:6d} {r['p']:8.4f}{mark}")
    for d, r in cmp["dimensions"].items():
        mark = " *" if r["significant"] else ""
        lines.append(f"{'average ' + d:26s} {r['n']:5d} {r['a']:6.3f} {r['b']:6.3f} {r['diff']:+7.3f} {'':6s} "
                     f"{'':6s} {r['p']:8.4f}{mark}")
    lines.append(f"* p < {cmp['alpha']} (per condition, not corrected for {len(cmp['conditions']) - 1} conditions)")
    return "\n".join(lines)
