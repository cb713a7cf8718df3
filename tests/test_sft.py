"""SFT: data order as a function of (seed, step), resume after a kill, refusing to clobber a run."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from rl4vla.algos import sft
from rl4vla.cli import main
from rl4vla.policy.vla import SmallVLA, VLAConfig


def _cfg(data, out, **kw):
    base = sft.SFTConfig(data=str(data), out=str(out), steps=6, batch_size=8, checkpoint_every=1, eval_every=0,
                         eval_episodes=0, eval_workers=0, augment=True,
                         model=VLAConfig(d_model=32, layers=1, heads=2, patch_grid=2))
    return dataclasses.replace(base, **kw)


def test_batch_order_depends_only_on_seed_and_step():
    a = [sft.batch_indices(50, 8, 0, s) for s in range(12)]
    assert all(np.array_equal(x, y) for x, y in zip(a, [sft.batch_indices(50, 8, 0, s) for s in range(12)]))
    epoch0 = np.concatenate(a[:6])
    assert len(set(epoch0.tolist())) == 48  # an epoch is a permutation: no repeats
    assert not np.array_equal(a[0], sft.batch_indices(50, 8, 1, 0))


@pytest.mark.parametrize("aux", [0.0, 1.0])
def test_resume_after_a_kill_matches_an_uninterrupted_run(demos, tmp_path, monkeypatch, aux):
    straight = sft.train_sft(_cfg(demos, tmp_path / "straight", aux_weight=aux))
    real = sft.batch_indices

    def killed_at_step_3(n, b, seed, step):
        if step == 3:
            raise KeyboardInterrupt("simulated kill")
        return real(n, b, seed, step)

    monkeypatch.setattr(sft, "batch_indices", killed_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        sft.train_sft(_cfg(demos, tmp_path / "resumed", aux_weight=aux))
    ck = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 3 and (ck["aux_head"] is None) == (aux == 0)
    monkeypatch.setattr(sft, "batch_indices", real)
    with pytest.raises(ValueError, match="--resume"):
        sft.train_sft(_cfg(demos, tmp_path / "resumed", aux_weight=aux))
    resumed = sft.train_sft(_cfg(demos, tmp_path / "resumed", aux_weight=aux, resume=True))
    assert resumed["steps"] == straight["steps"] == 6
    a = SmallVLA.load(str(tmp_path / "straight" / "model.pt")).state_dict()
    b = SmallVLA.load(str(tmp_path / "resumed" / "model.pt")).state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    torch.manual_seed(0)  # training really moved the weights away from their initial values
    init = SmallVLA(VLAConfig(image_size=32, d_model=32, layers=1, heads=2, patch_grid=2), SmallVLA.load(
        str(tmp_path / "straight" / "model.pt")).tokenizer).state_dict()
    assert max((a[k] - init[k]).abs().max().item() for k in a) > 1e-3
    logs = [json.loads(line) for line in open(tmp_path / "resumed" / "metrics.jsonl")]
    assert 6 in [r["step"] for r in logs]
    assert any("losses/aux_position" in r for r in logs) == (aux > 0)
    if aux:
        with pytest.raises(ValueError, match="aux-weight"):  # switching the auxiliary loss off mid-run
            sft.train_sft(_cfg(demos, tmp_path / "resumed", steps=7, resume=True))


def test_trained_checkpoint_evaluates_from_the_command_line(demos, tmp_path, capsys):
    """The run evaluates its model at the end (--eval-episodes; 0 skips it, as every other test here does), and the
    checkpoint evaluates from the command line."""
    s = sft.train_sft(_cfg(demos, tmp_path / "run", steps=2, eval_episodes=2))
    assert 0.0 <= s["eval_success"] <= 1.0
    logs = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["eval/success"] for r in logs if "eval/success" in r] == [s["eval_success"]]
    assert main(["eval", "--policy", str(tmp_path / "run" / "model.pt"), "--episodes", "2", "--env.num-envs", "2",
                 "--env.workers", "0", "--env.image-size", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["conditions"]["in-distribution"]["episodes"] == 2


def test_presets_and_bad_preset(capsys):
    assert set(sft.PRESETS) == {"debug", "warmup", "pretrain", "sft"}
    assert main(["train", "sft", "nope"]) == 2
    assert "valid: debug, warmup, pretrain, sft" in capsys.readouterr().err


def test_init_starts_from_the_given_model_and_keeps_its_tokenizer(demos, tmp_path):
    base = sft.train_sft(_cfg(demos, tmp_path / "base", steps=3))
    start = SmallVLA.load(base["model"])
    tok = start.tokenizer  # as if pretrained on data with other action percentiles:
    start.tokenizer = dataclasses.replace(tok, low=tuple(np.asarray(tok.low) - 0.5))
    start.save(str(tmp_path / "start.pt"))
    # lr 0: the weights cannot move, so the result is the initial model exactly (not a fresh one)
    still = sft.train_sft(_cfg(demos, tmp_path / "still", steps=2, lr=0.0, init=str(tmp_path / "start.pt"),
                               model=VLAConfig(d_model=64)))  # --model.* is ignored under --init
    got = SmallVLA.load(still["model"])
    assert got.cfg == start.cfg and got.tokenizer == start.tokenizer != tok
    for k, v in start.state_dict().items():
        torch.testing.assert_close(got.state_dict()[k], v, rtol=0, atol=0)
    moved = SmallVLA.load(sft.train_sft(_cfg(demos, tmp_path / "moved", steps=2, init=str(tmp_path / "start.pt")))[
        "model"])
    assert max((moved.state_dict()[k] - v).abs().max().item() for k, v in start.state_dict().items()) > 1e-4
    with pytest.raises(ValueError, match="px"):
        big = SmallVLA(dataclasses.replace(start.cfg, image_size=64), start.tokenizer)
        big.save(str(tmp_path / "big.pt"))
        sft.train_sft(_cfg(demos, tmp_path / "bad", steps=1, init=str(tmp_path / "big.pt")))


def test_co_training_fills_the_stated_share_of_every_batch_from_the_mix_dataset(demos, tmp_path, monkeypatch):
    from rl4vla.data.demos import DemoDataset

    mix = tmp_path / "mix"
    assert main(["collect", "--out", str(mix), "--conditions", "robot-pretraining", "--episodes", "2", "--env.num-envs",
                 "2", "--env.workers", "0", "--env.image-size", "32"]) == 0
    own, other = set(DemoDataset(str(demos)).instructions), set(DemoDataset(str(mix)).instructions)
    assert not own & other  # the pretraining objects never appear in the benchmark's demos
    seen = []
    real = SmallVLA.prefix

    def recording(self, obs):
        seen.append(list(obs["instruction"]))
        return real(self, obs)

    monkeypatch.setattr(SmallVLA, "prefix", recording)
    sft.train_sft(_cfg(demos, tmp_path / "run", steps=3, mix_data=str(mix), mix_fraction=0.25))
    assert len(seen) == 3  # the 3 training steps (no evaluation acts: --eval-episodes 0)
    for batch in seen:
        assert len(batch) == 8 and set(batch[:6]) <= own and set(batch[6:]) <= other
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="mix-fraction"):
            sft.train_sft(_cfg(demos, tmp_path / f"bad{bad}", mix_data=str(mix), mix_fraction=bad))


def test_frozen_encoder_features_are_cached_on_disk_and_reused_on_resume(demos, tmp_path, monkeypatch):
    eff = VLAConfig(d_model=32, layers=1, heads=2, patch_grid=2, image_encoder="efficientnet")
    calls = []
    real = SmallVLA.frozen_features

    def counting(self, rgb, *a, **kw):
        calls.append(len(rgb))
        return real(self, rgb, *a, **kw)

    monkeypatch.setattr(SmallVLA, "frozen_features", counting)
    sft.train_sft(_cfg(demos, tmp_path / "run", steps=2, augment=False, model=eff))
    cache = tmp_path / "run" / "image_features.pt"
    assert cache.exists() and len(calls) == 1
    feats = torch.load(cache, weights_only=True)["features"]
    assert feats.shape == (calls[0], 4 * 1280) and feats.dtype == torch.float16  # 2x2 patches of 1280
    sft.train_sft(_cfg(demos, tmp_path / "run", steps=2, augment=False, model=eff, resume=True))
    assert len(calls) == 1  # the resumed run read the cache instead of encoding the dataset again
    torch.save({"features": feats[:1], "frames": torch.tensor(1), "checksum": torch.tensor(0)}, cache)
    sft.train_sft(_cfg(demos, tmp_path / "run", steps=2, augment=False, model=eff, resume=True))
    assert len(calls) == 2  # a cache of other data is recomputed, never used
    ck = torch.load(cache, weights_only=True)
    assert ck["precision"] == "float32"
    torch.save({**ck, "precision": "bfloat16"}, cache)
    sft.train_sft(_cfg(demos, tmp_path / "run", steps=2, augment=False, model=eff, resume=True))
    assert len(calls) == 3  # features from the encoder at another precision are not this model's input


def test_aux_targets_are_the_placements_and_drop_the_object_once_the_gripper_toggles():
    from rl4vla.data.demos import Demonstration

    def ep(n, toggle_at, obj, rec):
        a = np.zeros((n, 7), np.float32)
        a[:, 6] = 1.0
        if toggle_at is not None:
            a[toggle_at:, 6] = -1.0
        return Demonstration(rgb=np.zeros((n, 2, 2, 3), np.uint8), actions=a, proprio=np.zeros((n, 10), np.float32),
                       instruction="i", condition="in-distribution", success=True,
                       episode={"objects": [{"x": obj[0], "y": obj[1]}, {"x": 9.0, "y": 9.0}],
                                "receptacles": [{"x": rec[0], "y": rec[1]}]})

    t, m = sft.aux_targets([ep(4, 2, (0.1, -0.05), (-0.2, 0.15)), ep(3, None, (0.0, 0.02), (0.05, 0.0))])
    assert t.shape == m.shape == (7, 4)
    np.testing.assert_allclose(t[0], np.float32([0.1, -0.05, -0.2, 0.15]) * sft.AUX_SCALE, rtol=1e-6)
    np.testing.assert_array_equal(m[:4, :2].ravel(), [1, 1, 1, 1, 0, 0, 0, 0])  # object gone from the toggle on
    assert m[:, 2:].all() and m[4:].all()  # receptacles always; an episode without a toggle keeps the object
    torch.manual_seed(0)
    head = torch.nn.Linear(2 * 3, 4)
    tok = torch.randn(7, 2, 3)
    full = sft.aux_loss(head, tok, torch.as_tensor(t), torch.ones(7, 4))
    masked = sft.aux_loss(head, tok, torch.as_tensor(t), torch.as_tensor(m))
    pred = head(tok.flatten(1))
    want = ((pred - torch.as_tensor(t)) ** 2 * torch.as_tensor(m)).sum() / torch.as_tensor(m).sum()
    torch.testing.assert_close(masked, want)
    assert not torch.isclose(full, masked)


def test_a_frame_stride_trains_and_caches_only_every_kth_step_of_each_demo(demos, tmp_path, monkeypatch):
    from rl4vla.data.demos import DemoDataset
    from rl4vla.policy.tokenizer import ActionTokenizer

    data = DemoDataset(str(demos))
    rows = data.frame_rows(2)
    starts = np.cumsum([0] + [len(e.actions) for e in data.episodes])[:-1]
    assert len(rows) == sum(len(range(i % 2, len(e.actions), 2)) for i, e in enumerate(data.episodes))
    assert set(starts[0::2]) <= set(rows) and not set(starts[1::2]) & set(rows)  # episode i starts at step i % 2
    assert set(starts[1::2] + 1) <= set(rows)  # so both phases of the expert's motion are trained on
    assert np.array_equal(data.rgb.rows(rows)[1:3], data.rgb[rows[1:3]])
    eff = SmallVLA(VLAConfig(image_size=32, d_model=32, layers=1, heads=2, patch_grid=2,
                             image_encoder="efficientnet"), ActionTokenizer.from_range(-np.ones(7), np.ones(7)))
    feats = sft.cached_features(eff, data, tmp_path / "f.pt", rows)  # only the strided frames are encoded
    assert feats.shape[0] == len(rows) and torch.equal(feats[1], eff.frozen_features(data.rgb[rows[1:2]])[0])
    seen = []
    real = SmallVLA.prefix

    def recording(self, obs):
        seen.append(np.asarray(obs["proprio"]).copy())
        return real(self, obs)

    monkeypatch.setattr(SmallVLA, "prefix", recording)
    s = sft.train_sft(_cfg(demos, tmp_path / "run", steps=3, frame_stride=2))
    assert s["samples"] == len(rows)
    kept = {tuple(np.round(p, 6)) for p in data.proprio[rows]}
    assert len(seen) == 3 and s["eval_success"] is None  # 3 training steps, no evaluation (--eval-episodes 0)
    assert all(tuple(np.round(p, 6)) in kept for batch in seen for p in batch)  # only strided steps trained
    with pytest.raises(ValueError, match="--frame-stride must be >= 1"):
        sft.train_sft(_cfg(demos, tmp_path / "bad", frame_stride=0))


def test_encoder_train_blocks_from_an_init_trains_them_and_recaches_their_input(demos, tmp_path):
    """`--encoder-train-blocks 1` with --init: the run trains the frozen encoder's last block, and its feature
    cache (the block's input, the same size as the frozen features) is never taken for the frozen model's."""
    eff = VLAConfig(d_model=32, layers=1, heads=2, patch_grid=2, image_encoder="efficientnet", encoder_stride=16,
                    keypoints=2)
    sft.train_sft(_cfg(demos, tmp_path / "frozen", steps=2, augment=False, model=eff))
    init = str(tmp_path / "frozen" / "model.pt")
    cache = tmp_path / "frozen" / "image_features.pt"
    frozen_feats = torch.load(cache, weights_only=True)["features"]
    sft.train_sft(_cfg(demos, tmp_path / "top", steps=2, augment=False, init=init, encoder_train_blocks=1))
    trained = SmallVLA.load(str(tmp_path / "top" / "model.pt"))
    start = SmallVLA.load(init).with_trainable_encoder_blocks(1)
    assert trained.cfg.encoder_train_blocks == 1
    a, b = trained.image_encoder.top.state_dict(), start.image_encoder.top.state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) > 0
    ck = torch.load(tmp_path / "top" / "image_features.pt", weights_only=True)
    assert ck["features"].shape == frozen_feats.shape and int(ck["train_blocks"]) == 1
    assert not torch.equal(ck["features"], frozen_feats)
    torch.save(ck, cache)  # the trainable model's cache beside the frozen model's run: recomputed, not reused
    sft.train_sft(_cfg(demos, tmp_path / "frozen", steps=2, augment=False, model=eff, resume=True))
    assert torch.equal(torch.load(cache, weights_only=True)["features"], frozen_feats)
