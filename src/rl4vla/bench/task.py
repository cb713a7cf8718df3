"""The task "put {object} on {receptacle}" on one scene: reset, reward, success.

Reward is the study's staged reward emitted as potential differences, so an
episode's return equals its final potential:
    potential = 0.1 * [target ever grasped] + 0.1 * [target held >= 5 consecutive steps]
              + 1.0 * [success and grasped]
"""

from __future__ import annotations

import numpy as np

from rl4vla.bench.conditions import Episode
from rl4vla.sim import assets as A
from rl4vla.sim import catalog as C
from rl4vla.sim.scene import Scene

HOLD_STEPS = 5


class Task:
    """Episode logic on top of a Scene. Stateless between episodes except what reset sets."""

    def __init__(self, scene: Scene, max_steps: int = 80, early_termination: bool = False):
        self.scene = scene
        self.max_steps = max_steps
        self.early_termination = early_termination
        self.episode: Episode | None = None

    def reset(self, episode: Episode) -> None:
        s = self.scene
        s.clear()
        s.set_table(episode.table)
        s.set_look(episode.extras.get("lighting"), episode.extras.get("camera"))
        for r in episode.receptacles:
            s.place_receptacle(r.name, r.x, r.y, r.yaw)
        s.forward()
        for o in episode.objects:
            s.place_object(o.name, o.x, o.y, o.yaw, drop=self._drop_height(o.x, o.y))
        s.set_robot(np.asarray(episode.joint_offsets, dtype=np.float64))
        s.settle()
        self.episode = episode
        self.t = 0
        self.ever_grasped = False
        self.held = 0
        self.held5 = False
        self.grasped = False
        self.success = False
        self.potential = 0.0
        self.ret = 0.0
        self.done = False
        self._obj = A.by_name(C.OBJECTS, episode.target_object)
        self._rec = A.by_name(C.RECEPTACLES, episode.target_receptacle)

    def _drop_height(self, x: float, y: float) -> float:
        """Spawn height: just above the table, or above a receptacle the object may overlap."""
        drop = 0.004
        for r in self.scene.active_receptacles:
            lo, hi = self.scene.receptacle_aabb(r)
            if lo[0] - 0.06 < x < hi[0] + 0.06 and lo[1] - 0.06 < y < hi[1] + 0.06:
                drop = max(drop, hi[2] + 0.005)
        return drop

    def step(self, action: np.ndarray) -> tuple[float, bool, bool, dict]:
        if self.episode is None:
            raise RuntimeError("step() before reset()")
        if self.done:
            raise RuntimeError(
                "this episode has ended; reset it first (env.reset(options={'reset_mask': mask}))"
            )
        self.scene.step(action)
        self.t += 1
        ev = self.episode.reposition
        if ev is not None and self.t == ev["step"]:  # the object jumps, then settles under physics
            self.scene.place_object(self.episode.target_object, ev["x"], ev["y"], ev["yaw"],
                                    drop=self._drop_height(ev["x"], ev["y"]) + 0.01)
        obj, rec = self.episode.target_object, self.episode.target_receptacle
        self.grasped = self.scene.is_grasped(obj)
        self.ever_grasped |= self.grasped
        self.held = self.held + 1 if self.grasped else 0
        self.held5 |= self.held >= HOLD_STEPS
        self.success = self.ever_grasped and self.scene.on_receptacle(obj, rec)
        pot = 0.1 * self.ever_grasped + 0.1 * self.held5 + 1.0 * self.success
        reward = pot - self.potential
        self.potential = pot
        self.ret += reward
        terminated = bool(self.early_termination and self.success)
        truncated = self.t >= self.max_steps and not terminated
        self.done = terminated or truncated
        return reward, terminated, truncated, self.info()

    def info(self) -> dict:
        tcp, _ = self.scene.tcp_pose()
        o, _ = self.scene.object_pose(self.episode.target_object)
        r = self.scene.receptacle_pos(self.episode.target_receptacle)
        return {
            "success": self.success,
            "grasped": self.grasped,
            "ever_grasped": self.ever_grasped,
            "held_steps": self.held,
            "dist_tcp_obj": float(np.linalg.norm(tcp - o)),
            "dist_obj_rec": float(np.linalg.norm((o - r)[:2])),
            "return": self.ret,
            "elapsed_steps": self.t,
        }

    def _floor_under(self, center: np.ndarray, reach: float = 0.03) -> float:
        """Highest receptacle support surface within `reach` of a point's xy (0 = the table)."""
        floor = 0.0
        for name in self.scene.active_receptacles:
            lo, hi = self.scene.receptacle_aabb(name)
            if lo[0] - reach < center[0] < hi[0] + reach and lo[1] - reach < center[1] < hi[1] + reach:
                floor = max(floor, self.scene.receptacle_pos(name)[2] + A.by_name(C.RECEPTACLES, name).top)
        return floor

    def state(self) -> dict:
        s = self.scene
        tcp, rot = s.tcp_pose()
        o, q = s.object_pose(self.episode.target_object)
        yaw = 2 * np.arctan2(q[3], q[0])  # objects rest upright: yaw is enough
        lo, hi = s.object_aabb(self.episode.target_object)
        return {
            "tcp_pos": tcp, "tcp_rot": rot, "gripper": s.gripper_opening(), "obj_pos": o, "obj_quat": q,
            "obj_lo": lo, "obj_hi": hi, "obj_axis_yaw": yaw + self._obj.long_axis_yaw,
            "obj_yaw_symmetric": float(self._obj.yaw_symmetric),
            "rec_pos": s.receptacle_pos(self.episode.target_receptacle), "rec_top": self._rec.top,
            "floor_z": self._floor_under((lo + hi) / 2), "grasped": self.grasped, "ever_grasped": self.ever_grasped,
            "on_target": self.success, "step": self.t,
        }
