"""`rl4vla collect`: run the scripted expert and append successful demos to a dataset; or, with --driver, run a
learned policy and record the expert's label of every step it visits (DAgger)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rl4vla.bench.conditions import resolve_conditions, sample_episode, uses_pretraining_assets
from rl4vla.bench.contract import POSITION, proprio_from_state
from rl4vla.bench.env import TabletopVecEnv, env_config
from rl4vla.bench.ray_backend import check_backend
from rl4vla.config import CollectConfig
from rl4vla.data.demos import (
    FORMAT,
    SUCCESS_STREAK,
    VERSION,
    DatasetError,
    Demonstration,
    damaged_shards,
    keep_mask,
    read_meta,
    update_meta,
    write_shard,
)
from rl4vla.policy.base import BUILTIN, make_policy, policy_info
from rl4vla.util import atomic_write_text, check_at_least, check_output_dir, check_seed, check_workers, torch_threads

# what a dataset's meta.json records of how it was collected (appending must match), with the value of a dataset
# written before the key existed
SETTINGS = {"image_size": None, "seed": None, "conditions": None, "noise": 0.0, "driver": None,
            "driver_temperature": None, "driver_mix": None}


def _new_meta(cfg: CollectConfig) -> dict:
    driven = cfg.driver is not None
    return {"format": FORMAT, "version": VERSION, "image_size": cfg.env.image_size, "seed": cfg.seed,
            "conditions": list(cfg.conditions), "shards": [], "episodes": 0, "transitions": 0, "next_index": 0,
            "action_q01": None, "action_q99": None, "noise": cfg.noise,
            "driver": _driver_identity(cfg.driver) if driven else None,
            "driver_temperature": cfg.driver_temperature if driven else None,
            "driver_mix": cfg.driver_mix if driven else None}


def _driver_identity(spec: str) -> dict:
    """The driver's content hash and kind: appending with another checkpoint at the same path is refused."""
    info = policy_info(spec)
    return {"kind": info["kind"], "sha256": info.get("sha256")}


def _check_driver(cfg: CollectConfig) -> None:
    if cfg.driver is None:
        return
    if cfg.driver in BUILTIN:
        raise ValueError(f"--driver takes a learned policy (a checkpoint or pretrained:NAME), got {cfg.driver!r}: "
                         "without --driver the expert drives")
    if not 0 <= cfg.driver_mix < 1:
        raise ValueError(f"--driver-mix is the probability of executing the expert's action instead of the "
                         f"driver's, in [0, 1), got {cfg.driver_mix}")
    if cfg.driver_temperature < 0:
        raise ValueError(f"--driver-temperature must be >= 0 (0 = greedy), got {cfg.driver_temperature}")
    if policy_info(cfg.driver)["kind"] == "other":
        raise ValueError(f"--driver {cfg.driver!r} is neither a checkpoint file nor a pretrained model "
                         "(`rl4vla pretrained` lists the shipped ones)")


def collect(cfg: CollectConfig) -> dict:
    """Collect until the dataset at cfg.out holds cfg.episodes successful demos (resumes and appends); first
    re-collect the episodes of any shard that is missing or cannot be opened."""
    import json

    check_at_least(cfg, ("episodes", "env.num_envs", "env.image_size"))
    check_workers(cfg.env.workers)
    check_seed(cfg.seed)
    check_backend(cfg.env.backend)
    _check_driver(cfg)
    if not 0 <= cfg.noise <= 0.02:
        raise ValueError(f"--noise must be in [0, 0.02] m (the expert moves at most 0.035 m a step), got {cfg.noise}")
    conds = resolve_conditions(cfg.conditions)
    root = check_output_dir(cfg.out)
    if (root / "meta.json").exists():
        meta, asked = read_meta(root), _new_meta(cfg)
        for key, before in SETTINGS.items():
            want, have = asked[key], meta.get(key, before)
            if have != want:
                raise ValueError(f"{root} was collected with {key}={have!r}; got {want!r}. "
                                 "Use the same settings to append, or another --out")
    else:
        meta = _new_meta(cfg)
        atomic_write_text(root / "meta.json", json.dumps(meta, indent=1))
    for stale in root.glob(".tmp-shard_*.h5"):  # an interrupted wave: its shard never landed
        stale.unlink()
    driver = None if cfg.driver is None else make_policy(cfg.driver)
    threads = nullcontext() if driver is None else torch_threads(cfg.torch_threads)
    with threads:
        for shard in damaged_shards(root, meta):
            _recollect(root, meta, shard, cfg, conds, driver)
        if meta["episodes"] >= cfg.episodes:
            print(f"{root} already holds {meta['episodes']} episodes", file=sys.stderr)
            return meta
        return _collect_waves(root, meta, cfg, conds, driver)


def _collect_waves(root: Path, meta: dict, cfg: CollectConfig, conds, driver) -> dict:
    import json

    env = TabletopVecEnv(env_config(cfg.env, pretraining_assets=uses_pretraining_assets(conds)))
    bar = tqdm(total=cfg.episodes, initial=meta["episodes"], desc="collect demos" if driver is None else
               f"collect DAgger ({cfg.driver} drives)")
    try:
        while meta["episodes"] < cfg.episodes:
            start = meta["next_index"]
            kept = _wave(env, cfg, conds, start, driver)[: cfg.episodes - meta["episodes"]]
            shard = f"shard_{len(meta['shards']):05d}.h5"
            if kept:
                write_shard(root / shard, kept)
                meta = update_meta(root, meta, shard, kept, start, env.num_envs)
            else:  # nothing kept: only advance the episode counter
                meta = {**meta, "next_index": start + env.num_envs}
                atomic_write_text(root / "meta.json", json.dumps(meta, indent=1))
            bar.update(len(kept))
            bar.set_postfix(transitions=meta["transitions"], attempted=meta["next_index"],
                            **({} if driver is None else {"succeeded": meta.get("succeeded", 0)}))
    finally:
        bar.close()
        env.close()
    return meta


def _wave(env: TabletopVecEnv, cfg: CollectConfig, conds, start: int, driver=None) -> list[Demonstration]:
    """The demos of the wave of env.num_envs episodes from index `start` (a function of the settings and `start`
    only: the noise, the driver's sampling and its mixing with the expert are seeded per wave, so a resumed or
    repaired wave is the same)."""
    eps = [sample_episode(conds[i % len(conds)], cfg.seed, i) for i in range(start, start + env.num_envs)]
    noise = np.random.default_rng([cfg.seed, start]) if cfg.noise else None
    if driver is None:
        return _run_wave(env, make_policy("expert"), eps, cfg.noise, noise)
    import torch

    torch.manual_seed(cfg.seed * 1_000_003 + start)
    drive = Driver(driver, cfg.driver_temperature, cfg.driver_mix, np.random.default_rng([cfg.seed, start, 1]))
    return _run_wave(env, make_policy("expert"), eps, cfg.noise, noise, drive)


class Driver:
    """What DAgger executes: the learned policy's sampled action, or with probability `mix` a step the expert's."""

    def __init__(self, policy, temperature: float, mix: float, rng: np.random.Generator):
        self.policy, self.temperature, self.mix, self.rng = policy, temperature, mix, rng

    def executed(self, obs: dict, expert_actions: np.ndarray) -> np.ndarray:
        out = np.array(self.policy.act(obs, temperature=self.temperature).actions, dtype=np.float64)
        if self.mix:
            take = self.rng.random(len(out)) < self.mix
            out[take] = expert_actions[take]
        return out


def _recollect(root: Path, meta: dict, shard: str, cfg: CollectConfig, conds, driver=None) -> None:
    """Write a missing or corrupt shard again: its wave's episodes are known (meta.json's waves), so re-running
    them gives the same demos."""
    wave = meta.get("waves", {}).get(shard)
    if wave is None:
        raise DatasetError(f"{root / shard} is missing or corrupt, and {root}/meta.json (from an older rl4vla) does "
                           "not record which episodes it held: collect a new dataset with another --out")
    print(f"{root / shard} is missing or corrupt: re-collecting its wave (episodes {wave['start']} to "
          f"{wave['start'] + wave['size'] - 1})", file=sys.stderr)
    env = TabletopVecEnv(env_config(cfg.env, num_envs=wave["size"], pretraining_assets=uses_pretraining_assets(conds)))
    try:
        kept = _wave(env, cfg, conds, wave["start"], driver)[: wave["episodes"]]
    finally:
        env.close()
    transitions = sum(len(e.actions) for e in kept)
    if (len(kept), transitions) != (wave["episodes"], wave["transitions"]):
        raise DatasetError(f"re-collecting {root / shard} gave {len(kept)} demos of {transitions} steps, not the "
                           f"{wave['episodes']} of {wave['transitions']} it held (another simulator or rl4vla "
                           "version?): collect a new dataset with another --out")
    write_shard(root / shard, kept)


def _run_wave(env: TabletopVecEnv, expert, eps, noise: float = 0.0, rng: np.random.Generator | None = None,
              driver: Driver | None = None) -> list[Demonstration]:
    """Play one wave; keep successful episodes, cut 6 steps into success, drop near-idle steps.
    With noise > 0 the executed actions are perturbed; with a driver they are the driver's, and every episode is
    kept (its success recorded). The recorded actions are always the expert's."""
    n = env.num_envs
    obs, _ = env.reset(options={"episodes": eps})
    frames = [[] for _ in range(n)]
    actions = [[] for _ in range(n)]
    proprio = [[] for _ in range(n)]
    streak = np.zeros(n, int)
    done = np.zeros(n, bool)
    for _ in range(env.config.max_steps):
        act = expert.act(obs).actions
        prop = proprio_from_state(obs["state"])
        for j in np.flatnonzero(~done):
            frames[j].append(obs["rgb"][j])
            actions[j].append(act[j])
            proprio[j].append(prop[j])
        executed = act if driver is None else driver.executed(obs, act)
        if noise:
            executed = executed.copy()
            executed[:, POSITION] += rng.normal(0.0, noise, (n, 3))
            executed[:, 5] += rng.normal(0.0, 10 * noise, n)
        obs, _, term, trunc, info = env.step(executed)
        streak = np.where(info["success"], streak + 1, 0)
        done |= (streak >= SUCCESS_STREAK) | term | trunc
        if done.all():
            break
    out = []
    for j in range(n):
        success = bool(streak[j] >= SUCCESS_STREAK or info["success"][j])
        if not success and driver is None:
            continue  # only the expert's successful demonstrations are kept
        a = np.asarray(actions[j], np.float32)
        keep = keep_mask(a)
        if not keep.any():
            continue
        out.append(Demonstration(np.stack(frames[j])[keep], a[keep], np.asarray(proprio[j], np.float32)[keep],
                                 eps[j].instruction, eps[j].condition, success, eps[j].to_dict()))
    return out
