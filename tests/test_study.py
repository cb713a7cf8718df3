"""The study pipeline: the debug study end to end, a stage killed midway resumes, finished stages are skipped,
other settings for an existing directory are refused."""

import csv
import dataclasses
import json
import time

import pytest

from rl4vla import study
from rl4vla.bench.conditions import CONDITIONS
from rl4vla.cli import main

STAGES = ["demos_pretrain", "demos_warmup", "demos_sft", "pretrain", "warmup", "sft", "ppo", "grpo", "dpo",
          "eval_sft", "eval_warmup", "eval_ppo", "eval_grpo", "eval_dpo", "media_sft", "media_ppo", "report"]


def _files(root):
    """{relative path: mtime_ns} of every file under root."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The debug study, killed halfway through PPO, then re-run to the end. Returns what each run left."""
    root = tmp_path_factory.mktemp("study")
    cfg = dataclasses.replace(study.PRESETS["debug"], out=str(root))
    real = study.train_rl

    def killed_midway(c):  # trains half the budget (leaving its checkpoint), then dies
        if c.algo == "ppo":
            real(dataclasses.replace(c, env_steps=c.env_steps // 2))
            raise KeyboardInterrupt("simulated kill")
        return real(c)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(study, "train_rl", killed_midway)
        with pytest.raises(KeyboardInterrupt):
            study.run_study(cfg)
    killed = study.read_stages(root)
    before = _files(root)
    t0 = time.perf_counter()
    resumed = study.run_study(cfg)
    return {"root": root, "cfg": cfg, "killed": killed, "before": before, "doc": resumed,
            "wall_s": time.perf_counter() - t0}


def test_killed_stage_resumes_from_its_checkpoint(run):
    killed, doc, root = run["killed"]["stages"], run["doc"]["stages"], run["root"]
    assert [killed[s]["status"] for s in STAGES[:6]] == ["done"] * 6 and killed["ppo"]["status"] == "interrupted"
    assert set(killed) == set(STAGES[:7])  # nothing after the killed stage started
    for s in STAGES[:6]:  # finished stages were not run again
        assert doc[s] == killed[s]
        for f in (root / s).rglob("*"):
            if f.is_file() and str(f.relative_to(root)) in run["before"]:
                assert f.stat().st_mtime_ns == run["before"][str(f.relative_to(root))], f
    assert doc["ppo"]["status"] == "done" and doc["ppo"]["attempts"] == 2
    budget = run["cfg"].rl_env_steps
    assert doc["ppo"]["env_steps"] == budget and doc["ppo"]["wall_s"] > killed["ppo"]["wall_s"]
    rows = [json.loads(line) for line in open(root / "ppo" / "metrics.jsonl")]
    train = [r for r in rows if "train/updates" in r]
    # continued, not restarted: every update once, env steps strictly increasing up to the budget
    assert [r["train/updates"] for r in train] == list(range(1, len(train) + 1))
    steps = [r["step"] for r in train]
    assert steps == sorted(set(steps)) and steps[-1] == budget and min(steps) < budget // 2 < max(steps)


def test_debug_study_writes_the_report_with_all_conditions(run):
    root, doc = run["root"], run["doc"]
    assert list(doc["stages"]) == STAGES == [s.name for s in study.plan(run["cfg"])]
    for name, rec in doc["stages"].items():
        assert rec["status"] == "done" and rec["wall_s"] > 0 and rec["cpus"] >= 1, name
        assert rec["outputs"] and all((root / p).exists() for p in rec["outputs"]), name
    assert doc["stages"]["grpo"]["env_steps"] == doc["stages"]["dpo"]["env_steps"] == run["cfg"].rl_env_steps
    md = (root / "report" / "report.md").read_text()
    table1 = md.split("## Table 1")[1].split("## Per dimension")[0]
    assert all(f"| {name} |" in table1 for name in CONDITIONS) and len(CONDITIONS) == 16
    for label in ("SFT", "warm-up", "PPO", "GRPO", "DPO"):
        assert f" {label} |" in table1.splitlines()[2]
    with open(root / "report" / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {r["condition"] for r in rows} == set(CONDITIONS)
    assert "## Budgets" in md and "## Compute cost" in md and "## Media: PPO" in md and "## Training curves" in md
    hashes = {json.loads((root / f"eval_{m}" / "results.json").read_text())["manifest_hash"] for m in study.LABELS}
    assert len(hashes) == 1  # every model saw the same pinned episodes
    costs = json.loads((root / "report" / "costs.json").read_text())["stages"]
    assert [c["name"] for c in costs] == STAGES[:-1]


def test_rerun_skips_every_stage(run, capsys):
    root = run["root"]
    before = _files(root)
    t0 = time.perf_counter()
    assert main(["study", "debug", "--out", str(root)]) == 0
    assert time.perf_counter() - t0 < 15
    assert _files(root) == before  # nothing rewritten: models, results, report, stages.json
    assert f"{root}/report/report.md" in capsys.readouterr().out


def test_other_settings_for_an_existing_study_are_refused(run, capsys):
    root = run["root"]
    before = _files(root)
    assert main(["study", "quick", "--out", str(root)]) == 2
    err = capsys.readouterr().err
    assert "recorded preset 'debug', asked preset 'quick'" in err and "demos_warmup" in err and "--out" in err
    with pytest.raises(ValueError, match="stage 'eval_sft' differs in episodes: 1 -> 2"):
        study.run_study(dataclasses.replace(run["cfg"], eval_episodes=2))
    with pytest.raises(ValueError, match="stage 'eval_sft' differs in in_distribution_episodes: None -> 3"):
        study.run_study(dataclasses.replace(run["cfg"], in_distribution_episodes=3))
    assert _files(root) == before


def test_warmup_starts_from_the_pretrained_model_and_sft_and_rl_from_the_warmup(run, tmp_path):
    doc = run["doc"]["stages"]
    assert doc["demos_pretrain"]["inputs"]["conditions"] == ["robot-pretraining", "robot-pretraining-clutter"]
    assert doc["demos_warmup"]["inputs"]["conditions"] == ["in-distribution"]
    assert (doc["warmup"]["inputs"]["init_stage"], doc["sft"]["inputs"]["init_stage"]) == ("pretrain", "warmup")
    assert doc["pretrain"]["inputs"]["init_stage"] is None and doc["ppo"]["inputs"]["init_stage"] == "warmup"
    cfg = json.loads((run["root"] / "warmup" / "config.json").read_text())
    assert cfg["init"] == str(run["root"] / "pretrain" / "model.pt")
    fresh = study.plan(dataclasses.replace(run["cfg"], pretrain="none", out=str(tmp_path)))
    names = [s.name for s in fresh]
    assert "pretrain" not in names and "demos_pretrain" not in names
    assert fresh[names.index("warmup")].inputs["init_stage"] is None
    with pytest.raises(ValueError, match="--pretrain must be one of shipped, fresh, none or pretrained:NAME"):
        study.plan(dataclasses.replace(run["cfg"], pretrain="nope"))
    with pytest.raises(ValueError, match="--pretrain-demos must be >= 1"):
        study.plan(dataclasses.replace(run["cfg"], pretrain_demos=0))


def test_the_quick_and_standard_studies_start_from_the_shipped_prior(tmp_path):
    for name in ("quick", "standard"):
        stages = study.plan(dataclasses.replace(study.PRESETS[name], out=str(tmp_path)))
        by = {s.name: s for s in stages}
        assert "pretrain" not in by and "demos_pretrain" not in by
        warmup = by["warmup"].inputs
        assert (warmup["init_stage"], warmup["mix_stage"]) == ("pretrained:small-dagger", "demos_mix")
        assert by["demos_mix"].inputs["conditions"] == ["robot-pretraining", "robot-pretraining-clutter"]
        assert "demos_mix" in by["warmup"].deps
        assert "`pretrained:small-dagger`" in study.budgets_markdown(study.PRESETS[name])  # the report names its prior
    fresh = {s.name: s for s in study.plan(dataclasses.replace(study.PRESETS["standard"], pretrain="fresh",
                                                                 out=str(tmp_path)))}
    assert "demos_mix" not in fresh and fresh["demos_pretrain"].inputs["episodes"] == 20_000
    assert (fresh["warmup"].inputs["init_stage"], fresh["warmup"].inputs["mix_stage"]) == ("pretrain", "demos_pretrain")
    assert "rebuilt here (--pretrain fresh)" in study.budgets_markdown(dataclasses.replace(study.PRESETS["standard"],
                                                                                          pretrain="fresh"))
    with pytest.raises(ValueError, match="--pretrain shipped starts from pretrained:small-dagger"):
        study.plan(dataclasses.replace(study.PRESETS["debug"], pretrain="shipped"))
    named = dataclasses.replace(study.PRESETS["quick"], pretrain="pretrained:small", out=str(tmp_path))
    assert {s.name: s for s in study.plan(named)}["warmup"].inputs["init_stage"] == "pretrained:small"
    with pytest.raises(ValueError, match="no shipped pretrained model 'nope'; shipped: "):
        study.plan(dataclasses.replace(named, pretrain="pretrained:nope"))


def test_a_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not a study")
    with pytest.raises(ValueError, match="not a study directory"):
        study.run_study(dataclasses.replace(study.PRESETS["debug"], out=str(tmp_path)))


def test_presets_fit_their_time_budgets():
    assert set(study.PRESETS) == {"debug", "quick", "standard"}
    for name, cfg in study.PRESETS.items():
        shipped_with_mix = cfg.pretrain == "shipped" and cfg.mix_demos > 0
        assert cfg.preset == name and len(study.plan(cfg)) == len(STAGES) - 2 * (cfg.pretrain != "fresh") + (
            shipped_with_mix)
    minutes = {n: sum(study.expected_wall_s(c).values()) / 60 for n, c in study.PRESETS.items()}
    assert minutes["quick"] <= 25 and minutes["standard"] <= 180  # the quick study: 25 minutes on 2 cores
    quick, standard = study.PRESETS["quick"], study.PRESETS["standard"]
    assert quick.warmup_demos == standard.warmup_demos == 140 and standard.sft_demos >= 2000
    assert quick.rl_env_steps < standard.rl_env_steps and len(standard.eval_seeds) == 3
    with pytest.raises(ValueError, match="unknown condition|valid"):
        study.plan(dataclasses.replace(quick, media_conditions=("no-such-condition",)))


def test_media_stages_run_on_the_studys_env_backend(tmp_path, monkeypatch):
    """The media stages' env workers follow `--env.backend` and `--env.ray-address`, like every other stage."""
    seen = []

    def spy(policy, out_dir, **kw):
        seen.append(kw)
        return {"videos": []}

    monkeypatch.setattr(study, "record_media", spy)
    env = dataclasses.replace(study.PRESETS["debug"].env, backend="ray", ray_address="10.0.0.1:6379")
    cfg = dataclasses.replace(study.PRESETS["debug"], out=str(tmp_path), env=env)
    media = [s for s in study.plan(cfg) if s.name.startswith("media_")]
    assert [s.name for s in media] == ["media_sft", "media_ppo"]
    for s in media:
        s.run()
    assert [(kw["backend"], kw["ray_address"]) for kw in seen] == [("ray", "10.0.0.1:6379")] * 2


def test_more_rl_seeds_for_an_existing_study_train_only_the_new_runs_and_the_report_pools_them(run, monkeypatch):
    """--rl-seeds 2 on the finished debug study: the second seed of each algorithm trains (seed --seed + 1) and
    is evaluated, nothing else reruns but the report, whose RL cells now count both runs' episodes. The new runs
    are stand-ins (the first run's model and results, relabelled) so that the test takes seconds; it runs last,
    as it adds stages to the module's study directory."""
    import hashlib
    import shutil

    from rl4vla.eval.results import write_results

    root, cfg = run["root"], dataclasses.replace(run["cfg"], rl_seeds=2)
    names = [s.name for s in study.plan(cfg)]
    assert names == STAGES[:6] + ["ppo", "ppo_s1", "grpo", "grpo_s1", "dpo", "dpo_s1", "eval_sft", "eval_warmup",
                                  "eval_ppo", "eval_ppo_s1", "eval_grpo", "eval_grpo_s1", "eval_dpo",
                                  "eval_dpo_s1"] + STAGES[14:]
    assert study.expected_wall_s(cfg)["eval_dpo_s1"] == study.expected_wall_s(cfg)["eval_dpo"]
    trained, evaluated = [], []

    def stand_in_rl(c):
        trained.append((c.algo, c.seed, c.out))
        src = root / c.algo
        shutil.copytree(src, c.out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoint.pt", "snapshots"))
        return json.loads((src / "summary.json").read_text())

    def stand_in_eval(c):
        evaluated.append(c.label)
        doc = json.loads((root / f"eval_{c.label.split()[0].lower()}" / "results.json").read_text())
        doc["label"] = c.label  # and another model's hash: compare refuses a copy of one evaluation as a second run
        doc["policy"] = {**doc["policy"], "sha256": hashlib.sha256(c.policy.encode()).hexdigest()}
        write_results(c.out, doc)
        return doc

    monkeypatch.setattr(study, "train_rl", stand_in_rl)
    monkeypatch.setattr(study, "evaluate", stand_in_eval)
    before = run["doc"]["stages"]
    doc = study.run_study(cfg)["stages"]
    seed = run["cfg"].seed + 1
    assert trained == [(a, seed, str(root / f"{a}_s1")) for a in study.RL_ALGOS]
    assert evaluated == [f"{a} seed {seed}" for a in ("PPO", "GRPO", "DPO")]
    rerun = {n for n in doc if doc[n].get("started") != before.get(n, {}).get("started")}
    assert rerun == {"ppo_s1", "grpo_s1", "dpo_s1", "eval_ppo_s1", "eval_grpo_s1", "eval_dpo_s1", "report"}
    md = (root / "report" / "report.md").read_text()
    assert "Several runs (training seeds) of PPO (2 runs), GRPO (2 runs), DPO (2 runs)" in md
    assert f"| PPO: PPO seed {seed} |" in md and "2 training seeds each (pooled per episode)" in md
    with open(root / "report" / "table.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["condition"] == "in-distribution")
    assert int(row["PPO_episodes"]) == 2 * int(row["SFT_episodes"])
