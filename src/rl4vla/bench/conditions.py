"""Conditions as data, and the one sampler that turns them into pinned episodes.

A `Condition` says which pools, positions, perturbations and events an episode may
draw from; `sample_episodes(condition, seed, n)` maps it deterministically to
`Episode`s: plain JSON-able records that the environment replays exactly. Only
this module knows how splits map to episodes. Users add conditions from a
YAML/JSON file (`load_conditions_file`) without writing code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from rl4vla.sim import assets as A
from rl4vla.sim import catalog as C
from rl4vla.sim.mjcf import WORKSPACE_CENTER
from rl4vla.util import check_seed

GRID_HALF = 0.075  # the 15 x 15 cm training square
GRID_N = 6
MIN_SEPARATION = 0.07  # object to receptacle
RECEPTACLE_SEPARATION = 0.15
DISTRACTOR_RECEPTACLE_SEPARATION = 0.1  # target object to a distractor receptacle
TRAIN_YAWS = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
RING_YAWS = (-np.pi / 8, -3 * np.pi / 8, -5 * np.pi / 8, -7 * np.pi / 8)
PAPER_JOINT_OFFSETS = ((-0.15, -0.08, 0.0, 0.08, 0.15),) * 5 + ((-0.6, -0.3, 0.0, 0.3, 0.6),)
DIMENSIONS = ("-", "vision", "semantics", "execution")
PERTURBATIONS = ("texture", "noise")
POSITION_SETS = ("grid", "ring")

Pool = str | tuple[str, ...]  # a split name ("train" / "test") or explicit asset names


@dataclass(frozen=True)
class Condition:
    """A declarative generalization condition (docs/benchmark.md). The first object and receptacle are targets."""

    name: str
    dimension: str
    description: str
    objects: Pool = "train"
    distractor_objects: Pool | None = None
    receptacles: Pool = "train"
    distractor_receptacles: Pool | None = None
    tables: Pool = "train"
    templates: tuple[str, ...] = (C.TRAIN_TEMPLATE,)
    positions: str = "grid"
    yaws: tuple[float, ...] = TRAIN_YAWS
    object_separation: float = MIN_SEPARATION
    joint_offsets: tuple[tuple[float, ...], ...] | None = None
    perturbation: str | None = None
    alpha: float = 0.0
    reposition_step: int | None = None
    lighting_jitter: float = 0.0  # each light's intensity scaled by U(1 - j, 1 + j), its direction tilted
    camera_jitter: float = 0.0  # metres: camera position moved by U(-j, j) per axis, its target by half that

    def to_dict(self) -> dict:
        return asdict(self)


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
    perturbation: dict | None = None  # {"kind", "alpha", "texture", "seed"}
    reposition: dict | None = None  # {"step", "x", "y", "yaw"}
    extras: dict = field(default_factory=dict)  # {"lighting": {...}, "camera": {...}}: a data source's jitter

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


def _c(name, dim, desc, **kw) -> Condition:
    return Condition(name, dim, desc, **kw)


BUILTIN: tuple[Condition, ...] = (
    _c("in-distribution", "-", "train objects, plate, train tables, train grid, train template"),
    _c("unseen-table", "vision", "the 5 test table appearances", tables="test"),
    _c("dynamic-texture-weak", "vision", "robot and object pixels blended with a texture (alpha 0.3) each frame",
       perturbation="texture", alpha=0.3),
    _c("dynamic-texture-strong", "vision", "robot and object pixels blended with a texture (alpha 0.5) each frame",
       perturbation="texture", alpha=0.5),
    _c("dynamic-noise-weak", "vision", "whole image blended with a moving texture crop (alpha 0.3)",
       perturbation="noise", alpha=0.3),
    _c("dynamic-noise-strong", "vision", "whole image blended with a moving texture crop (alpha 0.5)",
       perturbation="noise", alpha=0.5),
    _c("unseen-object", "semantics", "target from the 9 test objects", objects="test"),
    _c("unseen-receptacle", "semantics", "receptacle from the 16 test receptacles", receptacles="test"),
    _c("unseen-instruction", "semantics", "instruction from the 16 paraphrase templates", templates=C.TEST_TEMPLATES),
    _c("multi-object-seen", "semantics", "target plus a train distractor object, > 15 cm apart",
       distractor_objects="train", object_separation=0.15),
    _c("multi-object-unseen", "semantics", "target plus a distractor, both test objects, > 15 cm apart",
       objects="test", distractor_objects="test", object_separation=0.15),
    _c("distractive-receptacle", "semantics", "the plate is the target; an unseen receptacle distracts",
       distractor_receptacles="test"),
    _c("multi-receptacle-unseen", "semantics", "two distinct unseen receptacles, one named as target",
       receptacles="test", distractor_receptacles="test"),
    _c("unseen-position", "execution", "positions on a ring one grid step outside the training square; new yaws",
       positions="ring", yaws=RING_YAWS),
    _c("unseen-init-pose", "execution", "robot starts from offset joint angles",
       joint_offsets=PAPER_JOINT_OFFSETS),
    _c("mid-episode-reposition", "execution", "at step 5 the object jumps to another grid point, then settles",
       reposition_step=5),
)
CONDITIONS: dict[str, Condition] = {c.name: c for c in BUILTIN}

# Data sources that are not benchmark conditions (never in 'all', never evaluated by the study): the
# robot-pretraining corpus, the small VLA's analogue of the Open X-Embodiment data OpenVLA was pretrained
# on before the study's warm-up. Its objects, receptacles (besides the plate), tables and instruction
# templates come from pretraining pools that share nothing with any test pool (tests/test_conditions.py),
# and it jitters lighting and camera, which no condition does. Half of its scenes hold a distractor object.
_PRETRAIN_POOLS = dict(
    objects="pretrain",
    receptacles=("plate",) + tuple(A.split_names(C.RECEPTACLES, "pretrain")),
    tables=tuple(A.split_names(C.TABLES, "train") + A.split_names(C.TABLES, "pretrain")),
    templates=(C.TRAIN_TEMPLATE,) + C.PRETRAIN_TEMPLATES,
    lighting_jitter=0.3, camera_jitter=0.02,
)
SOURCES: dict[str, Condition] = {
    "robot-pretraining": _c("robot-pretraining", "-", "48 pretraining objects on the plate or 8 pretraining "
                            "receptacles, 28 tables, 13 templates, lighting and camera jitter", **_PRETRAIN_POOLS),
    "robot-pretraining-clutter": _c("robot-pretraining-clutter", "-", "robot-pretraining with a pretraining "
                                    "distractor object > 15 cm away", distractor_objects="pretrain",
                                    object_separation=0.15, **_PRETRAIN_POOLS),
}

# ----- validation and user files ------------------------------------------------------------
def _pool_names(pool: Pool, assets, what: str) -> list[str]:
    if isinstance(pool, str):
        names = A.split_names(assets, pool)
        if not names:
            splits = sorted({a.split for a in assets})
            raise ValueError(f"{what} pool {pool!r} is not a split; use {', '.join(map(repr, splits))} "
                             "or a list of names")
        return names
    names = list(pool)
    valid = {a.name for a in assets}
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise ValueError(f"unknown {what} {bad or '(empty list)'}; valid: {', '.join(sorted(valid))}")
    return names


def validate(c: Condition) -> Condition:
    """Check a condition's fields; raises ValueError naming the field and the valid values."""
    if c.dimension not in DIMENSIONS:
        raise ValueError(f"condition {c.name!r}: dimension {c.dimension!r}; valid: {', '.join(DIMENSIONS)}")
    if c.positions not in POSITION_SETS:
        raise ValueError(f"condition {c.name!r}: positions {c.positions!r}; valid: {', '.join(POSITION_SETS)}")
    if c.perturbation is not None and c.perturbation not in PERTURBATIONS:
        raise ValueError(f"condition {c.name!r}: perturbation {c.perturbation!r}; valid: {', '.join(PERTURBATIONS)}")
    if c.perturbation is not None and not 0 < c.alpha <= 1:
        raise ValueError(f"condition {c.name!r}: alpha must be in (0, 1], got {c.alpha}")
    if not c.templates:
        raise ValueError(f"condition {c.name!r}: templates must not be empty")
    for t in c.templates:
        if "{object}" not in t or "{receptacle}" not in t:
            raise ValueError(f"condition {c.name!r}: template {t!r} must contain {{object}} and {{receptacle}}")
    if c.joint_offsets is not None and len(c.joint_offsets) != 6:
        raise ValueError(f"condition {c.name!r}: joint_offsets needs 6 lists of candidate offsets (one per joint)")
    if c.reposition_step is not None and c.reposition_step < 1:
        raise ValueError(f"condition {c.name!r}: reposition_step must be >= 1")
    if not 0 <= c.lighting_jitter < 1:
        raise ValueError(f"condition {c.name!r}: lighting_jitter must be in [0, 1), got {c.lighting_jitter}")
    if not 0 <= c.camera_jitter <= 0.1:
        raise ValueError(f"condition {c.name!r}: camera_jitter must be in [0, 0.1] metres, got {c.camera_jitter}")
    for pool, assets, what in ((c.objects, C.OBJECTS, "objects"), (c.receptacles, C.RECEPTACLES, "receptacles"),
                               (c.tables, C.TABLES, "tables"), (c.distractor_objects, C.OBJECTS, "objects"),
                               (c.distractor_receptacles, C.RECEPTACLES, "receptacles")):
        if pool is not None:
            _pool_names(pool, assets, what)
    return c


def _names(v) -> bool:
    return isinstance(v, str) or (isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v))


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(v) -> bool:
    return isinstance(v, (list, tuple)) and all(map(_number, v))


_TEXT = ("a string", lambda v: isinstance(v, str))
_POOL = ("a split name or a list of names", _names)
_MAYBE_POOL = ("null, a split name or a list of names", lambda v: v is None or _names(v))
_FIELD_TYPES = {  # what a user file may give each field: (description, test)
    "name": _TEXT, "base": _TEXT, "dimension": _TEXT, "description": _TEXT, "positions": _TEXT,
    "objects": _POOL, "receptacles": _POOL, "tables": _POOL,
    "distractor_objects": _MAYBE_POOL, "distractor_receptacles": _MAYBE_POOL,
    "templates": ("a list of strings", lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)),
    "yaws": ("a list of numbers", _numbers),
    "object_separation": ("a number", _number), "alpha": ("a number", _number),
    "joint_offsets": ("null or 6 lists of numbers", lambda v: v is None or (
        isinstance(v, (list, tuple)) and all(map(_numbers, v)))),
    "perturbation": ("null or a string", lambda v: v is None or isinstance(v, str)),
    "reposition_step": ("null or an integer", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))),
    "lighting_jitter": ("a number", _number), "camera_jitter": ("a number", _number),
}


def condition_from_dict(d: dict) -> Condition:
    """Build a condition from a dict (a user file entry); `base` names a condition to inherit from."""
    d = dict(d)
    fields = {f.name for f in dataclasses.fields(Condition)}
    unknown = sorted(set(d) - fields - {"base"})
    if unknown:
        raise ValueError(f"unknown condition field(s) {unknown}; valid: base, {', '.join(sorted(fields))}")
    for k, v in d.items():
        what, ok = _FIELD_TYPES[k]
        if not ok(v):
            raise ValueError(f"condition {d.get('name', '(unnamed)')!r}: {k} must be {what}, got {v!r}")
    base = d.pop("base", None)
    for k in ("objects", "receptacles", "tables", "distractor_objects", "distractor_receptacles"):
        if isinstance(d.get(k), list):
            d[k] = tuple(d[k])
    for k in ("templates", "yaws"):
        if k in d:
            d[k] = tuple(d[k])
    if d.get("joint_offsets") is not None:
        d["joint_offsets"] = tuple(tuple(j) for j in d["joint_offsets"])
    if "name" not in d:
        raise ValueError("a condition needs a 'name'")
    if base is not None:
        parent = get_condition(base)
        return validate(dataclasses.replace(parent, **d))
    for k in ("dimension", "description"):
        d.setdefault(k, "-" if k == "dimension" else "user-defined condition")
    return validate(Condition(**d))


def _parse(path: str, text: str):
    """A YAML (.yaml, .yml) or JSON file's data; ValueError naming the file and the line of a syntax error."""
    if path.endswith((".yaml", ".yml")):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ValueError(f"{path} is not valid YAML: {getattr(e, 'problem', None) or e}{where}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None


def load_conditions_file(path: str) -> list[Condition]:
    """Conditions from a YAML or JSON file: a list of condition dicts, or {"conditions": [...]}."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"cannot read the conditions file {path}: {e.strerror or e}") from None
    data = _parse(path, text)
    if isinstance(data, dict):
        data = data.get("conditions")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ValueError(f"{path}: expected a list of conditions, each a mapping of fields (or {{'conditions': "
                         "[...]}})")
    try:
        conds = [condition_from_dict(d) for d in data]
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    names = [c.name for c in conds]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{path}: more than one condition named {', '.join(map(repr, twice))}")
    return conds


def register(conds: list[Condition]) -> None:
    """Make user conditions selectable by name (and part of 'all'). A user condition never replaces a built-in
    one (reports would compute retention against the wrong in-distribution): its name must be its own."""
    reserved = [c.name for c in BUILTIN] + list(SOURCES) + ["all"]
    for c in conds:
        if c.name in reserved:
            raise ValueError(f"user condition {c.name!r} is named like a built-in condition, which it would replace; "
                             f"give it a name of its own (`base: {c.name}` starts it from the built-in one)")
        CONDITIONS[c.name] = validate(c)


def uses_pretraining_assets(conds: list[Condition]) -> bool:
    """Whether any condition draws an object, receptacle or table of the robot-pretraining corpus (its scenes
    must then hold those assets: EnvConfig.pretraining_assets)."""
    for c in conds:
        for pool, assets in ((c.objects, C.OBJECTS), (c.distractor_objects, C.OBJECTS), (c.receptacles, C.RECEPTACLES),
                             (c.distractor_receptacles, C.RECEPTACLES), (c.tables, C.TABLES)):
            if pool is not None and any(A.by_name(assets, n).split == "pretrain"
                                        for n in _pool_names(pool, assets, "assets")):
                return True
    return False


def episodes_use_pretraining_assets(episodes: list[Episode]) -> bool:
    """Whether any episode places an object, receptacle or table of the robot-pretraining corpus."""
    split = {a.name: a.split for pool in (C.OBJECTS, C.RECEPTACLES, C.TABLES) for a in pool}
    return any(split.get(n) == "pretrain" for e in episodes
               for n in (*(p.name for p in e.objects), *(p.name for p in e.receptacles), e.table))


def get_condition(name: str) -> Condition:
    """A benchmark condition, or a data source (SOURCES) for collecting demos, by name."""
    if name not in CONDITIONS and name not in SOURCES:
        raise ValueError(f"unknown condition {name!r}; valid: {', '.join(CONDITIONS)} (or 'all'); data sources: "
                         f"{', '.join(SOURCES)}")
    return CONDITIONS.get(name) or SOURCES[name]


def resolve_conditions(names: list[str] | tuple[str, ...] | str) -> list[Condition]:
    """Names (or 'all') to Condition specs, with a clear error for unknown names."""
    if isinstance(names, str):
        names = [names]
    if "all" in names:
        return list(CONDITIONS.values())
    return [get_condition(n) for n in names]


# ----- sampling ------------------------------------------------------------------------------
def grid_points(positions: str) -> np.ndarray:
    """Candidate (x, y) centres for a position set: the 6x6 training grid or the ring around it."""
    ticks = np.linspace(-GRID_HALF, GRID_HALF, GRID_N)
    if positions == "grid":
        gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel()], -1)
    elif positions == "ring":
        step = ticks[1] - ticks[0]
        ring = np.concatenate([ticks[:1] - step, ticks, ticks[-1:] + step])
        gx, gy = np.meshgrid(ring, ring, indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel()], -1)
        pts = pts[(np.abs(pts) > GRID_HALF + 1e-9).any(-1)]
    else:
        raise ValueError(f"unknown position set {positions!r}; valid: {', '.join(POSITION_SETS)}")
    return pts + WORKSPACE_CENTER


def _rng(cond: Condition, seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(cond.name.encode()), check_seed(int(seed), "seed"), int(index)])


def _place(rng, pts: np.ndarray, cond: Condition) -> dict[str, np.ndarray]:
    """Rejection-sample grid points for the target object/receptacle and any distractors."""
    roles = ["obj", "rec"] + (["dobj"] if cond.distractor_objects else []) + (
        ["drec"] if cond.distractor_receptacles else [])
    min_d = {("obj", "rec"): MIN_SEPARATION, ("obj", "dobj"): cond.object_separation,
             ("rec", "dobj"): MIN_SEPARATION, ("rec", "drec"): RECEPTACLE_SEPARATION,
             ("obj", "drec"): DISTRACTOR_RECEPTACLE_SEPARATION, ("dobj", "drec"): MIN_SEPARATION}
    for _ in range(10_000):
        idx = rng.choice(len(pts), size=len(roles), replace=False)
        p = dict(zip(roles, pts[idx]))
        if all(np.linalg.norm(p[a] - p[b]) > d for (a, b), d in min_d.items() if a in p and b in p):
            return p
    raise ValueError(f"condition {cond.name!r}: cannot place {roles} with the required separations")


def sample_episode(cond: Condition, seed: int, index: int) -> Episode:
    """Deterministic: the same (condition, seed, index) always gives the same episode."""
    rng = _rng(cond, seed, index)
    pts = grid_points(cond.positions)
    for _ in range(1000):
        p = _place(rng, pts, cond)
        if cond.reposition_step is None:
            break
        # the object must be able to jump > 15 cm from its start and land > 7 cm from the receptacle
        far = np.linalg.norm(pts - p["obj"], axis=1) > 0.15
        far &= np.linalg.norm(pts - p["rec"], axis=1) > MIN_SEPARATION
        jumps = list(pts[far])
        if jumps:
            break
    else:
        raise ValueError(f"condition {cond.name!r}: no placement admits a reposition > 15 cm")
    objs = _pool_names(cond.objects, C.OBJECTS, "objects")
    recs = _pool_names(cond.receptacles, C.RECEPTACLES, "receptacles")
    tables = _pool_names(cond.tables, C.TABLES, "tables")
    obj = objs[rng.integers(len(objs))]
    rec = recs[rng.integers(len(recs))]
    objects = [Placement(obj, *map(float, p["obj"]), float(cond.yaws[rng.integers(len(cond.yaws))]))]
    receptacles = [Placement(rec, *map(float, p["rec"]))]
    if cond.distractor_objects:
        pool = [n for n in _pool_names(cond.distractor_objects, C.OBJECTS, "objects") if n != obj]
        objects.append(Placement(pool[rng.integers(len(pool))], *map(float, p["dobj"]),
                                 float(cond.yaws[rng.integers(len(cond.yaws))])))
    if cond.distractor_receptacles:
        pool = [n for n in _pool_names(cond.distractor_receptacles, C.RECEPTACLES, "receptacles") if n != rec]
        receptacles.append(Placement(pool[rng.integers(len(pool))], *map(float, p["drec"])))
    template = cond.templates[rng.integers(len(cond.templates))]
    offsets = (0.0,) * 6
    if cond.joint_offsets is not None:
        while not any(offsets):
            offsets = tuple(float(rng.choice(c)) for c in cond.joint_offsets)
    perturbation = None
    if cond.perturbation:
        perturbation = {"kind": cond.perturbation, "alpha": float(cond.alpha),
                        "texture": int(rng.integers(C.N_PERTURBATION_TEXTURES)), "seed": int(rng.integers(2**31))}
    reposition = None
    if cond.reposition_step is not None:
        q = jumps[rng.integers(len(jumps))]
        reposition = {"step": int(cond.reposition_step), "x": float(q[0]), "y": float(q[1]),
                      "yaw": float(cond.yaws[rng.integers(len(cond.yaws))])}
    table = tables[rng.integers(len(tables))]
    extras = {}  # drawn last, so conditions without jitter keep their episodes (and manifest hashes)
    if cond.lighting_jitter:
        j = cond.lighting_jitter
        extras["lighting"] = {"key": float(rng.uniform(1 - j, 1 + j)), "ambient": float(rng.uniform(1 - j, 1 + j)),
                              "tilt": [float(v) for v in rng.uniform(-j, j, 2)]}
    if cond.camera_jitter:
        j = cond.camera_jitter
        extras["camera"] = {"pos": [float(v) for v in rng.uniform(-j, j, 3)],
                            "target": [float(v) for v in rng.uniform(-j / 2, j / 2, 3)]}
    return Episode(
        condition=cond.name, seed=int(seed), index=int(index), objects=tuple(objects),
        receptacles=tuple(receptacles), table=table,
        instruction=template.format(object=obj, receptacle=rec), joint_offsets=offsets,
        perturbation=perturbation, reposition=reposition, extras=extras,
    )


def sample_episodes(cond: Condition, seed: int, n: int) -> list[Episode]:
    return [sample_episode(cond, seed, i) for i in range(n)]


# ----- manifests --------------------------------------------------------------------------------
def manifest_hash(episodes: list[Episode]) -> str:
    """A short content hash of a list of episodes: equal hashes mean the same episodes."""
    blob = json.dumps([e.to_dict() for e in episodes], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def write_manifest(path: str, episodes: list[Episode]) -> None:
    from rl4vla.util import atomic_write_text

    conds = {e.condition: CONDITIONS[e.condition].to_dict() for e in episodes if e.condition in CONDITIONS}
    doc = {"version": 1, "hash": manifest_hash(episodes), "conditions": conds,
           "episodes": [e.to_dict() for e in episodes]}
    atomic_write_text(path, json.dumps(doc, indent=1))


def read_manifest(path: str) -> list[Episode]:
    try:
        with open(path) as f:
            doc = json.load(f)
        episodes = [Episode.from_dict(d) for d in doc["episodes"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a readable episode manifest ({type(e).__name__}: {e})") from e
    if "hash" not in doc:
        raise ValueError(f"{path} has no 'hash' field, so its episodes cannot be checked; write manifests with "
                         "`rl4vla eval --save-manifest`")
    if doc["hash"] != manifest_hash(episodes):
        raise ValueError(f"{path}: manifest hash mismatch (the file was edited or is corrupt)")
    return episodes
