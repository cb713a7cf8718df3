"""Statistics for success rates: Wilson intervals and paired tests on per-episode outcomes.

Pure functions of counts or outcome vectors; no simulator, no I/O. Two policies evaluated on
the same pinned episodes give paired binary outcomes, so their difference is tested on the
discordant pairs (McNemar) rather than as two independent proportions, which is far more
sensitive when both policies solve the same easy episodes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (z=1.96: 95 %). Stays inside [0, 1] at 0/n and n/n."""
    if n <= 0:
        raise ValueError(f"wilson_interval needs n >= 1, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def discordant(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int]:
    """(a_only, b_only): pairs that only A solved, and pairs that only B solved."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired outcomes need two 1-d vectors of equal length, got {a.shape} and {b.shape}")
    return int((a & ~b).sum()), int((~a & b).sum())


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c.

    Under the null each discordant pair is a fair coin: p = min(1, 2 * P(X <= min(b, c))), X ~ Bin(b + c, 1/2).
    No discordant pairs (b = c = 0) gives p = 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # exact integers, then one division
    return min(1.0, 2.0 * tail)


def _runs(x: Sequence, name: str) -> np.ndarray:
    """Outcomes as a (runs, episodes) bool array: one 1-d vector is one run."""
    arr = np.asarray(x, bool)
    arr = arr[None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name}: outcomes must be one vector (episodes,) or runs x episodes, got shape {arr.shape}")
    return arr


def _paired_runs(a: Sequence, b: Sequence) -> tuple[np.ndarray, np.ndarray]:
    ra, rb = _runs(a, "A"), _runs(b, "B")
    if ra.shape[1] != rb.shape[1]:
        raise ValueError(f"paired outcomes need the same episodes: A has {ra.shape[1]}, B has {rb.shape[1]}")
    if ra.shape[1] == 0:
        raise ValueError("a paired test needs at least one episode")
    return ra, rb


def stratified_exact(a: Sequence, b: Sequence) -> float:
    """Two-sided exact p-value that arms A and B succeed equally often, from one or more runs of each.

    Shapes: a (ka, n) and b (kb, n) bool: run r of an arm (a training seed, say) on pinned episode i; a 1-d
    vector is one run. The episode is the stratum. Under the null the ka + kb outcomes of episode i are
    exchangeable between the arms, so given its successes s_i, B's share X_i is hypergeometric (ka + kb draws
    with s_i successes, kb taken), independently across episodes. The statistic is B's total successes
    S = sum_i X_i, whose exact null law is the convolution of the X_i; p = min(1, 2 * min(P(S <= s), P(S >= s))).
    With one run each, X_i is a fair coin on the discordant episodes: this is McNemar's exact test
    (`mcnemar_exact`). Pooling runs episode by episode keeps a run shared by several comparisons (one
    evaluation of the starting checkpoint against three seeds of an arm) from counting as independent
    evidence each time, and lets the arms have different numbers of runs.
    """
    ra, rb = _paired_runs(a, b)
    if ra.shape[0] == rb.shape[0] == 1:
        return mcnemar_exact(*discordant(ra[0], rb[0]))
    ka, kb = ra.shape[0], rb.shape[0]
    total = ka + kb
    succ = ra.sum(0) + rb.sum(0)  # (n,) successes per episode, both arms
    x = np.arange(kb + 1)
    law = np.ones(1)  # P(S - S_fixed = j), j = 0.. over the episodes whose split can vary
    fixed = 0  # B's successes on episodes where every run of both arms agrees
    for s in succ:
        if s == 0 or s == total:
            fixed += kb if s == total else 0
            continue
        pmf = np.array([math.comb(int(s), int(k)) * math.comb(total - int(s), kb - int(k)) for k in x], float)
        law = np.convolve(law, pmf / pmf.sum())
    observed = int(rb.sum()) - fixed
    lower, upper = law[: observed + 1].sum(), law[observed:].sum()
    return float(min(1.0, 2.0 * min(lower, upper)))


def paired_bootstrap(a: Sequence, b: Sequence, n_boot: int = 10_000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Seeded paired bootstrap of the success difference mean(b) - mean(a) over resampled episodes.

    Shapes: a (ka, n) and b (kb, n) bool, runs x episodes (a 1-d vector is one run). The episode is the unit
    that is resampled, with all of its runs: d_i = mean of B's runs - mean of A's runs on episode i. d takes
    few distinct values, so resampling n episodes with replacement is a multinomial draw over them: exact,
    and O(n_boot) whatever n is.
    Returns {"diff", "ci": (lo, hi) percentile interval at 1 - alpha, "p": two-sided bootstrap p-value (the
    share of resampled differences on the far side of 0, doubled, add-one smoothed so it is never 0)}.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    ra, rb = _paired_runs(a, b)
    n = ra.shape[1]
    d = rb.mean(0) - ra.mean(0)  # (n,)
    values, counts = np.unique(d, return_counts=True)
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=n_boot)  # (n_boot, values)
    diffs = draws @ values / n  # (n_boot,)
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    # add-one estimate: a finite bootstrap never proves p = 0
    le, ge = int(np.sum(diffs <= 1e-12)), int(np.sum(diffs >= -1e-12))
    p = min(1.0, 2.0 * (min(le, ge) + 1) / (n_boot + 1))
    return {"diff": float(d.mean()), "ci": (float(lo), float(hi)), "p": p}


def paired_test(a: Sequence, b: Sequence, test: str = "mcnemar", n_boot: int = 10_000,
                seed: int = 0, alpha: float = 0.05) -> dict:
    """Difference mean(b) - mean(a) on paired outcomes with a p-value from `test` ('mcnemar' or 'bootstrap').

    Shapes: a (ka, n) and b (kb, n) bool, runs x episodes; a 1-d vector is one run. 'mcnemar' is the exact
    test: McNemar's for one run each, its stratified form (`stratified_exact`) for several.
    Returns {"n" (episodes), "runs": (ka, kb), "a", "b" (success over all runs), "diff", "a_only", "b_only"
    (episodes where A's runs succeed more often than B's, and the reverse: the discordant pairs for one run
    each), "p", "ci"}; "ci" is the bootstrap interval (None for the exact test, which estimates none).
    """
    if test not in ("mcnemar", "bootstrap"):
        raise ValueError(f"unknown test {test!r}; valid: mcnemar, bootstrap")
    ra, rb = _paired_runs(a, b)
    ma, mb = ra.mean(0), rb.mean(0)
    out = {"n": ra.shape[1], "runs": (ra.shape[0], rb.shape[0]), "a": float(ma.mean()), "b": float(mb.mean()),
           "diff": float(mb.mean() - ma.mean()), "a_only": int(np.sum(ma > mb)), "b_only": int(np.sum(mb > ma))}
    if test == "mcnemar":
        out.update(p=stratified_exact(ra, rb), ci=None)
    else:
        boot = paired_bootstrap(ra, rb, n_boot=n_boot, seed=seed, alpha=alpha)
        out.update(p=boot["p"], ci=list(boot["ci"]))
    return out
