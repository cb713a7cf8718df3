"""How far RL moved a policy from its start: per-dimension KL(pi_start || pi_model) of the action-token
distributions, at temperature 1.0 and 0.6, on the states the starting policy visits in one 32-scene
in-distribution rollout (teacher-forced on its own tokens), and the share of states whose most likely token
changed.

    python docs/measurements/scripts/drift.py START.pt MODEL.pt [MODEL.pt ...]
"""

import sys

import numpy as np
import torch

from rl4vla.algos.rollout import EpisodeStream, collect
from rl4vla.bench.conditions import CONDITIONS
from rl4vla.bench.env import EnvConfig, TabletopVecEnv
from rl4vla.policy.vla import SmallVLA

SHOWN = {"x": 0, "y": 1, "z": 2, "yaw": 5, "gripper": 6}  # roll and pitch: the expert never commands them


def main(start_path: str, paths: list[str]) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the rollout's sampling
    start = SmallVLA.load(start_path).eval()
    cond = CONDITIONS["in-distribution"]
    env = TabletopVecEnv(EnvConfig(num_envs=32, workers=2, image_size=start.cfg.image_size, max_steps=80), [cond])
    try:  # a stream of its own (seed 20,000), apart from the RL, demo and evaluation seeds
        roll = collect(env, start, EpisodeStream(cond, 20_000).draw(32), 80, 1.0)
    finally:
        env.close()
    idx = np.arange(0, roll.valid.size, 5)  # every 5th state
    obs, tokens = roll.obs(idx), torch.as_tensor(roll.tokens.reshape(-1, 7)[idx])
    with torch.no_grad():
        base = start.logits(obs, tokens)
        for path in paths:
            logits = SmallVLA.load(path).eval().logits(obs, tokens)
            row = [path]
            for t in (1.0, 0.6):
                p, q = torch.log_softmax(base / t, -1), torch.log_softmax(logits / t, -1)
                per_dim = (p.exp() * (p - q)).sum(-1).mean(0)  # (7,)
                shown = " / ".join(f"{per_dim[i]:.2f}" for i in SHOWN.values())
                row.append(f"T {t}: KL {shown} ({', '.join(SHOWN)}), summed {per_dim.sum():.2f}")
            changed = (base.argmax(-1) != logits.argmax(-1)).float().mean(0)
            row.append("most likely bin changed: " + " / ".join(f"{changed[i]:.2f}" for i in SHOWN.values()))
            print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
