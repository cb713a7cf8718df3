"""Success detection and the staged potential-difference reward."""

import numpy as np
import pytest

from rl4vla.bench.conditions import CONDITIONS, sample_episode
from rl4vla.bench.expert import ExpertPolicy
from rl4vla.bench.task import Task
from rl4vla.sim.scene import Scene

OPEN_HOLD = np.array([0, 0, 0, 0, 0, 0, 1.0])


def _obs(task):
    return {"rgb": np.zeros((1, 1, 1, 3)), "state": {k: np.asarray(v)[None] for k, v in task.state().items()}}


@pytest.fixture()
def task():
    return Task(Scene(), max_steps=80)


def _grasp_with_expert(task, max_steps=40):
    expert = ExpertPolicy()
    for _ in range(max_steps):
        out = expert.act(_obs(task))
        task.step(out.actions[0])
        if task.grasped and task.held >= 2:
            return
    raise AssertionError("expert did not grasp the object")


def _episode(seed=0):
    return sample_episode(CONDITIONS["in-distribution"], seed, 0)


def test_teleported_onto_plate_after_grasp_counts(task):
    ep = _episode()
    task.reset(ep)
    _grasp_with_expert(task)
    rec = ep.receptacles[0]
    task.scene.place_object(ep.target_object, rec.x, rec.y, 0.0, drop=0.03)
    for _ in range(4):
        _, _, _, info = task.step(OPEN_HOLD + np.array([0, 0, 0.04, 0, 0, 0, 0]))
    assert info["success"] and info["ever_grasped"]


def test_grasped_but_left_on_table_does_not_count(task):
    ep = _episode()
    task.reset(ep)
    _grasp_with_expert(task)
    task.scene.place_object(ep.target_object, 0.25, 0.2, 0.0)
    for _ in range(4):
        _, _, _, info = task.step(OPEN_HOLD + np.array([0, 0, 0.04, 0, 0, 0, 0]))
    assert info["ever_grasped"] and not info["success"]


def test_pushed_onto_plate_without_grasp_does_not_count(task):
    ep = _episode()
    task.reset(ep)
    rec = ep.receptacles[0]
    task.scene.place_object(ep.target_object, rec.x, rec.y, 0.0, drop=0.03)
    for _ in range(4):
        _, _, _, info = task.step(OPEN_HOLD)
    assert task.scene.on_receptacle(ep.target_object, ep.target_receptacle)  # geometrically on it
    assert not info["ever_grasped"] and not info["success"]


def test_rewards_sum_to_final_potential(task):
    """A full expert episode returns 1.2; grasp-then-drop returns 0.1 or 0.2; no grasp returns 0."""
    expert = ExpertPolicy()
    task.reset(_episode(1))
    total = 0.0
    for _ in range(80):
        r, _, trunc, info = task.step(expert.act(_obs(task)).actions[0])
        total += r
    assert trunc and info["success"]
    assert total == pytest.approx(1.2) == pytest.approx(task.potential)

    task.reset(_episode(2))
    _grasp_with_expert(task)
    rewards = [0.0]
    task.scene.place_object(_episode(2).target_object, 0.25, 0.2, 0.0)  # dropped off the plate
    for _ in range(5):
        rewards.append(task.step(OPEN_HOLD)[0])
    assert not task.success
    assert task.ret == pytest.approx(task.potential) and task.potential in (pytest.approx(0.1), pytest.approx(0.2))


def test_reward_is_potential_difference_each_step(task):
    expert = ExpertPolicy()
    task.reset(_episode(3))
    prev = 0.0
    for _ in range(30):
        r, *_ = task.step(expert.act(_obs(task)).actions[0])
        assert r == pytest.approx(task.potential - prev)
        assert r >= 0  # the expert never loses progress on a clean episode
        prev = task.potential


def test_only_the_named_object_on_the_named_receptacle_succeeds(task):
    """multi-object: the distractor on the plate does not count; distractive receptacle: wrong target fails."""
    ep = sample_episode(CONDITIONS["multi-object-seen"], 0, 0)
    target, distractor = ep.objects
    rec = ep.receptacles[0]
    task.reset(ep)
    _grasp_with_expert(task)
    task.scene.place_object(target.name, 0.25, 0.2, 0.0)  # the grasped target ends on the table
    task.scene.place_object(distractor.name, rec.x, rec.y, 0.0, drop=0.03)  # the distractor on the plate
    for _ in range(4):
        _, _, _, info = task.step(OPEN_HOLD + np.array([0, 0, 0.04, 0, 0, 0, 0]))
    assert task.scene.on_receptacle(distractor.name, rec.name)
    assert info["ever_grasped"] and not info["success"]
    task.scene.place_object(distractor.name, 0.3, -0.2, 0.0)
    task.scene.place_object(target.name, rec.x, rec.y, 0.0, drop=0.03)
    for _ in range(4):
        _, _, _, info = task.step(OPEN_HOLD)
    assert info["success"]

    ep = sample_episode(CONDITIONS["distractive-receptacle"], 0, 0)
    (obj,), (plate, other) = ep.objects, ep.receptacles
    task.reset(ep)
    _grasp_with_expert(task)
    task.scene.place_object(obj.name, other.x, other.y, 0.0, drop=0.04)  # on the distractor receptacle
    for _ in range(4):
        _, _, _, info = task.step(OPEN_HOLD + np.array([0, 0, 0.04, 0, 0, 0, 0]))
    assert task.scene.on_receptacle(obj.name, other.name) and not info["success"]
    task.scene.place_object(obj.name, plate.x, plate.y, 0.0, drop=0.03)
    for _ in range(4):
        _, _, _, info = task.step(OPEN_HOLD)
    assert info["success"]
