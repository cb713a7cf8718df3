"""The results file of `rl4vla eval`: build it from per-episode outcomes, write it atomically, load and validate it.

Format (JSON object, "format": "rl4vla-results", "version": 1):

    label, policy {spec, kind: builtin|checkpoint|pretrained|other, path?, sha256?}, seeds [int], manifest_hash,
    num_episodes, settings {...how it was run...}, versions {rl4vla, python, torch, mujoco, numpy},
    wall_s, created (UTC ISO time),
    conditions {name: {dimension, episodes, successes, success_rate, ci95 [lo, hi], grasp_rate,
                       mean_return?, per_seed {"seed": success_rate}}}   (manifest order)
    in_distribution: success of the "in-distribution" condition, or null
    dimensions {vision|semantics|execution|...: {conditions [names], success (mean over its conditions),
                retention (success / in_distribution, null when that is 0 or absent), per_seed {...}}}
    outcomes {keys ["condition:seed:index"], success [0|1], grasped [0|1]}   (manifest order)

The outcome lists pair episodes across two results files of the same manifest (equal manifest_hash).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from rl4vla.bench.conditions import CONDITIONS, DIMENSIONS, Episode, manifest_hash
from rl4vla.eval.stats import wilson_interval
from rl4vla.policy.base import BUILTIN as BUILTIN_POLICIES  # noqa: F401  (re-exported)
from rl4vla.policy.base import policy_info
from rl4vla.util import write_or_rescue

RESULTS_FORMAT = "rl4vla-results"
RESULTS_VERSION = 1
IN_DISTRIBUTION = "in-distribution"
DIMENSION_ORDER = tuple(d for d in DIMENSIONS if d != "-")  # vision, semantics, execution


def episode_key(ep: Episode) -> str:
    """A stable id of an episode inside a manifest: 'condition:seed:index'."""
    return f"{ep.condition}:{ep.seed}:{ep.index}"


def split_key(key: str) -> tuple[str, int, int]:
    """Inverse of episode_key (condition names may themselves contain ':')."""
    cond, seed, index = key.rsplit(":", 2)
    return cond, int(seed), int(index)


def software_versions() -> dict[str, str | None]:
    """Versions of rl4vla, Python and the libraries that decide the numbers (without importing torch)."""
    import rl4vla

    def dist(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"rl4vla": rl4vla.__version__, "python": platform.python_version(), "torch": dist("torch"),
            "mujoco": dist("mujoco"), "numpy": np.__version__}


def default_label(spec: str) -> str:
    """'noop' -> 'noop'; 'runs/ppo/model.pt' -> 'ppo' (the run directory names the policy)."""
    if spec in BUILTIN_POLICIES or not os.path.isfile(spec):
        return spec
    p = Path(spec)
    return p.parent.name or p.stem


def summarize_outcomes(keys: Sequence[str], success: Sequence[bool], grasped: Sequence[bool] | None = None,
                       returns: Sequence[float] | None = None,
                       dimensions: Mapping[str, str] | None = None) -> dict[str, dict]:
    """Per-condition counts, rates, Wilson 95 % interval and per-seed success, in first-seen condition order.

    `dimensions` maps a condition name to its dimension (default: the registered conditions; '-' if unknown).
    """
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(split_key(k)[0], []).append(i)
    s = np.asarray(success, bool)
    g = None if grasped is None else np.asarray(grasped, bool)
    out: dict[str, dict] = {}
    for name, idx in groups.items():
        n, wins = len(idx), int(s[idx].sum())
        by_seed: dict[str, list[bool]] = {}
        for i in idx:
            by_seed.setdefault(str(split_key(keys[i])[1]), []).append(bool(s[i]))
        row = {"dimension": _dimension(name, dimensions), "episodes": n, "successes": wins,
               "success_rate": wins / n, "ci95": list(wilson_interval(wins, n)),
               "grasp_rate": None if g is None else float(g[idx].mean())}
        if returns is not None:
            row["mean_return"] = float(np.mean([returns[i] for i in idx]))
        row["per_seed"] = {k: float(np.mean(v)) for k, v in by_seed.items()}
        out[name] = row
    return out


def _dimension(name: str, dimensions: Mapping[str, str] | None) -> str:
    if dimensions and name in dimensions:
        return dimensions[name]
    return CONDITIONS[name].dimension if name in CONDITIONS else "-"


def dimension_summary(conditions: Mapping[str, dict]) -> tuple[float | None, dict[str, dict]]:
    """(in-distribution success, {dimension: {conditions, success, retention, per_seed}}), dimensions in study order.

    A dimension's success is the mean over its conditions' success rates (each condition weighs the same,
    as in the paper); retention divides it by the in-distribution success (None when that is 0 or absent).
    """
    ind = conditions.get(IN_DISTRIBUTION, {}).get("success_rate")
    dims: dict[str, list[str]] = {d: [] for d in DIMENSION_ORDER}
    for name, row in conditions.items():
        if row["dimension"] != "-":
            dims.setdefault(row["dimension"], []).append(name)
    out = {}
    for d, names in dims.items():
        if not names:
            continue
        mean = float(np.mean([conditions[n]["success_rate"] for n in names]))
        seeds = sorted({s for n in names for s in conditions[n].get("per_seed", {})}, key=int)
        per_seed = {s: float(np.mean([conditions[n]["per_seed"][s] for n in names if s in conditions[n]["per_seed"]]))
                    for s in seeds}
        out[d] = {"conditions": names, "success": mean, "retention": mean / ind if ind else None,
                  "per_seed": per_seed}
    return ind, out


def make_results(episodes: Sequence[Episode], success: Sequence[bool], grasped: Sequence[bool] | None = None,
                 returns: Sequence[float] | None = None, *, policy: str | dict, label: str | None = None,
                 dimensions: Mapping[str, str] | None = None, settings: dict | None = None,
                 wall_s: float | None = None) -> dict:
    """The results document for outcomes on `episodes` (manifest order); `policy` is a spec or a policy_info dict."""
    if len(success) != len(episodes) or (grasped is not None and len(grasped) != len(episodes)):
        raise ValueError(f"{len(episodes)} episodes but {len(success)} success / "
                         f"{'-' if grasped is None else len(grasped)} grasped outcomes")
    info = policy_info(policy) if isinstance(policy, str) else dict(policy)
    keys = [episode_key(e) for e in episodes]
    conds = summarize_outcomes(keys, success, grasped, returns, dimensions)
    ind, dims = dimension_summary(conds)
    return {
        "format": RESULTS_FORMAT, "version": RESULTS_VERSION,
        "label": label or default_label(info["spec"]), "policy": info,
        "seeds": sorted({e.seed for e in episodes}), "manifest_hash": manifest_hash(list(episodes)),
        "num_episodes": len(episodes), "settings": dict(settings or {}), "versions": software_versions(),
        "wall_s": wall_s, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conditions": conds, "in_distribution": ind, "dimensions": dims,
        "outcomes": {"keys": keys, "success": [int(bool(x)) for x in success],
                     "grasped": None if grasped is None else [int(bool(x)) for x in grasped]},
    }


def dumps_results(doc: dict) -> str:
    """Indented JSON, except the long outcome lists, which stay one line each."""
    body = json.dumps({k: v for k, v in doc.items() if k != "outcomes"}, indent=1)
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
                      for k, v in doc["outcomes"].items())
    return body[: body.rindex("}")].rstrip() + ',\n "outcomes": {\n' + rows + "\n }\n}\n"


def write_results(path: str | os.PathLike, doc: dict) -> Path:
    """Write a results document atomically (readers never see a partial file); when that fails, save it in the
    current directory and raise a RuntimeError that says where (results of a long evaluation are never lost)."""
    return write_or_rescue(path, dumps_results(doc))


_CONDITION_FIELDS = {"dimension": str, "episodes": int, "successes": int, "success_rate": (int, float),
                     "ci95": list, "per_seed": dict}


def load_results(path: str | os.PathLike) -> dict:
    """Read a results file and check its format and internal consistency; ValueError says what is wrong."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable results file ({type(e).__name__}: {e})") from e

    def bad(msg: str) -> ValueError:
        return ValueError(f"{path}: not an rl4vla results file: {msg}")

    if not isinstance(doc, dict):
        raise bad("expected a JSON object")
    if doc.get("format") != RESULTS_FORMAT:
        if "conditions" in doc and "seed" in doc:
            raise bad("written by an older `rl4vla eval` without per-episode outcomes; re-run eval")
        raise bad(f"'format' is {doc.get('format')!r}, expected {RESULTS_FORMAT!r}")
    if doc.get("version") != RESULTS_VERSION:
        raise bad(f"version {doc.get('version')!r} is not supported (this rl4vla reads version {RESULTS_VERSION})")
    for k, typ in (("label", str), ("policy", dict), ("seeds", list), ("manifest_hash", str),
                   ("conditions", dict), ("dimensions", dict), ("outcomes", dict)):
        if not isinstance(doc.get(k), typ):
            raise bad(f"field {k!r} is missing or not a {typ.__name__}")
    if "spec" not in doc["policy"]:
        raise bad("field 'policy' has no 'spec'")
    out = doc["outcomes"]
    keys, success = out.get("keys"), out.get("success")
    if not isinstance(keys, list) or not isinstance(success, list) or len(keys) != len(success):
        raise bad("'outcomes' needs equally long lists 'keys' and 'success'")
    if out.get("grasped") is not None and len(out["grasped"]) != len(keys):
        raise bad("'outcomes.grasped' is not as long as 'outcomes.keys'")
    if any(x not in (0, 1) for x in success):
        raise bad("'outcomes.success' must hold only 0/1 (or false/true)")
    try:
        counted = summarize_outcomes(keys, success)
    except (ValueError, AttributeError) as e:
        raise bad(f"bad episode key in 'outcomes.keys' ({e}); expected 'condition:seed:index'") from e
    for name, row in doc["conditions"].items():
        for k, typ in _CONDITION_FIELDS.items():
            if not isinstance(row.get(k), typ):
                raise bad(f"condition {name!r}: field {k!r} is missing or of the wrong type")
        c = counted.get(name)
        if c is None or (c["episodes"], c["successes"]) != (row["episodes"], row["successes"]):
            found = "none" if c is None else f"{c['successes']}/{c['episodes']}"
            raise bad(f"condition {name!r}: {row['successes']}/{row['episodes']} does not match its outcomes "
                      f"({found})")
    if set(counted) != set(doc["conditions"]):
        missing = sorted(set(counted) - set(doc["conditions"]))
        raise bad(f"outcomes name conditions missing from 'conditions': {missing}")
    return doc


def _episode_lines(run: Path) -> list[dict]:
    """The lines of a run's episodes.jsonl, each with its update number (1-based; the line's position in logs
    that did not record it)."""
    log = run / "episodes.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    return [{"update": i + 1, **x} for i, x in enumerate(lines)]


def logged_updates(run: str | os.PathLike) -> int:
    """The last update an RL run logged in its episodes.jsonl (0 without one)."""
    return max((x["update"] for x in _episode_lines(Path(run))), default=0)


def training_results(run: str | os.PathLike, updates: tuple[int, int] | None = None) -> dict:
    """An RL run's training episodes as a results document: the episodes that began each rollout, from the run's
    episodes.jsonl, at its training temperature. Runs with the same --episode-seed, --env.num-envs and algorithm
    begin their rollouts on the same scenes (EpisodeStream), so their documents pair scene by scene like two
    evaluations of the same manifest: a paired, on-policy held-out measure over every fresh scene a run saw.

    updates: (first, last), 1-based and inclusive; None = every update logged. ValueError when the run has no
    episode log (runs before 2026-12-08) or the range holds no update."""
    from rl4vla.bench.conditions import resolve_conditions, sample_episode

    run = Path(run)
    log, config = run / "episodes.jsonl", run / "config.json"
    if not log.exists() or not config.exists():
        raise ValueError(f"{run}: no episodes.jsonl and config.json: not an RL run directory, or one written before "
                         "rl4vla logged training episodes (2026-12-08)")
    cfg = json.loads(config.read_text())
    lines = _episode_lines(run)
    logged = max((x["update"] for x in lines), default=0)
    first, last = updates or (1, logged)
    if not 1 <= first <= last:
        raise ValueError(f"updates must be FIRST LAST with 1 <= FIRST <= LAST, got {first} {last}")
    chosen = [x for x in lines if first <= x["update"] <= last]
    if not chosen:
        raise ValueError(f"{run}: updates {first}-{last} are past its {logged} logged updates")
    cond = resolve_conditions([cfg["condition"]])[0]
    outcomes = [e for line in chosen for e in line["episodes"]]
    episodes = [sample_episode(cond, cfg["episode_seed"], e["index"]) for e in outcomes]
    done = chosen[-1]["update"]
    doc = make_results(episodes, [e["success"] for e in outcomes],
                       policy={"spec": str(run), "kind": "training-episodes"},
                       label=f"{run.name} (training, updates {first}-{done})",
                       settings={"temperature": cfg["temperature"], "updates": [first, done], "algo": cfg["algo"]})
    doc["source"] = os.path.abspath(run)
    return doc


def as_results(x: str | os.PathLike | dict) -> dict:
    """A results document from a path (loaded and validated) or a document already in memory."""
    return x if isinstance(x, dict) else load_results(x)


Results = str | os.PathLike | dict


def as_runs(x: Results | Sequence[Results], what: str = "runs") -> list[dict]:
    """Runs of one policy (training seeds, say) as loaded documents: one path or document, or a sequence of them.
    Refuses an empty sequence and a run listed twice (each run counts once in a pooled test)."""
    items = [x] if isinstance(x, (str, os.PathLike, dict)) else list(x)
    if not items:
        raise ValueError(f"{what}: give at least one results file")
    seen = [os.path.abspath(r) if isinstance(r, (str, os.PathLike)) else r.get("source", id(r)) for r in items]
    if len(set(seen)) < len(seen):
        raise ValueError(f"{what}: a results file is listed twice ({', '.join(map(str, items))}); each run counts "
                         "once: give a file once, or several runs of the policy (training seeds)")
    docs = [as_results(r) for r in items]
    keys = [evaluation_key(d) for d in docs]
    for i, k in enumerate(keys):
        if k is not None and k in keys[:i]:
            raise ValueError(f"{what}: {items[keys.index(k)]} and {items[i]} are the same evaluation (the same "
                             f"policy file, episodes, temperature, frame size and sample seed {k[-1]}): a copy "
                             f"counts once. Evaluate the policy again with another `rl4vla eval --sample-seed` for "
                             f"another run")
    return docs


def evaluation_key(doc: dict) -> tuple | None:
    """What makes two evaluations of a checkpoint the same run: its file hash, the episodes, the temperature, the
    frame size and the seed of its sampling (the first episode's seed when the document predates --sample-seed);
    None when the policy has no file hash (a scripted policy)."""
    sha = (doc.get("policy") or {}).get("sha256")
    if sha is None or not doc.get("outcomes"):  # a scripted policy, or runs already pooled
        return None
    settings = doc.get("settings") or {}
    sample_seed = settings.get("sample_seed")
    if sample_seed is None:
        sample_seed = split_key(doc["outcomes"]["keys"][0])[1]
    return sha, doc["manifest_hash"], settings.get("temperature"), settings.get("image_size"), sample_seed


def check_same_episodes(a: dict, b: dict) -> None:
    """Raise ValueError unless two results documents were evaluated on the same pinned episodes."""
    if a["manifest_hash"] != b["manifest_hash"]:
        raise ValueError(f"results of different episodes cannot be paired: manifest hash {a['manifest_hash']} "
                         f"({a['label']}) != {b['manifest_hash']} ({b['label']}); evaluate both with the same "
                         f"--conditions/--episodes/--seeds or the same --manifest")
    if a["outcomes"]["keys"] != b["outcomes"]["keys"]:  # equal hashes make this impossible unless a file was edited
        raise ValueError("equal manifest hashes but different episode keys: one results file was edited")


def pool_runs(runs: Sequence[dict]) -> dict:
    """One summary document for several runs of a policy on the same episodes (a single run is returned as is).

    Its conditions and dimensions count every run's episodes (a condition's successes and episodes are summed;
    the Wilson interval is over them), so a table shows the policy's success averaged over its runs; tests
    between policies take the runs themselves (rl4vla.eval.compare). "label" joins the runs' labels with " + ",
    "runs" lists them, "outcomes"
    is None (there is no single episode list to pair), "num_episodes" is per run and "wall_s" sums the runs."""
    if len(runs) == 1:
        return runs[0]
    for r in runs[1:]:
        check_same_episodes(runs[0], r)
    first = runs[0]
    keys = first["outcomes"]["keys"] * len(runs)
    success = [x for r in runs for x in r["outcomes"]["success"]]
    grasped = None if any(r["outcomes"].get("grasped") is None for r in runs) else [
        x for r in runs for x in r["outcomes"]["grasped"]]
    dims = {n: c["dimension"] for n, c in first["conditions"].items()}
    conds = summarize_outcomes(keys, success, grasped, dimensions=dims)
    ind, dimensions = dimension_summary(conds)
    walls = [r.get("wall_s") for r in runs]
    return {**first, "label": " + ".join(r["label"] for r in runs), "runs": [r["label"] for r in runs],
            "wall_s": None if None in walls else float(sum(walls)), "conditions": conds, "in_distribution": ind,
            "dimensions": dimensions, "outcomes": None}
