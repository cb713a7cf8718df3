"""The scene's MuJoCo model: ViperX-300s arm with a parallel-jaw gripper on a table, and every asset of the pools.

`scene_xml` writes the MJCF, `build` compiles it once per process and returns the model with its `Layout` (the
ids and addresses the runtime needs), the arm's home pose solved by the same IK the controller runs. Objects
are free bodies parked below the floor and receptacles are mocap bodies, so an episode only writes state and
a few model fields (rl4vla.sim.scene): no recompiles. The constants here are the model's: rates, gains,
camera, geom groups.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rl4vla.sim import assets as A  # noqa: E402
from rl4vla.sim import catalog as C  # noqa: E402
from rl4vla.sim.gl import mujoco  # noqa: E402
from rl4vla.sim.meshes import read_stl, simplify  # noqa: E402
from rl4vla.sim.rotations import mat_to_rotvec, top_down  # noqa: E402

CONTROL_HZ = 5
PHYSICS_HZ = 500
SUBSTEPS = PHYSICS_HZ // CONTROL_HZ
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
ARM_KP = (900.0, 2500.0, 2000.0, 300.0, 300.0, 150.0)
FINGER_MAX = 0.042  # finger travel (m): jaw gap 2 * FINGER_MAX when open
HOME_TCP = np.array([0.22, 0.0, 0.20])
WORKSPACE_CENTER = np.array([0.36, 0.0])
PARK_Z = -2.0
ROBOT_MESH_CELL = 0.006  # m: vertex-clustering grid of the low-poly arm
HIDDEN_GROUP = 5  # geom group the renderer does not draw
BACKGROUND_GROUP = 2  # table, floor, receptacles: left out of the segmentation pass
TEX_SIZE = 256
CAMERA_POS = np.array([0.70, -0.30, 0.50])
CAMERA_LOOKAT = np.array([0.27, 0.0, 0.07])
CAMERA_FOVY = 48


def look_at(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MJCF camera xyaxes for a camera at pos looking at target with z up."""
    fwd = (target - pos) / np.linalg.norm(target - pos)
    x = np.cross(fwd, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(x, fwd)
    return np.concatenate([x, y])


def _robot_dir() -> Path:
    spec = importlib.util.find_spec("robosuite_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'robosuite-models' package is missing: pip install robosuite-models")
    # Do not import robosuite_models: its __init__ imports robosuite.
    return Path(spec.submodule_search_locations[0]) / "assets" / "robots" / "vx300s"


def _fmt(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in np.atleast_1d(v))


def _part_xml(p: A.Part, name: str, material: str | None = None, cls: str = "obj", group: int = 0) -> str:
    attrs = [f'name="{name}"', f'group="{group}"', f'type="{p.type}"', f'pos="{_fmt(p.pos)}"', f'euler="{_fmt(p.euler)}"']
    if p.type == "mesh":
        attrs.append(f'mesh="{p.mesh}"')
    else:
        attrs.append(f'size="{_fmt(p.size)}"')
    attrs.append(f'material="{material}"' if material else f'rgba="{_fmt(p.rgba)}"')
    if p.collide:
        attrs.append(f'class="{cls}"')
    else:
        attrs.append('contype="0" conaffinity="0" density="0"')
    return "<geom " + " ".join(attrs) + "/>"


def _robot_xml() -> tuple[str, str, str]:
    """The vx300s defaults, assets and arm body, rewritten for our scene."""
    root = ET.parse(_robot_dir() / "robot.xml").getroot()
    default = root.find("default")
    asset = root.find("asset")
    for mesh in asset.findall("mesh"):  # inline low-poly versions of the stock meshes
        verts, faces = read_stl(_robot_dir() / mesh.get("file"), scale=float(mesh.get("scale").split()[0]))
        verts, faces = simplify(verts, faces, ROBOT_MESH_CELL)
        for k in ("file", "scale"):
            del mesh.attrib[k]
        mesh.set("vertex", _fmt(verts.ravel()))
        mesh.set("face", " ".join(map(str, faces.ravel())))
        mesh.set("inertia", "shell")
    arm = root.find("worldbody/body")
    for body in arm.iter("body"):
        body.set("gravcomp", "1")
        for g in list(body.findall("geom")):
            if g.get("class") == "collision":
                body.remove(g)  # only the gripper collides: the arm is visual
        for child in list(body):
            if child.tag == "body" and child.get("name") == "right_hand":
                body.remove(child)
            if child.tag == "site":
                body.remove(child)
    for cls in _CLASSES:
        default.append(ET.fromstring(cls))
    gl = arm.find(".//body[@name='right/gripper_link']")
    gl.append(ET.fromstring(_GRIPPER_XML))
    return (
        ET.tostring(default, encoding="unicode"),
        "".join(ET.tostring(c, encoding="unicode") for c in asset),
        ET.tostring(arm, encoding="unicode"),
    )


_CLASSES = (
    '<default class="obj"><geom condim="6" friction="1.0 0.02 0.002" density="400" solref="0.01 1"/></default>',
    '<default class="obj_round"><geom condim="6" friction="1.0 0.02 0.005" density="400" solref="0.01 1"/>'
    "</default>",
    '<default class="grip"><geom condim="4" friction="1.5 0.02 0.001" solref="0.01 1" solimp="0.95 0.99 0.001"/>'
    "</default>",
)

# Low-poly parallel-jaw gripper in the gripper_link frame (x = approach axis).
_GRIPPER_XML = f"""
<body name="hand" pos="0 0 0" gravcomp="1">
  <geom name="palm" type="box" size="0.02 0.045 0.016" pos="0.03 0 0" rgba="0.3 0.3 0.32 1" class="grip"/>
  <site name="tcp" pos="0.108 0 0" size="0.005" rgba="1 0 0 0" group="3"/>
  <body name="finger_left" pos="0.085 0 0" gravcomp="1">
    <joint name="finger_left" type="slide" axis="0 1 0" range="0 {FINGER_MAX}" damping="5" armature="0.01"/>
    <geom name="finger_left" type="box" size="0.035 0.006 0.013" pos="0 0.006 0" rgba="0.55 0.55 0.6 1" class="grip"/>
  </body>
  <body name="finger_right" pos="0.085 0 0" gravcomp="1">
    <joint name="finger_right" type="slide" axis="0 -1 0" range="0 {FINGER_MAX}" damping="5" armature="0.01"/>
    <geom name="finger_right" type="box" size="0.035 0.006 0.013" pos="0 -0.006 0" rgba="0.55 0.55 0.6 1" class="grip"/>
  </body>
</body>
"""


@dataclass(frozen=True)
class Layout:
    """Indices into the compiled model, shared by every scene copy."""

    arm_qadr: np.ndarray  # (6,)
    arm_dadr: np.ndarray
    arm_range: np.ndarray  # (6, 2)
    finger_qadr: np.ndarray  # (2,)
    finger_geoms: tuple[int, int]
    grip_geoms: np.ndarray  # palm + fingers
    tcp_site: int
    table_geom: int
    table_mats: dict[str, int]
    objects: dict[str, int]  # name -> body id
    obj_qadr: dict[str, int]
    obj_dadr: dict[str, int]
    obj_geoms: dict[str, np.ndarray]  # colliding geoms
    obj_all_geoms: dict[str, np.ndarray]  # every geom, visual parts included (segmentation)
    robot_geoms: np.ndarray  # every geom of the arm and gripper (segmentation)
    receptacles: dict[str, int]  # name -> mocap id
    rec_geoms: dict[str, np.ndarray]  # colliding geoms
    rec_all_geoms: dict[str, np.ndarray]
    camera: int
    home_qpos: np.ndarray


def scene_assets(pretraining_assets: bool = False) -> tuple[tuple, tuple, tuple]:
    """(objects, receptacles, tables) a scene holds: the benchmark's, plus the robot-pretraining corpus' own when
    asked. Every held object is a body parked off-table when unused, and ~40 more parked bodies cost ~40% of
    the physics time, so benchmark scenes leave the corpus' assets out."""
    def keep(a):
        return pretraining_assets or a.split != "pretrain"

    return (tuple(filter(keep, C.OBJECTS)), tuple(filter(keep, C.RECEPTACLES)), tuple(filter(keep, C.TABLES)))


def scene_xml(pretraining_assets: bool = False) -> str:
    objs, recs_, tabs = scene_assets(pretraining_assets)
    default, robot_assets, arm = _robot_xml()
    meshes = "".join(f'<mesh name="{m.name}" vertex="{_fmt(m.vertices.ravel())}"/>' for m in C.MESHES)
    tables = "".join(
        f'<texture name="tex_{i}" type="2d" builtin="flat" width="{TEX_SIZE}" height="{TEX_SIZE}" rgb1="1 1 1"/>'
        f'<material name="table_{i}" texture="tex_{i}" texrepeat="2 2" specular="0.1" shininess="0.1"/>'
        for i, _ in enumerate(tabs)
    )
    objects = []
    for i, o in enumerate(objs):
        cls = "obj_round" if o.rolls else "obj"
        geoms = "".join(_part_xml(p, f"obj{i}_g{j}", cls=cls) for j, p in enumerate(o.parts))
        objects.append(
            f'<body name="obj_{i}" pos="{3 + 0.3 * i} 0 {PARK_Z}"><freejoint name="obj_{i}"/>{geoms}</body>'
        )
    recs = []
    for i, r in enumerate(recs_):
        geoms = "".join(_part_xml(p, f"rec{i}_g{j}", group=BACKGROUND_GROUP) for j, p in enumerate(r.parts))
        recs.append(f'<body name="rec_{i}" mocap="true" pos="{-3 - 0.3 * i} 0 {PARK_Z}">{geoms}</body>')
    return f"""
<mujoco model="rl4vla_tabletop">
  <compiler angle="radian" autolimits="true" meshdir="{_robot_dir()}"/>
  <option timestep="{1.0 / PHYSICS_HZ}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="960" offheight="480"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.35 0.35 0.35" specular="0 0 0"/>
  </visual>
  {default}
  <asset>{robot_assets}{meshes}{tables}</asset>
  <worldbody>
    <light name="key" pos="0.6 0.3 1.4" dir="-0.3 -0.2 -1" directional="true" castshadow="false" diffuse="0.5 0.5 0.5"/>
    <geom name="table" type="box" size="0.55 0.6 0.02" pos="0.35 0 -0.02" material="table_0" group="{BACKGROUND_GROUP}"/>
    <geom name="floor" type="box" size="3 3 0.01" pos="0 0 -0.76" rgba="0.35 0.33 0.3 1" contype="0" conaffinity="0" group="{BACKGROUND_GROUP}"/>
    <camera name="third_person" pos="{_fmt(CAMERA_POS)}" xyaxes="{_fmt(look_at(CAMERA_POS, CAMERA_LOOKAT))}" fovy="{CAMERA_FOVY}"/>
    {arm}
    {''.join(objects)}
    {''.join(recs)}
  </worldbody>
  <actuator>
    {''.join(f'<position name="{j}" joint="right/{j}" kp="{kp}" dampratio="1" class="{j}"/>' for j, kp in zip(ARM_JOINTS, ARM_KP))}
    <position name="finger_left" joint="finger_left" kp="400" dampratio="1" ctrlrange="0 {FINGER_MAX}" forcerange="-20 20"/>
    <position name="finger_right" joint="finger_right" kp="400" dampratio="1" ctrlrange="0 {FINGER_MAX}" forcerange="-20 20"/>
  </actuator>
  <contact><exclude body1="finger_left" body2="finger_right"/></contact>
</mujoco>
"""


@lru_cache(maxsize=2)
def build(pretraining_assets: bool = False) -> tuple[mujoco.MjModel, Layout]:
    """Compile the scene once per process; returns the base model and its index layout (see scene_assets)."""
    objs, recs_, tabs = scene_assets(pretraining_assets)
    model = mujoco.MjModel.from_xml_string(scene_xml(pretraining_assets))
    for i, t in enumerate(tabs):  # fill the placeholder textures procedurally
        tid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_TEXTURE, f"tex_{i}")
        adr, n = model.tex_adr[tid], TEX_SIZE * TEX_SIZE * model.tex_nchannel[tid]
        img = A.table_texture(t, TEX_SIZE)
        if model.tex_nchannel[tid] == 4:
            img = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], -1)
        model.tex_data[adr : adr + n] = img.ravel()

    def jid(name):
        return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)

    def gid(name):
        return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)

    arm_j = [jid(f"right/{j}") for j in ARM_JOINTS]
    objects, obj_q, obj_d, obj_g, obj_all = {}, {}, {}, {}, {}
    for i, o in enumerate(objs):
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"obj_{i}")
        j = jid(f"obj_{i}")
        objects[o.name], obj_q[o.name], obj_d[o.name] = b, model.jnt_qposadr[j], model.jnt_dofadr[j]
        obj_g[o.name] = np.flatnonzero((model.geom_bodyid == b) & (model.geom_contype > 0))
        obj_all[o.name] = np.flatnonzero(model.geom_bodyid == b)
    arm_root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "base")
    robot_bodies = np.flatnonzero(model.body_rootid == arm_root)
    recs, rec_g, rec_all = {}, {}, {}
    for i, r in enumerate(recs_):
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"rec_{i}")
        recs[r.name] = model.body_mocapid[b]
        rec_g[r.name] = np.flatnonzero((model.geom_bodyid == b) & (model.geom_contype > 0))
        rec_all[r.name] = np.flatnonzero(model.geom_bodyid == b)
    layout = Layout(
        arm_qadr=model.jnt_qposadr[arm_j].copy(),
        arm_dadr=model.jnt_dofadr[arm_j].copy(),
        arm_range=model.jnt_range[arm_j].copy(),
        finger_qadr=model.jnt_qposadr[[jid("finger_left"), jid("finger_right")]].copy(),
        finger_geoms=(gid("finger_left"), gid("finger_right")),
        grip_geoms=np.array([gid("palm"), gid("finger_left"), gid("finger_right")]),
        tcp_site=mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "tcp"),
        table_geom=gid("table"),
        table_mats={t.name: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, f"table_{i}")
                    for i, t in enumerate(tabs)},
        objects=objects, obj_qadr=obj_q, obj_dadr=obj_d, obj_geoms=obj_g, obj_all_geoms=obj_all,
        robot_geoms=np.flatnonzero(np.isin(model.geom_bodyid, robot_bodies)),
        receptacles=recs, rec_geoms=rec_g, rec_all_geoms=rec_all,
        camera=mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "third_person"),
        home_qpos=np.zeros(6),
    )
    # Parked objects sleep (MuJoCo islands): they cost nothing. Objects in play and the arm
    # never sleep (Scene.place_object): actuator commands and teleports do not wake a tree.
    model.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_SLEEP
    model.tree_sleep_policy[model.body_treeid[robot_bodies[0]]] = mujoco.mjtSleepPolicy.mjSLEEP_NEVER
    home = _solve_home(model, layout)
    layout = Layout(**{**layout.__dict__, "home_qpos": home})
    return model, layout


def _solve_home(model: mujoco.MjModel, layout: Layout) -> np.ndarray:
    data = mujoco.MjData(model)
    q = np.array([0.0, -0.3, 0.4, 0.0, 1.2, 0.0])
    for _ in range(200):
        q = ik_iterate(model, data, layout, q, HOME_TCP, top_down(0.0))
    return q


def ik_iterate(model, data, layout: Layout, q: np.ndarray, pos: np.ndarray, rot: np.ndarray,
                damping: float = 0.05) -> np.ndarray:
    """One damped-least-squares step of 6-D pose IK from joint angles q (6,)."""
    data.qpos[layout.arm_qadr] = q
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    cur_p = data.site_xpos[layout.tcp_site]
    cur_r = data.site_xmat[layout.tcp_site].reshape(3, 3)
    err = np.concatenate([pos - cur_p, mat_to_rotvec(rot @ cur_r.T)])  # (6,)
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, jacp, jacr, layout.tcp_site)
    jac = np.vstack([jacp, jacr])[:, layout.arm_dadr]  # (6, 6)
    dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), err)
    return np.clip(q + dq, layout.arm_range[:, 0], layout.arm_range[:, 1])
