"""The run directory the trainers share: opening it (device, directory, the checkpoint to resume), checkpoints
of CPU tensors written atomically, config.json and summary.json, the metrics log (metrics.jsonl and TensorBoard)
that survives a kill, and the in-distribution evaluation hook that logs success curves."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

import torch

from rl4vla.protocol import EVAL_TEMPERATURE, TRAIN_EVAL_SEED
from rl4vla.util import (
    atomic_torch_save,
    atomic_write_text,
    check_output_dir,
    on_cpu,
    resolve_device,
    resume_checkpoint,
)


def open_run(cfg, may_change: Iterable[str]) -> tuple[torch.device, Path, dict | None]:
    """Before any work: the device (--device cuda without a GPU fails now), the run directory cfg.out (created and
    known writable) and the checkpoint to continue from (None for a new run; a ValueError for other settings)."""
    dev = resolve_device(cfg.device)
    run = check_output_dir(cfg.out)
    return dev, run, resume_checkpoint(cfg, may_change)


def restore(ck: dict, opt: torch.optim.Optimizer, dev: torch.device) -> None:
    """A checkpoint's optimizer state (it moves to the parameters' device) and RNG states."""
    opt.load_state_dict(ck["optimizer"])
    torch.set_rng_state(ck["torch_rng"])
    if dev.type == "cuda" and ck.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(ck["cuda_rng"], dev)


def save_checkpoint(path: Path, cfg, model, opt: torch.optim.Optimizer, dev: torch.device, **state) -> None:
    """model, optimizer, the trainer's own `state`, the RNG states and the config, atomically and as CPU tensors
    only: the run resumes on any device."""
    extra = {"cuda_rng": torch.cuda.get_rng_state(dev)} if dev.type == "cuda" else {}
    atomic_torch_save(on_cpu({"model": model.state(), "optimizer": opt.state_dict(), **state,
                              "torch_rng": torch.get_rng_state(), "config": dataclasses.asdict(cfg), **extra}), path)


def write_json(path: Path, doc) -> None:
    """config.json (a config dataclass) or summary.json, atomically."""
    atomic_write_text(path, json.dumps(dataclasses.asdict(doc) if dataclasses.is_dataclass(doc) else doc, indent=1))


def _rows_until(path: Path, step: int) -> list[str]:
    """The lines of a metrics.jsonl or episodes.jsonl logged at steps <= step (a line torn by a kill is dropped)."""
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            if json.loads(line)["step"] <= step:
                rows.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return rows


class RunLogger:
    """JSONL (always) and TensorBoard (when installed) under fixed namespaces; with `episodes`, also
    episodes.jsonl: per update, the outcome of each training episode (RL).

    `resumed_at`: the step of the checkpoint a resumed run continues from. What the killed attempt logged after
    it is dropped, since the resumed run logs those steps again; None (a new run) starts the logs afresh."""

    def __init__(self, run: Path, resumed_at: int | None = None, episodes: bool = False):
        def reopen(path: Path):
            atomic_write_text(path, "" if resumed_at is None else "".join(_rows_until(path, resumed_at)))
            return open(path, "a")

        self.jsonl = reopen(run / "metrics.jsonl")
        self.episodes = reopen(run / "episodes.jsonl") if episodes else None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run / "tb"), purge_step=0 if resumed_at is None else resumed_at + 1)
        except ImportError:
            self.tb = None

    def log(self, step: int, metrics: dict) -> None:
        self.jsonl.write(json.dumps({"step": step, **metrics}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, step)

    def log_episodes(self, step: int, update: int, episodes: list[dict]) -> None:
        """One line of episodes.jsonl: {"step", "update", "episodes": [{"row", "index", "success"}, ...]}."""
        self.episodes.write(json.dumps({"step": step, "update": update, "episodes": episodes}) + "\n")
        self.episodes.flush()

    def close(self) -> None:
        self.jsonl.close()
        if self.episodes is not None:
            self.episodes.close()
        if self.tb is not None:
            self.tb.close()


def evaluate_in_distribution(model, episodes: int, workers: int | str, image_size: int, backend: str = "local",
                             ray_address: str | None = None) -> float:
    """Success of a SmallVLA on the first `episodes` pinned in-distribution episodes of the in-training evaluation
    seed, at the evaluation temperature (eval's own run_episodes), in env workers of `backend` (EnvConfig)."""
    from rl4vla.bench.conditions import CONDITIONS, sample_episodes
    from rl4vla.bench.env import EnvConfig, TabletopVecEnv
    from rl4vla.eval.evaluator import run_episodes, summarize
    from rl4vla.policy.vla import VLAPolicy

    eps = sample_episodes(CONDITIONS["in-distribution"], TRAIN_EVAL_SEED, episodes)  # pinned, apart from the demos
    env = TabletopVecEnv(EnvConfig(num_envs=min(16, episodes), workers=workers, image_size=image_size,
                                   backend=backend, ray_address=ray_address))
    was_training = model.training
    try:
        res = run_episodes(env, VLAPolicy(model), eps, temperature=EVAL_TEMPERATURE, progress=False)
    finally:
        env.close()
        model.train(was_training)
    return summarize(res)["in-distribution"]["success_rate"]
