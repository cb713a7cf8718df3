"""MuJoCo scene runtime: one tabletop built from the compiled model (rl4vla.sim.mjcf).

Objects not in an episode are parked (no gravity, no collisions, out of view) and receptacles are mocap
bodies, so an episode only writes state and a few model fields: no recompiles. Each `Scene` owns a private
copy of the model so that per-episode appearance (table material) and parking never leak between scenes.
The end-effector controller turns a 7-D delta-pose action into joint targets by IK.
"""

from __future__ import annotations

import copy

import numpy as np

from rl4vla.sim import assets as A
from rl4vla.sim import catalog as C
from rl4vla.sim.gl import mujoco
from rl4vla.sim.mjcf import (
    CAMERA_LOOKAT,
    CAMERA_POS,
    FINGER_MAX,
    HIDDEN_GROUP,
    PARK_Z,
    PHYSICS_HZ,
    SUBSTEPS,
    WORKSPACE_CENTER,  # noqa: F401  (re-exported for code that imports it from the scene)
    Layout,
    build,
    ik_iterate,
    look_at,
)
from rl4vla.sim.rotations import rpy_to_mat

MAX_DPOS = 0.05  # m per control step accepted from an action
MAX_DROT = 0.5  # rad per control step accepted from an action


class Scene:
    """One simulated tabletop: a private model copy, its data and the EE controller."""

    def __init__(self, base_model: mujoco.MjModel | None = None, layout: Layout | None = None,
                 pretraining_assets: bool = False):
        if base_model is None:
            base_model, layout = build(pretraining_assets)
        self.layout = layout
        self.model = copy.copy(base_model)
        self.data = mujoco.MjData(self.model)
        self._ik_data = mujoco.MjData(self.model)
        self._cmd_rot: np.ndarray | None = None  # the controller's commanded TCP orientation
        self._contype = self.model.geom_contype.copy()
        self._conaff = self.model.geom_conaffinity.copy()
        self._group = self.model.geom_group.copy()
        self.active_objects: list[str] = []
        self.active_receptacles: list[str] = []
        m = self.model  # the look every episode starts from (set_look changes it for jittered data sources)
        self._look0 = (m.cam_pos.copy(), m.cam_quat.copy(), m.light_diffuse.copy(), m.light_dir.copy(),
                       m.vis.headlight.ambient.copy(), m.vis.headlight.diffuse.copy())

    # ----- episode setup -------------------------------------------------------------
    def clear(self) -> None:
        """Park every object and receptacle and put the robot at home."""
        m, d, L = self.model, self.data, self.layout
        mujoco.mj_resetData(m, d)
        for i, (name, b) in enumerate(L.objects.items()):
            self._set_active(L.obj_all_geoms[name], False)
            m.body_gravcomp[b] = 1.0
            m.tree_sleep_policy[m.body_treeid[b]] = mujoco.mjtSleepPolicy.mjSLEEP_ALLOWED
            q = L.obj_qadr[name]
            d.qpos[q : q + 7] = (3 + 0.3 * i, 0, PARK_Z, 1, 0, 0, 0)
        for i, (name, mid) in enumerate(L.receptacles.items()):
            self._set_active(L.rec_all_geoms[name], False)
            d.mocap_pos[mid] = (-3 - 0.3 * i, 0, PARK_Z)
        self.active_objects, self.active_receptacles = [], []
        self.set_robot(np.zeros(6))

    def set_robot(self, joint_offsets: np.ndarray, gripper_open: bool = True) -> None:
        L, d = self.layout, self.data
        self._cmd_rot = None  # the next step commands relative to the pose the robot is put in
        q = np.clip(L.home_qpos + joint_offsets, L.arm_range[:, 0], L.arm_range[:, 1])
        d.qpos[L.arm_qadr] = q
        d.ctrl[:6] = q
        f = FINGER_MAX if gripper_open else 0.0
        d.qpos[L.finger_qadr] = f
        d.ctrl[6:8] = f

    def set_look(self, lighting: dict | None = None, camera: dict | None = None) -> None:
        """Lighting and camera for the next episode; None keeps the benchmark's own.

        lighting: {"key": scale of the key light, "ambient": scale of the headlight, "tilt": [dx, dy] added to
        the key light's direction}. camera: {"pos": [dx, dy, dz], "target": [dx, dy, dz]} in metres, moving
        the camera and the point it looks at.
        """
        m, cam = self.model, self.layout.camera
        cam_pos, cam_quat, diffuse, direction, ambient, head = self._look0
        m.cam_pos[:], m.cam_quat[:], m.light_diffuse[:], m.light_dir[:] = cam_pos, cam_quat, diffuse, direction
        m.vis.headlight.ambient[:], m.vis.headlight.diffuse[:] = ambient, head
        if lighting:
            m.light_diffuse[:] = diffuse * lighting["key"]
            d = direction.copy()
            d[:, :2] += np.asarray(lighting["tilt"], dtype=np.float64)
            m.light_dir[:] = d / np.linalg.norm(d, axis=1, keepdims=True)
            m.vis.headlight.ambient[:] = ambient * lighting["ambient"]
            m.vis.headlight.diffuse[:] = head * lighting["ambient"]
        if camera:
            pos = CAMERA_POS + np.asarray(camera["pos"], dtype=np.float64)
            xy = look_at(pos, CAMERA_LOOKAT + np.asarray(camera["target"], dtype=np.float64)).reshape(2, 3)
            mat = np.stack([xy[0], xy[1], np.cross(xy[0], xy[1])], axis=1)  # columns: camera x, y, z in world
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, mat.ravel())
            m.cam_pos[cam], m.cam_quat[cam] = pos, quat

    @staticmethod
    def _check_held(pool, name: str, held) -> None:
        """ValueError for an unknown asset, or for a robot-pretraining one in a scene built without them."""
        if A.by_name(pool, name).split == "pretrain" and name not in held:
            raise ValueError(f"{name!r} belongs to the robot-pretraining corpus, and this scene was built without "
                             "its assets: use EnvConfig(pretraining_assets=True) (collect does for the "
                             "robot-pretraining sources)")

    def set_table(self, name: str) -> None:
        self._check_held(C.TABLES, name, self.layout.table_mats)
        self.model.geom_matid[self.layout.table_geom] = self.layout.table_mats[name]

    def place_object(self, name: str, x: float, y: float, yaw: float, drop: float = 0.004) -> None:
        L, m, d = self.layout, self.model, self.data
        self._check_held(C.OBJECTS, name, L.objects)
        self._set_active(L.obj_all_geoms[name], True)
        m.body_gravcomp[L.objects[name]] = 0.0
        # objects in play never sleep, so a teleport (reposition) always takes effect
        m.tree_sleep_policy[m.body_treeid[L.objects[name]]] = mujoco.mjtSleepPolicy.mjSLEEP_NEVER
        q, v = L.obj_qadr[name], L.obj_dadr[name]
        d.qpos[q : q + 7] = (x, y, drop, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2))
        d.qvel[v : v + 6] = 0
        if name not in self.active_objects:
            self.active_objects.append(name)

    def place_receptacle(self, name: str, x: float, y: float, yaw: float = 0.0) -> None:
        self._check_held(C.RECEPTACLES, name, self.layout.receptacles)
        self._set_active(self.layout.rec_all_geoms[name], True)
        mid = self.layout.receptacles[name]
        self.data.mocap_pos[mid] = (x, y, 0.0)
        self.data.mocap_quat[mid] = (np.cos(yaw / 2), 0, 0, np.sin(yaw / 2))
        if name not in self.active_receptacles:
            self.active_receptacles.append(name)

    def settle(self, seconds: float = 0.3) -> None:
        """Let placed objects come to rest with the arm holding its pose."""
        mujoco.mj_step(self.model, self.data, nstep=int(seconds * PHYSICS_HZ))

    def _set_active(self, geoms: np.ndarray, on: bool) -> None:
        """Parked geoms neither collide nor render (a hidden group keeps them out of the GL scene)."""
        self.model.geom_contype[geoms] = self._contype[geoms] if on else 0
        self.model.geom_conaffinity[geoms] = self._conaff[geoms] if on else 0
        self.model.geom_group[geoms] = self._group[geoms] if on else HIDDEN_GROUP

    # ----- control ----------------------------------------------------------------------
    def step(self, action: np.ndarray) -> None:
        """Apply one 7-D EE delta-pose action for one control period (SUBSTEPS physics steps)."""
        L, d = self.layout, self.data
        dpos = np.clip(action[:3], -MAX_DPOS, MAX_DPOS)
        drot = np.clip(action[3:6], -MAX_DROT, MAX_DROT)
        pos, rot = self.tcp_pose()
        target_p = pos + dpos
        # rotations add to the orientation commanded so far, not to the measured one: tracking errors then
        # do not accumulate into a drifting tilt that every policy would have to keep correcting
        target_r = rpy_to_mat(drot) @ (rot if self._cmd_rot is None else self._cmd_rot)
        self._cmd_rot = target_r
        q = d.qpos[L.arm_qadr].copy()
        for _ in range(3):
            q = ik_iterate(self.model, self._ik_data, L, q, target_p, target_r)
        d.ctrl[:6] = q
        d.ctrl[6:8] = (np.clip(action[6], -1.0, 1.0) + 1.0) / 2.0 * FINGER_MAX
        mujoco.mj_step(self.model, d, nstep=SUBSTEPS)

    # ----- state queries -------------------------------------------------------------------
    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.layout.tcp_site
        return self.data.site_xpos[s].copy(), self.data.site_xmat[s].reshape(3, 3).copy()

    def gripper_opening(self) -> float:
        """Fraction open in [0, 1]."""
        return float(self.data.qpos[self.layout.finger_qadr].mean() / FINGER_MAX)

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        b = self.layout.objects[name]
        return self.data.xpos[b].copy(), self.data.xquat[b].copy()

    def forward(self) -> None:
        """Update positions after writing state (kinematics only, no time passes)."""
        mujoco.mj_kinematics(self.model, self.data)

    def object_aabb(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World-frame axis-aligned bounds (lo, hi) of the object's collision geoms."""
        return self._aabb(self.layout.obj_geoms[name])

    def receptacle_aabb(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self._aabb(self.layout.rec_geoms[name])

    def _aabb(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tight world bounds (lo, hi) of geoms: exact per primitive type, vertices for meshes."""
        m, d = self.model, self.data
        T = mujoco.mjtGeom
        lo, hi = np.empty((len(g), 3)), np.empty((len(g), 3))
        for k, gid in enumerate(g):
            rot = d.geom_xmat[gid].reshape(3, 3)
            pos, size, typ = d.geom_xpos[gid], m.geom_size[gid], m.geom_type[gid]
            if typ == T.mjGEOM_SPHERE:
                ext = np.full(3, size[0])
            elif typ == T.mjGEOM_CAPSULE:
                ext = np.abs(rot[:, 2]) * size[1] + size[0]
            elif typ == T.mjGEOM_CYLINDER:
                ext = np.abs(rot[:, 2]) * size[1] + size[0] * np.sqrt(np.clip(1 - rot[:, 2] ** 2, 0, 1))
            elif typ == T.mjGEOM_ELLIPSOID:
                ext = np.sqrt(((rot * size[None, :3]) ** 2).sum(1))
            elif typ == T.mjGEOM_MESH:
                mid = m.geom_dataid[gid]
                v = m.mesh_vert[m.mesh_vertadr[mid] : m.mesh_vertadr[mid] + m.mesh_vertnum[mid]]  # (V, 3)
                w = pos + v @ rot.T
                lo[k], hi[k] = w.min(0), w.max(0)
                continue
            else:  # box (and anything else: its local bounding box)
                c = pos + rot @ m.geom_aabb[gid, :3]
                ext = np.abs(rot) @ m.geom_aabb[gid, 3:]
                lo[k], hi[k] = c - ext, c + ext
                continue
            lo[k], hi[k] = pos - ext, pos + ext
        return lo.min(0), hi.max(0)

    def receptacle_pos(self, name: str) -> np.ndarray:
        return self.data.mocap_pos[self.layout.receptacles[name]].copy()

    def _contact_pairs(self) -> np.ndarray:
        return self.data.contact.geom[: self.data.ncon]  # (ncon, 2)

    def touching(self, geoms_a: np.ndarray, geoms_b: np.ndarray) -> bool:
        pairs = self._contact_pairs()
        a0, a1 = np.isin(pairs[:, 0], geoms_a), np.isin(pairs[:, 1], geoms_a)
        b0, b1 = np.isin(pairs[:, 0], geoms_b), np.isin(pairs[:, 1], geoms_b)
        return bool(np.any((a0 & b1) | (a1 & b0)))

    def is_grasped(self, name: str) -> bool:
        """Both fingers touch the object."""
        g = self.layout.obj_geoms[name]
        fl, fr = self.layout.finger_geoms
        return self.touching(g, np.array([fl])) and self.touching(g, np.array([fr]))

    def on_receptacle(self, obj: str, rec: str) -> bool:
        """The object's centre is inside the receptacle footprint, its bottom above the support
        surface (1 cm tolerance), and it touches the receptacle."""
        r = A.by_name(C.RECEPTACLES, rec)
        lo, hi = self.object_aabb(obj)
        mid = self.layout.receptacles[rec]
        c = self.data.mocap_pos[mid]
        q = self.data.mocap_quat[mid]
        yaw = 2 * np.arctan2(q[3], q[0])
        dx, dy = (lo[0] + hi[0]) / 2 - c[0], (lo[1] + hi[1]) / 2 - c[1]
        lx = (np.cos(yaw) * dx + np.sin(yaw) * dy) / r.half_extent[0]
        ly = (-np.sin(yaw) * dx + np.cos(yaw) * dy) / r.half_extent[1]
        inside = (lx * lx + ly * ly <= 1.0) if r.round else (abs(lx) <= 1.0 and abs(ly) <= 1.0)
        above = lo[2] >= c[2] + r.top - 0.01
        return bool(inside and above and self.touching(self.layout.obj_geoms[obj], self.layout.rec_geoms[rec]))
