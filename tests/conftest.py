import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a busy 2-core machine: one intra-op thread is ~8x faster than two (no wake-up spins)."""
    from rl4vla.util import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def small_env():
    """A 3-scene in-process env at 64 px, shared by read-only tests (each test resets it)."""
    from rl4vla.bench.env import EnvConfig, TabletopVecEnv

    env = TabletopVecEnv(EnvConfig(num_envs=3, workers=0, image_size=64))
    yield env
    env.close()


@pytest.fixture(scope="session")
def demos(tmp_path_factory):
    """A tiny demo dataset (6 successes at 32 px in two or more shards), shared by read-only tests."""
    from rl4vla.cli import main

    out = tmp_path_factory.mktemp("demos")
    assert main(["collect", "--out", str(out), "--episodes", "6", "--env.num-envs", "4", "--env.workers", "0",
                 "--env.image-size", "32"]) == 0
    return out


@pytest.fixture(autouse=True)
def _restore_conditions():
    """Tests that register user conditions must not leak them into later tests' 'all'."""
    from rl4vla.bench.conditions import CONDITIONS

    before = dict(CONDITIONS)
    yield
    CONDITIONS.clear()
    CONDITIONS.update(before)
