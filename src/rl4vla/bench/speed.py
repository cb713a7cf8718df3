"""`rl4vla bench sim`: env steps per second with random actions and RGB observations."""

from __future__ import annotations

import json
import time

import numpy as np

from rl4vla.bench.env import EnvConfig, TabletopVecEnv
from rl4vla.config import BenchSimConfig


def bench_sim(cfg: BenchSimConfig) -> dict:
    env = TabletopVecEnv(EnvConfig(num_envs=cfg.num_envs, workers=cfg.workers, image_size=cfg.size,
                                   max_steps=cfg.steps), conditions=list(cfg.conditions))
    rng = np.random.default_rng(0)
    scale = np.array([0.02, 0.02, 0.02, 0.1, 0.1, 0.1, 1.0])
    rates, reset_s = [], []
    try:
        env.reset(seed=0)  # warm-up: GL contexts, first frames
        for r in range(cfg.repeats):
            t0 = time.perf_counter()
            env.reset(seed=r + 1)
            t1 = time.perf_counter()
            for _ in range(cfg.steps):
                env.step(rng.uniform(-1, 1, (cfg.num_envs, 7)) * scale)
            t2 = time.perf_counter()
            rates.append(cfg.num_envs * cfg.steps / (t2 - t1))
            reset_s.append(t1 - t0)
    finally:
        env.close()
    out = {
        "env_steps_per_s": float(np.median(rates)),
        "env_steps_per_s_min": float(np.min(rates)),
        "env_steps_per_s_max": float(np.max(rates)),
        "reset_s_median": float(np.median(reset_s)),
        "size": cfg.size, "workers": cfg.workers, "num_envs": cfg.num_envs, "repeats": cfg.repeats,
        "conditions": list(cfg.conditions),
    }
    if cfg.json:
        print(json.dumps(out))
    else:
        print(f"env steps/s: median {out['env_steps_per_s']:.0f} (min {out['env_steps_per_s_min']:.0f}, "
              f"max {out['env_steps_per_s_max']:.0f}) over {cfg.repeats} repeats; {cfg.num_envs} envs, "
              f"{cfg.workers} workers, {cfg.size}x{cfg.size} RGB; reset {out['reset_s_median'] * 1000:.0f} ms")
    return out
