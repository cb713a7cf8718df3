"""The eval and render commands: episodes from conditions, a policy, results and media."""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from rl4vla.bench.conditions import (
    CONDITIONS,
    SOURCES,
    Episode,
    episodes_use_pretraining_assets,
    load_conditions_file,
    read_manifest,
    register,
    resolve_conditions,
    sample_episodes,
    write_manifest,
)
from rl4vla.bench.env import TabletopVecEnv, env_config
from rl4vla.bench.ray_backend import check_backend
from rl4vla.config import ConditionsConfig, EvalConfig, RenderConfig
from rl4vla.eval.evaluator import run_episodes, seeded_policy
from rl4vla.eval.media import record_media
from rl4vla.eval.results import BUILTIN_POLICIES, make_results, policy_info, write_results
from rl4vla.util import (
    check_at_least,
    check_device,
    check_output_file,
    check_seed,
    check_workers,
    resolve_device,
    torch_threads,
)


def eval_episodes(conditions: tuple[str, ...] | list[str], seeds: tuple[int, ...] | list[int],
                  episodes: int, in_distribution_episodes: int = 0) -> list[Episode]:
    """The evaluation manifest: for each seed in order, `episodes` pinned episodes of each condition
    (`in_distribution_episodes` of in-distribution when > 0).

    Seeds are concatenated, so the manifest of seeds (0,) is a prefix of that of (0, 1, 2). A condition's first k
    episodes of a seed are the same whatever its count.
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if in_distribution_episodes < 0:
        raise ValueError(f"--in-distribution-episodes must be >= 0 (0 = --episodes), got {in_distribution_episodes}")
    if not seeds:
        raise ValueError("--seeds needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds repeats a seed: {list(seeds)}")
    for s in seeds:
        check_seed(s, "--seeds")
    conds = resolve_conditions(conditions)
    def count(c) -> int:
        return in_distribution_episodes if in_distribution_episodes and c.name == "in-distribution" else episodes

    return [e for s in seeds for c in conds for e in sample_episodes(c, s, count(c))]


def _manifest_dimensions(path: str) -> dict[str, str]:
    """Dimensions of the conditions a manifest file describes (for user conditions not registered here)."""
    with open(path) as f:
        conds = json.load(f).get("conditions") or {}
    return {name: spec.get("dimension", "-") for name, spec in conds.items() if isinstance(spec, dict)}


def _policy_threads(cfg: EvalConfig | RenderConfig) -> AbstractContextManager:
    """torch's threads for a learned policy (scripted ones never import torch)."""
    return nullcontext() if cfg.policy in BUILTIN_POLICIES else torch_threads(cfg.torch_threads)


def evaluate(cfg: EvalConfig) -> dict:
    """Evaluate cfg.policy on every condition x seed; returns the results document (see eval/results.py).

    Writes it atomically to cfg.out when set (output paths are checked first: a bad one fails before the work, and
    a write that still fails at the end saves the results elsewhere and says where). Library entry point of the
    study pipeline.
    """
    t0 = time.perf_counter()
    check_at_least(cfg, ("env.num_envs", "env.image_size"))
    check_at_least(cfg, ("torch_threads",), 0)
    check_workers(cfg.env.workers)
    if cfg.sample_seed is not None:
        check_seed(cfg.sample_seed, "--sample-seed")
    if cfg.temperature < 0:
        raise ValueError(f"--temperature must be >= 0 (0 = greedy), got {cfg.temperature}")
    check_device(cfg.device)
    check_backend(cfg.env.backend)
    if cfg.policy not in BUILTIN_POLICIES:
        resolve_device(cfg.device)  # --device cuda without a GPU fails before the work, not after the manifest
    for path, what in ((cfg.out, "--out"), (cfg.save_manifest, "--save-manifest")):
        if path:
            check_output_file(path, what)
    if cfg.conditions_file:
        register(load_conditions_file(cfg.conditions_file))
    dims = None
    if cfg.manifest:
        episodes = read_manifest(cfg.manifest)
        dims = _manifest_dimensions(cfg.manifest)
    else:
        episodes = eval_episodes(cfg.conditions, cfg.seeds, cfg.episodes, cfg.in_distribution_episodes)
    if not episodes:
        raise ValueError("no episodes to evaluate")
    if cfg.save_manifest:
        write_manifest(cfg.save_manifest, episodes)
    info = policy_info(cfg.policy)  # hashes the checkpoint file that is about to be loaded
    sample_seed = episodes[0].seed if cfg.sample_seed is None else cfg.sample_seed
    policy = seeded_policy(cfg.policy, seed=sample_seed, device=cfg.device)
    env = TabletopVecEnv(env_config(cfg.env, num_envs=min(cfg.env.num_envs, len(episodes)),
                                    pretraining_assets=episodes_use_pretraining_assets(episodes)))
    try:
        with _policy_threads(cfg):
            res = run_episodes(env, policy, episodes, temperature=cfg.temperature, progress=cfg.progress,
                               desc=f"eval {cfg.label or cfg.policy}")
    finally:
        env.close()
    settings = {"conditions": list(cfg.conditions), "episodes_per_condition_seed": cfg.episodes,
                "in_distribution_episodes": cfg.in_distribution_episodes or cfg.episodes,
                "manifest_file": cfg.manifest, "conditions_file": cfg.conditions_file,
                "temperature": cfg.temperature, "sample_seed": sample_seed, "image_size": cfg.env.image_size,
                "num_envs": cfg.env.num_envs, "workers": env.workers}
    if cfg.manifest:
        settings["episodes_per_condition_seed"] = settings["in_distribution_episodes"] = None
    out = make_results(episodes, [r.success for r in res], [r.ever_grasped for r in res], [r.ret for r in res],
                       policy=info, label=cfg.label, dimensions=dims, settings=settings,
                       wall_s=time.perf_counter() - t0)
    if cfg.out:
        write_results(cfg.out, out)
    return out


def format_results(doc: dict) -> str:
    """A plain-text table of a results document: per condition, then per dimension."""
    lines = [f"{doc['label']} ({doc['policy']['spec']}), seeds {doc['seeds']}, manifest {doc['manifest_hash']}",
             f"{'condition':26s} {'dimension':10s} {'success':>8s} {'95% CI':>15s} {'grasp':>6s} {'episodes':>8s}"]
    for name, r in doc["conditions"].items():
        lo, hi = r["ci95"]
        grasp = "-" if r["grasp_rate"] is None else f"{r['grasp_rate']:.3f}"
        lines.append(f"{name:26s} {r['dimension']:10s} {r['success_rate']:8.3f} {f'[{lo:.3f}, {hi:.3f}]':>15s} "
                     f"{grasp:>6s} {r['episodes']:8d}")
    for d, r in doc["dimensions"].items():
        ret = "-" if r["retention"] is None else f"{r['retention']:.3f}"
        lines.append(f"{'average ' + d:26s} {d:10s} {r['success']:8.3f}   retention {ret}")
    lines.append(f"wall-clock {doc['wall_s']:.1f} s" if doc.get("wall_s") is not None else "")
    return "\n".join(lines).rstrip()


def render(cfg: RenderConfig) -> list[Path]:
    """Record cfg.episodes episodes per condition: one video each plus a contact sheet PNG (see record_media)."""
    check_at_least(cfg, ("env.num_envs", "env.image_size", "sheet_columns"))
    check_at_least(cfg, ("torch_threads",), 0)
    check_workers(cfg.env.workers)
    check_seed(cfg.seed)
    check_backend(cfg.env.backend)
    if cfg.conditions_file:
        register(load_conditions_file(cfg.conditions_file))
    with _policy_threads(cfg):
        index = record_media(cfg.policy, cfg.out, cfg.conditions, cfg.episodes, seed=cfg.seed,
                             size=cfg.env.image_size, workers=cfg.env.workers, num_envs=cfg.env.num_envs,
                             sheet_columns=cfg.sheet_columns, backend=cfg.env.backend,
                             ray_address=cfg.env.ray_address)
    out = Path(cfg.out)
    return [out / v["file"] for v in index["videos"]] + [out / index["contact_sheet"]]


def list_conditions(cfg: ConditionsConfig) -> list[dict]:
    if cfg.conditions_file:
        register(load_conditions_file(cfg.conditions_file))
    rows = [{"name": c.name, "dimension": c.dimension, "description": c.description} for c in CONDITIONS.values()]
    if cfg.json:
        print(json.dumps(rows))
    else:
        for i, r in enumerate(rows):
            print(f"{i:2d}  {r['name']:26s} {r['dimension']:10s} {r['description']}")
        print("data sources for `collect --conditions` (not conditions: never evaluated):")
        for c in SOURCES.values():
            print(f"    {c.name:26s} {'':10s} {c.description}")
    return rows
