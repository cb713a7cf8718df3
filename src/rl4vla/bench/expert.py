"""Scripted expert: reach -> grasp -> lift -> move -> place -> release, from privileged state.

Stateless and closed-loop: each step the phase is re-derived from the current
state (obs["state"]), so when the object slips or is moved the expert goes back
to reaching for it. It is a policy like any other (`act(obs, temperature)`).
"""

from __future__ import annotations

import numpy as np

from rl4vla.bench.contract import ACTION_DIM, PolicyOutput
from rl4vla.sim.rotations import mat_to_rotvec, mat_to_rpy, rotvec_to_mat, top_down, wrap_pi

PHASES = ("reach", "descend", "grasp", "lift", "move", "place", "release", "retreat")
MAX_STEP = 0.035  # m per control step
MAX_ROT = 0.45  # rad per control step
PREGRASP = 0.07  # m above the grasp point
ALIGN_XY = 0.008
ALIGN_YAW = 0.08
CARRY_CLEARANCE = 0.05
TIP = 0.012  # fingertips reach this far below the TCP


def _gripper_yaw(rot: np.ndarray) -> float:
    return float(np.arctan2(-rot[0, 1], rot[1, 1]))


class ExpertPolicy:
    name = "expert"

    def reset(self) -> None:
        """Stateless: each action depends on the current observation only."""

    def act(self, obs: dict, temperature: float = 1.0) -> PolicyOutput:
        st = obs["state"]
        n = len(st["tcp_pos"])
        actions = np.zeros((n, ACTION_DIM))
        phases = []
        for i in range(n):
            a, ph = self._one({k: v[i] for k, v in st.items()})
            actions[i] = a
            phases.append(ph)
        return PolicyOutput(actions, extras={"phase": phases})

    def _one(self, s: dict) -> tuple[np.ndarray, str]:
        tcp, rot = s["tcp_pos"], s["tcp_rot"]
        c = s["rec_pos"]
        lo, hi = s["obj_lo"], s["obj_hi"]
        o = (lo + hi) / 2  # grasp at the middle of the object's bounds
        height = hi[2] - lo[2]
        grasp_above_bottom = max(0.014, min(height - 0.014, 0.06))  # tall objects: below the top
        cur_yaw = _gripper_yaw(rot)
        yaw = cur_yaw
        grip = 1.0
        # keep the fingertips (TIP below the TCP) clear of a receptacle surface under the jaws
        grasp_z = max(lo[2] + grasp_above_bottom, s["floor_z"] + 0.004 + TIP)
        if s["on_target"] or (s["ever_grasped"] and not s["grasped"] and np.linalg.norm((o - c)[:2]) < 0.03):
            if s["gripper"] < 0.9 and s["grasped"]:
                phase, target, grip = "release", tcp, 1.0
            else:
                phase, target = "retreat", np.array([tcp[0], tcp[1], max(tcp[2], 0.2)])
        elif s["grasped"]:
            grip = -1.0
            hold = tcp[2] - lo[2]  # how far above the object's bottom we hold it
            carry_z = max(0.14, s["rec_top"] + hold + CARRY_CLEARANCE)
            place_z = c[2] + s["rec_top"] + hold + 0.012
            # bring the object's centre (not the TCP) over the receptacle: the grasp may be off-centre
            goal = c[:2] + (tcp - o)[:2]
            d = np.linalg.norm((o - c)[:2])
            if d > 0.012:
                if tcp[2] < carry_z - 0.03 and d > 0.05:
                    phase, target = "lift", np.array([tcp[0], tcp[1], carry_z])
                else:
                    phase, target = "move", np.array([goal[0], goal[1], carry_z])
            elif tcp[2] > place_z + 0.01:
                phase, target = "place", np.array([goal[0], goal[1], place_z])
            else:
                phase, target, grip = "release", tcp, 1.0
        else:
            # fingers are symmetric: any of axis_yaw + k*pi works; take the nearest. A round object takes any
            # yaw: keep the current one (turning to its invisible body yaw would teach unobservable actions)
            if not s.get("obj_yaw_symmetric", 0.0):
                yaw = cur_yaw + (s["obj_axis_yaw"] - cur_yaw + np.pi / 2) % np.pi - np.pi / 2
            exy = np.linalg.norm((tcp - o)[:2])
            yaw_ok = abs(wrap_pi(yaw - cur_yaw)) < ALIGN_YAW
            if exy > ALIGN_XY * 2.5 or not yaw_ok:
                low = tcp[2] < grasp_z + PREGRASP - 0.03
                if low and exy > 0.03:  # rise before travelling so as not to sweep the object
                    phase, target = "reach", np.array([tcp[0], tcp[1], grasp_z + PREGRASP])
                else:
                    phase, target = "reach", np.array([o[0], o[1], grasp_z + PREGRASP])
                grip = 1.0
            elif tcp[2] > grasp_z + 0.01:
                phase, target = "descend", np.array([o[0], o[1], grasp_z])
                grip = 1.0 if s["gripper"] > 0.7 or tcp[2] > grasp_z + 0.03 else grip
            else:
                phase, target, grip = "grasp", np.array([o[0], o[1], grasp_z]), -1.0
        dpos = target - tcp
        norm = np.linalg.norm(dpos)
        if norm > MAX_STEP:
            dpos *= MAX_STEP / norm
        err = mat_to_rotvec(top_down(yaw) @ rot.T)
        ang = np.linalg.norm(err)
        if ang > MAX_ROT:
            err *= MAX_ROT / ang
        drot = mat_to_rpy(rotvec_to_mat(err))
        drot[:2] = 0.0  # only yaw: the controller holds the commanded roll/pitch, so none are needed
        return np.concatenate([dpos, drot, [grip]]), phase
