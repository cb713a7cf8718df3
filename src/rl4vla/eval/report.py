"""`rl4vla report`: the study's Table 1 (Markdown + CSV), charts, training curves, costs and media of results files."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from rl4vla.bench.conditions import CONDITIONS
from rl4vla.config import ReportConfig
from rl4vla.eval.compare import compare_results
from rl4vla.eval.media import read_media_index
from rl4vla.eval.paper import PAPER_COLUMNS, paper_summary
from rl4vla.eval.plots import bar_charts, training_curves
from rl4vla.eval.results import DIMENSION_ORDER, IN_DISTRIBUTION, Results, as_runs, pool_runs
from rl4vla.util import atomic_write_text, check_output_dir

DASH = "–"


def ordered_conditions(docs: Sequence[dict]) -> list[tuple[str, str]]:
    """(dimension, condition) over all documents: in-distribution first, then vision, semantics, execution,
    then other dimensions; registry order inside a dimension (unregistered conditions after, first seen)."""
    dims: dict[str, str] = {}
    for doc in docs:
        for name, row in doc["conditions"].items():
            dims.setdefault(name, row["dimension"])
    registry = {n: i for i, n in enumerate(CONDITIONS)}
    rank = {"-": 0, **{d: i + 1 for i, d in enumerate(DIMENSION_ORDER)}}
    first_seen = {n: i for i, n in enumerate(dims)}
    key = lambda n: (n != IN_DISTRIBUTION, rank.get(dims[n], len(rank)), dims[n],  # noqa: E731
                     registry.get(n, len(registry)), first_seen[n])
    return [(dims[n], n) for n in sorted(dims, key=key)]


def load_costs(path: str | os.PathLike) -> list[dict]:
    """Stages of a costs JSON {"stages": [{"name", "env_steps", "wall_s", "cpus"}]}, with cpu_hours added."""
    try:
        doc = json.loads(Path(path).read_text())
        stages = doc["stages"]
        out = []
        for s in stages:
            row = {"name": str(s["name"]), "env_steps": s.get("env_steps"), "wall_s": float(s["wall_s"]),
                   "cpus": float(s.get("cpus", 1))}
            row["cpu_hours"] = row["wall_s"] * row["cpus"] / 3600
            out.append(row)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a costs file {{'stages': [{{'name', 'env_steps', 'wall_s', 'cpus'}}]}} "
                         f"({type(e).__name__}: {e})") from e
    return out


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _rate(row: dict | None) -> str:
    if row is None:
        return DASH
    lo, hi = row["ci95"]
    return f"{row['success_rate']:.3f} ({lo:.2f}–{hi:.2f})"


def _delta(d: float | None, test: dict | None, alpha: float) -> str:
    if d is None:
        return DASH
    if test is None:
        return f"{d:+.3f}"
    text = f"{d:+.3f}"
    return f"**{text}** (p={test['p']:.3g})" if test["p"] < alpha else f"{text} (p={test['p']:.2g})"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return DASH if x is None else format(x, fmt)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_report(results: Sequence[Results | Sequence[Results]], out_dir: str | os.PathLike, *,
                 labels: Sequence[str] | None = None, runs: Sequence[str | os.PathLike] = (),
                 costs: str | os.PathLike | None = None, media: Sequence[str | os.PathLike] = (),
                 test: str = "mcnemar", alpha: float = 0.05, paper: bool = True) -> dict[str, Path]:
    """Write report.md, table.csv (one row per condition), dimensions.csv and PNGs into out_dir.

    `results`: one entry per policy: a results path or document, or a sequence of them, the runs of that policy
    (training seeds) on the same episodes. A policy's cells count every run's episodes (rl4vla.eval.results.
    pool_runs); deltas are against the first policy, tested on paired episodes when the manifests match
    (otherwise shown untested), with several runs pooled episode by episode (rl4vla.eval.compare).
    Returns {name: path} of what was written.
    """
    if not results:
        raise ValueError("report needs at least one results file")
    out = check_output_dir(out_dir)
    groups = [as_runs(r, f"policy {i + 1}") for i, r in enumerate(results)]
    docs = [pool_runs(g) for g in groups]
    labels = list(labels) if labels else [d["label"] for d in docs]
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels for {len(groups)} results files")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct, got {labels}: pass --labels")
    base = docs[0]
    cmps = [compare_results(groups[0], g, test=test, alpha=alpha) if d["manifest_hash"] == base["manifest_hash"]
            else None for g, d in zip(groups[1:], docs[1:])]
    papers = [paper_summary(c) for c in PAPER_COLUMNS] if paper else []
    rows = ordered_conditions(docs)

    # ----- Table 1: conditions x policies -----
    delta_names = [f"Δ {lb} − {labels[0]}" for lb in labels[1:]]
    header = ["dimension", "condition", *labels, *delta_names]
    if paper:
        header += [f"paper {c}" for c in PAPER_COLUMNS] + [f"paper Δ {PAPER_COLUMNS[1]} − {PAPER_COLUMNS[0]}"]
    md_rows, csv_rows = [], []
    csv_header = ["dimension", "condition"]
    for lb in labels:
        csv_header += [lb, f"{lb}_ci_low", f"{lb}_ci_high", f"{lb}_episodes"]
    for lb in labels[1:]:
        csv_header += [f"delta_{lb}", f"p_{lb}", f"significant_{lb}"]
    if paper:
        csv_header += [f"paper_{c}" for c in PAPER_COLUMNS]

    def paper_cells(section: str, name: str, field: str) -> list[str]:
        if not paper:
            return []
        vals = [p[section].get(name, {}).get(field) for p in papers]
        d = None if None in vals else vals[1] - vals[0]
        return [_num(v) for v in vals] + [_num(d, "+.3f")]

    prev_dim = None
    for dim, name in rows + [(None, None)]:
        if prev_dim not in (None, "-") and dim != prev_dim:  # close a dimension group: average and retention
            avg = [d["dimensions"].get(prev_dim, {}).get("success") for d in docs]
            ret = [d["dimensions"].get(prev_dim, {}).get("retention") for d in docs]
            dtests = [c["dimensions"].get(prev_dim) if c else None for c in cmps]
            deltas = [_delta(None if None in (a, avg[0]) else a - avg[0], t, alpha) for a, t in zip(avg[1:], dtests)]
            rdeltas = [_num(None if None in (r, ret[0]) else r - ret[0], "+.3f") for r in ret[1:]]
            md_rows.append([prev_dim, "*average*", *map(_num, avg), *deltas,
                            *paper_cells("dimensions", prev_dim, "success")])
            md_rows.append([prev_dim, "*retention* (avg / in-dist.)", *map(_num, ret), *rdeltas,
                            *paper_cells("dimensions", prev_dim, "retention")])
        if name is None:
            break
        cells = [d["conditions"].get(name) for d in docs]
        tests = [c["conditions"].get(name) if c else None for c in cmps]
        deltas = [None if None in (c, cells[0]) else c["success_rate"] - cells[0]["success_rate"] for c in cells[1:]]
        md_rows.append([dim, name, *map(_rate, cells), *[_delta(d, t, alpha) for d, t in zip(deltas, tests)],
                        *paper_cells("conditions", name, "success_rate")])
        row: list = [dim, name]
        for c in cells:
            row += [""] * 4 if c is None else [f"{c['success_rate']:.4f}", f"{c['ci95'][0]:.4f}",
                                               f"{c['ci95'][1]:.4f}", c["episodes"]]
        for d, t in zip(deltas, tests):
            row += ["" if d is None else f"{d:.4f}", "" if t is None else f"{t['p']:.4g}",
                    "" if t is None else int(t["significant"])]
        if paper:
            row += ["" if (v := p["conditions"].get(name)) is None else v["success_rate"] for p in papers]
        csv_rows.append(row)
        prev_dim = dim

    # ----- per-dimension summary -----
    dim_names = [d for d in DIMENSION_ORDER if any(d in doc["dimensions"] for doc in docs)]
    dim_names += sorted({d for doc in docs for d in doc["dimensions"]} - set(dim_names))
    summ = docs + papers
    summ_labels = labels + [p["label"] for p in papers]
    dim_header = ["policy", "in-distribution", *[f"{d} avg" for d in dim_names], *[f"{d} retention" for d in dim_names]]
    dim_rows = [[lb, _num(s.get("in_distribution")), *[_num(s["dimensions"].get(d, {}).get("success"))
                                                       for d in dim_names],
                 *[_num(s["dimensions"].get(d, {}).get("retention")) for d in dim_names]]
                for s, lb in zip(summ, summ_labels)]

    written: dict[str, Path] = {}
    atomic_write_text(out / "table.csv", _csv(csv_header, csv_rows))
    written["table.csv"] = out / "table.csv"
    atomic_write_text(out / "dimensions.csv", _csv(dim_header, [[c.replace(DASH, "") for c in r] for r in dim_rows]))
    written["dimensions.csv"] = out / "dimensions.csv"
    for p in bar_charts(docs, labels, out, papers):
        written[p.name] = p
    if runs:
        for p in training_curves(runs, out):
            written[p.name] = p

    # ----- Markdown -----
    md = ["# rl4vla generalization report", ""]
    md += ["Success at the final step per condition, with Wilson 95 % intervals. "
           f"Δ columns are against **{labels[0]}**; bold marks p < {alpha} in a paired {test} test over the same "
           "episodes (per row, not corrected for the number of rows). A dimension's *average* is the mean of its "
           "conditions; *retention* divides it by in-distribution success."
           + (" Paper columns: arXiv 2505.19789 Table 1 (OpenVLA-7B, 3 seeds x 64 episodes)." if paper else ""), ""]
    untested = [lb for lb, c in zip(labels[1:], cmps) if c is None]
    if untested:
        md += [f"Not paired (different manifest from {labels[0]}), deltas untested: {', '.join(untested)}.", ""]
    md += ["## Table 1: success per condition", ""] + _md_table(header, md_rows) + [""]
    md += ["## Per dimension", ""] + _md_table(dim_header, dim_rows) + [""]
    md += ["![per-dimension averages](bars_dimensions.png)", ""]
    md += [f"![{d}](bars_{d}.png)" for d in dim_names if (out / f"bars_{d}.png").exists()] + [""]
    if "curves_success.png" in written or "curves_losses.png" in written:
        md += ["## Training curves", "", f"Runs: {', '.join(str(r) for r in runs)}", ""]
        md += [f"![{n}]({n})" for n in ("curves_success.png", "curves_losses.png") if n in written] + [""]
    if costs:
        stages = load_costs(costs)
        tot = ["**total**", str(sum(s["env_steps"] or 0 for s in stages)), _hms(sum(s["wall_s"] for s in stages)),
               "", f"{sum(s['cpu_hours'] for s in stages):.2f}"]
        md += ["## Compute cost", ""] + _md_table(
            ["stage", "env steps", "wall-clock (h:mm:ss)", "CPUs", "CPU-hours"],
            [[s["name"], DASH if s["env_steps"] is None else str(s["env_steps"]), _hms(s["wall_s"]),
              f"{s['cpus']:g}", f"{s['cpu_hours']:.2f}"] for s in stages] + [tot]) + [""]
    for m in media:
        idx = read_media_index(m)
        rel = os.path.relpath(Path(m).resolve(), out.resolve())
        md += [f"## Media: {idx.get('label', Path(m).name)}", ""]
        if idx.get("contact_sheet"):
            md += [f"![contact sheet]({rel}/{idx['contact_sheet']})", ""]
        for v in idx.get("videos", []):
            what = " — ".join(str(x) for x in (v.get("condition"), v.get("instruction")) if x)
            md.append(f"- [{v['file']}]({rel}/{v['file']}) {'success' if v.get('success') else 'failure'}"
                      + (f": {what}" if what else ""))
        md.append("")
    pooled = [f"{lb} ({len(g)} runs)" for g, lb in zip(groups, labels) if len(g) > 1]
    md += ["## Runs", ""]
    if pooled:
        md += [f"Several runs (training seeds) of {', '.join(pooled)}: their cells count every run's episodes, and "
               "their deltas are tested episode by episode over all runs.", ""]
    md += _md_table(
        ["policy", "spec", "checkpoint sha256", "seeds", "episodes", "manifest", "wall-clock", "versions"],
        [[lb if len(g) == 1 else f"{lb}: {d['label']}", f"`{d['policy']['spec']}`",
          (d["policy"].get("sha256") or DASH)[:12], " ".join(map(str, d["seeds"])),
          str(d.get("num_episodes", len(d["outcomes"]["keys"]))), f"`{d['manifest_hash']}`",
          DASH if d.get("wall_s") is None else _hms(d["wall_s"]),
          ", ".join(f"{k} {v}" for k, v in (d.get("versions") or {}).items())]
         for g, lb in zip(groups, labels) for d in g])
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    written["report.md"] = out / "report.md"
    return written


def report(cfg: ReportConfig) -> dict[str, Path]:
    """The `rl4vla report` command: write_report with the config's fields."""
    return write_report([r.split(",") for r in cfg.results], cfg.out, labels=cfg.labels, runs=cfg.runs,
                        costs=cfg.costs, media=cfg.media, test=cfg.test, alpha=cfg.alpha, paper=cfg.paper)
