"""--device: names and their errors, the model and its frozen encoder plan moving between devices, checkpoints that
hold CPU tensors wherever they were written, and (where a GPU is present) SFT and RL on cuda."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from rl4vla import study
from rl4vla.algos import rl, sft
from rl4vla.cli import main
from rl4vla.config import EnvArgs
from rl4vla.policy.tokenizer import ActionTokenizer
from rl4vla.policy.vla import SmallVLA, VLAConfig
from rl4vla.util import on_cpu, resolve_device, resume_checkpoint

CUDA = torch.cuda.is_available()
TINY = VLAConfig(image_size=32, d_model=32, layers=1, heads=2, patch_grid=2)
RL_ENV = EnvArgs(num_envs=2, workers=0, image_size=None)  # at the policy's input size
EFFNET = VLAConfig(image_size=32, d_model=32, layers=1, heads=2, patch_grid=2, image_encoder="efficientnet",
                   keypoints=2, encoder_stride=16, encoder_precision="bfloat16")
TEXTS = ["put carrot on plate", "put banana on plate"]


@pytest.fixture
def no_gpu(monkeypatch):
    """torch sees no GPU, as on this CPU-only machine (so the test means the same on a GPU one)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def make_model(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(0)
    cache = {t: rng.normal(size=384).astype(np.float32) for t in TEXTS}  # no MiniLM load
    return SmallVLA(cfg, ActionTokenizer(tuple([-0.05] * 6 + [-1.0]), tuple([0.05] * 6 + [1.0])), cache)


def make_obs(n=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return {"rgb": rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
            "instruction": [TEXTS[i % 2] for i in range(n)], "proprio": rng.normal(size=(n, 10)).astype(np.float32)}


def _sft_cfg(data, out, **kw):
    base = sft.SFTConfig(data=str(data), out=str(out), steps=2, batch_size=8, checkpoint_every=1, eval_every=0,
                         eval_episodes=2, eval_workers=0, augment=False, model=TINY)
    return dataclasses.replace(base, **kw)


def _weights(path) -> dict:
    return SmallVLA.load(str(path)).state_dict()


def _all_on_cpu(obj) -> bool:
    if isinstance(obj, torch.Tensor):
        return obj.device.type == "cpu"
    if isinstance(obj, dict):
        return all(_all_on_cpu(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_on_cpu(v) for v in obj)
    return True


# ----- names --------------------------------------------------------------------------------
def test_device_names_resolve_and_a_missing_gpu_is_a_clear_error(no_gpu):
    assert resolve_device("cpu") == resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown --device 'gpu'; valid: auto, cpu, cuda"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="--device cuda: no GPU is available to torch"):
        resolve_device("cuda")


def test_the_device_may_change_on_resume_and_is_no_study_stage_input():
    assert "device" in sft.MAY_CHANGE_ON_RESUME and "device" in rl.MAY_CHANGE_ON_RESUME
    cfg = study.PRESETS["debug"]
    a = {s.name: s.inputs for s in study.plan(dataclasses.replace(cfg, device="cpu"))}
    b = {s.name: s.inputs for s in study.plan(dataclasses.replace(cfg, device="auto"))}
    assert a == b and not any("device" in inputs for inputs in a.values())


# ----- SFT from the command line ------------------------------------------------------------
def test_sft_runs_with_device_cpu_and_auto_and_refuses_cuda_without_a_gpu(demos, tmp_path, no_gpu, capsys):
    def train(name, *flags):
        return main(["train", "sft", "debug", "--data", str(demos), "--out", str(tmp_path / name),
                     "--steps", "2", "--eval-episodes", "2", "--eval-workers", "0", *flags])

    assert train("cpu", "--device", "cpu") == 0
    assert train("auto", "--device", "auto") == 0
    a, b = _weights(tmp_path / "cpu" / "model.pt"), _weights(tmp_path / "auto" / "model.pt")
    for k in a:  # auto is cpu here: the very same run
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["device"] == "auto"
    capsys.readouterr()
    assert train("cuda", "--device", "cuda") == 2
    err = capsys.readouterr().err
    assert "--device cuda: no GPU is available to torch" in err and "--device cpu" in err
    assert not (tmp_path / "cuda" / "checkpoint.pt").exists()  # refused before any work
    assert train("bad", "--device", "tpu") == 2
    assert "valid: auto, cpu, cuda" in capsys.readouterr().err
    # a run started on one device resumes on another: the device is not one of the run's settings
    recorded = json.loads((tmp_path / "cpu" / "config.json").read_text())
    done = sft.SFTConfig(**{**recorded, "model": VLAConfig(**recorded["model"])})
    ck = resume_checkpoint(dataclasses.replace(done, device="auto", resume=True), sft.MAY_CHANGE_ON_RESUME)
    assert ck is not None and _all_on_cpu(ck)


# ----- the model between devices ------------------------------------------------------------
def test_on_cpu_keeps_cpu_objects_as_they_are():
    m = make_model()
    sd = m.state_dict()
    assert on_cpu(sd) is sd and hasattr(on_cpu(sd), "_metadata")  # CPU checkpoints stay byte for byte the same
    nested = {"a": [torch.zeros(2), (1, "x")], "b": None}
    assert on_cpu(nested) is nested


@pytest.mark.parametrize("cfg", [TINY, EFFNET], ids=["conv", "efficientnet"])
def test_a_model_moved_to_a_device_and_back_round_trips_through_save_and_load(cfg, tmp_path):
    m = make_model(cfg)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    dev = torch.device("cuda" if CUDA else "cpu")
    m.to(dev)
    assert m.device.type == dev.type
    assert all(v.device.type == "cpu" for v in m.state()["weights"].values())  # saved as CPU tensors
    m.save(str(tmp_path / "m.pt"))
    m.to("cpu")
    loaded = SmallVLA.load(str(tmp_path / "m.pt"))
    assert loaded.device.type == "cpu"
    for k, v in before.items():
        torch.testing.assert_close(m.state_dict()[k], v, rtol=0, atol=0)
        torch.testing.assert_close(loaded.state_dict()[k], v, rtol=0, atol=0)
    obs, tokens = make_obs(), torch.as_tensor(np.random.default_rng(1).integers(0, 256, (3, 7)))
    for x, y in zip(m.eval().evaluate(obs, tokens), loaded.eval().evaluate(obs, tokens)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_the_frozen_encoder_plan_follows_the_module_and_keeps_its_precision():
    """The folded EfficientNet is plain attributes, not parameters: `.to` must move it too, in its own dtype
    (the meta device stands in for a GPU on a machine without one)."""
    enc = make_model(EFFNET).image_encoder
    plan = [enc._stem, *(c for blk in enc._blocks for c in blk[:3] if c is not None)]
    enc.to("meta")
    assert all(c.weight.device.type == c.bias.device.type == "meta" for c in plan)
    assert all(c.weight.dtype == torch.bfloat16 for c in plan)
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in plan if c.weight.shape[-1] > 1)


# ----- on a GPU -----------------------------------------------------------------------------
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_sft_and_rl_train_on_cuda_and_their_checkpoints_load_on_cpu(demos, tmp_path):
    from rl4vla.policy.encoders import EfficientNetEncoder

    # the frozen encoder on the GPU (plain convolutions) computes the CPU plan's features (float32; TF32 rounding)
    enc = EfficientNetEncoder(16, 2, keypoints=2)
    x = torch.rand(3, 3, 64, 64)
    want = enc.features(x)
    got = enc.to("cuda").features(x.cuda()).cpu()
    assert (got - want).norm() / want.norm() < 1e-2

    summary = sft.train_sft(_sft_cfg(demos, tmp_path / "sft", model=EFFNET, device="cuda"))
    ck = torch.load(tmp_path / "sft" / "checkpoint.pt", weights_only=False)  # no map_location: CPU tensors only
    assert _all_on_cpu(ck) and ck["cuda_rng"] is not None
    on_gpu_run = SmallVLA.from_state(ck["model"]).state_dict()
    loaded = _weights(summary["model"])
    for k in loaded:
        torch.testing.assert_close(loaded[k], on_gpu_run[k], rtol=0, atol=0)
    # the same weights act alike on either device (bf16 convolutions and TF32 differ in rounding only)
    cpu_model = SmallVLA.load(summary["model"]).eval()
    gpu_model = SmallVLA.load(summary["model"]).to("cuda").eval()
    obs = {**make_obs(3), "instruction": [next(iter(cpu_model.text.cache))] * 3}
    tokens = torch.as_tensor(np.random.default_rng(1).integers(0, 256, (3, 7)))
    a, b = cpu_model.evaluate(obs, tokens)[0], gpu_model.evaluate(obs, tokens)[0].cpu()
    torch.testing.assert_close(b, a, rtol=0.05, atol=0.5)
    # resuming the GPU run's checkpoint on the CPU is allowed (and loads its optimizer state there)
    more = dataclasses.replace(_sft_cfg(demos, tmp_path / "sft", model=EFFNET, device="cpu"), resume=True)
    assert sft.train_sft(more)["steps"] == 2

    cfg = dataclasses.replace(rl.presets("ppo")["debug"], init=summary["model"], out=str(tmp_path / "ppo"),
                              env=RL_ENV, num_steps=4, max_episode_steps=4, env_steps=8, eval_episodes=2,
                              device="cuda")
    out = rl.train_rl(cfg)
    ck = torch.load(tmp_path / "ppo" / "checkpoint.pt", weights_only=False)
    assert _all_on_cpu(ck)
    loaded = _weights(out["model"])
    for k, v in SmallVLA.from_state(ck["model"]).state_dict().items():
        torch.testing.assert_close(loaded[k], v, rtol=0, atol=0)
    assert SmallVLA.load(out["model"]).act(obs, 0.0).actions.shape == (3, 7)  # acts on the CPU
    dpo = dataclasses.replace(rl.presets("dpo")["debug"], init=summary["model"], out=str(tmp_path / "dpo"),
                              env=RL_ENV, max_episode_steps=4, env_steps=8, eval_episodes=2, device="cuda")
    assert rl.train_rl(dpo)["env_steps"] >= 8
