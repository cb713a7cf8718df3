"""Paired comparison of two results files evaluated on the same pinned episodes."""

from __future__ import annotations

import os

import numpy as np

from rl4vla.eval.results import as_results, split_key
from rl4vla.eval.stats import paired_test

ALL = "all"  # the pooled row over every shared episode


def paired_outcomes(a: dict, b: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{condition: (success of A, success of B)} over the shared episodes, plus ALL; refuses different manifests."""
    if a["manifest_hash"] != b["manifest_hash"]:
        raise ValueError(f"results of different episodes cannot be paired: manifest hash {a['manifest_hash']} "
                         f"({a['label']}) != {b['manifest_hash']} ({b['label']}); evaluate both with the same "
                         f"--conditions/--episodes/--seeds or the same --manifest")
    ka, kb = a["outcomes"]["keys"], b["outcomes"]["keys"]
    if ka != kb:  # equal hashes make this impossible unless a file was edited
        raise ValueError("equal manifest hashes but different episode keys: one results file was edited")
    sa, sb = np.asarray(a["outcomes"]["success"], bool), np.asarray(b["outcomes"]["success"], bool)
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(ka):
        groups.setdefault(split_key(k)[0], []).append(i)
    out = {name: (sa[idx], sb[idx]) for name, idx in groups.items()}
    out[ALL] = (sa, sb)
    return out


def compare_results(a: str | os.PathLike | dict, b: str | os.PathLike | dict, test: str = "mcnemar",
                    alpha: float = 0.05, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Per-condition difference B - A in success with a paired test over the shared episodes.

    `a`, `b`: results paths or loaded documents. Raises ValueError when their manifest hashes differ.
    Returns {"a", "b" (labels), "manifest_hash", "test", "alpha", "conditions": {name: {"dimension", "n", "a",
    "b", "diff", "a_only", "b_only", "p", "ci", "significant"}}, "dimensions": {dim: {"a", "b", "diff", "n", "p",
    "significant"}}}; the condition "all" pools every episode, and a dimension's test pools its conditions'
    episodes (its diff is the difference of the per-condition averages). Significance is per row, uncorrected
    for the number of rows.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    a, b = as_results(a), as_results(b)
    pairs = paired_outcomes(a, b)
    rows = {}
    for name, (oa, ob) in pairs.items():
        r = paired_test(oa, ob, test=test, n_boot=n_boot, seed=seed, alpha=alpha)
        dim = "-" if name == ALL else a["conditions"][name]["dimension"]
        rows[name] = {"dimension": dim, **r, "significant": bool(r["p"] < alpha)}
    dims = {}
    for d, da in a["dimensions"].items():
        names = [n for n in da["conditions"] if n in pairs]
        if d not in b["dimensions"] or not names:
            continue
        # the test pools the dimension's episodes; diff stays the difference of the per-condition averages
        r = paired_test(np.concatenate([pairs[n][0] for n in names]), np.concatenate([pairs[n][1] for n in names]),
                        test=test, n_boot=n_boot, seed=seed, alpha=alpha)
        diff = b["dimensions"][d]["success"] - da["success"]
        dims[d] = {"a": da["success"], "b": b["dimensions"][d]["success"], "diff": diff, "n": r["n"], "p": r["p"],
                   "significant": bool(r["p"] < alpha)}
    return {"a": a["label"], "b": b["label"], "manifest_hash": a["manifest_hash"], "test": test, "alpha": alpha,
            "conditions": rows, "dimensions": dims}


def format_comparison(cmp: dict) -> str:
    """A plain-text table of compare_results: '*' marks rows with p < alpha."""
    lines = [f"B - A: {cmp['b']} - {cmp['a']}  (paired {cmp['test']}, alpha {cmp['alpha']}, "
             f"manifest {cmp['manifest_hash']})",
             f"{'condition':26s} {'n':>5s} {'A':>6s} {'B':>6s} {'B-A':>7s} {'A only':>6s} {'B only':>6s} {'p':>8s}"]
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
