"""Demonstration datasets: round trip, resume/append, the idle-drop rule, corrupt files."""

import json

import h5py
import numpy as np
import pytest

from rl4vla.cli import main
from rl4vla.data.demos import DatasetError, DemoDataset, Demonstration, keep_mask, read_shard, write_shard


def _collect(out, n):
    return main(["collect", "--out", str(out), "--episodes", str(n), "--env.num-envs", "4", "--env.workers", "0",
                 "--env.image-size", "32"])


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    eps = [Demonstration(rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8), rng.normal(size=(5, 7)).astype(np.float32),
                   rng.normal(size=(5, 10)).astype(np.float32),
                   f"put thing{i} on plate", "in-distribution", True, {"index": i}) for i in range(3)]
    write_shard(tmp_path / "s.h5", eps)
    back = read_shard(tmp_path / "s.h5")
    for a, b in zip(eps, back):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.actions, b.actions)
        assert np.array_equal(a.proprio, b.proprio)
        assert (a.instruction, a.condition, a.success, a.episode) == (b.instruction, b.condition, b.success, b.episode)
    with h5py.File(tmp_path / "s.h5") as f:  # plain h5py reads it: the documented layout
        assert f.attrs["format"] == "rl4vla-demos" and f["episodes/00001/actions"].shape == (5, 7)


def test_collect_keeps_successes_resumes_and_appends(tmp_path):
    assert _collect(tmp_path, 4) == 0
    first = DemoDataset(tmp_path)
    assert first.meta["episodes"] == first.meta["succeeded"] == 4 and len(first) == first.meta["transitions"] > 4 * 5
    assert all(e.success for e in first.episodes)
    assert first.rgb.shape[1:] == (32, 32, 3) and first.actions.shape[1] == 7 and len(first.instructions) == len(first)
    assert first.proprio.shape == (len(first), 10)
    tcp = first.proprio[:, :3]  # the robot state seen with each frame: the TCP moves by about the commanded delta
    ep0 = first.episodes[0]
    moved = np.diff(ep0.proprio[:, :3], axis=0)
    assert np.abs(tcp).max() < 2.0 and np.corrcoef(moved[:, 2], ep0.actions[:-1, 2])[0, 1] > 0.5
    assert np.allclose(first.action_q01, np.percentile(first.actions, 1, axis=0))
    assert _collect(tmp_path, 8) == 0
    more = DemoDataset(tmp_path)
    assert more.meta["episodes"] == 8
    for a, b in zip(first.episodes, more.episodes[:4]):  # appended, the old episodes untouched
        assert a.episode == b.episode and np.array_equal(a.actions, b.actions)
    indices = [e.episode["index"] for e in more.episodes]
    assert len(set(indices)) == 8  # every demo is a different pinned episode
    for e in more.episodes:
        assert keep_mask(e.actions).all()  # near-idle steps were dropped at collection


def test_idle_steps_are_dropped_but_gripper_toggles_kept():
    a = np.zeros((5, 7))
    a[:, 6] = [1, 1, -1, -1, -1]
    a[0, 0] = 0.02  # moving
    a[3, 5] = 0.1  # rotating
    assert keep_mask(a).tolist() == [True, False, True, True, False]


def test_collect_refuses_to_mix_settings(tmp_path, capsys):
    assert _collect(tmp_path, 4) == 0
    assert main(["collect", "--out", str(tmp_path), "--episodes", "8", "--env.num-envs", "4", "--env.workers", "0",
                 "--env.image-size", "64"]) == 2
    assert "image_size=32" in capsys.readouterr().err


def test_corrupt_or_truncated_files_are_reported(tmp_path):
    assert _collect(tmp_path, 4) == 0
    shard = tmp_path / json.loads((tmp_path / "meta.json").read_text())["shards"][0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        DemoDataset(tmp_path)
    shard.unlink()
    with pytest.raises(DatasetError, match="missing"):
        DemoDataset(tmp_path)
    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(DatasetError, match="corrupt"):
        DemoDataset(tmp_path)
    with pytest.raises(DatasetError, match="rl4vla collect"):
        DemoDataset(tmp_path / "nowhere")


def test_noise_injection_perturbs_execution_but_records_the_expert_action(tmp_path, capsys):
    from rl4vla.bench.expert import MAX_STEP

    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    assert _collect(clean, 4) == 0
    assert main(["collect", "--out", str(noisy), "--episodes", "4", "--env.num-envs", "4", "--env.workers", "0",
                 "--env.image-size", "32", "--noise", "0.006"]) == 0
    a, b = DemoDataset(clean), DemoDataset(noisy)
    assert b.meta["noise"] == 0.006 and a.meta["noise"] == 0.0
    pairs = [(i, j) for i, ea in enumerate(a.episodes) for j, eb in enumerate(b.episodes) if ea.episode == eb.episode]
    assert pairs  # (deterministic: the seeds fix which noisy episodes succeed)
    for i, j in pairs:
        ea, eb = a.episodes[i], b.episodes[j]
        # same initial state; the first noisy action acts after it
        assert np.array_equal(a.episode_frames(i)[0], b.episode_frames(j)[0])
        assert not np.array_equal(ea.proprio[1:3], eb.proprio[1:3])  # the executed actions were perturbed
    # recorded labels are clean expert actions: never beyond the expert's step limit, which noise would exceed
    assert np.linalg.norm(b.actions[:, :3], axis=1).max() <= MAX_STEP + 1e-6
    assert main(["collect", "--out", str(noisy), "--episodes", "8", "--env.num-envs", "4", "--env.workers", "0",
                 "--env.image-size", "32"]) == 2
    assert "noise=0.006" in capsys.readouterr().err
    assert main(["collect", "--out", str(tmp_path / "x"), "--noise", "0.5"]) == 2
    assert "--noise must be in [0, 0.02]" in capsys.readouterr().err


def test_dataset_frames_are_read_lazily_and_index_like_an_array(tmp_path):
    """DemoDataset keeps no frames in memory (a 20k-demo corpus would not fit); rgb indexes like the array the
    shards hold, with ints, slices, integer arrays (any order, repeats) and negative indices."""
    from rl4vla.data.demos import DemoDataset, LazyFrames, read_shard

    main(["collect", "--out", str(tmp_path / "d"), "--episodes", "3", "--env.num-envs", "2", "--env.workers", "0",
          "--env.image-size", "32"])
    data = DemoDataset(tmp_path / "d")
    full = np.concatenate([e.rgb for name in data.meta["shards"] for e in read_shard(tmp_path / "d" / name)])
    assert isinstance(data.rgb, LazyFrames) and all(e.rgb is None for e in data.episodes)
    assert data.rgb.shape == full.shape and len(data.rgb) == len(data)
    assert np.array_equal(data.episode_frames(1), read_shard(tmp_path / "d" / data.meta["shards"][0])[1].rgb)
    idx = np.array([len(full) - 1, 0, 5, 5, len(full) // 2, 1])
    assert np.array_equal(data.rgb[idx], full[idx])
    assert np.array_equal(data.rgb[2:9], full[2:9]) and np.array_equal(data.rgb[-1], full[-1])
    assert np.array_equal(data.rgb[::3, ::7, ::7], full[::3, ::7, ::7])
    with pytest.raises(IndexError, match="out of range"):
        data.rgb[np.array([len(full)])]
    data.rgb.MAX_OPEN = 1  # more shards than may stay open: each read reopens what it needs
    assert len(data.meta["shards"]) > 1 and np.array_equal(data.rgb[idx], full[idx]) and len(data.rgb._files) == 1


@pytest.fixture(scope="module")
def driver(demos, tmp_path_factory):
    """A one-step SFT model: a learned policy that mostly fails, so DAgger sees states the expert never visits."""
    import dataclasses

    from rl4vla.algos import sft
    from rl4vla.policy.vla import VLAConfig
    from rl4vla.util import torch_threads

    out = tmp_path_factory.mktemp("driver")
    cfg = sft.SFTConfig(data=str(demos), out=str(out), steps=1, batch_size=8, checkpoint_every=1, eval_every=0,
                        eval_episodes=1, eval_workers=0, augment=False,
                        model=VLAConfig(d_model=32, layers=1, heads=2, patch_grid=2))
    with torch_threads(1):
        return sft.train_sft(dataclasses.replace(cfg))["model"]


def _dagger(out, driver, n, *extra):
    return main(["collect", "--out", str(out), "--episodes", str(n), "--env.num-envs", "4", "--env.workers", "0",
                 "--env.image-size", "32", "--driver", str(driver), "--torch-threads", "1", *extra])


def test_dagger_executes_the_driver_records_the_expert_and_keeps_failures(tmp_path, demos, driver, capsys):
    from rl4vla.bench.expert import MAX_STEP

    assert _dagger(tmp_path / "d", driver, 8) == 0
    data = DemoDataset(tmp_path / "d")
    assert data.meta["driver"]["kind"] == "checkpoint" and data.meta["driver_temperature"] == 0.6
    assert data.meta["episodes"] == data.meta["next_index"] == 8  # every driven episode is kept...
    assert not all(e.success for e in data.episodes)  # ...failures too (the expert's collection keeps none)
    assert data.meta["succeeded"] == sum(e.success for e in data.episodes)
    assert np.linalg.norm(data.actions[:, :3], axis=1).max() <= MAX_STEP + 1e-6  # the labels are the expert's
    # the expert's demos move the TCP as labelled; a driven episode does not follow its labels
    expert, driven = DemoDataset(demos).episodes[0], data.episodes[0]
    for ep, follows in ((expert, True), (driven, False)):
        moved = np.diff(ep.proprio[:, :3], axis=0)
        assert (np.corrcoef(moved[:, 2], ep.actions[:-1, 2])[0, 1] > 0.5) == follows
    # a lost shard is re-collected identically: the driver's sampling is seeded per wave
    before = [e.actions for e in data.episodes]
    (tmp_path / "d" / data.meta["shards"][0]).unlink()
    assert _dagger(tmp_path / "d", driver, 8) == 0
    assert all(np.array_equal(a, e.actions) for a, e in zip(before, DemoDataset(tmp_path / "d").episodes))
    # appending needs the same driver and settings; a plain expert dataset takes no driver
    assert _dagger(tmp_path / "d", driver, 12, "--driver-mix", "0.5") == 2
    assert "driver_mix=0.0" in capsys.readouterr().err
    assert _collect(tmp_path / "d", 12) == 2
    assert "driver=" in capsys.readouterr().err


def test_dagger_refuses_bad_drivers(tmp_path, driver, capsys):
    assert _dagger(tmp_path / "a", "expert", 4) == 2
    assert "--driver takes a learned policy" in capsys.readouterr().err
    assert _dagger(tmp_path / "b", tmp_path / "no-such.pt", 4) == 2
    assert "neither a checkpoint file nor a pretrained model" in capsys.readouterr().err
    assert _dagger(tmp_path / "c", driver, 4, "--driver-mix", "1") == 2
    assert "--driver-mix" in capsys.readouterr().err


def test_driver_mix_executes_the_expert_on_a_seeded_share_of_the_steps():
    from rl4vla.data.collect import Driver

    class Fixed:
        def act(self, obs, temperature):
            from rl4vla.bench.contract import PolicyOutput

            return PolicyOutput(np.ones((len(obs["rgb"]), 7)))

    obs, expert = {"rgb": np.zeros((1000, 2, 2, 3))}, np.zeros((1000, 7))
    for mix in (0.0, 0.3):
        out = Driver(Fixed(), 0.6, mix, np.random.default_rng(0)).executed(obs, expert)
        share = float((out == 0).all(1).mean())
        assert abs(share - mix) < 0.05 and ((out == 0).all(1) | (out == 1).all(1)).all()
