"""Paired comparison of two results files evaluated on the same pinned episodes."""

from __future__ import annotations

import os
from collections.abc import Sequence

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


Results = str | os.PathLike | dict


def _as_list(x: Results | Sequence[Results]) -> list[dict]:
    return [as_results(r) for r in ([x] if isinstance(x, (str, os.PathLike, dict)) else x)]


def compare_results(a: Results | Sequence[Results], b: Results | Sequence[Results], test: str = "mcnemar",
                    alpha: float = 0.05, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Per-condition difference B - A in success with a paired test over the shared episodes.

    `a`, `b`: results paths or loaded documents, or equally long sequences of them: runs of policies A and B
    (e.g. training seeds), the i-th of A paired with the i-th of B. The test then pools every paired episode of
    every pair (the runs of one arm are independent draws of its training, so the discordant episodes of all
    pairs count together), which is how an arm is judged on several seeds rather than on one.
    Raises ValueError when a pair's manifest hashes differ.
    Returns {"a", "b" (labels), "pairs", "manifest_hash", "test", "alpha", "conditions": {name: {"dimension",
    "n", "a", "b", "diff", "a_only", "b_only", "p", "ci", "significant"}}, "dimensions": {dim: {"a", "b", "diff",
    "n", "p", "significant"}}}; the condition "all" pools every episode, and a dimension's test pools its
    conditions' episodes (its diff is the difference of the per-condition averages, averaged over the pairs).
    Significance is per row, uncorrected for the number of rows.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    docs_a, docs_b = _as_list(a), _as_list(b)
    if len(docs_a) != len(docs_b) or not docs_a:
        raise ValueError(f"pair every results file of A with one of B: got {len(docs_a)} for A and "
                         f"{len(docs_b)} for B")
    per_pair = [paired_outcomes(x, y) for x, y in zip(docs_a, docs_b)]
    names = [n for n in per_pair[0] if all(n in p for p in per_pair)]
    pairs = {n: (np.concatenate([p[n][0] for p in per_pair]), np.concatenate([p[n][1] for p in per_pair]))
             for n in names}
    rows = {}
    for name, (oa, ob) in pairs.items():
        r = paired_test(oa, ob, test=test, n_boot=n_boot, seed=seed, alpha=alpha)
        dim = "-" if name == ALL else docs_a[0]["conditions"][name]["dimension"]
        rows[name] = {"dimension": dim, **r, "significant": bool(r["p"] < alpha)}
    dims = {}
    for d, da in docs_a[0]["dimensions"].items():
        members = [n for n in da["conditions"] if n in pairs]
        if not members or any(d not in x["dimensions"] for x in docs_a + docs_b):
            continue
        # the test pools the dimension's episodes; diff stays the difference of the per-condition averages
        r = paired_test(np.concatenate([pairs[n][0] for n in members]),
                        np.concatenate([pairs[n][1] for n in members]),
                        test=test, n_boot=n_boot, seed=seed, alpha=alpha)
        sa = float(np.mean([x["dimensions"][d]["success"] for x in docs_a]))
        sb = float(np.mean([x["dimensions"][d]["success"] for x in docs_b]))
        dims[d] = {"a": sa, "b": sb, "diff": sb - sa, "n": r["n"], "p": r["p"], "significant": bool(r["p"] < alpha)}
    hashes = sorted({x["manifest_hash"] for x in docs_a})
    return {"a": " + ".join(x["label"] for x in docs_a), "b": " + ".join(x["label"] for x in docs_b),
            "pairs": len(docs_a), "manifest_hash": hashes[0] if len(hashes) == 1 else ",".join(hashes),
            "test": test, "alpha": alpha, "conditions": rows, "dimensions": dims}


def format_comparison(cmp: dict) -> str:
    """A plain-text table of compare_results: '*' marks rows with p < alpha."""
    pooled = f", pooled over {cmp['pairs']} pairs of runs" if cmp.get("pairs", 1) > 1 else ""
    lines = [f"B - A: {cmp['b']} - {cmp['a']}  (paired {cmp['test']}{pooled}, alpha {cmp['alpha']}, "
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
