"""`rl4vla study`: the whole study of arXiv 2505.19789 in one resumable command.

demos (robot-pretraining corpus, warm-up set, large set) -> robot pretraining (SFT on the pretraining corpus:
objects outside every benchmark pool, the small VLA's stand-in for OpenVLA's Open X-Embodiment prior) ->
warm-up SFT from it -> SFT baseline on the large set and PPO, GRPO, DPO with one env-step budget, all from the
warm-up checkpoint (docs/recipe.md) -> every model on all 16 conditions with the same pinned episodes -> media of
SFT and PPO -> report. Each stage writes into DIR/<stage>/ and is recorded in
DIR/stages.json (atomically): status, wall_s, env_steps, cpus, outputs and the stage's inputs. A re-run skips
finished stages, resumes an interrupted one (trainer checkpoints; `collect` appends by itself) and refuses a
stage whose recorded inputs differ from the asked ones (another preset or flag for an existing DIR). This module
is the recipe (`plan`) and its time-budget model; the resumable runner under it is rl4vla.stages.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tyro.conf import Suppress

from rl4vla.algos.rl import presets as rl_presets
from rl4vla.algos.rl import train_rl
from rl4vla.algos.sft import PRESETS as SFT_PRESETS
from rl4vla.algos.sft import train_sft
from rl4vla.bench.conditions import resolve_conditions
from rl4vla.bench.ray_backend import check_backend
from rl4vla.config import CollectConfig, EnvArgs, EnvBackend, EvalConfig
from rl4vla.data.collect import collect
from rl4vla.eval.media import record_media
from rl4vla.eval.report import write_report
from rl4vla.eval.run import evaluate
from rl4vla.protocol import DEMO_SEED, EVAL_TEMPERATURE, STUDY_EVAL_SEEDS
from rl4vla.stages import (  # noqa: F401  (HEARTBEAT, FORMAT, VERSION re-exported: the study's record)
    FORMAT,
    HEARTBEAT,
    HEARTBEAT_S,
    STAGES_FILE,
    VERSION,
    Stage,
    check_inputs,
    read_stages,
    run_stages,
)
from rl4vla.util import (
    atomic_write_text,
    check_at_least,
    check_output_dir,
    check_seed,
    check_workers,
    resolve_device,
    torch_threads,
)

EPISODE_STEPS = 80  # control steps of an evaluation episode (the env's default max_steps)
RL_ALGOS = ("ppo", "grpo", "dpo")
LABELS = {"sft": "SFT", "warmup": "warm-up", "ppo": "PPO", "grpo": "GRPO", "dpo": "DPO"}  # report column order
PRETRAIN_SOURCES = ("robot-pretraining", "robot-pretraining-clutter")
SHIPPED_PRIOR = "pretrained:small-dagger"  # the default prior: see StudyConfig.pretrain for the measured reason
PRIORS = ("shipped", "fresh", "none")
# settings that do not change a stage's result: they may differ when a stage is resumed or skipped
# (device: where the models compute; a stage may resume on another one, see the trainers' MAY_CHANGE_ON_RESUME)
_NOT_INPUTS = {"out", "data", "init", "resume", "workers", "eval_workers", "progress", "save_manifest", "torch_threads",
               "device", "backend", "ray_address"}


@dataclass(frozen=True)
class StudyConfig:
    """`rl4vla study`: collect demos, train warm-up SFT, SFT baseline, PPO, GRPO and DPO, evaluate all, report."""

    out: str = "study"
    """study directory: one sub-directory per stage, stages.json, report/report.md"""
    preset: Suppress[str] = "quick"
    """the named budgets these defaults come from: debug (CI, ~1-2 min), quick (<= 25 min on 2 cores), standard
    (<= 3 h on 2 cores); a subcommand, `rl4vla study NAME [flags]`, whose values the flags override"""
    trainers: str = "default"
    """trainer presets: default (SFT presets warmup and sft, RL preset default: the small VLA, 80-step
    episodes) or debug (the trainers' tiny debug presets: tiny VLA, 8-step RL episodes)"""
    seed: int = DEMO_SEED
    """seed of the demos, of SFT and of RL"""
    env: EnvArgs = EnvArgs()
    """the scenes of every stage: --env.num-envs stepped in lockstep when collecting, in RL rollouts and in
    evaluation (paper: 64 RL envs); --env.image-size the frame size of demos, models and evaluation (paper: 224 px
    for OpenVLA); --env.backend where the env workers of demos, RL rollouts and evaluations run (the models train
    and media render in this process); --env.workers, --env.backend and --env.ray-address may change when
    resuming"""
    torch_threads: int = 0
    """torch intra-op threads of every stage (0 = auto: torch's default, at most 4; 1 is faster for
    the tiny debug models on a busy machine); may change when resuming"""
    device: str = "auto"
    """where every stage's model trains and is evaluated: auto (cuda when torch.cuda.is_available(), else cpu),
    cpu or cuda (an error when no GPU is present); may change when resuming"""
    pretrain: str = "shipped"
    """the prior the warm-up starts from: shipped (`pretrained:small-dagger`: `pretrained:small`, trained once
    on the robot-pretraining corpus of 20,000 demos, then one DAgger round on that corpus; both ship with rl4vla
    and `rl4vla pretrained` shows their provenance), another shipped prior by name (`pretrained:NAME`), fresh
    (collect --pretrain-demos of that corpus and pretrain here: rebuilds `small`, without the DAgger round) or
    none (a fresh model). OpenVLA, the paper's policy, was pretrained on ~970k Open X-Embodiment episodes.
    The default was `pretrained:small` until 2026-12-03: the co-trained warm-up from `small-dagger` scored 0.219
    and 0.312 in two builds against 0.156 and 0.133 from `small` (McNemar p 0.0006 pooled over the two
    builds' pairs), and PPO on the study's setting ended higher from it (0.273 over three seeds, level with its
    warm-up's 0.281 over three evaluations) than from `small`'s warm-up (0.117; docs/measurements/rl-ladder.md)"""
    pretrain_demos: int = 20_000
    """--pretrain fresh: successful expert demos of the robot-pretraining corpus (`collect --conditions
    robot-pretraining robot-pretraining-clutter`: objects, receptacles, tables and templates outside every
    test pool)"""
    pretrain_steps: int = 6000
    """--pretrain fresh: optimizer steps of robot pretraining"""
    pretrain_frame_stride: int = 2
    """--pretrain fresh: robot pretraining trains on every k-th step of each corpus demo (`train sft
    --frame-stride`), as the shipped prior did: ~230k of the 20,000 demos' ~460k frames, each encoded once"""
    mix_demos: int = 500
    """robot-pretraining demos mixed into the warm-up (co-training: half of each batch; 0 = none). With
    --pretrain fresh the whole corpus is mixed instead. Co-training kept the warm-up's prior: 0.375-0.41 on 128
    episodes, the best warm-up measured (docs/measurements/rl-ladder.md)"""
    warmup_demos: int = 140
    """successful expert demos of the warm-up set (paper: 140)"""
    sft_demos: int = 4000
    """successful expert demos of the large SFT set, which extends the warm-up set (paper: 16k; 64k gave nothing
    more)"""
    warmup_steps: int = 1500
    """optimizer steps of warm-up SFT on the warm-up set, from the pretrained model"""
    sft_steps: int = 16_000
    """optimizer steps of the SFT baseline on the large set, from the warm-up model (docs/recipe.md)"""
    sft_batch_size: int = 64
    """SFT samples per optimizer step (both SFT runs)"""
    sft_eval_every: int = 2000
    """SFT steps between in-distribution evaluations logged as curves (0 = only at the end)"""
    rl_env_steps: int = 102_400
    """env steps of each of PPO, GRPO and DPO (paper: PPO passed SFT-16k after ~0.4M; its code default 2M)"""
    rl_seeds: int = 1
    """training runs of each of PPO, GRPO and DPO, seeded --seed, --seed + 1, ...; the report counts every run's
    episodes in a policy's cells and tests its deltas episode by episode over all of them. The paper trains one
    run per algorithm. Measured here: three PPO seeds from the same warm-up ended at 0.344, 0.250 and 0.227 on
    the same 128 episodes, and the warm-up itself scored 0.219, 0.336 and 0.289 on them with three sampling seeds
    (`eval --sample-seed`; docs/measurements/rl-ladder.md): one run per algorithm does not tell the algorithms
    apart"""
    rl_eval_every: int = 20
    """RL rollouts between in-distribution evaluations logged as curves (0 = only at the end)"""
    train_eval_episodes: int = 32
    """pinned in-distribution episodes of each in-training evaluation (SFT and RL curves)"""
    eval_seeds: tuple[int, ...] = STUDY_EVAL_SEEDS
    """manifest seeds of the final evaluation, apart from those of the demos (0), the in-training evaluation
    (1000) and the RL episodes (10000), rl4vla.protocol (paper: 3 seeds)"""
    eval_episodes: int = 8
    """final-evaluation episodes per condition and seed, the same for every model (paper: 64)"""
    in_distribution_episodes: int = 0
    """final-evaluation episodes of in-distribution per seed (0 = eval_episodes): the condition RL trains on and
    every other is compared with. The quick preset gives it 64, so that differences of about 0.2 between models
    can pass the paired test, where 8 episodes a condition cannot separate models closer than about 0.5"""
    media_conditions: tuple[str, ...] = ("all",)
    """conditions recorded as videos and a contact sheet for SFT and PPO"""
    media_episodes: int = 1
    """episodes per media condition"""
    media_size: int = 256
    """frame size of the media in pixels"""


PRESETS: dict[str, StudyConfig] = {
    # CI: tiny demos and models, a few hundred RL env steps, one episode per condition, all in-process
    "debug": StudyConfig(preset="debug", trainers="debug", env=EnvArgs(num_envs=4, workers=0, image_size=32),
                         torch_threads=1, pretrain="fresh", pretrain_demos=4, pretrain_steps=10, mix_demos=0,
                         warmup_demos=4, sft_demos=8, warmup_steps=10, sft_steps=20, sft_batch_size=8,
                         sft_eval_every=0, rl_env_steps=256, rl_eval_every=0, train_eval_episodes=4,
                         eval_seeds=(100,), eval_episodes=1, media_conditions=("in-distribution",), media_episodes=1,
                         media_size=64),
    # from the shipped prior (before it: 14.3 min measured on 2 cores from a fresh model, where RL found no reward):
    # demos ~3 min, SFT ~5, RL ~5 (3 x 1.7), eval ~6, media+report ~0.4
    "quick": StudyConfig(preset="quick", sft_demos=500, warmup_steps=600, sft_steps=1200,
                         sft_eval_every=0, rl_env_steps=10_240, rl_eval_every=4, train_eval_episodes=16,
                         eval_seeds=(100,), eval_episodes=8, in_distribution_episodes=64, media_size=128,
                         media_conditions=("in-distribution", "unseen-table", "unseen-object", "unseen-init-pose")),
    # ~2 h 25 min on 2 cores from the shipped prior (2 h 22 min measured without the pretraining stages):
    # demos ~22 min, SFT ~40 (4,000 demos, 16,000 steps: the SFT target of about 60%), RL ~75
    # (3 x 102,400 env steps), evaluation ~19 (16 conditions x 3 seeds x 8 episodes), media ~1
    "standard": StudyConfig(preset="standard"),  # the field defaults
}


# speeds measured on the 2-core machine (small VLA, 128 px, 2 workers): the basis of expected_wall_s
# (SFT trains on frozen-encoder features cached once per dataset: ~23 frames per demo encoded at ~200 frames/s)
SPEEDS = {"demos_per_s": 2000 / 360, "encode_demos_per_s": 200 / 23, "sft_samples_per_s": 680.0,
          "rl_env_steps_per_s": 108.0, "eval_episodes_per_s": 1.8, "media_episodes_per_s": 1.0,
          "stage_overhead_s": 5.0}


def expected_wall_s(cfg: StudyConfig, speeds: dict = SPEEDS) -> dict[str, float]:
    """Expected seconds per stage on 2 cores at the measured speeds (default trainers; debug ones are faster)."""
    v, cost = speeds, {}
    train_eval = cfg.train_eval_episodes / v["eval_episodes_per_s"]
    runs = [("warmup", cfg.warmup_steps, cfg.warmup_demos), ("sft", cfg.sft_steps, cfg.sft_demos)]
    if cfg.pretrain == "fresh":
        cost["demos_pretrain"] = cfg.pretrain_demos / v["demos_per_s"]
        runs.insert(0, ("pretrain", cfg.pretrain_steps, cfg.pretrain_demos / cfg.pretrain_frame_stride))
    elif cfg.mix_demos:
        cost["demos_mix"] = cfg.mix_demos / v["demos_per_s"] + cfg.mix_demos / v["encode_demos_per_s"]
    cost["demos_warmup"] = cfg.warmup_demos / v["demos_per_s"]
    cost["demos_sft"] = max(0, cfg.sft_demos - cfg.warmup_demos) / v["demos_per_s"]
    for name, steps, demos in runs:
        evals = 1 + (steps - 1) // cfg.sft_eval_every if cfg.sft_eval_every else 1
        cost[name] = (demos / v["encode_demos_per_s"] + steps * cfg.sft_batch_size / v["sft_samples_per_s"]
                      + evals * train_eval)
    rollouts = -(-cfg.rl_env_steps // (cfg.env.num_envs * EPISODE_STEPS))
    evals = 1 + (rollouts - 1) // cfg.rl_eval_every if cfg.rl_eval_every else 1
    rl_names = [n for names in rl_runs(cfg).values() for n in names]
    for name in rl_names:
        cost[name] = cfg.rl_env_steps / v["rl_env_steps_per_s"] + evals * train_eval
    for model in ["warmup", "sft", *rl_names]:
        per_seed = 15 * cfg.eval_episodes + (cfg.in_distribution_episodes or cfg.eval_episodes)
        cost[f"eval_{model}"] = len(cfg.eval_seeds) * per_seed / v["eval_episodes_per_s"]
    n_media = len(resolve_conditions(cfg.media_conditions)) * cfg.media_episodes
    cost["media_sft"] = cost["media_ppo"] = n_media / v["media_episodes_per_s"]
    cost["report"] = 0.0
    return {k: c + v["stage_overhead_s"] for k, c in cost.items()}


def _inputs(obj) -> dict:
    """A config as JSON-comparable data, without the settings that do not change the stage's result. The env
    settings (--env.*) stand at the top level, as they did before they were nested, so the stages.json of earlier
    studies still compares equal."""
    d = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(obj)
    d = {**d.pop("env", {}), **d}
    return json.loads(json.dumps({k: v for k, v in d.items() if k not in _NOT_INPUTS}))


def rl_runs(cfg: StudyConfig) -> dict[str, list[str]]:
    """{algo: its training runs' stage names}: the first is the algorithm's name, the k-th seed's `ALGO_sK`."""
    return {algo: [algo] + [f"{algo}_s{k}" for k in range(1, cfg.rl_seeds)] for algo in RL_ALGOS}


def _validate(cfg: StudyConfig) -> None:
    if cfg.trainers not in ("default", "debug"):
        raise ValueError(f"--trainers must be default or debug, got {cfg.trainers!r}")
    check_at_least(cfg, ("warmup_demos", "sft_demos", "warmup_steps", "sft_steps", "sft_batch_size", "rl_env_steps",
                         "rl_seeds", "eval_episodes", "env.num_envs", "train_eval_episodes", "media_episodes",
                         "env.image_size", "media_size"))
    check_at_least(cfg, ("torch_threads", "sft_eval_every", "rl_eval_every"), 0)
    check_workers(cfg.env.workers)
    check_seed(cfg.seed)
    resolve_device(cfg.device)  # --device cuda without a GPU fails now, not at the first training stage
    check_backend(cfg.env.backend)  # so does --env.backend ray without Ray
    for s in cfg.eval_seeds:
        check_seed(s, "--eval-seeds")
    if cfg.pretrain not in PRIORS and not cfg.pretrain.startswith("pretrained:"):
        raise ValueError(f"--pretrain must be one of {', '.join(PRIORS)} or pretrained:NAME (`rl4vla pretrained` "
                         f"lists them), got {cfg.pretrain!r}")
    if cfg.pretrain == "fresh":
        check_at_least(cfg, ("pretrain_demos", "pretrain_steps", "pretrain_frame_stride"))
    check_at_least(cfg, ("mix_demos",), 0)
    prior = shipped_prior(cfg)
    if prior:
        from rl4vla.policy.pretrained import config

        size = config(prior)["image_size"]  # an unknown name fails here, listing the shipped ones
        if cfg.trainers != "default" or cfg.env.image_size != size:
            raise ValueError(f"--pretrain {cfg.pretrain} starts from {prior}, the default trainers' model at "
                             f"{size} px; with --trainers {cfg.trainers} --env.image-size {cfg.env.image_size} "
                             "use --pretrain fresh or none")
    if not cfg.eval_seeds:
        raise ValueError("--eval-seeds needs at least one seed")
    resolve_conditions(cfg.media_conditions)  # a misspelt name fails now, not after hours of training


def shipped_prior(cfg: StudyConfig) -> str | None:
    """The shipped model the warm-up starts from (`pretrained:NAME`), or None (--pretrain fresh or none)."""
    if cfg.pretrain == "shipped":
        return SHIPPED_PRIOR
    return cfg.pretrain if cfg.pretrain.startswith("pretrained:") else None


def _pretrain_stage(cfg: StudyConfig) -> str | None:
    """The robot-pretraining stage's name, or None when the study has none (the shipped prior, or none)."""
    return "pretrain" if cfg.pretrain == "fresh" else None


def plan(cfg: StudyConfig) -> list[Stage]:
    """The stages of the study in order, each with its inputs and its work."""
    _validate(cfg)
    root = Path(cfg.out)
    debug = cfg.trainers == "debug"
    stages: list[Stage] = []

    def demos(name: str, episodes: int, extends: str | None = None, sources: tuple[str, ...] = ("in-distribution",)
              ) -> None:
        c = CollectConfig(out=str(root / name), episodes=episodes, seed=cfg.seed, env=cfg.env, conditions=sources)

        def run() -> dict:
            dst = root / name
            if extends and not (dst / "meta.json").exists():  # start from a copy of the smaller set: same seed
                tmp = root / f".tmp-{name}"
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(root / extends, tmp, ignore=shutil.ignore_patterns(".tmp-*"))
                shutil.rmtree(dst, ignore_errors=True)
                os.replace(tmp, dst)
            meta = collect(c)
            return {"env_steps": None, "outputs": [f"{name}/meta.json"], "episodes": meta["episodes"],
                    "transitions": meta["transitions"], "attempted_episodes": meta["next_index"]}

        stages.append(Stage(name, {**_inputs(c), "extends": extends}, run, (extends,) if extends else ()))

    def sft(name: str, preset: str, data: str, steps: int, init: str | None, mix: str | None = None,
            frame_stride: int = 1) -> None:
        """init: a stage whose model.pt it starts from, or pretrained:NAME; mix: a demo stage co-trained on."""
        init_path = init if init is None or init.startswith("pretrained:") else str(root / init / "model.pt")
        c = dataclasses.replace(SFT_PRESETS["debug" if debug else preset], data=str(root / data),
                                out=str(root / name), steps=steps, batch_size=cfg.sft_batch_size, seed=cfg.seed,
                                eval_every=cfg.sft_eval_every, eval_episodes=cfg.train_eval_episodes,
                                eval_workers=cfg.env.workers, torch_threads=cfg.torch_threads, init=init_path,
                                device=cfg.device, frame_stride=frame_stride,
                                env=EnvBackend(backend=cfg.env.backend, ray_address=cfg.env.ray_address),
                                **({"mix_data": str(root / mix), "mix_fraction": 0.5} if mix else {}))

        def run() -> dict:
            s = train_sft(dataclasses.replace(c, resume=(root / name / "checkpoint.pt").exists()))
            return {"env_steps": 0, "outputs": [f"{name}/model.pt", f"{name}/summary.json"],
                    "eval_success": s["eval_success"]}

        deps = (data,) + tuple(d for d in (init, mix) if d and not d.startswith("pretrained:"))
        stages.append(Stage(name, {**_inputs(c), "init_stage": init, "mix_stage": mix}, run, deps))

    def rl(algo: str, k: int, name: str) -> None:
        """the k-th training run of `algo` (seed --seed + k), stage `name` (rl_runs)"""
        base = rl_presets(algo)["debug" if debug else "default"]
        c = dataclasses.replace(base, init=str(root / "warmup" / "model.pt"), out=str(root / name),
                                env_steps=cfg.rl_env_steps, env=dataclasses.replace(cfg.env, image_size=None),
                                seed=cfg.seed + k, eval_every=cfg.rl_eval_every, eval_episodes=cfg.train_eval_episodes,
                                eval_workers=cfg.env.workers, torch_threads=cfg.torch_threads, device=cfg.device)
        n = c.env.num_envs
        if algo != "ppo" and not c.same_init and n % c.group_size:  # fail now, not hours later
            raise ValueError(f"{algo} groups {c.group_size} trajectories per initial state: --env.num-envs must be "
                             f"a multiple of {c.group_size}, got {n}")

        def run() -> dict:
            s = train_rl(dataclasses.replace(c, resume=(root / name / "checkpoint.pt").exists()))
            return {"env_steps": s["env_steps"], "outputs": [f"{name}/model.pt", f"{name}/summary.json"],
                    "eval_success": s["eval_success"]}

        stages.append(Stage(name, {**_inputs(c), "init_stage": "warmup"}, run, ("warmup",)))

    def evaluation(model: str, label: str) -> None:
        name = f"eval_{model}"
        c = EvalConfig(policy=str(root / model / "model.pt"), conditions=("all",), episodes=cfg.eval_episodes,
                       in_distribution_episodes=cfg.in_distribution_episodes, seeds=cfg.eval_seeds, env=cfg.env,
                       out=str(root / name / "results.json"), label=label,
                       save_manifest=str(root / name / "manifest.json"), torch_threads=cfg.torch_threads,
                       device=cfg.device)

        def run() -> dict:
            doc = evaluate(c)
            return {"env_steps": doc["num_episodes"] * EPISODE_STEPS, "in_distribution": doc["in_distribution"],
                    "outputs": [f"{name}/results.json", f"{name}/manifest.json"]}

        inputs = _inputs(c)
        if not c.in_distribution_episodes:  # unset: the inputs recorded before the field existed
            del inputs["in_distribution_episodes"]
        stages.append(Stage(name, {**inputs, "policy_stage": model}, run, (model,)))

    def media(model: str) -> None:
        name = f"media_{model}"
        kw = {"conditions": list(cfg.media_conditions), "episodes": cfg.media_episodes, "seed": cfg.eval_seeds[0],
              "size": cfg.media_size, "label": LABELS[model]}

        def run() -> dict:
            idx = record_media(str(root / model / "model.pt"), root / name, workers=cfg.env.workers,
                               device=cfg.device, backend=cfg.env.backend, ray_address=cfg.env.ray_address, **kw)
            return {"env_steps": len(idx["videos"]) * EPISODE_STEPS, "outputs": [f"{name}/media.json"]}

        stages.append(Stage(name, {**kw, "policy_stage": model}, run, (model,)))

    pretrained = _pretrain_stage(cfg)
    mix = None
    if pretrained:
        demos("demos_pretrain", cfg.pretrain_demos, sources=PRETRAIN_SOURCES)
        mix = "demos_pretrain" if cfg.mix_demos else None
    elif cfg.mix_demos:
        demos("demos_mix", cfg.mix_demos, sources=PRETRAIN_SOURCES)
        mix = "demos_mix"
    demos("demos_warmup", cfg.warmup_demos)
    demos("demos_sft", cfg.sft_demos, extends="demos_warmup" if cfg.sft_demos >= cfg.warmup_demos else None)
    if pretrained:
        sft(pretrained, "pretrain", "demos_pretrain", cfg.pretrain_steps, None, frame_stride=cfg.pretrain_frame_stride)
    start = pretrained or shipped_prior(cfg)
    sft("warmup", "warmup", "demos_warmup", cfg.warmup_steps, start, mix)
    sft("sft", "sft", "demos_sft", cfg.sft_steps, "warmup")
    runs = rl_runs(cfg)
    for algo in RL_ALGOS:
        for k, name in enumerate(runs[algo]):
            rl(algo, k, name)
    for model in LABELS:
        for k, name in enumerate(runs.get(model, [model])):
            evaluation(name, LABELS[model] + (f" seed {cfg.seed + k}" if k else ""))
    media("sft")
    media("ppo")
    stages.append(Stage("report", {"labels": list(LABELS.values()), "baseline": "sft"},
                        lambda: _report(cfg, stages[:-1]), tuple(s.name for s in stages)))
    return stages


def _report(cfg: StudyConfig, stages: list[Stage]) -> dict:
    """write_report of every model's results (SFT first: deltas are against it), curves, costs, media, budgets."""
    root = Path(cfg.out)
    out = root / "report"
    recs = read_stages(root)["stages"]
    costs = {"stages": [{"name": s.name, "env_steps": recs[s.name].get("env_steps"), "wall_s": recs[s.name]["wall_s"],
                         "cpus": recs[s.name]["cpus"]} for s in stages]}
    atomic_write_text(out / "costs.json", json.dumps(costs, indent=1))
    runs = rl_runs(cfg)
    trained = [m for m in (_pretrain_stage(cfg), "warmup", "sft", *(n for a in RL_ALGOS for n in runs[a])) if m]
    results = [[root / f"eval_{n}" / "results.json" for n in runs.get(m, [m])] for m in LABELS]
    written = write_report(results, out, labels=list(LABELS.values()),
                           runs=[root / m for m in trained], costs=out / "costs.json",
                           media=[root / "media_sft", root / "media_ppo"])
    md = written["report.md"]
    atomic_write_text(md, md.read_text() + "\n" + budgets_markdown(cfg) + "\n")
    return {"env_steps": 0, "outputs": ["report/report.md", "report/table.csv", "report/costs.json"]}


def budgets_markdown(cfg: StudyConfig) -> str:
    """The "Budgets" section of the report: what each stage was given here, beside the paper's value."""
    trainers = "tiny debug presets" if cfg.trainers == "debug" else "SFT presets warmup/sft, RL preset default"
    mix = cfg.mix_demos > 0
    eps = len(cfg.eval_seeds) * cfg.eval_episodes
    id_eps = (f" ({len(cfg.eval_seeds) * cfg.in_distribution_episodes} in-distribution)"
              if cfg.in_distribution_episodes else "")
    prior = shipped_prior(cfg)
    if prior:
        from rl4vla.policy.pretrained import provenance

        prov = provenance(prior)
        corpus = prov.get("corpus", {})
        pre = (f"the shipped prior `{prior}` (sha256 {prov['sha256'][:12]}): {corpus.get('episodes', 0):,} "
               f"demos of the robot-pretraining corpus, manifest {corpus.get('manifest_hash')}")
    elif cfg.pretrain == "fresh":
        pre = (f"rebuilt here (--pretrain fresh): {cfg.pretrain_demos:,} demos of the robot-pretraining corpus "
               f"(no benchmark object), {cfg.pretrain_steps:,} steps x {cfg.sft_batch_size}")
    else:
        pre = "none (--pretrain none: a fresh model)"
    if mix:
        pre += f"; the warm-up co-trains on {cfg.mix_demos:,} corpus demos" if cfg.pretrain != "fresh" else (
            "; the warm-up co-trains on the corpus")
    rows = [
        ("robot pretraining", pre, "OpenVLA: ~970k Open X-Embodiment episodes"),
        ("warm-up demos", f"{cfg.warmup_demos:,} successful expert demos", "140"),
        ("large-SFT demos", f"{cfg.sft_demos:,} (extends the warm-up set)", "16k (SFT-16k)"),
        ("warm-up SFT", f"{cfg.warmup_steps:,} steps x {cfg.sft_batch_size}"
         + (", from the pretrained model" if cfg.pretrain != "none" else ""), "–"),
        ("SFT baseline", f"{cfg.sft_steps:,} steps x {cfg.sft_batch_size}, from the warm-up model on the large set",
         "from the warm-up model"),
        ("PPO, GRPO, DPO", f"{cfg.rl_env_steps:,} env steps each from the warm-up model, {cfg.env.num_envs} envs"
         + (f", {cfg.rl_seeds} training seeds each (pooled per episode)" if cfg.rl_seeds > 1 else ""),
         "PPO passed SFT-16k after ~0.4M (code default 2M), 64 envs; one run each"),
        ("evaluation", f"16 conditions x {len(cfg.eval_seeds)} seeds x {cfg.eval_episodes} episodes "
         f"= {eps} per condition{id_eps}, seeds {', '.join(map(str, cfg.eval_seeds))}, "
         f"temperature {EVAL_TEMPERATURE:g}",
         "3 x 64 = 192"),
        ("models", f"small VLA ({trainers}), {cfg.env.image_size} px", "OpenVLA-7B, LoRA rank 32, 224 px"),
    ]
    expected = sum(expected_wall_s(cfg).values()) / 60
    lines = ["## Budgets", "", f"Preset `{cfg.preset}`: expected ~{expected:.0f} min on 2 cores from the measured "
             f"speeds (small VLA); the measured wall-clock per stage is in the compute-cost table and "
             f"`{STAGES_FILE}`.", "", "| stage | budget here | paper |", "| --- | --- | --- |"]
    return "\n".join(lines + [f"| {a} | {b} | {c} |" for a, b, c in rows])


def run_study(cfg: StudyConfig) -> dict:
    """Run (or resume) every stage of the study; returns the stages record. The report is DIR/report/report.md."""
    stages = plan(cfg)
    root = Path(cfg.out)
    if root.is_dir() and any(root.iterdir()) and not (root / STAGES_FILE).exists():
        raise ValueError(f"{root} exists and is not a study directory (no {STAGES_FILE}): choose another --out")
    check_output_dir(root)
    doc = read_stages(root)
    check_inputs(stages, doc, cfg.out, cfg.preset)
    doc.update(preset=cfg.preset, config=json.loads(json.dumps(dataclasses.asdict(cfg))))
    if cfg.trainers == "default":
        print(f"study {cfg.preset}: expected ~{sum(expected_wall_s(cfg).values()) / 60:.0f} min on 2 cores; "
              f"stages in {root / STAGES_FILE}", file=sys.stderr)
    with torch_threads(cfg.torch_threads):
        return run_stages(root, stages, doc, heartbeat_s=HEARTBEAT_S)
