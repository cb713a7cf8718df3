"""Procedural assets: graspable objects, receptacles and table appearances.

Everything is generated here from primitives, small convex meshes and numpy
textures, so the benchmark needs no downloads. Assets are plain data; the scene
builder turns them into MJCF. Each object's body frame has its origin at the
centre of its footprint on the table (z = 0 is the object's bottom).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RGBA = tuple[float, float, float, float]


@dataclass(frozen=True)
class Part:
    """One geom of an asset, in the asset's body frame."""

    type: str  # box | cylinder | capsule | sphere | ellipsoid | mesh
    size: tuple[float, ...]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    euler: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rgba: RGBA = (0.5, 0.5, 0.5, 1.0)
    mesh: str = ""  # name of a generated mesh when type == "mesh"
    collide: bool = True


YAW_SYMMETRIC_FAMILIES = frozenset({"cylinder", "sphere", "bottle"})


@dataclass(frozen=True)
class ObjectAsset:
    """A graspable object: a free body built from parts."""

    name: str
    split: str  # "train" | "test" | "pretrain" (the robot-pretraining corpus only)
    family: str  # shape family (a test object may share one with a train object)
    parts: tuple[Part, ...]
    long_axis_yaw: float = 0.0  # yaw (body frame) of the axis the fingers should close across
    rolls: bool = False  # round body: gets rolling friction so it rests where it is put

    @property
    def yaw_symmetric(self) -> bool:
        """Round in plan view (cans, balls, bottles): every gripper yaw grasps it the same way."""
        return self.family in YAW_SYMMETRIC_FAMILIES


@dataclass(frozen=True)
class ReceptacleAsset:
    """A static receptacle; success needs the object inside its footprint."""

    name: str
    split: str
    parts: tuple[Part, ...]
    half_extent: tuple[float, float]  # footprint half sizes (x, y) in body frame
    round: bool  # True: the footprint is the ellipse with these half axes, else the rectangle
    top: float  # height of the support surface above the table


@dataclass(frozen=True)
class TableAsset:
    """A table appearance: a procedural texture recipe."""

    name: str
    split: str
    kind: str  # wood | marble | fabric | solid | checker | stripes
    colors: tuple[tuple[float, float, float], ...]
    seed: int = 0


@dataclass(frozen=True)
class MeshAsset:
    name: str
    vertices: np.ndarray = field(repr=False)


def prism_mesh(name: str, length: float, r0: float, r1: float, sides: int = 6) -> MeshAsset:
    """A tapered polygonal prism along x, lying on a flat face (does not roll)."""
    ang = np.pi / sides + 2 * np.pi * np.arange(sides) / sides - np.pi / 2
    verts = []
    for x, r in ((-length / 2, r0), (length / 2, r1)):
        for a in ang:
            verts.append((x, r * np.cos(a), r * np.sin(a)))
    v = np.asarray(verts)
    v[:, 2] -= v[:, 2].min()  # sit on z = 0
    return MeshAsset(name, v)


def disc_mesh(name: str, rx: float, ry: float, height: float, sides: int = 16) -> MeshAsset:
    """An elliptical disc (flat oval) of the given half axes, bottom at z = 0."""
    a = 2 * np.pi * np.arange(sides) / sides
    ring = np.stack([rx * np.cos(a), ry * np.sin(a)], -1)
    v = np.concatenate([np.c_[ring, np.zeros(sides)], np.c_[ring, np.full(sides, height)]])
    return MeshAsset(name, v)


def by_name(pool, name: str):
    """Look an asset up by name in a pool, with a clear error listing valid names."""
    for a in pool:
        if a.name == name:
            return a
    raise ValueError(f"unknown asset {name!r}; valid: {', '.join(a.name for a in pool)}")


def split_names(pool, split: str) -> list[str]:
    return [a.name for a in pool if a.split == split]


def table_texture(t: TableAsset, size: int = 256) -> np.ndarray:
    """Render a table appearance to an (size, size, 3) uint8 texture."""
    rng = np.random.default_rng(t.seed)
    y, x = np.mgrid[0:size, 0:size] / size
    c = [np.asarray(col, dtype=np.float64) for col in t.colors]
    if t.kind == "solid":
        w = 0.03 * rng.standard_normal((size, size))
        img = c[0][None, None] * (1 + w[..., None])
    elif t.kind == "wood":
        rings = np.sin(2 * np.pi * (6 * y + 1.5 * np.sin(3 * x + rng.uniform(0, 6)) + 0.4 * x))
        grain = 0.5 + 0.5 * rings + 0.15 * rng.standard_normal((size, size))
        w = np.clip(grain, 0, 1)[..., None]
        img = c[0] * (1 - w) + c[1] * w
    elif t.kind == "marble":
        noise = _value_noise(rng, size, 8) + 0.5 * _value_noise(rng, size, 16)
        veins = np.abs(np.sin(2 * np.pi * (3 * x + 2 * y) + 6 * noise)) ** 0.3
        w = (1 - veins)[..., None]
        img = c[0] * (1 - w) + c[1] * w
    elif t.kind == "fabric":
        weave = ((np.floor(x * 64) + np.floor(y * 64)) % 2)[..., None]
        img = c[0] * (1 - 0.5 * weave) + c[1] * 0.5 * weave
        img = img * (1 + 0.08 * rng.standard_normal((size, size, 1)))
    elif t.kind == "checker":
        w = ((np.floor(x * 8) + np.floor(y * 8)) % 2)[..., None]
        img = c[0] * (1 - w) + c[1] * w
    elif t.kind == "stripes":
        w = (np.floor((x + 0.3 * y) * 10) % 2)[..., None]
        img = c[0] * (1 - w) + c[1] * w
    elif t.kind == "terrazzo":
        img = np.broadcast_to(c[0], (size, size, 3)).copy()
        for _ in range(220):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.005, 0.02)
            col = c[1 + rng.integers(len(c) - 1)]
            img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = col
    elif t.kind == "tiles":
        grout = ((x * 6) % 1 < 0.06) | ((y * 6) % 1 < 0.06)
        w = grout[..., None].astype(float)
        img = c[0] * (1 - w) + c[1] * w
    else:
        raise ValueError(f"unknown table texture kind {t.kind!r}")
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1] of shape (size, size)."""
    grid = rng.uniform(0, 1, (cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    f = f * f * (3 - 2 * f)
    a = grid[i][:, i] * (1 - f)[None, :] + grid[i][:, i + 1] * f[None, :]
    b = grid[i + 1][:, i] * (1 - f)[None, :] + grid[i + 1][:, i + 1] * f[None, :]
    return a * (1 - f)[:, None] + b * f[:, None]


PERTURBATION_KINDS = ("noise", "stripes", "dots", "checker", "plasma", "waves", "blocks", "rings")


def perturbation_texture(index: int, size: int = 256) -> np.ndarray:
    """The index-th (0..15) perturbation texture: saturated, high-contrast, (size, size, 3) uint8."""
    if not 0 <= index < 16:
        raise ValueError(f"perturbation texture index must be in [0, 16), got {index}")
    rng = np.random.default_rng(1000 + index)
    kind = PERTURBATION_KINDS[index % len(PERTURBATION_KINDS)]
    y, x = np.mgrid[0:size, 0:size] / size
    palette = rng.uniform(0, 1, (4, 3))
    if kind == "noise":
        img = np.stack([_value_noise(rng, size, 16) for _ in range(3)], -1)
    elif kind == "stripes":
        a = rng.uniform(0, np.pi)
        w = (np.sin(2 * np.pi * 12 * (np.cos(a) * x + np.sin(a) * y)) > 0)[..., None]
        img = np.where(w, palette[0], palette[1])
    elif kind == "dots":
        w = (((x * 10) % 1 - 0.5) ** 2 + ((y * 10) % 1 - 0.5) ** 2 < 0.09)[..., None]
        img = np.where(w, palette[0], palette[1])
    elif kind == "checker":
        k = (np.floor(x * 8) + 2 * np.floor(y * 8)).astype(int) % 4
        img = palette[k]
    elif kind == "plasma":
        v = np.sin(10 * x + rng.uniform(0, 6)) + np.sin(10 * y) + np.sin(7 * (x + y))
        v = v + np.sin(12 * np.hypot(x - 0.5, y - 0.5))
        img = 0.5 + 0.5 * np.stack([np.sin(v), np.sin(v + 2), np.sin(v + 4)], -1)
    elif kind == "waves":
        v = np.sin(2 * np.pi * (6 * x + 2 * np.sin(2 * np.pi * 2 * y)))
        w = (0.5 + 0.5 * v)[..., None]
        img = palette[0] * w + palette[2] * (1 - w)
    elif kind == "blocks":
        cells = rng.integers(0, 4, (8, 8))
        img = palette[cells[(y * 8).astype(int), (x * 8).astype(int)]]
    else:  # rings
        r = np.hypot(x - rng.uniform(0.3, 0.7), y - rng.uniform(0.3, 0.7))
        k = (np.floor(r * 20)).astype(int) % 3
        img = palette[k]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)
