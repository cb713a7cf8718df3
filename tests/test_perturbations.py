"""Every perturbation provably reaches the observation or the scene (vs. its unperturbed twin)."""

import dataclasses

import numpy as np
import pytest

from rl4vla.bench import perturb
from rl4vla.bench.conditions import CONDITIONS, sample_episode
from rl4vla.bench.env import EnvConfig, TabletopVecEnv

HOLD = np.array([0, 0, 0, 0, 0, 0, 1.0])


@pytest.fixture(scope="module")
def env():
    e = TabletopVecEnv(EnvConfig(num_envs=2, workers=0, image_size=96))
    yield e
    e.close()


def _pair(env, ep, twin, steps=0):
    obs, _ = env.reset(options={"episodes": [ep, twin]})
    for _ in range(steps):
        obs, *_ = env.step(np.tile(HOLD, (2, 1)))
    return obs


def _labels(env, i):
    """Region labels of scene i: 1 = robot, 2.. = its episode's objects."""
    task = env._local.tasks[i]
    s = task.scene
    _, seg = env._local.renderer.render(s.model, s.data, s.layout.camera, segmentation=True)
    groups = [s.layout.robot_geoms] + [s.layout.obj_all_geoms[o.name] for o in task.episode.objects]
    return perturb.group_labels(seg, groups, s.model.ngeom)


@pytest.mark.parametrize("name", ["dynamic-texture-weak", "dynamic-texture-strong"])
def test_dynamic_texture_changes_only_robot_and_object_pixels(env, name):
    ep = sample_episode(CONDITIONS[name], 0, 0)
    obs = _pair(env, ep, dataclasses.replace(ep, perturbation=None), steps=2)
    diff = (obs["rgb"][0].astype(int) - obs["rgb"][1]).any(-1)
    labels = _labels(env, 0)
    assert diff.sum() > 0.02 * diff.size  # visible
    assert not diff[labels == 0].any()  # the background is untouched
    assert diff[labels == 1].mean() > 0.5 and diff[labels == 2].mean() > 0.3  # robot and object re-coloured


@pytest.mark.parametrize("name", ["dynamic-noise-weak", "dynamic-noise-strong"])
def test_dynamic_noise_covers_the_frame_and_moves(env, name):
    ep = sample_episode(CONDITIONS[name], 0, 0)
    twin = dataclasses.replace(ep, perturbation=None)
    obs0 = _pair(env, ep, twin)
    obs1, *_ = env.step(np.tile(HOLD, (2, 1)))
    d0 = obs0["rgb"][0].astype(int) - obs0["rgb"][1]
    d1 = obs1["rgb"][0].astype(int) - obs1["rgb"][1]
    assert (d0 != 0).any(-1).mean() > 0.9
    assert not np.array_equal(d0, d1)  # the noise window drifts between frames
    strength = np.abs(d0).mean()
    assert strength > (8 if "weak" in name else 12)


def test_noise_strength_grows_with_alpha():
    rgb = np.full((32, 32, 3), 128, np.uint8)
    tex = perturb.texture(3)
    weak = np.abs(perturb.blend_noise(rgb, tex, 0.3, 1, 0).astype(int) - 128).mean()
    strong = np.abs(perturb.blend_noise(rgb, tex, 0.5, 1, 0).astype(int) - 128).mean()
    assert strong > weak > 0


def test_texture_is_fitted_to_the_mask_bounding_box():
    rgb = np.zeros((20, 20, 3), np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[5:10, 8:16] = True
    tex = np.zeros((4, 4, 3), np.uint8)
    tex[:, 2:] = 200  # right half bright
    out = perturb.blend_masked_texture(rgb.copy(), mask, tex, 1.0)
    assert not out[~mask].any()
    assert (out[5:10, 8:12] == 0).all() and (out[5:10, 12:16] == 200).all()  # stretched over the box


def test_unseen_table_changes_the_table(env):
    ep = sample_episode(CONDITIONS["unseen-table"], 0, 0)
    obs = _pair(env, ep, dataclasses.replace(ep, table="light wood"))
    assert (obs["rgb"][0].astype(int) - obs["rgb"][1]).any(-1).mean() > 0.3


def test_unseen_init_pose_moves_the_arm(env):
    ep = sample_episode(CONDITIONS["unseen-init-pose"], 0, 0)
    obs = _pair(env, ep, dataclasses.replace(ep, joint_offsets=(0.0,) * 6))
    s0, s1 = obs["state"]["tcp_pos"]
    assert np.linalg.norm(s0 - s1) > 0.005 or not np.allclose(obs["state"]["tcp_rot"][0], obs["state"]["tcp_rot"][1])
    assert not np.array_equal(obs["rgb"][0], obs["rgb"][1])


def test_mid_episode_reposition_moves_the_object_at_step_5(env):
    ep = sample_episode(CONDITIONS["mid-episode-reposition"], 0, 0)
    obs = _pair(env, ep, dataclasses.replace(ep, reposition=None), steps=4)
    assert np.allclose(obs["state"]["obj_pos"][0], obs["state"]["obj_pos"][1], atol=1e-3)
    for _ in range(3):  # the jump at step 5, then it settles
        obs, *_ = env.step(np.tile(HOLD, (2, 1)))
    moved = obs["state"]["obj_pos"][0] - obs["state"]["obj_pos"][1]
    assert np.hypot(*moved[:2]) > 0.15
    x, y = obs["state"]["obj_pos"][0][:2]
    assert np.hypot(x - ep.reposition["x"], y - ep.reposition["y"]) < 0.03
    assert obs["state"]["obj_lo"][0][2] < 0.0095  # fell from its drop height (>= 1.4 cm) and landed


@pytest.mark.parametrize("name", ["unseen-object", "unseen-receptacle", "multi-object-seen", "multi-object-unseen",
                                  "distractive-receptacle", "multi-receptacle-unseen", "unseen-position"])
def test_scene_conditions_place_their_assets_where_the_episode_says(env, name):
    ep = sample_episode(CONDITIONS[name], 0, 1)
    obs, _ = env.reset(options={"episodes": [ep, ep]})
    s = env._local.tasks[0].scene
    assert sorted(s.active_objects) == sorted(o.name for o in ep.objects)
    assert sorted(s.active_receptacles) == sorted(r.name for r in ep.receptacles)
    for o in ep.objects:
        lo, hi = s.object_aabb(o.name)
        assert np.hypot((lo[0] + hi[0]) / 2 - o.x, (lo[1] + hi[1]) / 2 - o.y) < 0.04
    labels = _labels(env, 0)
    for k in range(len(ep.objects)):
        assert (labels == k + 2).sum() > 5  # every object is visible to the camera
    assert obs["instruction"][0] == ep.instruction


def test_unseen_instruction_reaches_the_observation(env):
    ep = sample_episode(CONDITIONS["unseen-instruction"], 0, 0)
    obs, _ = env.reset(options={"episodes": [ep, ep]})
    assert obs["instruction"][0] == ep.instruction
    assert ep.instruction != f"put {ep.target_object} on {ep.target_receptacle}"
