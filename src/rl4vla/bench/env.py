"""Batched "put X on Y" environment: N scenes stepped by W worker processes (or W Ray actors: EnvConfig.backend).

Follows `gymnasium.vector.VectorEnv` (autoreset disabled): `reset(seed, options)`
returns obs for all N scenes; `options` may pin `episodes` and restrict the reset
to `reset_mask` (bool [N]) or `indices`. `step(actions[N, 7])` returns
obs, reward [N], terminated [N], truncated [N], info (dict of [N] arrays).
An ended episode must be reset before it is stepped again.

Observation: {"rgb": uint8 [N, H, W, 3], "instruction": list[str],
"state": privileged state dict of [N, ...] arrays (the scripted expert reads it)}.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import gymnasium as gym
import numpy as np

from rl4vla.bench import perturb
from rl4vla.bench.conditions import Condition, Episode, resolve_conditions, sample_episode
from rl4vla.bench.contract import ACTION_DIM, STATE_KEYS
from rl4vla.bench.ray_backend import check_backend
from rl4vla.bench.task import Task
from rl4vla.util import auto_workers, check_workers

if TYPE_CHECKING:  # spawned env workers import this module: they need not import the command configs
    from rl4vla.config import EnvArgs

INFO_KEYS = ("success", "grasped", "ever_grasped", "held_steps", "dist_tcp_obj", "dist_obj_rec", "return",
             "elapsed_steps")


@dataclass(frozen=True)
class EnvConfig:
    """Benchmark environment settings."""

    num_envs: int = 8
    """number of scenes stepped in lockstep"""
    workers: int | Literal["auto"] = 2
    """worker processes, or Ray actors with backend ray (0 = step every scene in this process); auto = one per
    usable CPU, less two for the policy on machines with more than four (rl4vla.util.auto_workers), or with
    backend ray the cluster's CPUs less one"""
    image_size: int = 128
    """square RGB observation size in pixels (16..480)"""
    max_steps: int = 80
    """control steps per episode (5 Hz; the study uses 80 = 16 s)"""
    early_termination: bool = False
    """end an episode at its first success step (the study judges the final step only)"""
    pretraining_assets: bool = False
    """also hold the robot-pretraining corpus' objects, receptacles and tables (collect sets it for those
    sources); benchmark scenes leave them out, as 40 more parked bodies cost ~40% of the physics time"""
    backend: Literal["local", "ray"] = "local"
    """where the shards run: local (worker processes on this machine) or ray (one Ray actor per worker, on any node
    of a Ray cluster: rl4vla.bench.ray_backend); local needs nothing beyond the laptop install"""
    ray_address: str | None = None
    """backend ray: the cluster to join (host:port, or auto); None follows Ray's convention: $RAY_ADDRESS when
    set, else a new local cluster"""


def env_config(args: EnvArgs, **settings) -> EnvConfig:
    """The EnvConfig of a command's --env.* flags, with the settings the command sets itself (max_steps, ...) or
    overrides (fewer scenes than episodes, the policy's image size)."""
    return EnvConfig(**{**dataclasses.asdict(args), **settings})


def resolve_workers(config: EnvConfig) -> int:
    """The worker (or Ray actor) count of `config`: its number, capped at the scenes, or for auto the machine's
    (rl4vla.util.auto_workers) or, with backend ray, the Ray cluster's CPUs less one for the driver."""
    n = config.num_envs
    if config.workers != "auto":
        return min(check_workers(config.workers, "workers"), n)
    if config.backend == "ray":
        from rl4vla.bench.ray_backend import connect

        cpus = int(connect(config.ray_address).cluster_resources().get("CPU", 1))
        return max(1, min(n, cpus - 1))
    return auto_workers(n)


class _Shard:
    """A group of scenes owned by one process, rendered through one GL context."""

    def __init__(self, n: int, image_size: int, max_steps: int, early_termination: bool,
                 pretraining_assets: bool = False):
        from rl4vla.sim.mjcf import build
        from rl4vla.sim.render import SceneRenderer
        from rl4vla.sim.scene import Scene

        model, layout = build(pretraining_assets)
        self.tasks = [Task(Scene(model, layout), max_steps, early_termination) for _ in range(n)]
        self.renderer = SceneRenderer(model, image_size, image_size)

    def _obs(self, idx: list[int]) -> dict:
        if not idx:
            size = self.renderer.height
            return {"rgb": np.zeros((0, size, size, 3), np.uint8), "instruction": [],
                    "state": {k: np.zeros((0, *shp)) for k, shp in STATE_KEYS.items()}}
        rgb = np.stack([self._render(self.tasks[i]) for i in idx])
        states = [self.tasks[i].state() for i in idx]
        return {
            "rgb": rgb,
            "instruction": [self.tasks[i].episode.instruction for i in idx],
            "state": {k: np.stack([np.asarray(s[k], np.float64) for s in states]) for k in STATE_KEYS},
        }

    def _render(self, task: Task, renderer=None) -> np.ndarray:
        s, ep = task.scene, task.episode
        renderer = renderer or self.renderer
        spec = ep.perturbation
        if spec is None:
            return renderer.render(s.model, s.data, s.layout.camera)
        if spec["kind"] == "texture":
            rgb, seg = renderer.render(s.model, s.data, s.layout.camera, segmentation=True)
            groups = [s.layout.robot_geoms] + [s.layout.obj_all_geoms[o.name] for o in ep.objects]
            return perturb.apply(rgb, spec, task.t, perturb.group_labels(seg, groups, s.model.ngeom))
        return perturb.apply(renderer.render(s.model, s.data, s.layout.camera), spec, task.t)

    def reset(self, idx: list[int], episodes: list[Episode]) -> dict:
        for i, ep in zip(idx, episodes):
            self.tasks[i].reset(ep)
        return self._obs(idx)

    def step(self, actions: np.ndarray) -> tuple:
        out = [t.step(a) for t, a in zip(self.tasks, actions)]
        rew = np.array([o[0] for o in out], np.float32)
        term = np.array([o[1] for o in out], bool)
        trunc = np.array([o[2] for o in out], bool)
        info = {k: np.array([o[3][k] for o in out]) for k in INFO_KEYS}
        return self._obs(list(range(len(self.tasks)))), rew, term, trunc, info

    def render_frames(self, size: int) -> np.ndarray:
        from rl4vla.sim.render import SceneRenderer

        if getattr(self, "_big", None) is None or self._big.width != size:
            self._big = SceneRenderer(self.tasks[0].scene.model, size, size)
        return np.stack([self._render(t, self._big) for t in self.tasks])

    def close(self) -> None:
        self.renderer.close()


def _worker(conn, n: int, image_size: int, max_steps: int, early: bool, pretraining_assets: bool) -> None:
    os.environ.setdefault("LP_NUM_THREADS", "0")  # llvmpipe renders in the calling thread: no hand-off
    try:
        shard = _Shard(n, image_size, max_steps, early, pretraining_assets)
        conn.send(("ok", None))
    except Exception as e:
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            cmd, arg = conn.recv()
        except EOFError:
            break
        try:
            if cmd == "close":
                shard.close()
                conn.send(("ok", None))
                break
            conn.send(("ok", getattr(shard, cmd)(*arg)))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


class TabletopVecEnv(gym.vector.VectorEnv):
    """N tabletop scenes; each scene draws its episodes from conditions[i % len(conditions)]."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.DISABLED, "render_modes": ["rgb_array"]}

    def __init__(self, config: EnvConfig = EnvConfig(), conditions: list[str] | list[Condition] = ("in-distribution",)):
        if config.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {config.num_envs}")
        if not 16 <= config.image_size <= 480:
            raise ValueError(f"image_size must be in [16, 480], got {config.image_size}")
        check_backend(config.backend, "backend")
        self.config = config
        self.conditions = [c if isinstance(c, Condition) else resolve_conditions([c])[0] for c in conditions]
        self.num_envs = n = config.num_envs
        s = config.image_size
        rgb = gym.spaces.Box(0, 255, (s, s, 3), np.uint8)
        state = gym.spaces.Dict({k: gym.spaces.Box(-np.inf, np.inf, shp, np.float64) for k, shp in STATE_KEYS.items()})
        self.single_observation_space = gym.spaces.Dict(
            {"rgb": rgb, "instruction": gym.spaces.Text(256, min_length=0), "state": state})
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, n)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, n)
        self.render_mode = "rgb_array"

        self.workers = w = resolve_workers(config)
        bounds = np.linspace(0, n, max(w, 1) + 1).astype(int)
        self._slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self._procs, self._conns, self._local, self._ray = [], [], None, None
        if config.backend == "ray":  # one actor per shard (at least one: the scenes never run in this process)
            from rl4vla.bench.ray_backend import RayShards

            self._ray = RayShards([sl.stop - sl.start for sl in self._slices], s, config.max_steps,
                                  config.early_termination, config.pretraining_assets, config.ray_address)
        elif w == 0:
            self._local = _Shard(n, s, config.max_steps, config.early_termination, config.pretraining_assets)
        else:
            ctx = mp.get_context("spawn")
            for sl in self._slices:
                a, b = ctx.Pipe()
                p = ctx.Process(target=_worker, args=(b, sl.stop - sl.start, s, config.max_steps,
                                                      config.early_termination, config.pretraining_assets),
                                daemon=True)
                p.start()
                self._procs.append(p)
                self._conns.append(a)
            for c in self._conns:
                self._recv(c)
        self._seed = 0
        self._counts = np.zeros(n, np.int64)
        self._obs: dict | None = None
        self._episodes: list[Episode | None] = [None] * n
        self._done = np.ones(n, bool)

    # ----- plumbing ---------------------------------------------------------------------
    @staticmethod
    def _recv(conn):
        status, payload = conn.recv()
        if status != "ok":
            raise RuntimeError(f"env worker failed: {payload}")
        return payload

    def _call(self, cmd: str, per_shard_args: list[tuple]) -> list:
        if self._local is not None:
            return [getattr(self._local, cmd)(*per_shard_args[0])]
        if self._ray is not None:
            return self._ray.call(cmd, per_shard_args)
        for c, a in zip(self._conns, per_shard_args):
            c.send((cmd, a))
        return [self._recv(c) for c in self._conns]

    # ----- API ------------------------------------------------------------------------------
    @property
    def episodes(self) -> list[Episode | None]:
        """The episode each scene is playing."""
        return list(self._episodes)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = options or {}
        n = self.num_envs
        if seed is not None:
            self._seed = int(seed)
            self._counts[:] = 0
        if "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], bool)
            if mask.shape != (n,):
                raise ValueError(f"reset_mask must have shape ({n},), got {mask.shape}")
            idx = np.flatnonzero(mask)
        elif "indices" in options:
            idx = np.asarray(options["indices"], int).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"indices must be in [0, {n}), got {idx.tolist()}")
        else:
            idx = np.arange(n)
        if self._obs is None and len(idx) != n:
            raise ValueError("the first reset must reset every scene")
        eps = options.get("episodes")
        if eps is not None:
            eps = [e if isinstance(e, Episode) else Episode.from_dict(e) for e in eps]
            if len(eps) != len(idx):
                raise ValueError(f"got {len(eps)} episodes for {len(idx)} scenes being reset")
        else:
            eps = []
            for i in idx:
                cond = self.conditions[i % len(self.conditions)]
                eps.append(sample_episode(cond, self._seed, int(self._counts[i]) * n + int(i)))
                self._counts[i] += 1
        # shards answer in index order: sort the rows (and their episodes) so results line up
        perm = np.argsort(idx, kind="stable")
        idx, eps = idx[perm], [eps[k] for k in perm]
        args = []
        for sl in self._slices:
            sel = [(int(i) - sl.start, e) for i, e in zip(idx, eps) if sl.start <= i < sl.stop]
            args.append(([a for a, _ in sel], [e for _, e in sel]))
        parts = self._call("reset", args)
        if self._obs is None:
            self._obs = {"rgb": None, "instruction": [""] * n, "state": {}}
        order = [int(i) for i in idx]
        sub = _concat(parts)
        if self._obs["rgb"] is None:
            self._obs["rgb"] = sub["rgb"]
            self._obs["state"] = sub["state"]
        else:
            self._obs["rgb"][order] = sub["rgb"]
            for k, v in sub["state"].items():
                self._obs["state"][k][order] = v
        for j, i in enumerate(order):
            self._obs["instruction"][i] = sub["instruction"][j]
            self._episodes[i] = eps[j]
        self._done[order] = False
        return self._copy_obs(), {"episode": [e.to_dict() for e in self._episodes]}

    def step(self, actions):
        n = self.num_envs
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (n, ACTION_DIM):
            raise ValueError(f"actions must have shape ({n}, {ACTION_DIM}) = [num_envs, 7], got {a.shape}")
        if not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[:3].tolist()
            raise ValueError(f"actions contain NaN or inf at [env, dim] {bad}; actions must be finite")
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        if self._done.any():
            raise RuntimeError(
                f"scenes {np.flatnonzero(self._done).tolist()} have ended episodes; "
                "reset them first: env.reset(options={'reset_mask': terminated | truncated})"
            )
        parts = self._call("step", [(a[sl],) for sl in self._slices])
        obs = _concat([p[0] for p in parts])
        rew = np.concatenate([p[1] for p in parts])
        term = np.concatenate([p[2] for p in parts])
        trunc = np.concatenate([p[3] for p in parts])
        info = {k: np.concatenate([p[4][k] for p in parts]) for k in INFO_KEYS}
        self._obs = obs
        self._done = term | trunc
        return self._copy_obs(), rew, term, trunc, info

    def _copy_obs(self) -> dict:
        o = self._obs
        return {"rgb": o["rgb"].copy(), "instruction": list(o["instruction"]),
                "state": {k: v.copy() for k, v in o["state"].items()}}

    def render_frames(self, size: int | None = None) -> np.ndarray:
        """Frames of every scene, (N, size, size, 3): the observation, or a re-render at another size."""
        if size is None or size == self.config.image_size:
            return self._obs["rgb"].copy()
        return np.concatenate(self._call("render_frames", [(size,)] * len(self._slices)))

    def render(self):
        return self.render_frames()

    def close(self, **kwargs) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        if getattr(self, "_ray", None) is not None:
            self._ray.close()
            self._ray = None
        for c, p in zip(self._conns, self._procs):
            try:
                c.send(("close", ()))
                c.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._conns, self._procs = [], []

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _concat(parts: list[dict]) -> dict:
    return {
        "rgb": np.concatenate([p["rgb"] for p in parts]),
        "instruction": [s for p in parts for s in p["instruction"]],
        "state": {k: np.concatenate([p["state"][k] for p in parts]) for k in parts[0]["state"]},
    }
