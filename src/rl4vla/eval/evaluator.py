"""Run a policy on pinned episodes and report success per condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from rl4vla.bench.conditions import Episode
from rl4vla.bench.env import TabletopVecEnv
from rl4vla.protocol import EVAL_TEMPERATURE


@dataclass
class EpisodeResult:
    episode: Episode
    success: bool
    ever_grasped: bool
    ret: float
    steps: int


def run_episodes(env: TabletopVecEnv, policy, episodes: list[Episode], temperature: float = EVAL_TEMPERATURE,
                 on_step: Callable[[int, dict, object, dict], None] | None = None,
                 progress: bool = True, desc: str = "episodes") -> list[EpisodeResult]:
    """Play `episodes` in waves of env.num_envs; the last wave is padded and the padding ignored.

    Every episode runs its full length (the env must not terminate early), so a wave ends together.

    `on_step(wave_start, obs, policy_output, info)` is called after every step (for videos).
    """
    if env.config.early_termination:
        raise ValueError("evaluation judges the final step: use an env with early_termination=False")
    missing = [m for m in ("reset", "act") if not callable(getattr(policy, m, None))]
    if missing:
        raise TypeError(f"{type(policy).__name__} lacks {', '.join(missing)}: a policy needs reset() and "
                        "act(obs, temperature) -> PolicyOutput (rl4vla.bench.contract.Policy)")
    n = env.num_envs
    results: list[EpisodeResult] = []
    bar = tqdm(total=len(episodes), desc=desc, disable=not progress, leave=False)
    for start in range(0, len(episodes), n):
        wave = episodes[start : start + n]
        real = len(wave)
        wave = wave + [wave[-1]] * (n - real)
        obs, _ = env.reset(options={"episodes": wave})
        policy.reset()
        done = np.zeros(n, bool)
        final: dict[str, np.ndarray] = {}
        while not done.all():
            out = policy.act(obs, temperature=temperature)
            obs, _, term, trunc, info = env.step(out.actions)
            if on_step is not None:
                on_step(start, obs, out, info)
            ended = (term | trunc) & ~done
            for k, v in info.items():
                final.setdefault(k, np.zeros_like(v))
                final[k][ended] = v[ended]
            done |= term | trunc
        for j in range(real):
            results.append(EpisodeResult(episode=wave[j], success=bool(final["success"][j]),
                                         ever_grasped=bool(final["ever_grasped"][j]), ret=float(final["return"][j]),
                                         steps=int(final["elapsed_steps"][j])))
        bar.update(real)
    bar.close()
    return results


def summarize(results: list[EpisodeResult]) -> dict:
    """Per-condition success and grasp rates, in first-seen condition order."""
    out: dict[str, dict] = {}
    for r in results:
        out.setdefault(r.episode.condition, []).append(r)
    summary = {}
    for name, rs in out.items():
        summary[name] = {
            "success_rate": float(np.mean([r.success for r in rs])),
            "grasp_rate": float(np.mean([r.ever_grasped for r in rs])),
            "mean_return": float(np.mean([r.ret for r in rs])),
            "episodes": len(rs),
            "successes": int(sum(r.success for r in rs)),
        }
    return summary


def seeded_policy(spec: str, seed: int = 0, device: str = "auto"):
    """make_policy(spec, device=device) with its sampling made reproducible: learned policies sample with torch's
    global RNG (torch.manual_seed seeds the GPU's generator too)."""
    import sys

    from rl4vla.policy.base import make_policy

    policy = make_policy(spec, seed=seed, device=device)
    if "torch" in sys.modules:  # only learned policies import torch; don't pay the import for scripted ones
        sys.modules["torch"].manual_seed(seed)
    return policy


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
