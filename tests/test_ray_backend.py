"""The Ray backend (`--env.backend ray`): env shards as Ray actors give the local backend's observations and
results.

Runs on a local Ray cluster on the CPU (skipped when Ray, the optional extra `rl4vla[ray]`, is not installed).
"""

import dataclasses
import json

import numpy as np
import pytest

from rl4vla.bench.env import EnvConfig, TabletopVecEnv
from rl4vla.bench.ray_backend import check_backend
from rl4vla.cli import main
from rl4vla.config import EnvArgs, EvalConfig
from rl4vla.eval.run import evaluate

CONDITIONS = ["in-distribution", "unseen-table"]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_shards_step_like_local_ones(ray_cluster):
    cfg = EnvConfig(num_envs=3, workers=2, image_size=32, max_steps=4)
    local = TabletopVecEnv(dataclasses.replace(cfg, workers=0), CONDITIONS)
    remote = TabletopVecEnv(dataclasses.replace(cfg, backend="ray"), CONDITIONS)
    try:
        assert len(remote._ray.nodes()) == 2  # two shards, two actors
        pairs = [(local.reset(seed=7)[0], remote.reset(seed=7)[0])]
        rng = np.random.default_rng(0)
        for _ in range(4):
            a = rng.uniform(-1, 1, (3, 7))
            out_l, out_r = local.step(a), remote.step(a)
            pairs.append((out_l[0], out_r[0]))
            for x, y in zip(out_l[1:4], out_r[1:4]):
                np.testing.assert_array_equal(x, y)
            for k in out_l[4]:
                np.testing.assert_array_equal(out_l[4][k], out_r[4][k])
        mask = np.array([True, False, True])
        pairs.append((local.reset(options={"reset_mask": mask})[0], remote.reset(options={"reset_mask": mask})[0]))
        for ol, orr in pairs:
            np.testing.assert_array_equal(ol["rgb"], orr["rgb"])
            assert ol["instruction"] == orr["instruction"]
            for k in ol["state"]:
                np.testing.assert_array_equal(ol["state"][k], orr["state"][k])
        np.testing.assert_array_equal(local.render_frames(48), remote.render_frames(48))
        assert local.episodes == remote.episodes
    finally:
        local.close()
        remote.close()


def test_auto_workers_on_ray_use_the_clusters_cpus(ray_cluster):
    """--env.workers auto with Ray: one actor per cluster CPU less one for the driver (the fixture's cluster has 2),
    never more than the scenes."""
    from rl4vla.bench.env import resolve_workers

    assert resolve_workers(EnvConfig(num_envs=8, workers="auto", backend="ray")) == 1
    env = TabletopVecEnv(EnvConfig(num_envs=2, workers="auto", image_size=32, max_steps=2, backend="ray"))
    try:
        assert env.workers == 1 and len(env._ray.actors) == 1
    finally:
        env.close()


def test_ray_eval_writes_the_local_results_file(ray_cluster, tmp_path):
    """2 conditions x 4 pinned episodes of the scripted expert in two shards: the same results file either way."""
    cfg = EvalConfig(policy="expert", conditions=tuple(CONDITIONS), episodes=4, seeds=(3,),
                     env=EnvArgs(num_envs=4, workers=2, image_size=32), progress=False)
    docs = {}
    for backend in ("local", "ray"):
        env = dataclasses.replace(cfg.env, backend=backend)
        evaluate(dataclasses.replace(cfg, env=env, out=str(tmp_path / f"{backend}.json")))
        docs[backend] = json.loads((tmp_path / f"{backend}.json").read_text())
        for timing in ("wall_s", "created"):
            docs[backend].pop(timing)
    assert docs["ray"] == docs["local"]
    assert docs["local"]["num_episodes"] == 8 and sum(docs["local"]["outcomes"]["success"]) > 0


def test_backend_names_and_the_missing_extra(monkeypatch, capsys):
    with pytest.raises(ValueError, match="local, ray"):
        check_backend("slurm")
    with pytest.raises(ValueError, match="local, ray"):
        TabletopVecEnv(EnvConfig(num_envs=1, workers=0, backend="slurm"))
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(RuntimeError, match=r"pip install 'rl4vla\[ray\]'"):
        evaluate(EvalConfig(policy="noop", episodes=1, env=EnvArgs(backend="ray")))
    assert main(["train", "ppo", "--init", "x.pt", "--env.backend", "ray"]) == 2  # one line, before any work
    assert "pip install 'rl4vla[ray]'" in capsys.readouterr().err
