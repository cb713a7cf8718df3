"""Rollouts: the vectorized env and the batched policy in one loop, into a buffer of (T, N) arrays.

Every rollout starts from fresh episodes (as the study's code does: reset, then 80 steps), so a
checkpoint between rollouts resumes exactly. The env's autoreset is off: an ended row is reset
explicitly, either with the next episode of the training stream (`refill`, PPO) or, for
trajectory algorithms (GRPO, DPO), with a filler whose steps are marked invalid, so each row
holds exactly one whole trajectory from its assigned initial state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from rl4vla.bench.conditions import Condition, Episode, sample_episode
from rl4vla.bench.contract import ACTION_DIM, PROPRIO_DIM, proprio_from_state


class EpisodeStream:
    """Training initial states: episode k is sample_episode(condition, seed, k).

    The seed must differ from the evaluation and demonstration seeds (rl4vla.protocol) so that RL never
    trains on the pinned evaluation episodes. `index` and `refill_index` are the resume state. pool > 0:
    episode k is sample_episode(condition, seed, k % pool), a fixed set of initial states cycled through.

    Rows that begin a rollout draw from `draw`; rows refilled mid-rollout (PPO with rollouts longer than an
    episode) from `refill`, a part of the stream of its own (indices from REFILL_BASE). So the episodes that begin
    rollout u are the same in every run with this seed and batch, however each run's episodes ended: runs pair
    scene by scene.
    """

    REFILL_BASE = 1 << 40  # far beyond any run's draws

    def __init__(self, condition: Condition, seed: int, index: int = 0, pool: int = 0, refill_index: int = 0):
        if pool < 0:
            raise ValueError(f"pool must be >= 0 (0 = every episode new), got {pool}")
        self.condition, self.seed, self.index, self.pool = condition, int(seed), int(index), int(pool)
        self.refill_index = int(refill_index)

    def _episodes(self, k: range, base: int = 0) -> list[Episode]:
        return [sample_episode(self.condition, self.seed, i % self.pool if self.pool else base + i) for i in k]

    def draw(self, n: int) -> list[Episode]:
        """The next n episodes of the stream."""
        eps = self._episodes(range(self.index, self.index + n))
        self.index += n
        return eps

    def refill(self, n: int) -> list[Episode]:
        """The next n episodes for rows refilled mid-rollout (with a pool: the pool, cycled on its own)."""
        eps = self._episodes(range(self.refill_index, self.refill_index + n), self.REFILL_BASE)
        self.refill_index += n
        return eps

    def draw_grouped(self, rows: int, group_size: int, same_init: bool = False) -> list[Episode]:
        """Episodes for `rows` env rows in groups of `group_size` consecutive rows sharing an initial state.

        same_init: every row gets one and the same episode ("GRPO (s)" in the study).
        """
        if group_size < 1 or rows % group_size:
            raise ValueError(f"num_envs ({rows}) must be a multiple of group_size ({group_size})")
        if same_init:
            return self.draw(1) * rows
        return [e for e in self.draw(rows // group_size) for _ in range(group_size)]


@dataclass
class Rollout:
    """A rollout of T steps on N env rows; step t holds the obs the action at t was taken from."""

    rgb: np.ndarray  # (T, N, H, W, 3) uint8
    instructions: list[list[str]]  # [T][N]
    proprio: np.ndarray  # (T, N, 10) float32 robot state (for policies with a robot-state token)
    tokens: np.ndarray  # (T, N, 7) int64 action tokens taken
    logprobs: np.ndarray  # (T, N) float32 behaviour log-prob summed over the 7 tokens
    values: np.ndarray  # (T, N) float32 V(s_t) at collection
    rewards: np.ndarray  # (T, N) float32
    terminated: np.ndarray  # (T, N) bool: the episode ended after step t (no future)
    truncated: np.ndarray  # (T, N) bool: cut by the time limit after step t (future = bootstrap)
    bootstrap: np.ndarray  # (T, N) float32 V(final obs before the reset) where truncated, else 0
    last_value: np.ndarray  # (N,) V(obs after the last step): the future of episodes still running
    valid: np.ndarray  # (T, N) bool: False for filler steps after a trajectory's end
    initial: list[Episode]  # (N,) the episode each row started the rollout with
    image_features: np.ndarray | None = None  # (T, N, F) float16 frozen-encoder features, when the policy has them
    token_logprobs: np.ndarray | None = None  # (T, N, 7) float32 behaviour log-prob of each token, when given
    episode_success: list[bool] = field(default_factory=list)  # one entry per finished (valid) episode
    episode_return: list[float] = field(default_factory=list)
    # per finished episode: it began at the rollout's first step. Those always finish within the rollout when it is
    # as long as an episode; one refilled mid-rollout counts only if it ends in time, which favours early successes
    episode_initial: list[bool] = field(default_factory=list)
    episode_row: list[int] = field(default_factory=list)  # per finished episode: its env row
    sim_s: float = 0.0  # seconds in env.reset / env.step
    policy_s: float = 0.0  # seconds in policy forward passes (acting and bootstrap values)

    def initial_outcomes(self) -> list[dict]:
        """{"row", "index" (the episode's index in the training stream), "success"} of each row's initial episode
        that finished within the rollout, by row: the same scenes in every run with the same stream at the same
        update (EpisodeStream), so two runs' outcomes pair scene by scene."""
        won = {r: s for r, s, first in zip(self.episode_row, self.episode_success, self.episode_initial) if first}
        return [{"row": r, "index": self.initial[r].index, "success": bool(won[r])} for r in sorted(won)]

    @property
    def env_steps(self) -> int:
        """Valid transitions collected."""
        return int(self.valid.sum())

    def obs(self, flat_idx: np.ndarray) -> dict:
        """Observations of flat sample indices (t * N + n), as the policy takes them."""
        t, n = np.divmod(np.asarray(flat_idx), self.rgb.shape[1])
        obs = {"rgb": self.rgb[t, n], "instruction": [self.instructions[i][j] for i, j in zip(t, n)],
               "proprio": self.proprio[t, n]}
        if self.image_features is not None:
            obs["image_features"] = torch.from_numpy(self.image_features[t, n])
        return obs

    def trajectory_returns(self) -> np.ndarray:
        """(N,) each row's summed reward over its valid steps (trajectory algorithms)."""
        return (self.rewards * self.valid).sum(0)


@torch.no_grad()
def state_values(model, obs: dict, rows: np.ndarray | None = None) -> np.ndarray:
    """(B,) V(obs) of the env observation `obs` (of `rows` only, if given). The value head reads the first
    action position, which attends to the prefix only, so the placeholder tokens do not change it."""
    if rows is not None:
        obs = {"rgb": obs["rgb"][rows], "instruction": [obs["instruction"][i] for i in rows],
               "proprio": proprio_from_state(obs["state"])[rows]}
    tokens = torch.zeros(len(obs["instruction"]), ACTION_DIM, dtype=torch.long)
    return model.evaluate(obs, tokens)[2].float().cpu().numpy()


def collect(env, model, episodes: list[Episode], num_steps: int, temperature: float = 1.0,
            refill: Callable[[int], list[Episode]] | None = None) -> Rollout:
    """Play `num_steps` steps on every row of `env`, starting from `episodes` (one per row).

    refill(k) -> k episodes for rows whose episode ended (continuing collection); without it each
    row keeps one trajectory: ended rows replay their episode as invalid filler, and the rollout
    stops early once every row has ended. The model acts in eval mode (no dropout when sampling).
    """
    n = env.num_envs
    if len(episodes) != n:
        raise ValueError(f"got {len(episodes)} episodes for {n} env rows")
    model.eval()
    sim_s = policy_s = 0.0
    t0 = time.perf_counter()
    obs, _ = env.reset(options={"episodes": list(episodes)})
    sim_s += time.perf_counter() - t0
    current = list(episodes)
    h, w = obs["rgb"].shape[1:3]
    rgb = np.zeros((num_steps, n, h, w, 3), np.uint8)
    tokens = np.zeros((num_steps, n, ACTION_DIM), np.int64)
    proprio = np.zeros((num_steps, n, PROPRIO_DIM), np.float32)
    f32 = {k: np.zeros((num_steps, n), np.float32) for k in ("logprobs", "values", "rewards", "bootstrap")}
    flags = {k: np.zeros((num_steps, n), bool) for k in ("terminated", "truncated", "valid")}
    instructions: list[list[str]] = []
    image_features = token_logprobs = None
    alive = np.ones(n, bool)  # rows whose trajectory is still being recorded
    on_initial = np.ones(n, bool)  # rows still playing the episode they began the rollout with
    successes, returns, initials, rows = [], [], [], []
    steps = num_steps
    last_value = np.zeros(n, np.float32)  # stays 0 when every trajectory ended before the last step
    for t in range(num_steps):
        t0 = time.perf_counter()
        out = model.act(obs, temperature)
        policy_s += time.perf_counter() - t0
        rgb[t], tokens[t], proprio[t] = obs["rgb"], out.tokens, proprio_from_state(obs["state"])
        extras = out.extras or {}
        feats = extras.get("image_features")
        if feats is not None:  # the frozen encoder's output: updates reuse it instead of encoding again
            if image_features is None:
                image_features = np.zeros((num_steps, *feats.shape), np.float16)
            image_features[t] = feats
        if extras.get("token_logprobs") is not None:
            if token_logprobs is None:
                token_logprobs = np.zeros((num_steps, n, ACTION_DIM), np.float32)
            token_logprobs[t] = extras["token_logprobs"]
        instructions.append(list(obs["instruction"]))
        f32["logprobs"][t], f32["values"][t] = out.logprob, out.value
        flags["valid"][t] = alive
        t0 = time.perf_counter()
        obs, rew, term, trunc, info = env.step(out.actions)
        sim_s += time.perf_counter() - t0
        f32["rewards"][t], flags["terminated"][t], flags["truncated"][t] = rew, term, trunc
        done = term | trunc
        ended = done & alive
        successes += info["success"][ended].astype(bool).tolist()
        returns += info["return"][ended].astype(float).tolist()
        initials += on_initial[ended].tolist()
        rows += np.flatnonzero(ended).tolist()
        if t == num_steps - 1:  # one pass serves the rows still running and those truncated now
            t0 = time.perf_counter()
            last_value = state_values(model, obs)
            policy_s += time.perf_counter() - t0
            f32["bootstrap"][t] = np.where(trunc & alive, last_value, 0.0)
        elif (trunc & alive).any():  # the final obs is only available now, before the reset replaces it
            cut = np.flatnonzero(trunc & alive)
            t0 = time.perf_counter()
            f32["bootstrap"][t, cut] = state_values(model, obs, cut)
            policy_s += time.perf_counter() - t0
        if refill is None:
            alive &= ~done
        if t == num_steps - 1 or not alive.any():
            steps = t + 1
            break
        idx = np.flatnonzero(done)
        if not len(idx):
            continue
        if refill is None:
            new = [current[i] for i in idx]  # filler: keeps the row steppable; its steps are invalid
        else:
            new = refill(len(idx))
            for i, e in zip(idx, new):
                current[i] = e
            on_initial[idx] = False
        t0 = time.perf_counter()
        obs, _ = env.reset(options={"indices": idx, "episodes": new})
        sim_s += time.perf_counter() - t0
    cut = slice(0, steps)
    return Rollout(rgb=rgb[cut], instructions=instructions[:steps], proprio=proprio[cut], tokens=tokens[cut],
                   **{k: v[cut] for k, v in f32.items()}, **{k: v[cut] for k, v in flags.items()},
                   last_value=last_value, initial=list(episodes),
                   image_features=None if image_features is None else image_features[cut],
                   token_logprobs=None if token_logprobs is None else token_logprobs[cut], episode_success=successes,
                   episode_return=returns, episode_initial=initials,
                   episode_row=rows, sim_s=sim_s, policy_s=policy_s)
