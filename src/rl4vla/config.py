"""Frozen configs, one per command; tyro turns them into command-line flags."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalConfig:
    """Run a policy on pinned episodes of benchmark conditions and report success per condition."""

    policy: str = "expert"
    """policy to evaluate: expert, random or noop"""
    conditions: tuple[str, ...] = ("in-distribution",)
    """condition names, or 'all' (see `rl4vla conditions`)"""
    episodes: int = 32
    """episodes per condition and seed"""
    seed: int = 0
    """seed of the episode manifest (the same seed pins the same episodes for every policy)"""
    num_envs: int = 16
    """scenes stepped in lockstep"""
    workers: int = 2
    """env worker processes (0 = in this process)"""
    image_size: int = 128
    """observation size in pixels"""
    temperature: float = 0.6
    """sampling temperature of learned policies (the study evaluates at 0.6)"""
    json: bool = False
    """print one JSON object on stdout instead of a table"""
    out: str | None = None
    """also write the results JSON to this file (atomically)"""
    manifest: str | None = None
    """re-run exactly the episodes of this manifest JSON (overrides --conditions/--episodes/--seed)"""
    save_manifest: str | None = None
    """write the resolved episodes to this manifest JSON"""
    conditions_file: str | None = None
    """YAML/JSON file of extra user-defined conditions (selectable by name, included in 'all')"""


@dataclass(frozen=True)
class RenderConfig:
    """Record episodes as videos (MP4, GIF fallback) and a PNG contact sheet, captioned."""

    out: str = "renders"
    """output directory"""
    policy: str = "expert"
    """policy to render: expert, random or noop"""
    conditions: tuple[str, ...] = ("in-distribution",)
    """condition names, or 'all'"""
    episodes: int = 4
    """episodes per condition"""
    seed: int = 0
    """manifest seed"""
    size: int = 256
    """frame size in pixels"""
    workers: int = 2
    """env worker processes (0 = in this process)"""
    sheet_columns: int = 6
    """frames per episode on the contact sheet"""
    conditions_file: str | None = None
    """YAML/JSON file of extra user-defined conditions"""


@dataclass(frozen=True)
class BenchSimConfig:
    """Environment throughput: env steps per second with random actions and RGB observations."""

    size: int = 128
    """observation size in pixels"""
    workers: int = 2
    """env worker processes (0 = in this process)"""
    num_envs: int = 16
    """scenes stepped in lockstep"""
    steps: int = 80
    """control steps per repeat (one episode)"""
    repeats: int = 5
    """timed repeats; the median is reported"""
    conditions: tuple[str, ...] = ("in-distribution",)
    """conditions the scenes draw episodes from"""
    json: bool = False
    """print one JSON object on stdout"""


@dataclass(frozen=True)
class ConditionsConfig:
    """List the benchmark's generalization conditions."""

    json: bool = False
    """print a JSON list of {"name", "dimension", "description"}"""
    conditions_file: str | None = None
    """YAML/JSON file of extra user-defined conditions to list too"""


@dataclass(frozen=True)
class CollectConfig:
    """Run the scripted expert and write successful demonstrations (HDF5 shards; resumes and appends)."""

    out: str = "data/demos"
    """dataset directory (created, or appended to)"""
    conditions: tuple[str, ...] = ("in-distribution",)
    """conditions the demos are drawn from (the study trains on in-distribution only)"""
    episodes: int = 140
    """successful demos the dataset should hold (the study's warm-up used 140)"""
    seed: int = 0
    """episode seed; appending requires the same seed"""
    num_envs: int = 16
    """scenes stepped in lockstep (one wave per shard)"""
    workers: int = 2
    """env worker processes (0 = in this process)"""
    image_size: int = 128
    """frame size in pixels"""
