"""PNG charts for reports: grouped success bars per dimension and training curves from metrics.jsonl.

Uses matplotlib's object API (`Figure`, Agg canvas) so nothing touches pyplot's global state or a display.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rl4vla.eval.results import IN_DISTRIBUTION
from rl4vla.util import atomic_write_bytes


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _bars(path: Path, title: str, groups: list[str], series: list[dict]) -> Path:
    """Grouped bars: one group per x label, one bar per series {label, values, lo, hi, paper}."""
    fig = _figure(max(7.0, 1.1 * len(groups) + 3.5), 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        v = np.array([s["values"].get(g, np.nan) for g in groups], float)
        pos = x - 0.4 + width * (i + 0.5)
        kw = {"hatch": "//", "alpha": 0.45, "edgecolor": "black"} if s.get("paper") else {}
        yerr = None
        if s.get("lo") is not None:
            lo = np.array([s["lo"].get(g, np.nan) for g in groups], float)
            hi = np.array([s["hi"].get(g, np.nan) for g in groups], float)
            yerr = np.nan_to_num(np.stack([v - lo, hi - v]))
        ax.bar(pos, np.nan_to_num(v), width, yerr=yerr, capsize=2, label=s["label"], **kw)
    ax.set_xticks(x, groups, rotation=25, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper")  # beside the axes: bars reach 1.0
    return _save(fig, path)


def bar_charts(ours: Sequence[dict], labels: Sequence[str], out_dir: str | os.PathLike,
               paper: Sequence[dict] = ()) -> list[Path]:
    """`bars_<dimension>.png` per dimension (in-distribution beside its conditions, Wilson 95 % error bars)
    and `bars_dimensions.png` (per-dimension averages); `paper` summaries are drawn hatched."""
    out = Path(out_dir)
    dims: dict[str, list[str]] = {}
    for doc in ours:
        for d, r in doc["dimensions"].items():
            dims.setdefault(d, [])
            dims[d] += [n for n in r["conditions"] if n not in dims[d]]

    def series(names: list[str]) -> list[dict]:
        rows = []
        for doc, label in zip(ours, labels):
            c = doc["conditions"]
            rows.append({"label": label, "values": {n: c[n]["success_rate"] for n in names if n in c},
                         "lo": {n: c[n]["ci95"][0] for n in names if n in c},
                         "hi": {n: c[n]["ci95"][1] for n in names if n in c}})
        for p in paper:
            rows.append({"label": p["label"], "paper": True,
                         "values": {n: p["conditions"][n]["success_rate"] for n in names if n in p["conditions"]}})
        return rows

    written = []
    for d, names in dims.items():
        groups = [IN_DISTRIBUTION, *names]
        written.append(_bars(out / f"bars_{d}.png", f"{d}: success per condition", groups, series(groups)))
    groups = [IN_DISTRIBUTION, *dims]
    summary = []
    for doc, label in zip(ours, labels):
        vals = {d: r["success"] for d, r in doc["dimensions"].items()}
        if doc.get("in_distribution") is not None:
            vals[IN_DISTRIBUTION] = doc["in_distribution"]
        summary.append({"label": label, "values": vals})
    for p in paper:
        vals = {d: r["success"] for d, r in p["dimensions"].items()} | {IN_DISTRIBUTION: p["in_distribution"]}
        summary.append({"label": p["label"], "values": vals, "paper": True})
    written.append(_bars(out / "bars_dimensions.png", "average success per dimension", groups, summary))
    return written


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of a run's metrics.jsonl (a torn last line from a killed run is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"run directory {run_dir} has no metrics.jsonl")
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i != len(lines) - 1:
                raise ValueError(f"{path}:{i + 1}: not a JSON record ({e})") from e
    return rows


def _series(rows: list[dict], key: str, by_env_steps: bool) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of `key`; x is the step, or the latest train/env_steps logged at or before that step."""
    env_steps, xs, ys = 0.0, [], []
    for r in sorted(rows, key=lambda r: r.get("step", 0)):  # stable: same-step records keep their order
        if "train/env_steps" in r:
            env_steps = float(r["train/env_steps"])
        if key in r and r[key] is not None:
            xs.append(env_steps if by_env_steps else r.get("step", 0))
            ys.append(float(r[key]))
    return np.array(xs, float), np.array(ys, float)


def _thousands_label(v: float, _pos=None) -> str:
    return f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"


def _rollout_success(ax, data: list[list[dict]], labels: list[str], smooth: int) -> None:
    """train/success of the training rollouts vs env steps, a moving average over `smooth` rollouts (each RL
    rollout holds only a few dozen episodes: unsmoothed, the curve is mostly binomial noise); a run with fewer
    rollouts than that is one point, the mean of them all."""
    from matplotlib.ticker import FuncFormatter

    for i, (rows, label) in enumerate(zip(data, labels)):
        x, y = _series(rows, "train/success", True)
        w = min(smooth, len(x))  # a run shorter than the window: the mean of all its rollouts, one point
        if w:
            y = np.convolve(y, np.ones(w) / w, mode="valid")
            ax.plot(x[w - 1 :], y, color=f"C{i}", label=label, marker="o" if len(y) < 5 else None, ms=3)
    ax.set_xlabel("train/env_steps")
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands_label))
    ax.set_ylabel(f"train/success (training rollouts, mean of {smooth})")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)


def training_curves(runs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                    labels: Sequence[str] | None = None, smooth: int = 10) -> list[Path]:
    """`curves_success.png`: eval/success vs the logged step, and beside it vs train/env_steps for the runs that log it,
    and the training rollouts' success (moving average over `smooth` records) vs train/env_steps for RL runs;
    `curves_losses.png`: every losses/* key vs the logged step, one panel per key. Runs overlaid, named by directory."""
    from matplotlib.ticker import FuncFormatter

    out = Path(out_dir)
    data = [read_metrics(r) for r in runs]
    labels = list(labels) if labels else [Path(r).resolve().name for r in runs]
    written = []
    rollouts = any("train/success" in r and "train/env_steps" in r for rows in data for r in rows)
    axes_x: list[bool] = []  # eval/success panels: vs the logged step, and vs env steps where logged
    if any("eval/success" in r for rows in data for r in rows):
        has_env = [any("train/env_steps" in r for r in rows) for rows in data]
        axes_x = [False] + ([True] if any(has_env) else [])
    if axes_x or rollouts:
        panels = len(axes_x) + int(rollouts)
        fig = _figure(5.5 * panels, 4.0)
        if rollouts:
            _rollout_success(fig.add_subplot(1, panels, panels), data, labels, smooth)
        for p, by_env in enumerate(axes_x):
            ax = fig.add_subplot(1, panels, p + 1)
            for i, (rows, label) in enumerate(zip(data, labels)):
                x, y = _series(rows, "eval/success", by_env)
                if len(x) and (has_env[i] or not by_env):
                    ax.plot(x, y, marker="o", ms=3, color=f"C{i}", label=label)
            ax.set_xlabel("train/env_steps" if by_env else "step (as logged)")
            ax.xaxis.set_major_formatter(FuncFormatter(_thousands_label))  # 160k, not 160000: no collisions
            ax.set_ylabel("eval/success (in-distribution)")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        written.append(_save(fig, out / "curves_success.png"))
    keys = sorted({k for rows in data for r in rows for k in r if k.startswith("losses/")})
    if keys:
        ncol = min(3, len(keys))
        nrow = math.ceil(len(keys) / ncol)
        fig = _figure(4.0 * ncol, 3.0 * nrow)
        for i, k in enumerate(keys):
            ax = fig.add_subplot(nrow, ncol, i + 1)
            for j, rows in enumerate(data):
                x, y = _series(rows, k, False)
                if len(x):  # one colour per run in every panel; markers so short series stay visible
                    ax.plot(x, y, lw=1, color=f"C{j}", marker="." if len(x) < 30 else None)
            ax.set_title(k, fontsize=9)
            ax.set_xlabel("step (as logged)")
            ax.grid(alpha=0.3)
        from matplotlib.lines import Line2D

        fig.legend([Line2D([], [], color=f"C{j}") for j in range(len(labels))], labels, fontsize=8,
                   loc="outside lower center", ncols=min(4, len(labels)))
        written.append(_save(fig, out / "curves_losses.png"))
    return written
