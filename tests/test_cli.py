"""Command-line behaviour: JSON output, clear errors for bad names and a missing GL backend."""

import json
import os
import subprocess
import sys

import pytest

from rl4vla.cli import main


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rl4vla.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_eval_json_reports_per_condition_success(capsys):
    assert main(["eval", "--policy", "noop", "--episodes", "2", "--env.num-envs", "2", "--env.workers", "0",
                 "--env.image-size", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["conditions"]["in-distribution"]
    assert r["episodes"] == 2 and r["success_rate"] == 0.0


@pytest.mark.parametrize("args, valid", [
    (["eval", "--policy", "nope"], "expert, random, noop"),
    (["eval", "--conditions", "nope"], "in-distribution"),
    (["frobnicate"], "eval"),
    (["bench", "nope"], "sim"),
])
def test_unknown_names_list_the_valid_ones(capsys, args, valid):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "unknown" in err and valid in err


def test_missing_gl_backend_names_the_system_package():
    r = run_cli("eval", "--episodes", "1", env={"MUJOCO_GL": "bogus"})
    assert r.returncode != 0
    assert "MUJOCO_GL" in r.stderr and "must be one of egl, osmesa, glfw" in r.stderr
    assert "Traceback" not in r.stderr


def test_gl_help_names_a_package_per_backend(monkeypatch):
    from rl4vla.sim.gl import gl_help

    monkeypatch.setenv("MUJOCO_GL", "egl")
    assert "libegl1" in gl_help(OSError("libEGL.so.1: cannot open shared object file"))
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert "libosmesa6" in gl_help(OSError("no OSMesa"))


def test_render_writes_videos_and_a_contact_sheet(tmp_path):
    assert main(["render", "--episodes", "1", "--env.image-size", "64", "--env.workers", "0",
                 "--out", str(tmp_path)]) == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "contact_sheet.png" in files
    assert any(f.endswith((".mp4", ".gif")) and "success" in f for f in files)
    index = json.loads((tmp_path / "media.json").read_text())  # what `rl4vla report --media` links
    assert [v["file"] for v in index["videos"]] == [f for f in files if f.endswith((".mp4", ".gif"))]
    assert index["videos"][0]["success"] is True


@pytest.mark.parametrize("encoder", ["conv", "efficientnet"])
def test_bench_policy_json_reports_throughput_and_rollout_step_time(capsys, encoder):
    assert main(["bench", "policy", "--json", "--repeats", "1", "--batch", "4", "--train-batch", "4",
                 "--env.num-envs", "2", "--model.image-encoder", encoder, "--model.image-size", "64",
                 "--model.d-model", "32", "--model.layers", "1", "--model.heads", "2", "--model.patch-grid", "2",
                 "--rollout-steps", "3"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["image_encoder"] == encoder and out["rollout_batch"] == 2
    assert out["infer_samples_per_s"] > 0 and out["train_samples_per_s"] > 0 and out["rollout_step_policy_ms"] > 0
    # the real rollout's split: as many steps as asked, each timed on both sides
    assert out["rollout_steps"] == 3 and out["rollout_policy_ms"] > 0 and out["rollout_sim_ms"] > 0
    # which convolutions the frozen encoder ran (speed figures compare only on the same kernels)
    assert ("encoder_kernels" in out) == (encoder == "efficientnet")


def test_encoder_kernels_name_the_path_the_plan_runs(monkeypatch):
    """A bfloat16 plan reports native oneDNN kernels where the CPU has them and emulation where it does not."""
    from rl4vla.policy import encoders

    monkeypatch.setattr(encoders, "_FUSED", True)
    assert encoders.EfficientNetEncoder(16, 2).kernels == "onednn-float32"
    monkeypatch.setattr(encoders, "_CPU_BF16", True)
    assert encoders.EfficientNetEncoder(16, 2, precision="bfloat16").kernels == "onednn-bfloat16"
    monkeypatch.setattr(encoders, "_CPU_BF16", False)
    assert encoders.EfficientNetEncoder(16, 2, precision="bfloat16").kernels == "bfloat16-emulated"
    monkeypatch.setattr(encoders, "_FUSED", False)
    assert encoders.EfficientNetEncoder(16, 2).kernels == "conv2d-float32"
