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


@dataclass(frozen=True)
class ObjectAsset:
    """A graspable object: a free body built from parts."""

    name: str
    split: str  # "train" | "test"
    family: str  # shape family (a test object may share one with a train object)
    parts: tuple[Part, ...]
    long_axis_yaw: float = 0.0  # yaw (body frame) of the axis the fingers should close across


@dataclass(frozen=True)
class ReceptacleAsset:
    """A static receptacle; success needs the object inside its footprint."""

    name: str
    split: str
    parts: tuple[Part, ...]
    half_extent: tuple[float, float]  # footprint half sizes (x, y) in body frame
    round: bool  # True: footprint is a disc of radius half_extent[0]
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


def _prism_mesh(name: str, length: float, r0: float, r1: float, sides: int = 6) -> MeshAsset:
    """A tapered polygonal prism along x, lying on a flat face (does not roll)."""
    ang = np.pi / sides + 2 * np.pi * np.arange(sides) / sides - np.pi / 2
    verts = []
    for x, r in ((-length / 2, r0), (length / 2, r1)):
        for a in ang:
            verts.append((x, r * np.cos(a), r * np.sin(a)))
    v = np.asarray(verts)
    v[:, 2] -= v[:, 2].min()  # sit on z = 0
    return MeshAsset(name, v)


MESHES: tuple[MeshAsset, ...] = (
    _prism_mesh("carrot_body", 0.11, 0.022, 0.006),
    _prism_mesh("cucumber_body", 0.12, 0.018, 0.016, sides=8),
)

ORANGE = (0.95, 0.45, 0.08, 1.0)
GREEN = (0.15, 0.6, 0.15, 1.0)
YELLOW = (0.95, 0.85, 0.2, 1.0)
RED = (0.8, 0.1, 0.1, 1.0)
SILVER = (0.75, 0.75, 0.78, 1.0)
WHITE = (0.95, 0.95, 0.95, 1.0)


OBJECTS: tuple[ObjectAsset, ...] = (
    ObjectAsset(
        "carrot", "train", "root",
        (
            Part("mesh", (), mesh="carrot_body", rgba=ORANGE),
            Part("box", (0.012, 0.01, 0.008), pos=(-0.062, 0, 0.02), rgba=GREEN),
        ),
    ),
    ObjectAsset(
        "banana", "train", "curved",
        (
            Part("capsule", (0.016, 0.03), pos=(0.0, 0.012, 0.016), euler=(0, 1.5708, 0), rgba=YELLOW),
            Part("capsule", (0.014, 0.022), pos=(0.045, -0.002, 0.016), euler=(0, 1.5708, 0.6), rgba=YELLOW),
            Part("capsule", (0.014, 0.022), pos=(-0.045, -0.002, 0.016), euler=(0, 1.5708, -0.6), rgba=YELLOW),
            Part("sphere", (0.007,), pos=(-0.068, -0.02, 0.016), rgba=(0.35, 0.25, 0.1, 1.0)),
        ),
    ),
    ObjectAsset(
        "soda can", "train", "cylinder",
        (
            Part("cylinder", (0.027, 0.045), pos=(0, 0, 0.045), rgba=RED),
            Part("cylinder", (0.024, 0.003), pos=(0, 0, 0.091), rgba=SILVER, collide=False),
        ),
    ),
    ObjectAsset(
        "mug", "train", "mug",
        (
            Part("cylinder", (0.03, 0.035), pos=(0, 0, 0.035), rgba=(0.2, 0.4, 0.85, 1.0)),
            Part("box", (0.006, 0.006, 0.024), pos=(0.0, 0.042, 0.036), rgba=(0.2, 0.4, 0.85, 1.0)),
            Part("box", (0.006, 0.01, 0.004), pos=(0.0, 0.034, 0.058), rgba=(0.2, 0.4, 0.85, 1.0)),
            Part("box", (0.006, 0.01, 0.004), pos=(0.0, 0.034, 0.014), rgba=(0.2, 0.4, 0.85, 1.0)),
        ), long_axis_yaw=1.5708,
    ),
    ObjectAsset(
        "sponge", "train", "box",
        (
            Part("box", (0.045, 0.028, 0.013), pos=(0, 0, 0.013), rgba=YELLOW),
            Part("box", (0.045, 0.028, 0.004), pos=(0, 0, 0.03), rgba=(0.1, 0.55, 0.25, 1.0)),
        ),
    ),
    ObjectAsset(
        "cucumber", "test", "root",
        (
            Part("mesh", (), mesh="cucumber_body", rgba=(0.1, 0.4, 0.12, 1.0)),
            Part("box", (0.004, 0.006, 0.006), pos=(0.062, 0, 0.017), rgba=(0.5, 0.6, 0.3, 1.0)),
        ),
    ),
)

RECEPTACLES: tuple[ReceptacleAsset, ...] = (
    ReceptacleAsset(
        "plate", "train",
        (
            Part("cylinder", (0.065, 0.004), pos=(0, 0, 0.004), rgba=(0.85, 0.85, 0.88, 1.0)),
            Part("cylinder", (0.05, 0.0045), pos=(0, 0, 0.0045), rgba=WHITE, collide=False),
        ),
        half_extent=(0.065, 0.065), round=True, top=0.008,
    ),
    ReceptacleAsset(
        "cutting board", "test",
        (
            Part("box", (0.08, 0.06, 0.007), pos=(0, 0, 0.007), rgba=(0.72, 0.52, 0.3, 1.0)),
            Part("cylinder", (0.008, 0.0075), pos=(0.065, 0, 0.0075), rgba=(0.3, 0.2, 0.1, 1.0), collide=False),
        ),
        half_extent=(0.08, 0.06), round=False, top=0.014,
    ),
)

TABLES: tuple[TableAsset, ...] = (
    TableAsset("light wood", "train", "wood", ((0.78, 0.6, 0.4), (0.62, 0.45, 0.28)), seed=1),
    TableAsset("grey marble", "train", "marble", ((0.85, 0.85, 0.85), (0.45, 0.45, 0.48)), seed=2),
    TableAsset("green felt", "train", "fabric", ((0.2, 0.45, 0.25), (0.15, 0.35, 0.2)), seed=3),
    TableAsset("beige", "train", "solid", ((0.82, 0.78, 0.68),), seed=4),
    TableAsset("blue checker", "test", "checker", ((0.25, 0.35, 0.7), (0.85, 0.85, 0.9)), seed=5),
)


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
        w = (np.floor(x * 10) % 2)[..., None]
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
