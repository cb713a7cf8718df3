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


def paired_bootstrap(a: Sequence[bool], b: Sequence[bool], n_boot: int = 10_000, seed: int = 0,
                     alpha: float = 0.05) -> dict:
    """Seeded paired bootstrap of the success difference mean(b) - mean(a) over resampled episode pairs.

    Pairs fall in four kinds (both fail, only A, only B, both succeed), so resampling n pairs with
    replacement is a multinomial draw over the four kinds: exact, and O(n_boot) whatever n is.
    Returns {"diff", "ci": (lo, hi) percentile interval at 1 - alpha, "p": two-sided bootstrap p-value (the
    share of resampled differences on the far side of 0, doubled, add-one smoothed so it is never 0)}.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    a_only, b_only = discordant(a, b)
    n = len(a)
    if n == 0:
        raise ValueError("paired_bootstrap needs at least one pair")
    both = int(np.sum(np.asarray(a, bool) & np.asarray(b, bool)))
    counts = np.array([n - a_only - b_only - both, a_only, b_only, both], float)
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=n_boot)  # (n_boot, 4)
    diffs = (draws[:, 2] - draws[:, 1]) / n  # (n_boot,)
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    # add-one estimate: a finite bootstrap never proves p = 0
    le, ge = int(np.sum(diffs <= 0)), int(np.sum(diffs >= 0))
    p = min(1.0, 2.0 * (min(le, ge) + 1) / (n_boot + 1))
    return {"diff": (b_only - a_only) / n, "ci": (float(lo), float(hi)), "p": p}


def paired_test(a: Sequence[bool], b: Sequence[bool], test: str = "mcnemar", n_boot: int = 10_000,
                seed: int = 0, alpha: float = 0.05) -> dict:
    """Difference mean(b) - mean(a) on paired outcomes with a p-value from `test` ('mcnemar' or 'bootstrap').

    Returns {"n", "a", "b", "diff", "a_only", "b_only", "p", "ci"}; "ci" is the bootstrap interval
    (None for McNemar, which tests without estimating one).
    """
    if test not in ("mcnemar", "bootstrap"):
        raise ValueError(f"unknown test {test!r}; valid: mcnemar, bootstrap")
    a_only, b_only = discordant(a, b)
    n = len(a)
    if n == 0:
        raise ValueError("a paired test needs at least one pair")
    out = {"n": n, "a": float(np.mean(a)), "b": float(np.mean(b)), "diff": (b_only - a_only) / n,
           "a_only": a_only, "b_only": b_only}
    if test == "mcnemar":
        out.update(p=mcnemar_exact(a_only, b_only), ci=None)
    else:
        boot = paired_bootstrap(a, b, n_boot=n_boot, seed=seed, alpha=alpha)
        out.update(p=boot["p"], ci=list(boot["ci"]))
    return out
