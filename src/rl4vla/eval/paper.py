"""The paper's reference numbers (arXiv 2505.19789, Table 1: OpenVLA-7B, 3 seeds x 64 episodes), as data.

docs/benchmark.md shows the same table; this is the one place code reads them from.
"""

from __future__ import annotations

from rl4vla.bench.conditions import CONDITIONS
from rl4vla.eval.results import dimension_summary

PAPER_COLUMNS = ("SFT-16k", "PPO")
PAPER_TABLE1: dict[str, tuple[float, float]] = {  # condition: (SFT with 16k demos, RL with PPO)
    "in-distribution": (0.781, 0.938),
    "unseen-table": (0.719, 0.844),
    "dynamic-texture-weak": (0.719, 0.833),
    "dynamic-texture-strong": (0.557, 0.630),
    "dynamic-noise-weak": (0.708, 0.854),
    "dynamic-noise-strong": (0.505, 0.667),
    "unseen-object": (0.453, 0.714),
    "unseen-receptacle": (0.615, 0.750),
    "unseen-instruction": (0.672, 0.891),
    "multi-object-seen": (0.615, 0.750),
    "multi-object-unseen": (0.297, 0.578),
    "distractive-receptacle": (0.672, 0.812),
    "multi-receptacle-unseen": (0.458, 0.599),
    "unseen-position": (0.568, 0.807),
    "unseen-init-pose": (0.339, 0.797),
    "mid-episode-reposition": (0.286, 0.745),
}


def paper_summary(column: str) -> dict:
    """One paper column in the shape of a results document's summary: {conditions, in_distribution, dimensions}."""
    if column not in PAPER_COLUMNS:
        raise ValueError(f"unknown paper column {column!r}; valid: {', '.join(PAPER_COLUMNS)}")
    j = PAPER_COLUMNS.index(column)
    conds = {name: {"dimension": CONDITIONS[name].dimension, "success_rate": v[j]} for name, v in PAPER_TABLE1.items()}
    ind, dims = dimension_summary(conds)
    return {"label": f"paper {column}", "conditions": conds, "in_distribution": ind, "dimensions": dims}
