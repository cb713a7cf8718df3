"""Conditions as data, and the one sampler that turns them into pinned episodes.

A `Condition` says which pools, positions and events an episode may draw from;
`sample_episodes(condition, seed, n)` maps it deterministically to `Episode`s,
which are plain JSON-able records that the environment replays exactly.
Only this module knows how splits map to episodes.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from rl4vla.sim import assets as A
from rl4vla.sim.scene import WORKSPACE_CENTER

GRID_HALF = 0.075  # the 15 x 15 cm training square
GRID_N = 6
MIN_SEPARATION = 0.07
TRAIN_YAWS = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
TRAIN_TEMPLATE = "put {object} on {receptacle}"


@dataclass(frozen=True)
class Condition:
    """A declarative generalization condition (see BENCHMARK.md)."""

    name: str
    dimension: str  # "-" | vision | semantics | execution
    description: str
    object_split: str = "train"
    receptacle_split: str = "train"
    table_split: str = "train"
    templates: tuple[str, ...] = (TRAIN_TEMPLATE,)
    positions: str = "grid"  # grid | ring
    yaws: tuple[float, ...] = TRAIN_YAWS


@dataclass(frozen=True)
class Placement:
    name: str
    x: float
    y: float
    yaw: float = 0.0


@dataclass(frozen=True)
class Episode:
    """Everything needed to replay one episode exactly. The first object/receptacle is the target."""

    condition: str
    seed: int
    index: int
    objects: tuple[Placement, ...]
    receptacles: tuple[Placement, ...]
    table: str
    instruction: str
    joint_offsets: tuple[float, ...] = (0.0,) * 6
    extras: dict = field(default_factory=dict)

    @property
    def target_object(self) -> str:
        return self.objects[0].name

    @property
    def target_receptacle(self) -> str:
        return self.receptacles[0].name

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Episode:
        d = dict(d)
        d["objects"] = tuple(Placement(**p) for p in d["objects"])
        d["receptacles"] = tuple(Placement(**p) for p in d["receptacles"])
        d["joint_offsets"] = tuple(d.get("joint_offsets", (0.0,) * 6))
        return Episode(**d)


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("in-distribution", "-", "train objects, plate, train tables, train grid, train template"),
    )
}


def get_condition(name: str) -> Condition:
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; valid: {', '.join(CONDITIONS)} (or 'all')")
    return CONDITIONS[name]


def resolve_conditions(names: list[str] | tuple[str, ...] | str) -> list[Condition]:
    """Names (or 'all') to Condition specs, with a clear error for unknown names."""
    if isinstance(names, str):
        names = [names]
    if list(names) == ["all"]:
        return list(CONDITIONS.values())
    return [get_condition(n) for n in names]


def grid_points(positions: str) -> np.ndarray:
    """Candidate (x, y) centres for a position set."""
    ticks = np.linspace(-GRID_HALF, GRID_HALF, GRID_N)
    if positions == "grid":
        gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel()], -1)
    elif positions == "ring":
        step = ticks[1] - ticks[0]
        ring = np.concatenate([ticks[:1] - step, ticks, ticks[-1:] + step])
        gx, gy = np.meshgrid(ring, ring, indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel()], -1)
        on_ring = (np.abs(pts) > GRID_HALF + 1e-9).any(-1)
        pts = pts[on_ring]
    else:
        raise ValueError(f"unknown position set {positions!r}; valid: grid, ring")
    return pts + WORKSPACE_CENTER


def _rng(cond: Condition, seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(cond.name.encode()), int(seed), int(index)])


def sample_episode(cond: Condition, seed: int, index: int) -> Episode:
    """Deterministic: the same (condition, seed, index) always gives the same episode."""
    rng = _rng(cond, seed, index)
    pts = grid_points(cond.positions)
    objs = A.split_names(A.OBJECTS, cond.object_split)
    recs = A.split_names(A.RECEPTACLES, cond.receptacle_split)
    tables = A.split_names(A.TABLES, cond.table_split)
    for pool, what in ((objs, "objects"), (recs, "receptacles"), (tables, "tables")):
        if not pool:
            raise ValueError(f"condition {cond.name!r} selects an empty pool of {what}")
    while True:
        i, j = rng.choice(len(pts), size=2, replace=False)
        if np.linalg.norm(pts[i] - pts[j]) > MIN_SEPARATION:
            break
    obj = objs[rng.integers(len(objs))]
    rec = recs[rng.integers(len(recs))]
    template = cond.templates[rng.integers(len(cond.templates))]
    yaw = float(cond.yaws[rng.integers(len(cond.yaws))])
    return Episode(
        condition=cond.name,
        seed=int(seed),
        index=int(index),
        objects=(Placement(obj, float(pts[i][0]), float(pts[i][1]), yaw),),
        receptacles=(Placement(rec, float(pts[j][0]), float(pts[j][1])),),
        table=tables[rng.integers(len(tables))],
        instruction=template.format(object=obj, receptacle=rec),
    )


def sample_episodes(cond: Condition, seed: int, n: int) -> list[Episode]:
    return [sample_episode(cond, seed, i) for i in range(n)]


def write_manifest(path: str, episodes: list[Episode]) -> None:
    from rl4vla.util import atomic_write_text

    atomic_write_text(path, json.dumps({"episodes": [e.to_dict() for e in episodes]}, indent=1))


def read_manifest(path: str) -> list[Episode]:
    with open(path) as f:
        return [Episode.from_dict(d) for d in json.load(f)["episodes"]]
