"""The vectorized environment's contract: shapes, seeding, partial resets, input validation."""

import numpy as np
import pytest

from rl4vla.bench.env import EnvConfig, TabletopVecEnv

HOLD = np.array([0, 0, 0, 0, 0, 0, 1.0])


def test_observation_shapes_and_dtypes(small_env):
    obs, info = small_env.reset(seed=0)
    assert obs["rgb"].shape == (3, 64, 64, 3) and obs["rgb"].dtype == np.uint8
    assert len(obs["instruction"]) == 3 and all(s.startswith("put ") for s in obs["instruction"])
    assert obs["state"]["tcp_pos"].shape == (3, 3)
    assert small_env.observation_space["rgb"].shape == (3, 64, 64, 3)
    obs, rew, term, trunc, info = small_env.step(np.tile(HOLD, (3, 1)))
    assert rew.shape == (3,) and rew.dtype == np.float32
    assert term.dtype == bool and trunc.dtype == bool and term.shape == trunc.shape == (3,)
    assert info["success"].shape == (3,)
    assert obs["rgb"].std() > 5  # a real image, not a blank frame


def test_seeded_reset_reproduces_the_same_image(small_env):
    a, _ = small_env.reset(seed=7)
    eps_a = small_env.episodes
    b, _ = small_env.reset(seed=7)
    assert np.array_equal(a["rgb"], b["rgb"])
    assert eps_a == small_env.episodes
    c, _ = small_env.reset(seed=8)
    assert not np.array_equal(a["rgb"], c["rgb"])


def test_partial_reset_touches_only_its_rows(small_env):
    small_env.reset(seed=1)
    for _ in range(3):
        obs, *_ = small_env.step(np.tile([0.03, 0, 0.02, 0, 0, 0, 1.0], (3, 1)))
    before_eps = small_env.episodes
    after, _ = small_env.reset(options={"reset_mask": np.array([False, True, False])})
    assert np.array_equal(after["rgb"][[0, 2]], obs["rgb"][[0, 2]])
    assert not np.array_equal(after["rgb"][1], obs["rgb"][1])
    assert small_env.episodes[0] == before_eps[0] and small_env.episodes[2] == before_eps[2]
    assert small_env.episodes[1] != before_eps[1]  # the reset row drew its next episode
    assert after["state"]["step"][1] == 0 and after["state"]["step"][0] == 3


@pytest.mark.parametrize(
    "actions, match",
    [
        (np.full((3, 7), np.nan), "NaN"),
        (np.zeros((3, 6)), r"shape \(3, 7\)"),
        (np.zeros((2, 7)), r"shape \(3, 7\)"),
    ],
)
def test_bad_actions_raise_value_error(small_env, actions, match):
    small_env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        small_env.step(actions)


def test_episode_truncates_at_max_steps_and_must_be_reset():
    env = TabletopVecEnv(EnvConfig(num_envs=2, workers=0, image_size=32, max_steps=3))
    try:
        env.reset(seed=0)
        for t in range(3):
            _, _, term, trunc, _ = env.step(np.tile(HOLD, (2, 1)))
            assert trunc.all() == (t == 2) and not term.any()
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.tile(HOLD, (2, 1)))
        env.reset(options={"reset_mask": trunc})
        env.step(np.tile(HOLD, (2, 1)))
    finally:
        env.close()


def test_worker_processes_match_in_process_stepping():
    """Scenes stepped in 2 worker processes give the same observations as in this process."""
    acts = np.random.default_rng(0).uniform(-1, 1, (4, 4, 7)) * [0.02, 0.02, 0.02, 0.1, 0.1, 0.1, 1]
    out = []
    for workers in (0, 2):
        env = TabletopVecEnv(EnvConfig(num_envs=4, workers=workers, image_size=48))
        try:
            obs, _ = env.reset(seed=3)
            for a in acts:
                obs, *_ = env.step(a)
            out.append(obs)
        finally:
            env.close()
    assert np.array_equal(out[0]["rgb"], out[1]["rgb"])
    assert np.allclose(out[0]["state"]["obj_pos"], out[1]["state"]["obj_pos"])


@pytest.mark.parametrize("cores, envs, expected", [(1, 16, 1), (2, 16, 2), (4, 16, 4), (16, 64, 14), (16, 8, 8)])
def test_auto_workers_follow_the_machine(monkeypatch, cores, envs, expected):
    """--env.workers auto: one per usable CPU up to four, else all but two (kept for the policy), never more
    than the scenes."""
    import rl4vla.util as util
    from rl4vla.bench.env import resolve_workers

    monkeypatch.setattr(util, "usable_cpus", lambda: cores)
    assert util.auto_workers(envs) == expected
    assert resolve_workers(EnvConfig(num_envs=envs, workers="auto")) == expected
    assert resolve_workers(EnvConfig(num_envs=envs, workers=3)) == min(3, envs)  # a number is taken as given


def test_auto_workers_step_the_scenes(monkeypatch):
    import rl4vla.util as util

    monkeypatch.setattr(util, "usable_cpus", lambda: 2)
    env = TabletopVecEnv(EnvConfig(num_envs=3, workers="auto", image_size=32))
    try:
        assert env.workers == 2 and len(env._procs) == 2
        obs, _ = env.reset(seed=0)
        assert obs["rgb"].shape == (3, 32, 32, 3)
    finally:
        env.close()


@pytest.mark.parametrize("bad", [-1, "many", 1.5, True])
def test_bad_worker_counts_say_what_is_valid(bad):
    from rl4vla.util import check_workers

    with pytest.raises(ValueError, match="must be 'auto'.*or an integer >= 0"):
        check_workers(bad)
    with pytest.raises(ValueError, match="workers must be 'auto'"):
        TabletopVecEnv(EnvConfig(num_envs=1, workers=bad))


def test_pinned_episodes_replay_exactly(small_env):
    small_env.reset(seed=11)
    eps = small_env.episodes
    a, _ = small_env.reset(seed=99, options={"episodes": eps})
    b, _ = small_env.reset(seed=11)
    assert np.array_equal(a["rgb"], b["rgb"])


def test_bad_config_and_reset_options_raise():
    with pytest.raises(ValueError, match="image_size"):
        TabletopVecEnv(EnvConfig(num_envs=1, workers=0, image_size=4))
    with pytest.raises(ValueError, match="unknown condition"):
        TabletopVecEnv(EnvConfig(num_envs=1, workers=0), conditions=["nope"])


def test_reset_by_unsorted_indices_puts_each_episode_in_its_row():
    env = TabletopVecEnv(EnvConfig(num_envs=4, workers=2, image_size=32))
    try:
        env.reset(seed=0)
        from rl4vla.bench.conditions import CONDITIONS, sample_episode

        a, b = sample_episode(CONDITIONS["in-distribution"], 9, 0), sample_episode(CONDITIONS["in-distribution"], 9, 1)
        obs, _ = env.reset(options={"indices": [3, 0], "episodes": [a, b]})
        assert env.episodes[3] == a and env.episodes[0] == b
        assert obs["instruction"][3] == a.instruction and obs["instruction"][0] == b.instruction
    finally:
        env.close()


def test_controller_holds_the_commanded_orientation_and_applies_yaw(small_env):
    """Rotations add to the commanded orientation: moving with zero rotation keeps the gripper level
    (tracking errors do not accumulate into a tilt), and a yaw command turns it by about that much."""
    from rl4vla.sim.rotations import mat_to_rotvec

    obs, _ = small_env.reset(seed=3)
    rot0 = obs["state"]["tcp_rot"].copy()
    for k in range(12):  # a zig-zag with no rotation commands
        a = np.tile([0.03 * (-1) ** k, 0.02, -0.01 * (k % 3 - 1), 0, 0, 0, 1.0], (3, 1))
        obs, *_ = small_env.step(a)
    for r0, r in zip(rot0, obs["state"]["tcp_rot"]):
        drift = mat_to_rotvec(r @ r0.T)  # world frame: x, y = tilt, z = yaw
        assert np.linalg.norm(drift[:2]) < 0.02 and abs(drift[2]) < 0.05
    obs, *_ = small_env.step(np.tile([0, 0, 0, 0, 0, 0.3, 1.0], (3, 1)))
    obs, *_ = small_env.step(np.tile(HOLD, (3, 1)))
    for r0, r in zip(rot0, obs["state"]["tcp_rot"]):
        turn = mat_to_rotvec(r @ r0.T)
        assert abs(abs(turn[2]) - 0.3) < 0.08 and np.linalg.norm(turn[:2]) < 0.02
