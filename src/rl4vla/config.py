"""Frozen configs of the commands that the data and eval packages run; tyro turns them into flags.

The rule: a command's config lives beside the code that runs it. The trainers (algos/sft.py, algos/rl.py), the
study (study.py), the shipped prior (prior.py) and the speed benchmarks (speed.py) keep theirs, with their
presets. The commands run by data and eval take theirs from here: this module sits at the bottom of the stack, so
those packages import it downward, and the command line builds them without importing the packages first.

`EnvArgs` is the benchmark environment every command that steps scenes nests as `env` (flags --env.backend,
--env.ray-address, --env.num-envs, --env.workers, --env.image-size); rl4vla.bench.env.env_config turns it into the
env's own EnvConfig. `EnvBackend`, its first two fields, is what `train sft` nests as `env`: its only scenes are
those of its in-training evaluations, whose size and workers it sets itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from tyro.conf import Positional, arg

from rl4vla.protocol import DEMO_SEED, EVAL_TEMPERATURE


@dataclass(frozen=True)
class EnvBackend:
    """Where the env workers run (rl4vla.bench.ray_backend); the results do not depend on it."""

    backend: Literal["local", "ray"] = "local"
    """where the env workers run: local (the default: processes on this machine, no extra install) or ray (one Ray
    actor per worker, on any node of a Ray cluster; `pip install 'rl4vla[ray]'`, docs/cluster.md); the results do
    not depend on it"""
    ray_address: str | None = None
    """--env.backend ray: the cluster to join (host:port, or auto); None = $RAY_ADDRESS if set, else a new local
    one"""


@dataclass(frozen=True)
class EnvArgs(EnvBackend):
    """The benchmark environment: where its workers run, how many scenes, stepped by how many workers, seen at
    what size."""

    num_envs: int = 16
    """scenes stepped in lockstep"""
    workers: int | Literal["auto"] = "auto"
    """env worker processes, or Ray actors with --env.backend ray (0 = step every scene in this process; ray: one
    actor); auto = one per usable CPU, less two for the policy on machines with more than four (2 here on 2
    cores: 420 env steps/s against 236 with one; 14 on a 16-core machine), or the Ray cluster's CPUs less one"""
    image_size: int | None = 128
    """square RGB observation size in pixels (16..480); None (RL and `bench policy` only) = the policy's input
    size"""


@dataclass(frozen=True)
class EvalConfig:
    """Run a policy on pinned episodes of benchmark conditions and report success per condition."""

    policy: str = "expert"
    """policy to evaluate: expert, random, noop, or a VLA checkpoint (model.pt)"""
    conditions: tuple[str, ...] = ("in-distribution",)
    """condition names, or 'all' (see `rl4vla conditions`)"""
    episodes: int = 32
    """episodes per condition and seed"""
    in_distribution_episodes: int = 0
    """episodes of the in-distribution condition per seed (0 = --episodes): the condition every other is compared
    with, and where RL trains, so it may get more; its first --episodes are the same pinned episodes either way"""
    seeds: tuple[int, ...] = (0,)
    """seeds of the episode manifest, concatenated in order (the same seeds pin the same episodes for every
    policy); the first also seeds the policy's sampling unless --sample-seed is given"""
    sample_seed: int | None = None
    """seed of a learned policy's action sampling (None = the first of --seeds, or of the manifest's episodes).
    Another value runs the same pinned episodes with other samples: a policy's repeated evaluations pool with
    `rl4vla compare A.json,A2.json B.json,...`, which cuts the noise a single evaluation of the start adds to a
    comparison of several RL seeds against it"""
    env: EnvArgs = EnvArgs()
    """the scenes the episodes run in (a learned policy resizes the frames to its input size)"""
    temperature: float = EVAL_TEMPERATURE
    """sampling temperature of learned policies (the study evaluates at 0.6; 0 = greedy)"""
    torch_threads: int = 0
    """torch intra-op threads of a learned policy (0 = auto: torch's default, at most 4)"""
    device: str = "auto"
    """where a learned policy runs: auto (cuda when torch.cuda.is_available(), else cpu), cpu or cuda (an error
    when no GPU is present); scripted policies ignore it"""
    json: bool = False
    """print one JSON object on stdout instead of a table"""
    out: str | None = None
    """also write the results JSON to this file (atomically; format in rl4vla/eval/results.py)"""
    label: str | None = None
    """name of this policy in results and reports (default: the policy name, or a checkpoint's run directory)"""
    progress: bool = True
    """show a progress bar on stderr"""
    manifest: str | None = None
    """re-run exactly the episodes of this manifest JSON (overrides --conditions/--episodes/--seeds)"""
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
    """policy to render: expert, random, noop, or a VLA checkpoint (model.pt)"""
    conditions: tuple[str, ...] = ("in-distribution",)
    """condition names, or 'all'"""
    episodes: int = 4
    """episodes per condition"""
    seed: int = 0
    """manifest seed"""
    env: EnvArgs = EnvArgs(num_envs=8, image_size=256)
    """the scenes the episodes run in; --env.image-size is the frame size of the videos"""
    sheet_columns: int = 6
    """frames per episode on the contact sheet"""
    torch_threads: int = 0
    """torch intra-op threads of a learned policy (0 = auto: torch's default, at most 4)"""
    conditions_file: str | None = None
    """YAML/JSON file of extra user-defined conditions"""


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
    seed: int = DEMO_SEED
    """episode seed; appending requires the same seed"""
    env: EnvArgs = EnvArgs()
    """the scenes the expert runs in: one wave of --env.num-envs episodes per shard, frames of --env.image-size"""
    noise: float = 0.0
    """DART-style noise injection (Laskey et al. 2017): std in metres of Gaussian noise added to the executed
    translation (and noise * 10 rad to the yaw); the recorded action stays the expert's clean one, so the
    demos show how to recover from the small errors a learned policy makes (0 = the plain expert)"""
    driver: str | None = None
    """DAgger (Ross et al. 2011): a learned policy (a checkpoint or pretrained:NAME) whose sampled actions are
    executed while the scripted expert, stateless and closed-loop, labels every step it visits. Every episode is
    kept, succeeded or not (up to its success streak), so the data covers the states the policy itself reaches,
    where a policy trained on the expert's own trajectories compounds its errors. None = the expert drives and
    only its successes are kept"""
    driver_temperature: float = EVAL_TEMPERATURE
    """sampling temperature of --driver (0.6, the evaluation's: the states it visits at test time)"""
    driver_mix: float = 0.0
    """probability, each step, that the expert's own action is executed instead of --driver's (DAgger's beta;
    0 = the driver alone)"""
    torch_threads: int = 0
    """torch intra-op threads of --driver (0 = auto: torch's default, at most 4; 1 beside other jobs)"""


@dataclass(frozen=True)
class CompareConfig:
    """Compare two results files of the same episodes: per-condition B - A with a paired significance test."""

    a: Annotated[str, Positional, arg(metavar="A.json")]
    """results JSON of the baseline policy A; or several runs of it (e.g. training seeds) separated by commas,
    A1.json,A2.json,...: one seed of an RL arm is not evidence (three seeds of one R2 arm ended at 0.117-0.234
    held-out), nor is one evaluation of a start (one warm-up scored 0.219, 0.336 and 0.289 on the same 128 episodes
    with three `eval --sample-seed`s). Runs are pooled episode by episode, so one run of the starting checkpoint
    faces every seed of an arm once"""
    b: Annotated[str, Positional, arg(metavar="B.json")]
    """results JSON of policy B, or several runs of it, comma-separated (every run shares A's manifest hash;
    the arms may have different numbers of runs). A and B may instead be RL run directories: their training
    episodes (episodes.jsonl), the scenes that began each rollout, which runs with the same --episode-seed,
    --env.num-envs and algorithm share; see --updates"""
    updates: tuple[int, int] | None = None
    """for run directories: the updates FIRST LAST (1-based, inclusive) whose training episodes are compared
    (default: those every run logged); e.g. the last 32 of a 204,800-step run at 32 envs: 49 80"""
    test: Literal["mcnemar", "bootstrap"] = "mcnemar"
    """paired test over the episodes: exact (McNemar on the discordant episodes for one run each; for several,
    its stratified form: the episode is the stratum and its runs are exchangeable between the arms under the
    null), or a seeded bootstrap that resamples episodes with all their runs"""
    alpha: float = 0.05
    """significance level (per condition, uncorrected for the number of conditions)"""
    bootstrap_samples: int = 10_000
    """resamples of the paired bootstrap"""
    bootstrap_seed: int = 0
    """seed of the paired bootstrap"""
    json: bool = False
    """print one JSON object on stdout instead of a table"""


@dataclass(frozen=True)
class ReportConfig:
    """Markdown report (the study's Table 1 layout), CSV tables, PNG charts, cost table and media links."""

    results: Annotated[tuple[str, ...], Positional, arg(metavar="RESULTS.json")]
    """results JSON files, one per policy; the first is the baseline of the delta columns. Several runs of a
    policy (training seeds) on the same episodes: comma-separated, R1.json,R2.json; its cells count every run's
    episodes and its deltas are tested episode by episode over all runs"""
    out: str = "report"
    """output directory (report.md, table.csv, dimensions.csv, PNGs)"""
    labels: tuple[str, ...] | None = None
    """column names of the policies (default: each results file's label)"""
    runs: tuple[str, ...] = ()
    """training run directories whose metrics.jsonl become training curves"""
    costs: str | None = None
    """costs JSON: {"stages": [{"name", "env_steps", "wall_s", "cpus"}]}"""
    media: tuple[str, ...] = ()
    """directories written by `rl4vla render` / record_media, embedded and linked"""
    test: Literal["mcnemar", "bootstrap"] = "mcnemar"
    """paired test that marks significant deltas"""
    alpha: float = 0.05
    """significance level of the delta marks"""
    paper: bool = True
    """show the paper's SFT-16k and PPO numbers beside ours"""
