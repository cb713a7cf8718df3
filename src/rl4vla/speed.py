"""`rl4vla bench sim` and `rl4vla bench policy`: env steps per second, and the VLA's inference and training
throughput. One module above the simulator, the policy and the trainers, since the policy benchmark times a real
rollout with the trainers' presets."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import torch

from rl4vla.algos.sft import PRESETS
from rl4vla.bench.contract import PROPRIO_DIM
from rl4vla.bench.env import TabletopVecEnv, env_config
from rl4vla.config import EnvArgs
from rl4vla.policy.tokenizer import ActionTokenizer
from rl4vla.policy.vla import SmallVLA, VLAConfig
from rl4vla.util import check_at_least, resolve_device, torch_threads


@dataclass(frozen=True)
class BenchSimConfig:
    """Environment throughput: env steps per second with random actions and RGB observations."""

    env: EnvArgs = EnvArgs()
    """the scenes timed"""
    steps: int = 80
    """control steps per repeat (one episode)"""
    repeats: int = 5
    """timed repeats; the median is reported"""
    conditions: tuple[str, ...] = ("in-distribution",)
    """conditions the scenes draw episodes from"""
    json: bool = False
    """print one JSON object on stdout"""


@dataclass(frozen=True)
class BenchPolicyConfig:
    """Small-VLA throughput on random frames: inference (act) and a training step."""

    batch: int = 32
    """inference batch size"""
    train_batch: int = 64
    """training batch size"""
    repeats: int = 5
    """timed repeats; the median is reported"""
    model: VLAConfig = PRESETS["sft"].model
    """architecture (default: the SFT presets' model; `--model.image-encoder conv` for the other encoder)"""
    env: EnvArgs = EnvArgs(image_size=None)
    """the rollout's scenes: --env.num-envs env rows of a rollout step (the target: policy time per 16-env step
    below sim time), at the policy's input size unless --env.image-size says otherwise"""
    rollout_steps: int = 80
    """then time a real rollout: --env.num-envs scenes in env workers and the policy in one loop, as RL collects
    (one episode); reports policy and sim ms per step, the target's two sides (0 skips it)"""
    torch_threads: int = 0
    """torch intra-op threads (0 = auto: torch's default, at most 4)"""
    device: str = "auto"
    """where the VLA runs: auto (cuda when torch.cuda.is_available(), else cpu), cpu or cuda (an error when no GPU
    is present)"""
    json: bool = False
    """print one JSON object"""


def bench_policy(cfg: BenchPolicyConfig) -> dict:
    dev = resolve_device(cfg.device)
    with torch_threads(cfg.torch_threads):
        return _bench(cfg, dev)


def _synced(dev: torch.device) -> float:
    """time.perf_counter() once the device has finished its queued work (GPU kernels run asynchronously)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter()


def _bench(cfg: BenchPolicyConfig, dev: torch.device) -> dict:
    rng = np.random.default_rng(0)
    tok = ActionTokenizer(tuple([-0.05] * 6 + [-1.0]), tuple([0.05] * 6 + [1.0]))
    model = SmallVLA(cfg.model, tok).to(dev)
    s = cfg.model.image_size

    def obs(n):
        return {"rgb": rng.integers(0, 255, (n, s, s, 3), dtype=np.uint8), "instruction": ["put carrot on plate"] * n,
                "proprio": rng.normal(size=(n, PROPRIO_DIM)).astype(np.float32)}

    o = obs(cfg.batch)
    model.eval()
    model.act(o)  # warm-up (and the one-off text-encoder load)
    infer, step_ms = [], []
    o16 = obs(cfg.env.num_envs)
    for _ in range(cfg.repeats):
        t = time.perf_counter()
        model.act(o, temperature=1.0)
        infer.append(cfg.batch / (time.perf_counter() - t))
        t = time.perf_counter()
        model.act(o16, temperature=1.0)
        step_ms.append(1000 * (time.perf_counter() - t))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ot = obs(cfg.train_batch)
    if model.has_frozen_image_encoder:  # trainers encode frames once and train on the cached features
        ot["image_features"] = model.frozen_features(ot["rgb"])
    tokens = torch.as_tensor(rng.integers(0, 256, (cfg.train_batch, 7)), device=dev)
    train = []
    for r in range(cfg.repeats + 1):
        t = _synced(dev)
        loss = torch.nn.functional.cross_entropy(model.logits(ot, tokens).reshape(-1, 256), tokens.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if r:  # the first step is a warm-up
            train.append(cfg.train_batch / (_synced(dev) - t))
    out = {"infer_samples_per_s": float(np.median(infer)), "train_samples_per_s": float(np.median(train)),
           "rollout_step_policy_ms": float(np.median(step_ms)), "rollout_batch": cfg.env.num_envs,
           "image_encoder": cfg.model.image_encoder, "batch": cfg.batch, "train_batch": cfg.train_batch,
           "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
           "torch_threads": torch.get_num_threads()}
    out["encoder_precision"] = cfg.model.encoder_precision
    if model.has_frozen_image_encoder:
        out["encoder_kernels"] = model.image_encoder.kernels
    out["device"] = str(dev)
    if cfg.rollout_steps:
        out.update(_rollout_split(model, cfg))
    lines = [f"{cfg.model.image_encoder}: inference {out['infer_samples_per_s']:.0f} samples/s (batch {cfg.batch}); "
             f"{out['rollout_step_policy_ms']:.0f} ms per {cfg.env.num_envs}-env rollout step; training "
             f"{out['train_samples_per_s']:.0f} samples/s (batch {cfg.train_batch}); {out['params_m']:.2f} M params"
             + (f"; encoder kernels {out['encoder_kernels']}" if "encoder_kernels" in out else "")]
    if cfg.rollout_steps:
        lines.append(f"rollout of {cfg.env.num_envs} scenes x {cfg.rollout_steps} steps: policy "
                     f"{out['rollout_policy_ms']:.0f} ms, sim {out['rollout_sim_ms']:.0f} ms per step "
                     f"(policy / sim = {out['policy_over_sim']:.2f})")
    return _show(out, cfg.json, lines)


def _show(out: dict, as_json: bool, lines: list[str]) -> dict:
    """Print a benchmark's result as one JSON object or as its text lines; returns it."""
    print(json.dumps(out) if as_json else "\n".join(lines))
    return out


def _rollout_split(model: SmallVLA, cfg: BenchPolicyConfig) -> dict:
    """Policy vs sim time per step of one real rollout (`rl4vla.algos.rollout.collect`, as PPO runs it)."""
    from rl4vla.algos.rollout import collect
    from rl4vla.bench.conditions import resolve_conditions, sample_episodes

    cond = resolve_conditions(["in-distribution"])[0]
    env = TabletopVecEnv(env_config(cfg.env, image_size=cfg.env.image_size or cfg.model.image_size,
                                    max_steps=cfg.rollout_steps), [cond])
    eps = sample_episodes(cond, 0, cfg.env.num_envs)
    try:
        collect(env, model, eps, 2)  # warm-up: GL contexts, first frames
        r = collect(env, model, eps, cfg.rollout_steps, refill=lambda k: eps[:k])
    finally:
        env.close()
    steps = len(r.tokens)
    return {"rollout_policy_ms": 1000 * r.policy_s / steps, "rollout_sim_ms": 1000 * r.sim_s / steps,
            "policy_over_sim": r.policy_s / r.sim_s, "rollout_steps": steps}


def bench_sim(cfg: BenchSimConfig) -> dict:
    check_at_least(cfg, ("env.num_envs", "env.image_size"))
    env = TabletopVecEnv(env_config(cfg.env, max_steps=cfg.steps), conditions=list(cfg.conditions))
    n, size = cfg.env.num_envs, cfg.env.image_size
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
                env.step(rng.uniform(-1, 1, (n, 7)) * scale)
            t2 = time.perf_counter()
            rates.append(n * cfg.steps / (t2 - t1))
            reset_s.append(t1 - t0)
    finally:
        env.close()
    out = {
        "env_steps_per_s": float(np.median(rates)),
        "env_steps_per_s_min": float(np.min(rates)),
        "env_steps_per_s_max": float(np.max(rates)),
        "reset_s_median": float(np.median(reset_s)),
        "size": size, "workers": env.workers, "num_envs": n, "repeats": cfg.repeats,
        "conditions": list(cfg.conditions),
    }
    return _show(out, cfg.json, [
        f"env steps/s: median {out['env_steps_per_s']:.0f} (min {out['env_steps_per_s_min']:.0f}, "
        f"max {out['env_steps_per_s_max']:.0f}) over {cfg.repeats} repeats; {n} envs, "
        f"{out['workers']} workers, {size}x{size} RGB; reset {out['reset_s_median'] * 1000:.0f} ms"])
