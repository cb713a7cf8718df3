"""What the benchmark exchanges with any policy: observations in, `act(obs, temperature) -> PolicyOutput` out.

Observation: {"rgb": uint8 (N, H, W, 3), "instruction": list[str], "state": {key: (N, *shape) array for
STATE_KEYS}}. Action: (N, ACTION_DIM) float, one row per scene, in the order of ACTION_LAYOUT: a TCP position
delta (m), a TCP rotation delta (rad) and a gripper command (1 = open, -1 = closed).

Scripted, baseline and learned policies return a PolicyOutput on a batch of observations from the vectorized
env; scripted policies leave the learned fields None. The contract lives in the benchmark (the lowest package
that acts), so the env, the scripted expert, the learned policies, the data collector and the trainers above it
share one definition without importing upward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

ACTION_LAYOUT = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")  # the action's dimensions, in order
ACTION_DIM = len(ACTION_LAYOUT)
POSITION = slice(0, 3)  # TCP position delta (m)
ROTATION = slice(3, 6)  # TCP rotation delta (rad)
GRIPPER = ACTION_LAYOUT.index("gripper")  # the gripper command: 1 = open, -1 = closed

STATE_KEYS = {  # privileged state given to the scripted expert (and available to users): key -> per-scene shape
    "tcp_pos": (3,), "tcp_rot": (3, 3), "gripper": (), "obj_pos": (3,), "obj_quat": (4,),
    "obj_lo": (3,), "obj_hi": (3,), "obj_axis_yaw": (), "obj_yaw_symmetric": (), "rec_pos": (3,), "rec_top": (),
    "floor_z": (), "grasped": (), "ever_grasped": (), "on_target": (), "step": (),
}

PROPRIO_DIM = 10  # the length of proprio_from_state's rows


def proprio_from_state(state: dict) -> np.ndarray:
    """(B, PROPRIO_DIM) robot proprioception from an observation's "state": TCP position (3), the first two
    columns of the TCP rotation matrix (6, a continuous orientation code) and the gripper opening (1).
    Only the robot's own state: nothing about the object or receptacle, which a policy must see in the image."""
    pos = np.asarray(state["tcp_pos"], np.float32).reshape(-1, 3)
    rot = np.asarray(state["tcp_rot"], np.float32).reshape(-1, 3, 3)[:, :, :2].transpose(0, 2, 1).reshape(-1, 6)
    grip = np.asarray(state["gripper"], np.float32).reshape(-1, 1)
    return np.concatenate([pos, rot, grip], 1)


@dataclass
class PolicyOutput:
    actions: np.ndarray  # (N, ACTION_DIM) float
    tokens: Any = None  # (N, ACTION_DIM) action token ids, learned policies only
    logprob: Any = None  # (N,) log-prob of the tokens summed over the action dimensions, under the distribution
    # they were drawn from: softmax(logits / T) at temperature T > 0, softmax(logits) when greedy (T = 0)
    value: Any = None  # (N,) critic value
    extras: dict | None = None  # e.g. the expert's phase names


class Policy(Protocol):
    """Anything the evaluator and the collectors can run: the scripted expert, the baselines, the VLAs, yours."""

    def reset(self) -> None:
        """Called before each wave of episodes starts (clear any per-episode memory; stateless policies pass)."""
        ...

    def act(self, obs: dict, temperature: float = 1.0) -> PolicyOutput:
        """Actions for a batch of observations; temperature 0 is greedy for learned policies."""
        ...
