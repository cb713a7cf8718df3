"""The eval and render commands: episodes from conditions, a policy, results and media."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from rl4vla.bench.conditions import (
    CONDITIONS,
    load_conditions_file,
    manifest_hash,
    read_manifest,
    register,
    resolve_conditions,
    sample_episodes,
    write_manifest,
)
from rl4vla.bench.env import EnvConfig, TabletopVecEnv
from rl4vla.config import ConditionsConfig, EvalConfig, RenderConfig
from rl4vla.eval.evaluator import run_episodes, summarize
from rl4vla.eval.video import caption, contact_sheet, outcome_border, save_png, write_video
from rl4vla.policy.base import make_policy
from rl4vla.util import atomic_write_text


def evaluate(cfg: EvalConfig) -> dict:
    """Evaluate cfg.policy on every condition; returns (and optionally prints/writes) the results dict."""
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    if cfg.conditions_file:
        register(load_conditions_file(cfg.conditions_file))
    if cfg.manifest:
        episodes = read_manifest(cfg.manifest)
    else:
        episodes = [e for c in resolve_conditions(cfg.conditions) for e in sample_episodes(c, cfg.seed, cfg.episodes)]
    if cfg.save_manifest:
        write_manifest(cfg.save_manifest, episodes)
    policy = make_policy(cfg.policy, seed=cfg.seed)
    env = TabletopVecEnv(EnvConfig(num_envs=min(cfg.num_envs, len(episodes)), workers=cfg.workers,
                                   image_size=cfg.image_size))
    try:
        results = run_episodes(env, policy, episodes, temperature=cfg.temperature, progress=not cfg.json,
                               desc=f"eval {cfg.policy}")
    finally:
        env.close()
    out = {"policy": cfg.policy, "seed": cfg.seed, "manifest_hash": manifest_hash(episodes),
           "conditions": summarize(results)}
    text = json.dumps(out, indent=1)
    if cfg.out:
        atomic_write_text(cfg.out, text)
    if cfg.json:
        print(json.dumps(out))
    else:
        print(f"{'condition':28s} {'success':>8s} {'grasp':>8s} {'episodes':>9s}")
        for name, r in out["conditions"].items():
            print(f"{name:28s} {r['success_rate']:8.3f} {r['grasp_rate']:8.3f} {r['episodes']:9d}")
    return out


def render(cfg: RenderConfig) -> list[Path]:
    """Record cfg.episodes episodes per condition: one video each plus a contact sheet PNG."""
    if cfg.conditions_file:
        register(load_conditions_file(cfg.conditions_file))
    conds = resolve_conditions(cfg.conditions)
    policy = make_policy(cfg.policy, seed=cfg.seed)
    episodes = [e for c in conds for e in sample_episodes(c, cfg.seed, cfg.episodes)]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    env = TabletopVecEnv(EnvConfig(num_envs=min(8, len(episodes)), workers=cfg.workers, image_size=cfg.size))
    frames: dict[int, list[np.ndarray]] = {}
    state: dict[int, dict] = {}

    def on_step(start, obs, pout, info):
        phases = (pout.extras or {}).get("phase")
        for j in range(len(obs["rgb"])):
            k = start + j
            if k >= len(episodes):
                continue
            ep = episodes[k]
            t = int(info["elapsed_steps"][j])
            status = "SUCCESS" if info["success"][j] else ("grasped" if info["ever_grasped"][j] else "")
            lines = [ep.instruction, f"{ep.condition}  t={t:02d}  {phases[j] if phases else ''}  {status}"]
            frames.setdefault(k, []).append(caption(obs["rgb"][j], lines))
            st = state.setdefault(k, {"first_success": None})
            st["success"] = bool(info["success"][j])
            if st["success"] and st["first_success"] is None:
                st["first_success"] = t

    try:
        run_episodes(env, policy, episodes, on_step=on_step, desc=f"render {cfg.policy}")
    finally:
        env.close()
    written, rows, labels = [], [], []
    for k, ep in enumerate(episodes):
        ok = state[k]["success"]
        fs = frames[k]
        fs[-1] = outcome_border(fs[-1], ok)
        name = f"{k:03d}_{ep.condition}_{ep.target_object.replace(' ', '-')}_{'success' if ok else 'failure'}"
        written.append(write_video(out / name, fs))
        # the sheet shows the interesting part: up to a little after the first success
        end = len(fs) - 1 if state[k]["first_success"] is None else min(len(fs) - 1, state[k]["first_success"] + 3)
        pick = np.linspace(0, end, cfg.sheet_columns).round().astype(int)
        rows.append([fs[i] for i in pick])
        labels.append(f"{ep.condition}: {ep.instruction} -> {'success' if ok else 'failure'}")
    sheet = save_png(out / "contact_sheet.png", contact_sheet(rows, labels))
    written.append(sheet)
    print(f"wrote {len(episodes)} videos and {sheet}", file=sys.stderr)
    return written


def list_conditions(cfg: ConditionsConfig) -> list[dict]:
    if cfg.conditions_file:
        register(load_conditions_file(cfg.conditions_file))
    rows = [{"name": c.name, "dimension": c.dimension, "description": c.description} for c in CONDITIONS.values()]
    if cfg.json:
        print(json.dumps(rows))
    else:
        for i, r in enumerate(rows):
            print(f"{i:2d}  {r['name']:26s} {r['dimension']:10s} {r['description']}")
    return rows
