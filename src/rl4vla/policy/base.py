"""Policies by name: the baselines (noop, random) and `make_policy`, which also finds the scripted expert and
VLA checkpoints.

Every policy follows the benchmark's contract (rl4vla.bench.contract):
`act(obs, temperature) -> PolicyOutput(actions, tokens, logprob, value)` on a batch of observations.
"""

from __future__ import annotations

import os

import numpy as np

from rl4vla.bench.contract import ACTION_DIM, GRIPPER, Policy, PolicyOutput  # noqa: F401  (Policy re-exported)
from rl4vla.util import file_sha256


def batch_size(obs: dict) -> int:
    return len(obs["rgb"])


class NoopPolicy:
    """Holds still with the gripper open."""

    name = "noop"

    def reset(self) -> None:
        """Stateless: each action depends on the current observation only."""

    def act(self, obs: dict, temperature: float = 1.0) -> PolicyOutput:
        a = np.zeros((batch_size(obs), ACTION_DIM))
        a[:, GRIPPER] = 1.0
        return PolicyOutput(a)


class RandomPolicy:
    """Uniform random deltas (2 cm, 0.1 rad) and a random gripper command."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Stateless: each action depends on the current observation only."""

    def act(self, obs: dict, temperature: float = 1.0) -> PolicyOutput:
        n = batch_size(obs)
        scale = np.array([0.02, 0.02, 0.02, 0.1, 0.1, 0.1, 1.0])
        return PolicyOutput(self.rng.uniform(-1, 1, (n, ACTION_DIM)) * scale)


BUILTIN = ("expert", "random", "noop")


def policy_info(spec: str) -> dict:
    """What a policy spec names (what was evaluated, what drove a collection): a built-in name, or a checkpoint
    file or pretrained folder (absolute path and content hash)."""
    if spec in BUILTIN:
        return {"spec": spec, "kind": "builtin"}
    if os.path.isfile(spec):
        return {"spec": spec, "kind": "checkpoint", "path": os.path.abspath(spec), "sha256": file_sha256(spec)}
    from rl4vla.policy import pretrained

    if pretrained.is_pretrained(spec) or os.path.isdir(spec):  # a shipped or exported pretrained folder
        weights = pretrained.folder(spec) / "model.safetensors"
        return {"spec": spec, "kind": "pretrained", "path": str(weights.resolve()), "sha256": file_sha256(weights)}
    return {"spec": spec, "kind": "other"}


def make_policy(name: str, seed: int = 0, device: str = "auto"):
    """A built-in policy by name (expert, random, noop), a VLA checkpoint's path, or a shipped VLA
    (`pretrained:small`); a VLA runs on `device` (auto, cpu or cuda: rl4vla.util.resolve_device), the scripted
    policies ignore it."""
    if name == "expert":
        from rl4vla.bench.expert import ExpertPolicy

        return ExpertPolicy()
    if name == "random":
        return RandomPolicy(seed)
    if name == "noop":
        return NoopPolicy()
    from rl4vla.policy.pretrained import is_pretrained

    if os.path.isfile(name) or is_pretrained(name) or os.path.isdir(name):
        from rl4vla.policy.vla import SmallVLA, VLAPolicy
        from rl4vla.util import resolve_device

        dev = resolve_device(device)  # before loading: a missing GPU fails first
        return VLAPolicy(SmallVLA.load(name).to(dev))
    raise ValueError(f"unknown policy {name!r}; valid: {', '.join(BUILTIN)}, a checkpoint file path, or "
                     "pretrained:NAME (`rl4vla pretrained` lists the shipped models)")
