"""Trust under mistakes (issue 20): a changed flag on resume is refused, output paths are checked before the work,
a corrupt shard is repaired by following the message, ordinary mistakes get one-line messages, seeds stay in range,
user conditions cannot replace built-ins, records stay complete after a kill, every torch command takes
--torch-threads."""

import dataclasses
import json
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from rl4vla import study
from rl4vla.algos import rl, rundir, sft
from rl4vla.bench import conditions as C
from rl4vla.cli import main
from rl4vla.config import EnvArgs
from rl4vla.data.demos import DatasetError, DemoDataset
from rl4vla.eval import run as eval_run
from rl4vla.eval.results import load_results
from rl4vla.policy.vla import VLAConfig
from rl4vla.util import MAX_AUTO_THREADS, atomic_torch_save, resume_checkpoint, torch_threads, usable_cpus

TINY = VLAConfig(d_model=32, layers=1, heads=2, patch_grid=2)
RL_ENV = EnvArgs(num_envs=4, workers=0, image_size=None)  # at the policy's input size
EVAL = ["--episodes", "1", "--env.num-envs", "1", "--env.workers", "0", "--env.image-size", "32"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a busy machine run fastest on one thread (auto threads never go above it)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def model(demos, tmp_path_factory):
    """A one-step SFT model: the init of RL runs and a checkpoint policy."""
    out = tmp_path_factory.mktemp("model")
    return sft.train_sft(_sft(demos, out, steps=1))["model"]


def _sft(data, out, **kw):
    base = sft.SFTConfig(data=str(data), out=str(out), steps=4, batch_size=8, checkpoint_every=1, eval_every=0,
                         eval_episodes=1, eval_workers=0, augment=False, model=TINY)
    return dataclasses.replace(base, **kw)


def _rl(init, out, **kw):
    base = dataclasses.replace(rl.presets("ppo")["debug"], init=init, out=str(out), env=RL_ENV, num_steps=6,
                               max_episode_steps=6, env_steps=24, eval_episodes=1)
    return dataclasses.replace(base, **kw)


def _kill_sft_at(monkeypatch, at_step):
    """Make SFT die when it reaches `at_step` (as a kill would), leaving the checkpoint before it."""
    real = sft.batch_indices

    def killed(n, b, seed, step):
        if step == at_step:
            raise KeyboardInterrupt("simulated kill")
        return real(n, b, seed, step)

    monkeypatch.setattr(sft, "batch_indices", killed)
    return real


def _one_line_error(capsys, args) -> str:
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# ----- 1. --resume refuses changed settings -------------------------------------------------
def test_sft_resume_refuses_changed_settings_but_not_threads_or_workers(demos, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = _kill_sft_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        sft.train_sft(_sft(demos, out))
    monkeypatch.setattr(sft, "batch_indices", real)
    recorded = (out / "config.json").read_text()
    other = tmp_path / "other-demos"
    shutil.copytree(demos, other)
    with pytest.raises(ValueError, match=r"--lr 0\.0003 -> 0\.001.*only .*--torch-threads.* may change"):
        sft.train_sft(_sft(demos, out, lr=1e-3, resume=True))
    with pytest.raises(ValueError, match=f"--data '{demos}' -> '{other}'"):
        sft.train_sft(_sft(other, out, resume=True))
    with pytest.raises(ValueError, match="--model.d-model 32 -> 64"):
        sft.train_sft(_sft(demos, out, model=dataclasses.replace(TINY, d_model=64), resume=True))
    assert (out / "config.json").read_text() == recorded  # a refused resume changes nothing
    done = sft.train_sft(_sft(demos, out, resume=True, torch_threads=1, eval_workers=1, checkpoint_every=2))
    assert done["steps"] == 4
    assert json.loads((out / "config.json").read_text())["eval_workers"] == 1  # recorded


def test_runs_and_studies_recorded_before_the_env_flags_were_nested_still_resume(tmp_path):
    """Earlier rl4vla recorded num_envs and workers at the top level of a run's config (checkpoint, config.json)
    and of the study's stage inputs; they compare with --env.num-envs and --env.workers now."""
    cfg = dataclasses.replace(rl.presets("ppo")["default"], init="m.pt", out=str(tmp_path), resume=True)
    legacy = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "env"} | {"num_envs": 16, "workers": 2}
    atomic_torch_save({"config": legacy}, tmp_path / "checkpoint.pt")
    fewer_workers = dataclasses.replace(cfg, env=EnvArgs(workers=0, image_size=None))
    assert resume_checkpoint(fewer_workers, rl.MAY_CHANGE_ON_RESUME)["config"] == legacy
    with pytest.raises(ValueError, match="--env.num-envs 16 -> 32"):
        resume_checkpoint(dataclasses.replace(cfg, env=EnvArgs(num_envs=32, image_size=None)), rl.MAY_CHANGE_ON_RESUME)
    inputs = study._inputs(eval_run.EvalConfig(env=EnvArgs(num_envs=4, workers=0, image_size=32)))
    assert (inputs["num_envs"], inputs["image_size"]) == (4, 32) and not {"env", "workers"} & set(inputs)


def test_runs_recorded_with_the_flat_backend_flags_resume_on_either_backend(tmp_path):
    """The Ray backend first recorded backend and ray_address at the top level (--backend, --ray-address); they
    are --env.backend and --env.ray-address now, which may change when a run resumes and are no stage input."""
    rl_cfg = dataclasses.replace(rl.presets("ppo")["default"], init="m.pt")
    for name, cfg, may in (("rl", rl_cfg, rl.MAY_CHANGE_ON_RESUME), ("sft", sft.PRESETS["warmup"],
                                                                      sft.MAY_CHANGE_ON_RESUME)):
        cfg = dataclasses.replace(cfg, out=str(tmp_path / name), resume=True)
        flat = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "env"} | {"backend": "local",
                                                                                    "ray_address": None}
        (tmp_path / name).mkdir()
        atomic_torch_save({"config": flat}, tmp_path / name / "checkpoint.pt")
        on_ray = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, backend="ray", ray_address="auto"))
        assert resume_checkpoint(on_ray, may)["config"] == flat
        assert not {"env", "backend", "ray_address"} & set(study._inputs(on_ray))
    inputs = study._inputs(eval_run.EvalConfig(env=EnvArgs(backend="ray", ray_address="auto")))
    assert not {"env", "backend", "ray_address"} & set(inputs) and inputs["num_envs"] == 16


def test_rl_resume_refuses_another_init_or_policy_lr_but_may_run_longer(model, tmp_path):
    out = tmp_path / "ppo"
    rl.train_rl(_rl(model, out))
    other = tmp_path / "other.pt"
    shutil.copy(model, other)
    with pytest.raises(ValueError, match=f"--init '{model}' -> '{other}'"):
        rl.train_rl(_rl(str(other), out, env_steps=48, resume=True))
    with pytest.raises(ValueError, match=r"--policy-lr 3e-05 -> 0\.0001"):
        rl.train_rl(_rl(model, out, env_steps=48, policy_lr=1e-4, resume=True))
    assert rl.train_rl(_rl(model, out, env_steps=48, torch_threads=1, checkpoint_every=3, resume=True))[
        "env_steps"] == 48


# ----- 2. output paths are checked before the work ------------------------------------------
@pytest.mark.parametrize("command", [["eval"], ["render"], ["report", "nothing.json"], ["collect"],
                                     ["train", "sft", "--data", "nowhere"], ["train", "ppo", "--init", "nowhere.pt"],
                                     ["study", "debug"]])
def test_every_command_refuses_an_output_path_under_a_file_before_working(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(eval_run, "run_episodes", None)  # eval or render working would crash on this
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err = _one_line_error(capsys, [*command, "--out", str(blocker / "out")])
    assert f"{blocker} is a file, not a directory" in err and "--out" in err


def test_eval_refuses_a_directory_as_out_before_running_any_episode(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(eval_run, "run_episodes", None)
    err = _one_line_error(capsys, ["eval", "--out", str(tmp_path), *EVAL])
    assert f"--out {tmp_path} is a directory; give a file path" in err
    err = _one_line_error(capsys, ["eval", "--save-manifest", str(tmp_path), *EVAL])
    assert "--save-manifest" in err


def test_results_that_cannot_be_written_at_the_end_are_saved_elsewhere(tmp_path, monkeypatch):
    out = tmp_path / "results.json"
    real = eval_run.run_episodes

    def then_out_becomes_a_directory(*a, **kw):
        res = real(*a, **kw)
        out.mkdir()
        return res

    monkeypatch.setattr(eval_run, "run_episodes", then_out_becomes_a_directory)
    monkeypatch.chdir(tmp_path)
    cfg = eval_run.EvalConfig(policy="expert", episodes=1, env=EnvArgs(num_envs=1, workers=0, image_size=32),
                              out=str(out), progress=False)
    with pytest.raises(RuntimeError, match=f"cannot write --out {out}.*saved to .*rescued-") as e:
        eval_run.evaluate(cfg)
    saved = str(e.value).split("saved to ")[1].split(" instead")[0]
    assert load_results(saved)["conditions"]["in-distribution"]["episodes"] == 1


# ----- 3. a corrupt shard: follow the message, then train -----------------------------------
def test_a_corrupt_shard_is_recollected_by_following_the_message(demos, tmp_path, capsys):
    data = tmp_path / "demos"
    shutil.copytree(demos, data)
    before = DemoDataset(data)
    meta = before.meta
    assert len(meta["shards"]) >= 2
    shard = data / meta["shards"][0]
    blob = shard.read_bytes()
    shard.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt") as e:
        DemoDataset(data)
    msg = str(e.value)
    assert "delete it and run `rl4vla collect" in msg
    shard.unlink()  # following the message: delete it, run the command
    cmd = shlex.split(msg.split("`")[1])
    assert cmd[:2] == ["rl4vla", "collect"]
    assert main([*cmd[1:], "--env.workers", "0"]) == 0
    after = DemoDataset(data)
    assert after.meta == meta  # the same dataset: no episode added, the same counts and percentiles
    for a, b in zip(before.episodes, after.episodes, strict=True):
        assert a.episode == b.episode and np.array_equal(a.rgb, b.rgb) and np.array_equal(a.actions, b.actions)
    assert sft.train_sft(_sft(data, tmp_path / "run", steps=2))["steps"] == 2
    shard.write_bytes(blob[:100])  # a truncated shard left in place: collect notices it by itself
    capsys.readouterr()
    assert main([*cmd[1:], "--env.workers", "0"]) == 0
    assert "re-collecting" in capsys.readouterr().err
    assert len(DemoDataset(data).episodes) == len(before.episodes)


# ----- 4. one-line messages for ordinary mistakes --------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("conditions:\n  - name: mine\n    objects: 42\n", "objects must be a split name or a list of names, got 42"),
    ("- name: mine\n  perturbation: texture\n  alpha: strong\n", "alpha must be a number, got 'strong'"),
    ("- name: mine\n  objects: [apple\n  alpha: 0.3\n", "is not valid YAML"),
    ("- name: mine\n- name: mine\n", "more than one condition named 'mine'"),
    (None, "cannot read the conditions file"),
])
def test_bad_conditions_files_get_one_line(text, message, tmp_path, capsys):
    f = tmp_path / "mine.yaml"
    if text is not None:
        f.write_text(text)
    err = _one_line_error(capsys, ["conditions", "--conditions-file", str(f)])
    assert message in err and str(f) in err
    if "YAML" in message:
        assert "line 3" in err


@pytest.mark.parametrize("args, message", [
    (["train", "sft", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["train", "sft", "--steps", "0"], "--steps must be >= 1, got 0"),  # no untrained model.pt "as if trained"
    (["train", "sft", "--checkpoint-every", "0"], "--checkpoint-every must be >= 1, got 0"),
    (["train", "ppo", "--init", "x.pt", "--eval-episodes", "-1"], "--eval-episodes must be >= 0, got -1"),
    (["eval", "--env.num-envs", "0"], "--env.num-envs must be >= 1, got 0"),
    (["collect", "--env.num-envs", "0"], "--env.num-envs must be >= 1, got 0"),
    (["eval", "--temperature", "-1", *EVAL], "--temperature must be >= 0 (0 = greedy), got -1"),
])
def test_sizes_below_their_minimum_get_one_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert message in _one_line_error(capsys, args)


def test_study_out_naming_a_file_gets_one_line(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("")
    assert "is a file, not a directory" in _one_line_error(capsys, ["study", "debug", "--out", str(f)])


def test_a_torch_file_that_is_no_checkpoint_gets_one_line(tmp_path, capsys):
    f = tmp_path / "weights.pt"
    torch.save(torch.zeros(3), f)
    err = _one_line_error(capsys, ["eval", "--policy", str(f), *EVAL])
    assert f"{f} is a torch file but not an rl4vla VLA checkpoint" in err


def test_resuming_a_truncated_checkpoint_names_the_file_and_what_to_do(demos, tmp_path, capsys):
    run = tmp_path / "run"
    sft.train_sft(_sft(demos, run, steps=1))
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    err = _one_line_error(capsys, ["train", "sft", "debug", "--data", str(demos), "--out", str(run),
                                   "--resume"])
    assert f"cannot resume: {ckpt} is truncated or corrupt" in err and "delete it" in err


# ----- 5. seeds in [0, 2^32) ------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["eval", "--seeds", "0", "4294967296", *EVAL], "--seeds 4294967296 is out of range: seeds must be in [0, "
                                                     "4294967295]"),
    (["eval", "--seeds", "-1", *EVAL], "--seeds -1 is out of range"),
    (["eval", "--seeds", str(10**20), *EVAL], "is out of range"),
    (["collect", "--seed", "-1", "--episodes", "1", "--env.num-envs", "1", "--env.workers", "0",
      "--env.image-size", "32"], "--seed -1 is out of range"),
    (["train", "sft", "--seed", str(2**32)], "--seed 4294967296 is out of range"),
])
def test_seeds_outside_32_bits_are_refused(args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert message in _one_line_error(capsys, args)


def test_aliasing_seeds_reach_neither_the_sampler_nor_the_study():
    cond = C.CONDITIONS["in-distribution"]
    assert C.sample_episode(cond, 2**32 - 1, 0).seed == 2**32 - 1
    for seed in (2**32, -1):
        with pytest.raises(ValueError, match="out of range"):
            C.sample_episode(cond, seed, 0)
    with pytest.raises(ValueError, match="--eval-seeds 4294967296 is out of range"):
        study.plan(dataclasses.replace(study.PRESETS["debug"], eval_seeds=(2**32,)))


# ----- 6. user conditions cannot replace built-ins -------------------------------------------
@pytest.mark.parametrize("name", ["in-distribution", "unseen-table", "robot-pretraining", "all"])
def test_a_user_condition_named_like_a_builtin_is_refused(name, tmp_path, capsys):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps([{"name": name, "objects": ["sponge"]}]))
    before = C.CONDITIONS.get(name)
    err = _one_line_error(capsys, ["conditions", "--conditions-file", str(f)])
    assert f"user condition '{name}' is named like a built-in condition" in err
    assert C.CONDITIONS.get(name) is before


# ----- 7. a record that survives a kill is complete and has no duplicates --------------------
def test_sft_metrics_have_no_repeated_steps_after_a_resume(demos, tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = _sft(demos, out, steps=12, checkpoint_every=8)  # logs at 10 and 12; checkpoints at 8 and 12
    real = _kill_sft_at(monkeypatch, 11)  # dies after logging step 10, so the run resumes from step 8
    with pytest.raises(KeyboardInterrupt):
        sft.train_sft(cfg)
    monkeypatch.setattr(sft, "batch_indices", real)
    sft.train_sft(dataclasses.replace(cfg, resume=True))
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["step"] for r in rows if "losses/sft" in r] == [10, 12]


def test_rl_metrics_have_no_repeated_steps_after_a_resume_or_a_restart(model, tmp_path, monkeypatch):
    out = tmp_path / "ppo"
    cfg = _rl(model, out, env_steps=72, checkpoint_every=2)  # rollouts log at 24, 48, 72; checkpoints at 48, 72
    real, saves = rundir.atomic_torch_save, []

    def dies_at_the_second_checkpoint(obj, path):
        saves.append(path)
        if len(saves) == 2:
            raise KeyboardInterrupt("simulated kill")
        real(obj, path)

    monkeypatch.setattr(rundir, "atomic_torch_save", dies_at_the_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        rl.train_rl(cfg)
    monkeypatch.setattr(rundir, "atomic_torch_save", real)
    rl.train_rl(dataclasses.replace(cfg, resume=True))
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["step"] for r in rows if "train/updates" in r] == [24, 48, 72]
    (out / "checkpoint.pt").unlink()  # killed before its first checkpoint: a new run starts a new log
    rl.train_rl(dataclasses.replace(cfg, env_steps=24))
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["step"] for r in rows if "train/updates" in r] == [24]


def test_a_study_stage_killed_outright_keeps_its_time(tmp_path):
    script = f"""
import dataclasses, time
from rl4vla import study
study.HEARTBEAT_S = 0.2
study.plan = lambda cfg: [study.Stage("slow", {{}}, lambda: time.sleep(120))]
study.run_study(dataclasses.replace(study.PRESETS["debug"], out={str(tmp_path)!r}))
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / study.HEARTBEAT).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
    finally:
        proc.kill()  # SIGKILL: no handler runs, stages.json still says "running"
        proc.wait()
    assert study.read_stages(tmp_path)["stages"]["slow"]["status"] == "running"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(study, "plan", lambda cfg: [study.Stage("slow", {}, lambda: {"env_steps": 0, "outputs": []})])
        doc = study.run_study(dataclasses.replace(study.PRESETS["debug"], out=str(tmp_path)))
    rec = doc["stages"]["slow"]
    assert rec["status"] == "done" and rec["attempts"] == 2 and rec["wall_s"] >= 2.5


def test_a_manifest_without_its_hash_is_refused(tmp_path):
    p = tmp_path / "m.json"
    C.write_manifest(str(p), C.sample_episodes(C.CONDITIONS["in-distribution"], 0, 2))
    doc = json.loads(p.read_text())
    del doc["hash"]
    doc["episodes"][0]["instruction"] += " quickly"  # an edit that the hash would have caught
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="no 'hash' field"):
        C.read_manifest(str(p))


# ----- 8. --torch-threads on every command that runs torch -----------------------------------
@pytest.mark.parametrize("command", [["train", "sft"], ["train", "ppo"], ["eval"], ["render"], ["bench", "policy"],
                                     ["study"]])
def test_every_torch_command_takes_torch_threads(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    assert "--torch-threads" in capsys.readouterr().out


def test_sft_and_eval_train_and_act_on_the_asked_threads(demos, model, tmp_path, monkeypatch):
    from rl4vla.policy.vla import VLAPolicy

    seen = []
    real_loss, real_act = sft.sft_loss, VLAPolicy.act
    monkeypatch.setattr(sft, "sft_loss", lambda *a: seen.append(("sft", torch.get_num_threads())) or real_loss(*a))
    monkeypatch.setattr(VLAPolicy, "act", lambda self, *a, **kw: seen.append(("act", torch.get_num_threads()))
                        or real_act(self, *a, **kw))
    torch.set_num_threads(2)
    sft.train_sft(_sft(demos, tmp_path / "run", steps=1, torch_threads=1))
    assert set(seen) == {("sft", 1), ("act", 1)} and torch.get_num_threads() == 2  # restored after the run
    seen.clear()
    assert main(["eval", "--policy", model, "--torch-threads", "1", *EVAL]) == 0
    assert set(seen) == {("act", 1)}
    seen.clear()
    sft.train_sft(_sft(demos, tmp_path / "auto", steps=1))  # 0 = auto: torch's default, capped
    assert {t for _, t in seen} == {min(2, usable_cpus(), MAX_AUTO_THREADS)}
