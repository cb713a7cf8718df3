"""Demonstration datasets: scripted-expert episodes in HDF5 shards.

On-disk format (readable with plain h5py, no rl4vla needed):

    DIR/meta.json            format, version, image size, shard list, counts, action percentiles,
                             the episodes attempted (next_index) so collection resumes exactly, and
                             per shard its wave (waves: start, size, episodes, transitions) so a missing
                             or corrupt shard can be re-collected exactly
    DIR/shard_00000.h5       one collection wave, written to a temporary name and renamed
      attrs: format="rl4vla-demos", version=2
      /episodes/<k>/rgb      (T, H, W, 3) uint8, one chunk per frame, lzf-compressed
      /episodes/<k>/actions  (T, 7) float32, EE delta pose + gripper (docs/benchmark.md)
      /episodes/<k>/proprio  (T, 10) float32, robot state seen with each frame: TCP position (3),
                             the first two columns of the TCP rotation (6), gripper opening (1)
      /episodes/<k> attrs    instruction, condition, success, episode (JSON of the pinned Episode)

HDF5 because it is what ManiSkill and robomimic store trajectories in: one self-describing
file per shard, random access to frames, and readers in every language. Shards make
interruption safe: a shard is either complete (renamed into place) or absent.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rl4vla.bench.contract import POSITION, PROPRIO_DIM, ROTATION
from rl4vla.util import atomic_write_text

FORMAT = "rl4vla-demos"
VERSION = 2
IDLE_DPOS = 0.01  # the study's recipe (docs/recipe.md): near-idle expert actions are dropped...
IDLE_DROT = 0.06
SUCCESS_STREAK = 6  # ...and episodes end after 6 consecutive success steps


class DatasetError(ValueError):
    """A dataset directory or shard that cannot be read as it is."""


@dataclass
class Demonstration:
    """One recorded expert episode: its frames, actions and proprioception, and the pinned episode it replays."""

    rgb: np.ndarray | None  # (T, H, W, 3) uint8; None when read without frames (DemoDataset uses LazyFrames)
    actions: np.ndarray  # (T, 7) float32
    proprio: np.ndarray  # (T, 10) float32, see rl4vla.bench.contract.proprio_from_state
    instruction: str
    condition: str
    success: bool
    episode: dict  # the pinned rl4vla.bench.conditions.Episode it was recorded from, as a dict


def keep_mask(actions: np.ndarray) -> np.ndarray:
    """Transitions to keep: not near-idle, or the gripper command changes (toggles are kept)."""
    a = np.asarray(actions)
    moving = (np.abs(a[:, POSITION]).max(1) >= IDLE_DPOS) | (np.abs(a[:, ROTATION]).max(1) >= IDLE_DROT)
    toggle = np.r_[True, np.sign(a[1:, 6]) != np.sign(a[:-1, 6])]
    return moving | toggle


def read_meta(root: str | Path) -> dict:
    path = Path(root) / "meta.json"
    if not path.exists():
        raise DatasetError(f"{root} is not a demonstration dataset (no meta.json); create one with `rl4vla collect`")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is corrupt ({e})") from e
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DatasetError(f"{path}: expected format {FORMAT!r} version {VERSION}, got "
                           f"{meta.get('format')!r} version {meta.get('version')}")
    return meta


def write_shard(path: Path, episodes: list[Demonstration]) -> None:
    """Write a shard to a temporary name, then rename: it exists whole or not at all."""
    import h5py

    tmp = path.with_name(f".tmp-{path.name}")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"], f.attrs["version"] = FORMAT, VERSION
        grp = f.create_group("episodes")
        for k, ep in enumerate(episodes):
            g = grp.create_group(f"{k:05d}")
            h, w = ep.rgb.shape[1:3]
            g.create_dataset("rgb", data=ep.rgb, chunks=(1, h, w, 3), compression="lzf")
            g.create_dataset("actions", data=ep.actions.astype(np.float32))
            g.create_dataset("proprio", data=ep.proprio.astype(np.float32))
            g.attrs["instruction"], g.attrs["condition"] = ep.instruction, ep.condition
            g.attrs["success"], g.attrs["episode"] = bool(ep.success), json.dumps(ep.episode)
        f.attrs["n_episodes"] = len(episodes)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_shard(path: Path, frames: bool = True) -> list[Demonstration]:
    """A shard's episodes; frames=False leaves each episode's rgb None (DemoDataset reads frames lazily)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise DatasetError(f"{path} is not an {FORMAT} shard")
            n = int(f.attrs["n_episodes"])
            out = []
            for k in range(n):
                g = f["episodes"][f"{k:05d}"]
                out.append(Demonstration(g["rgb"][()] if frames else None, g["actions"][()], g["proprio"][()],
                                   str(g.attrs["instruction"]), str(g.attrs["condition"]), bool(g.attrs["success"]),
                                   json.loads(g.attrs["episode"])))
            return out
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"{path} is truncated or corrupt ({type(e).__name__}: {e})") from e


class LazyFrames:
    """A dataset's frames (N, H, W, 3) uint8, read from its shards on indexing instead of held in memory.

    20,000 demos of 128 px frames are about 23 GB: more than a laptop holds. Index it like an array with an
    int, a slice or an integer array; consecutive frames are read in one go per episode.
    """

    def __init__(self, parts: list[tuple[Path, str, int]], size: int):
        self._parts = parts  # (shard path, episode key, frames) in dataset order
        self._starts = np.cumsum([0] + [n for _, _, n in parts])
        self.shape = (int(self._starts[-1]), size, size, 3)
        self._files: dict[Path, object] = {}

    def __len__(self) -> int:
        return self.shape[0]

    MAX_OPEN = 64  # shards kept open at once (least recently used closed first): well under any open-files limit

    def _file(self, path: Path):
        import h5py

        f = self._files.pop(path, None) or h5py.File(path, "r")
        self._files[path] = f  # (re)inserted last: the dict's order is the recency order
        while len(self._files) > self.MAX_OPEN:
            self._files.pop(next(iter(self._files))).close()
        return f

    def __getitem__(self, idx) -> np.ndarray:
        if isinstance(idx, tuple):  # rgb[rows, ...]: frames first, then the rest of the index
            return self[idx[0]][(slice(None),) + idx[1:]]
        if isinstance(idx, slice):
            idx = np.arange(len(self))[idx]
        scalar = np.ndim(idx) == 0
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"frame index out of range for {len(self)} frames")
        idx = np.where(idx < 0, idx + len(self), idx)
        out = np.empty((len(idx), *self.shape[1:]), np.uint8)
        part = np.searchsorted(self._starts, idx, side="right") - 1
        for p in np.unique(part):
            path, key, _ = self._parts[p]
            rows = np.flatnonzero(part == p)
            local = idx[rows] - self._starts[p]
            order = np.argsort(local)
            uniq, inv = np.unique(local[order], return_inverse=True)
            frames = self._file(path)["episodes"][key]["rgb"][uniq]  # h5py wants increasing indices
            out[rows[order]] = frames[inv]
        return out[0] if scalar else out

    def rows(self, rows: np.ndarray) -> FrameRows:
        """A view of the frames at `rows` (indexing the view indexes rows)."""
        return FrameRows(self, np.asarray(rows, dtype=np.int64))

    def __getstate__(self):  # open files do not pickle; they reopen on first use
        return {**self.__dict__, "_files": {}}

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}


def repair_command(root: str | Path, meta: dict) -> str:
    """The `rl4vla collect` command, with the dataset's own settings, that re-collects its missing shards."""
    cmd = ["rl4vla", "collect", "--out", str(root), "--seed", str(meta["seed"]), "--env.image-size",
           str(meta["image_size"]), "--episodes", str(meta["episodes"]), "--conditions", *meta["conditions"]]
    if meta.get("noise"):
        cmd += ["--noise", str(meta["noise"])]
    return shlex.join(cmd)


def damaged_shards(root: Path, meta: dict) -> list[str]:
    """The shards meta.json lists that are missing or cannot be opened (a cheap check: actions only, no frames)."""
    bad = []
    for name in meta["shards"]:
        try:
            read_shard_actions(root / name)
        except DatasetError:
            bad.append(name)
    return bad


class FrameRows:
    """Frames of a LazyFrames at given rows: view[i] is frames[rows[i]] (ints, slices and integer arrays)."""

    def __init__(self, frames: LazyFrames, rows: np.ndarray):
        self.frames, self._rows = frames, rows
        self.shape = (len(rows), *frames.shape[1:])

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, idx) -> np.ndarray:
        if isinstance(idx, tuple):
            return self.frames[(self._rows[idx[0]],) + idx[1:]]
        return self.frames[self._rows[idx]]


class DemoDataset:
    """A collected dataset flattened into (frame, instruction, action) samples: actions, robot states and
    instructions in memory, the frames (`rgb`, a LazyFrames) read from the shards when indexed."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.meta = read_meta(self.root)
        self.episodes: list[Demonstration] = []  # their rgb is None: frames are read through self.rgb
        parts: list[tuple[Path, str, int]] = []
        fix = f"run `{repair_command(self.root, self.meta)}` to re-collect its episodes"
        for name in self.meta["shards"]:
            p = self.root / name
            if not p.exists():
                raise DatasetError(f"{p} is listed in meta.json but missing: {fix}")
            try:
                shard = read_shard(p, frames=False)
            except DatasetError as e:
                raise DatasetError(f"{e}: delete it and {fix}") from e
            self.episodes.extend(shard)
            parts += [(p, f"{k:05d}", len(e.actions)) for k, e in enumerate(shard)]
        if len(self.episodes) != self.meta["episodes"]:
            raise DatasetError(f"{self.root}: meta.json says {self.meta['episodes']} episodes, shards hold "
                               f"{len(self.episodes)}")
        self.rgb = LazyFrames(parts, int(self.meta["image_size"]))
        self.actions = np.concatenate([e.actions for e in self.episodes]) if self.episodes else np.zeros((0, 7))
        self.proprio = (np.concatenate([e.proprio for e in self.episodes]) if self.episodes
                        else np.zeros((0, PROPRIO_DIM)))
        self.instructions = [e.instruction for e in self.episodes for _ in range(len(e.actions))]

    def __len__(self) -> int:
        return len(self.actions)

    def frame_rows(self, stride: int = 1) -> np.ndarray:
        """Sample indices of every `stride`-th step of each episode (all for 1). Episode i starts at its step
        i % stride, so the kept steps cover every phase of the expert's motion across episodes: the expert's
        phases fall on fixed steps (its ~23-step episodes turn, descend and grasp at nearly the same steps), and
        a stride that always starts at step 0 never trains on the steps in between (measured: the prior trained
        on steps 0, 4, 8, ... predicted the held-out steps' yaw with cross-entropy 1.61 against 0.25)."""
        if stride < 1:
            raise ValueError(f"the frame stride must be >= 1, got {stride}")
        # 0 at the steps k of demo i with k = i (mod stride)
        steps = [(np.arange(len(e.actions)) - i) % stride for i, e in enumerate(self.episodes)]
        return np.flatnonzero(np.concatenate(steps) == 0) if steps else np.zeros(0, np.int64)

    def episode_frames(self, i: int) -> np.ndarray:
        """(T, H, W, 3) uint8: the frames of episode i, read from its shard."""
        start = sum(len(e.actions) for e in self.episodes[:i])
        return self.rgb[start : start + len(self.episodes[i].actions)]

    @property
    def action_q01(self) -> np.ndarray:
        return np.asarray(self.meta["action_q01"])

    @property
    def action_q99(self) -> np.ndarray:
        return np.asarray(self.meta["action_q99"])


def read_shard_actions(path: Path) -> list[np.ndarray]:
    """Only the action arrays of a shard (cheap: no frames)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"not an {FORMAT} shard")
            return [f["episodes"][f"{k:05d}"]["actions"][()] for k in range(int(f.attrs["n_episodes"]))]
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"{path} is truncated or corrupt ({type(e).__name__}: {e})") from e


def update_meta(root: Path, meta: dict, new_shard: str, new_episodes: list[Demonstration], start: int,
                size: int) -> dict:
    """Add a shard, the successes of the wave of `size` episodes from index `start`, to meta.json (atomically),
    recomputing the action percentiles over all data."""
    acts = [e.actions for e in new_episodes]
    for name in meta["shards"]:
        acts += read_shard_actions(root / name)
    allacts = np.concatenate(acts) if acts else np.zeros((0, 7))
    meta = dict(meta)
    transitions = int(sum(len(e.actions) for e in new_episodes))
    meta["shards"] = meta["shards"] + [new_shard]
    meta["waves"] = {**meta.get("waves", {}), new_shard: {"start": start, "size": size,
                                                           "episodes": len(new_episodes), "transitions": transitions}}
    meta["succeeded"] = meta.get("succeeded", meta["episodes"]) + sum(e.success for e in new_episodes)
    meta["episodes"] += len(new_episodes)
    meta["transitions"] += transitions
    meta["next_index"] = start + size
    if len(allacts):
        meta["action_q01"] = np.percentile(allacts, 1, axis=0).tolist()
        meta["action_q99"] = np.percentile(allacts, 99, axis=0).tolist()
    atomic_write_text(root / "meta.json", json.dumps(meta, indent=1))
    return meta
