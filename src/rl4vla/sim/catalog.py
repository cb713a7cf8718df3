"""The asset pools of the benchmark (docs/benchmark.md): objects, receptacles, tables, instructions.

Train and test pools are disjoint. Test objects differ from train objects in name
and appearance; a few share a shape family (cucumber/carrot, lime/orange,
coffee cup/soda can). Objects' body origin is the centre of their footprint on
the table; dimensions are in metres and fit the gripper (jaw gap 8.4 cm).
"""

from __future__ import annotations

import numpy as np

from rl4vla.sim.assets import ObjectAsset, Part, ReceptacleAsset, TableAsset, disc_mesh, prism_mesh

H = np.pi / 2  # quarter turn: capsules/cylinders lie along x with euler (0, H, 0)

MESHES = (
    prism_mesh("carrot_body", 0.11, 0.022, 0.006),
    prism_mesh("cucumber_body", 0.12, 0.018, 0.016, sides=8),
    prism_mesh("eggplant_body", 0.12, 0.027, 0.014, sides=8),
    prism_mesh("corn_body", 0.13, 0.019, 0.014, sides=8),
    prism_mesh("marker_body", 0.13, 0.011, 0.011, sides=8),
    prism_mesh("screwdriver_handle", 0.055, 0.015, 0.013, sides=6),
    disc_mesh("platter_disc", 0.095, 0.065, 0.008),
)

ORANGE = (0.95, 0.45, 0.08, 1.0)
GREEN = (0.15, 0.6, 0.15, 1.0)
DARK_GREEN = (0.1, 0.35, 0.1, 1.0)
YELLOW = (0.95, 0.85, 0.2, 1.0)
RED = (0.8, 0.1, 0.1, 1.0)
SILVER = (0.75, 0.75, 0.78, 1.0)
WHITE = (0.95, 0.95, 0.95, 1.0)
BROWN = (0.4, 0.25, 0.1, 1.0)
BLACK = (0.08, 0.08, 0.08, 1.0)


def _visual(p: Part) -> Part:
    return Part(p.type, p.size, p.pos, p.euler, p.rgba, p.mesh, collide=False)


def ring_walls(radius: float, height: float, rgba, n: int = 12, base: float = 0.0) -> tuple[Part, ...]:
    """A low circular rim made of n wall segments (a bowl's or pan's side)."""
    seg = radius * np.tan(np.pi / n) + 0.002
    return tuple(
        Part("box", (0.004, seg, height / 2),
             pos=(radius * np.cos(a), radius * np.sin(a), base + height / 2), euler=(0, 0, a), rgba=rgba)
        for a in 2 * np.pi * np.arange(n) / n
    )


def rect_walls(hx: float, hy: float, height: float, rgba, base: float = 0.0) -> tuple[Part, ...]:
    """Four low walls around a hx x hy rectangle (a tray's or basket's side)."""
    t, z = 0.004, base + height / 2
    return (
        Part("box", (t, hy, height / 2), pos=(hx, 0, z), rgba=rgba),
        Part("box", (t, hy, height / 2), pos=(-hx, 0, z), rgba=rgba),
        Part("box", (hx + t, t, height / 2), pos=(0, hy, z), rgba=rgba),
        Part("box", (hx + t, t, height / 2), pos=(0, -hy, z), rgba=rgba),
    )


OBJECTS: tuple[ObjectAsset, ...] = (
    # ---------------- train (16) ----------------
    ObjectAsset("carrot", "train", "root", (
        Part("mesh", (), mesh="carrot_body", rgba=ORANGE),
        Part("box", (0.012, 0.01, 0.008), pos=(-0.062, 0, 0.02), rgba=GREEN),
    )),
    ObjectAsset("banana", "train", "curved", (
        Part("capsule", (0.016, 0.03), pos=(0.0, 0.012, 0.016), euler=(0, H, 0), rgba=YELLOW),
        Part("capsule", (0.014, 0.022), pos=(0.045, -0.002, 0.016), euler=(0, H, 0.6), rgba=YELLOW),
        Part("capsule", (0.014, 0.022), pos=(-0.045, -0.002, 0.016), euler=(0, H, -0.6), rgba=YELLOW),
        Part("sphere", (0.007,), pos=(-0.068, -0.02, 0.016), rgba=BROWN),
    )),
    ObjectAsset("soda can", "train", "cylinder", (
        Part("cylinder", (0.027, 0.045), pos=(0, 0, 0.045), rgba=RED),
        _visual(Part("cylinder", (0.024, 0.003), pos=(0, 0, 0.091), rgba=SILVER)),
        _visual(Part("cylinder", (0.0275, 0.01), pos=(0, 0, 0.05), rgba=WHITE)),
    )),
    ObjectAsset("mug", "train", "mug", (
        Part("cylinder", (0.03, 0.035), pos=(0, 0, 0.035), rgba=(0.2, 0.4, 0.85, 1.0)),
        Part("box", (0.006, 0.006, 0.024), pos=(0.0, 0.042, 0.036), rgba=(0.2, 0.4, 0.85, 1.0)),
        Part("box", (0.006, 0.01, 0.004), pos=(0.0, 0.034, 0.058), rgba=(0.2, 0.4, 0.85, 1.0)),
        Part("box", (0.006, 0.01, 0.004), pos=(0.0, 0.034, 0.014), rgba=(0.2, 0.4, 0.85, 1.0)),
    ), long_axis_yaw=H),
    ObjectAsset("sponge", "train", "box", (
        Part("box", (0.045, 0.028, 0.013), pos=(0, 0, 0.013), rgba=YELLOW),
        Part("box", (0.045, 0.028, 0.004), pos=(0, 0, 0.03), rgba=(0.1, 0.55, 0.25, 1.0)),
    )),
    ObjectAsset("eggplant", "train", "root", (
        Part("mesh", (), mesh="eggplant_body", rgba=(0.33, 0.1, 0.42, 1.0)),
        Part("box", (0.01, 0.011, 0.011), pos=(0.066, 0, 0.016), rgba=DARK_GREEN),
    )),
    ObjectAsset("corn", "train", "root", (
        Part("mesh", (), mesh="corn_body", rgba=(0.97, 0.82, 0.25, 1.0)),
        _visual(Part("box", (0.03, 0.003, 0.012), pos=(-0.045, 0.017, 0.017), euler=(0, 0, 0.15), rgba=GREEN)),
        _visual(Part("box", (0.03, 0.003, 0.012), pos=(-0.045, -0.017, 0.017), euler=(0, 0, -0.15), rgba=GREEN)),
    )),
    ObjectAsset("bell pepper", "train", "lobed", (
        Part("cylinder", (0.019, 0.025), pos=(0.011, 0.011, 0.025), rgba=(0.1, 0.62, 0.12, 1.0)),
        Part("cylinder", (0.019, 0.025), pos=(-0.011, 0.011, 0.025), rgba=(0.1, 0.62, 0.12, 1.0)),
        Part("cylinder", (0.019, 0.025), pos=(0.011, -0.011, 0.025), rgba=(0.1, 0.62, 0.12, 1.0)),
        Part("cylinder", (0.019, 0.025), pos=(-0.011, -0.011, 0.025), rgba=(0.1, 0.62, 0.12, 1.0)),
        _visual(Part("cylinder", (0.005, 0.008), pos=(0, 0, 0.056), rgba=DARK_GREEN)),
    )),
    ObjectAsset("apple", "train", "sphere", (
        Part("sphere", (0.032,), pos=(0, 0, 0.032), rgba=(0.78, 0.08, 0.1, 1.0)),
        _visual(Part("cylinder", (0.003, 0.008), pos=(0, 0, 0.068), rgba=BROWN)),
        _visual(Part("box", (0.009, 0.004, 0.001), pos=(0.009, 0, 0.068), euler=(0, -0.4, 0), rgba=GREEN)),
    ), rolls=True),
    ObjectAsset("orange", "train", "sphere", (
        Part("sphere", (0.034,), pos=(0, 0, 0.034), rgba=(1.0, 0.55, 0.0, 1.0)),
        _visual(Part("sphere", (0.005,), pos=(0, 0, 0.067), rgba=DARK_GREEN)),
    ), rolls=True),
    ObjectAsset("toy block", "train", "box", (
        Part("box", (0.022, 0.022, 0.022), pos=(0, 0, 0.022), rgba=(0.85, 0.15, 0.15, 1.0)),
        _visual(Part("box", (0.014, 0.014, 0.001), pos=(0, 0, 0.0445), rgba=YELLOW)),
        _visual(Part("box", (0.001, 0.014, 0.014), pos=(0.0225, 0, 0.022), rgba=(0.2, 0.3, 0.9, 1.0))),
    )),
    ObjectAsset("bottle", "train", "bottle", (
        Part("cylinder", (0.026, 0.04), pos=(0, 0, 0.04), rgba=(0.2, 0.6, 0.35, 1.0)),
        Part("cylinder", (0.012, 0.015), pos=(0, 0, 0.095), rgba=(0.2, 0.6, 0.35, 1.0)),
        Part("cylinder", (0.013, 0.006), pos=(0, 0, 0.115), rgba=WHITE),
        _visual(Part("cylinder", (0.0265, 0.012), pos=(0, 0, 0.045), rgba=WHITE)),
    )),
    ObjectAsset("spoon", "train", "utensil", (
        Part("box", (0.05, 0.008, 0.008), pos=(0.03, 0, 0.008), rgba=SILVER),
        Part("ellipsoid", (0.026, 0.017, 0.009), pos=(-0.042, 0, 0.009), rgba=SILVER),
    )),
    ObjectAsset("marker", "train", "stick", (
        Part("mesh", (), mesh="marker_body", rgba=(0.12, 0.22, 0.75, 1.0)),
        _visual(Part("box", (0.022, 0.0095, 0.0195), pos=(0.05, 0, 0.0097), rgba=WHITE)),
    )),
    ObjectAsset("tennis ball", "train", "sphere", (
        Part("sphere", (0.032,), pos=(0, 0, 0.032), rgba=(0.8, 0.95, 0.2, 1.0)),
        _visual(Part("box", (0.0325, 0.002, 0.012), pos=(0, 0, 0.032), rgba=WHITE)),
    ), rolls=True),
    ObjectAsset("book", "train", "box", (
        Part("box", (0.055, 0.03, 0.012), pos=(0, 0, 0.012), rgba=(0.55, 0.08, 0.12, 1.0)),
        _visual(Part("box", (0.05, 0.0305, 0.01), pos=(0.004, 0, 0.012), rgba=(0.96, 0.94, 0.85, 1.0))),
    )),
    # ---------------- test (9) ----------------
    ObjectAsset("cucumber", "test", "root", (
        Part("mesh", (), mesh="cucumber_body", rgba=(0.1, 0.4, 0.12, 1.0)),
        Part("box", (0.004, 0.006, 0.006), pos=(0.062, 0, 0.017), rgba=(0.5, 0.6, 0.3, 1.0)),
    )),
    ObjectAsset("pear", "test", "pear", (
        Part("sphere", (0.03,), pos=(0, 0, 0.03), rgba=(0.78, 0.82, 0.25, 1.0)),
        Part("sphere", (0.02,), pos=(0, 0, 0.064), rgba=(0.78, 0.82, 0.25, 1.0)),
        _visual(Part("cylinder", (0.003, 0.008), pos=(0, 0, 0.09), rgba=BROWN)),
    ), rolls=True),
    ObjectAsset("juice box", "test", "carton", (
        Part("box", (0.024, 0.018, 0.045), pos=(0, 0, 0.045), rgba=(0.98, 0.6, 0.1, 1.0)),
        _visual(Part("box", (0.0245, 0.0185, 0.015), pos=(0, 0, 0.05), rgba=WHITE)),
        _visual(Part("cylinder", (0.003, 0.015), pos=(0.01, 0, 0.1), rgba=(0.9, 0.2, 0.5, 1.0))),
    )),
    ObjectAsset("remote control", "test", "stick", (
        Part("box", (0.065, 0.021, 0.01), pos=(0, 0, 0.01), rgba=(0.15, 0.15, 0.17, 1.0)),
        _visual(Part("box", (0.006, 0.006, 0.001), pos=(0.045, 0, 0.0205), rgba=(0.9, 0.1, 0.1, 1.0))),
        _visual(Part("box", (0.025, 0.012, 0.001), pos=(-0.01, 0, 0.0205), rgba=(0.6, 0.6, 0.65, 1.0))),
    )),
    ObjectAsset("lime", "test", "sphere", (
        Part("sphere", (0.026,), pos=(0, 0, 0.026), rgba=(0.35, 0.78, 0.15, 1.0)),
    ), rolls=True),
    ObjectAsset("coffee cup", "test", "cylinder", (
        Part("cylinder", (0.03, 0.045), pos=(0, 0, 0.045), rgba=WHITE),
        _visual(Part("cylinder", (0.0305, 0.016), pos=(0, 0, 0.05), rgba=(0.55, 0.35, 0.18, 1.0))),
        Part("cylinder", (0.032, 0.004), pos=(0, 0, 0.093), rgba=(0.25, 0.15, 0.08, 1.0)),
    )),
    ObjectAsset("hammer", "test", "tool", (
        Part("box", (0.06, 0.01, 0.01), pos=(0.015, 0, 0.01), rgba=(0.72, 0.5, 0.28, 1.0)),
        Part("box", (0.012, 0.038, 0.014), pos=(-0.052, 0, 0.014), rgba=(0.45, 0.45, 0.5, 1.0)),
    )),
    ObjectAsset("rubber duck", "test", "duck", (
        Part("ellipsoid", (0.034, 0.027, 0.024), pos=(0, 0, 0.024), rgba=(1.0, 0.88, 0.1, 1.0)),
        Part("sphere", (0.017,), pos=(0.02, 0, 0.056), rgba=(1.0, 0.88, 0.1, 1.0)),
        _visual(Part("box", (0.009, 0.007, 0.003), pos=(0.04, 0, 0.054), rgba=(1.0, 0.45, 0.0, 1.0))),
    ), rolls=True),
    ObjectAsset("screwdriver", "test", "tool", (
        Part("mesh", (), mesh="screwdriver_handle", pos=(-0.03, 0, 0), rgba=(0.85, 0.12, 0.1, 1.0)),
        Part("cylinder", (0.004, 0.04), pos=(0.037, 0, 0.012), euler=(0, H, 0), rgba=SILVER),
    )),
    # ---------------- pretrain (16 here, 32 more from _PRETRAIN_SPECS below) ----------------
    # The robot-pretraining corpus' objects (the small VLA's analogue of OpenVLA's Open X-Embodiment prior):
    # never in a benchmark condition, disjoint in name and appearance from the train and test objects.
    ObjectAsset("lemon", "pretrain", "ellipsoid", (
        Part("ellipsoid", (0.036, 0.026, 0.026), pos=(0, 0, 0.026), rgba=(0.98, 0.92, 0.3, 1.0)),
    ), rolls=True),
    ObjectAsset("peach", "pretrain", "sphere", (
        Part("sphere", (0.03,), pos=(0, 0, 0.03), rgba=(0.98, 0.6, 0.45, 1.0)),
    ), rolls=True),
    ObjectAsset("candle", "pretrain", "cylinder", (
        Part("cylinder", (0.022, 0.04), pos=(0, 0, 0.04), rgba=(0.96, 0.93, 0.85, 1.0)),
        _visual(Part("cylinder", (0.002, 0.006), pos=(0, 0, 0.086), rgba=BLACK)),
    )),
    ObjectAsset("stapler", "pretrain", "box", (
        Part("box", (0.06, 0.018, 0.012), pos=(0, 0, 0.012), rgba=(0.1, 0.1, 0.12, 1.0)),
        Part("box", (0.055, 0.014, 0.007), pos=(0.004, 0, 0.031), rgba=(0.6, 0.62, 0.66, 1.0)),
    )),
    ObjectAsset("glue stick", "pretrain", "stick", (
        Part("cylinder", (0.014, 0.045), pos=(0, 0, 0.014), euler=(0, H, 0), rgba=(0.55, 0.25, 0.7, 1.0)),
        _visual(Part("cylinder", (0.0145, 0.012), pos=(0.034, 0, 0.014), euler=(0, H, 0), rgba=WHITE)),
    ), rolls=True),
    ObjectAsset("chocolate bar", "pretrain", "box", (
        Part("box", (0.055, 0.024, 0.009), pos=(0, 0, 0.009), rgba=(0.35, 0.2, 0.1, 1.0)),
        _visual(Part("box", (0.02, 0.0245, 0.0092), pos=(-0.02, 0, 0.009), rgba=(0.85, 0.1, 0.45, 1.0))),
    )),
    ObjectAsset("salt shaker", "pretrain", "cylinder", (
        Part("cylinder", (0.02, 0.035), pos=(0, 0, 0.035), rgba=(0.9, 0.92, 0.95, 1.0)),
        _visual(Part("cylinder", (0.0205, 0.01), pos=(0, 0, 0.064), rgba=SILVER)),
    )),
    ObjectAsset("potato", "pretrain", "ellipsoid", (
        Part("ellipsoid", (0.042, 0.03, 0.024), pos=(0, 0, 0.024), rgba=(0.72, 0.55, 0.32, 1.0)),
    ), rolls=True),
    ObjectAsset("domino", "pretrain", "box", (
        Part("box", (0.026, 0.014, 0.011), pos=(0, 0, 0.011), rgba=(0.05, 0.05, 0.06, 1.0)),
        _visual(Part("box", (0.001, 0.014, 0.0112), pos=(0, 0, 0.011), rgba=WHITE)),
    )),
    ObjectAsset("paintbrush", "pretrain", "stick", (
        Part("box", (0.05, 0.009, 0.009), pos=(-0.015, 0, 0.009), rgba=(0.2, 0.45, 0.25, 1.0)),
        Part("box", (0.018, 0.012, 0.006), pos=(0.052, 0, 0.008), rgba=(0.85, 0.7, 0.45, 1.0)),
    )),
    ObjectAsset("cupcake", "pretrain", "cylinder", (
        Part("cylinder", (0.028, 0.018), pos=(0, 0, 0.018), rgba=(0.3, 0.55, 0.9, 1.0)),
        Part("cylinder", (0.026, 0.012), pos=(0, 0, 0.048), rgba=(0.98, 0.75, 0.85, 1.0)),
    )),
    ObjectAsset("soap bar", "pretrain", "box", (
        Part("box", (0.042, 0.026, 0.014), pos=(0, 0, 0.014), rgba=(0.6, 0.85, 0.8, 1.0)),
    )),
    ObjectAsset("kiwi", "pretrain", "ellipsoid", (
        Part("ellipsoid", (0.03, 0.025, 0.025), pos=(0, 0, 0.025), rgba=(0.45, 0.33, 0.18, 1.0)),
    ), rolls=True),
    ObjectAsset("toy car", "pretrain", "box", (
        Part("box", (0.048, 0.022, 0.012), pos=(0, 0, 0.016), rgba=(0.1, 0.3, 0.85, 1.0)),
        Part("box", (0.022, 0.019, 0.01), pos=(-0.005, 0, 0.038), rgba=(0.75, 0.85, 0.95, 1.0)),
        _visual(Part("cylinder", (0.008, 0.003), pos=(0.03, 0.023, 0.008), euler=(H, 0, 0), rgba=BLACK)),
        _visual(Part("cylinder", (0.008, 0.003), pos=(-0.03, 0.023, 0.008), euler=(H, 0, 0), rgba=BLACK)),
        _visual(Part("cylinder", (0.008, 0.003), pos=(0.03, -0.023, 0.008), euler=(H, 0, 0), rgba=BLACK)),
        _visual(Part("cylinder", (0.008, 0.003), pos=(-0.03, -0.023, 0.008), euler=(H, 0, 0), rgba=BLACK)),
    )),
    ObjectAsset("sticky notes", "pretrain", "box", (
        Part("box", (0.038, 0.038, 0.012), pos=(0, 0, 0.012), rgba=(0.98, 0.95, 0.4, 1.0)),
    )),
    ObjectAsset("glass jar", "pretrain", "cylinder", (
        Part("cylinder", (0.03, 0.038), pos=(0, 0, 0.038), rgba=(0.7, 0.85, 0.9, 1.0)),
        Part("cylinder", (0.031, 0.006), pos=(0, 0, 0.082), rgba=(0.8, 0.15, 0.1, 1.0)),
    )),
)

# More pretraining objects, one line each: (name, kind, half sizes (m), colour, accent colour or None).
# kind: box (hx, hy, hz) | can, upright cylinder (r, half height) | ball (r,) | egg, ellipsoid (a, b, c)
# | rod, a cylinder lying along x (r, half length). All fit the 8.4 cm jaw gap across y.
_PRETRAIN_SPECS = (
    ("eraser", "box", (0.03, 0.014, 0.008), (0.95, 0.55, 0.6), (0.2, 0.35, 0.8)),
    ("matchbox", "box", (0.028, 0.018, 0.008), (0.85, 0.2, 0.15), (0.95, 0.85, 0.6)),
    ("dice", "box", (0.017, 0.017, 0.017), (0.96, 0.96, 0.94), (0.1, 0.1, 0.1)),
    ("cheese block", "box", (0.035, 0.022, 0.016), (0.98, 0.8, 0.3), None),
    ("butter stick", "box", (0.05, 0.016, 0.014), (0.98, 0.93, 0.6), (0.9, 0.2, 0.2)),
    ("smartphone", "box", (0.055, 0.028, 0.005), (0.12, 0.12, 0.14), (0.3, 0.5, 0.9)),
    ("wallet", "box", (0.045, 0.03, 0.008), (0.35, 0.18, 0.08), None),
    ("tea box", "box", (0.04, 0.025, 0.025), (0.2, 0.55, 0.3), (0.95, 0.9, 0.7)),
    ("cassette", "box", (0.05, 0.03, 0.007), (0.25, 0.25, 0.3), (0.95, 0.6, 0.1)),
    ("harmonica", "box", (0.05, 0.014, 0.01), (0.8, 0.8, 0.85), (0.1, 0.1, 0.4)),
    ("spice jar", "can", (0.02, 0.04), (0.75, 0.3, 0.1), (0.1, 0.1, 0.1)),
    ("battery", "can", (0.016, 0.03), (0.15, 0.15, 0.15), (0.9, 0.7, 0.1)),
    ("lip balm", "can", (0.01, 0.03), (0.9, 0.4, 0.6), (0.95, 0.95, 0.95)),
    ("pill bottle", "can", (0.02, 0.035), (0.95, 0.55, 0.1), (0.98, 0.98, 0.98)),
    ("paint can", "can", (0.034, 0.035), (0.7, 0.72, 0.75), (0.2, 0.4, 0.9)),
    ("thread spool", "can", (0.02, 0.022), (0.85, 0.15, 0.5), (0.85, 0.7, 0.45)),
    ("tin can", "can", (0.028, 0.04), (0.75, 0.75, 0.7), (0.3, 0.7, 0.3)),
    ("cork", "can", (0.014, 0.02), (0.75, 0.58, 0.38), None),
    ("plum", "ball", (0.028,), (0.4, 0.1, 0.35), None),
    ("golf ball", "ball", (0.022,), (0.97, 0.97, 0.97), None),
    ("tomato", "ball", (0.03,), (0.9, 0.15, 0.1), (0.2, 0.5, 0.15)),
    ("onion", "ball", (0.031,), (0.75, 0.55, 0.3), (0.6, 0.45, 0.25)),
    ("gumball", "ball", (0.024,), (0.2, 0.75, 0.85), None),
    ("mango", "egg", (0.042, 0.03, 0.028), (0.98, 0.7, 0.2), (0.6, 0.65, 0.2)),
    ("egg", "egg", (0.03, 0.022, 0.022), (0.96, 0.9, 0.8), None),
    ("avocado", "egg", (0.04, 0.028, 0.026), (0.2, 0.3, 0.12), None),
    ("pencil", "rod", (0.007, 0.06), (0.98, 0.8, 0.1), (0.95, 0.6, 0.6)),
    ("crayon", "rod", (0.008, 0.045), (0.2, 0.3, 0.9), None),
    ("toothbrush", "rod", (0.008, 0.065), (0.3, 0.75, 0.9), (0.98, 0.98, 0.98)),
    ("flashlight", "rod", (0.015, 0.06), (0.1, 0.1, 0.1), (0.85, 0.85, 0.6)),
    ("sausage", "rod", (0.014, 0.05), (0.65, 0.3, 0.2), None),
    ("baguette", "rod", (0.02, 0.065), (0.85, 0.65, 0.35), (0.7, 0.5, 0.25)),
)


def _pretrain_object(name: str, kind: str, size: tuple, rgb: tuple, accent: tuple | None) -> ObjectAsset:
    """One procedural pretraining object from its line in _PRETRAIN_SPECS."""
    rgba, acc = (*rgb, 1.0), (*accent, 1.0) if accent else None
    if kind == "box":
        hx, hy, hz = size
        parts = [Part("box", size, pos=(0, 0, hz), rgba=rgba)]
        if acc:
            parts.append(_visual(Part("box", (hx * 0.5, hy + 0.0005, hz * 0.5), pos=(0, 0, hz), rgba=acc)))
        return ObjectAsset(name, "pretrain", "box", tuple(parts))
    if kind == "can":
        r, h = size
        parts = [Part("cylinder", size, pos=(0, 0, h), rgba=rgba)]
        if acc:
            parts.append(_visual(Part("cylinder", (r * 0.9, 0.003), pos=(0, 0, 2 * h + 0.002), rgba=acc)))
        return ObjectAsset(name, "pretrain", "cylinder", tuple(parts))
    if kind == "ball":
        (r,) = size
        parts = [Part("sphere", size, pos=(0, 0, r), rgba=rgba)]
        if acc:
            parts.append(_visual(Part("sphere", (r * 0.2,), pos=(0, 0, 2 * r), rgba=acc)))
        return ObjectAsset(name, "pretrain", "sphere", tuple(parts), rolls=True)
    if kind == "egg":
        parts = [Part("ellipsoid", size, pos=(0, 0, size[2]), rgba=rgba)]
        if acc:
            parts.append(_visual(Part("sphere", (size[2] * 0.25,), pos=(size[0] * 0.8, 0, size[2] * 1.3), rgba=acc)))
        return ObjectAsset(name, "pretrain", "ellipsoid", tuple(parts), rolls=True)
    if kind == "rod":
        r, half = size
        parts = [Part("cylinder", size, pos=(0, 0, r), euler=(0, H, 0), rgba=rgba)]
        if acc:
            parts.append(_visual(Part("cylinder", (r * 1.02, half * 0.15), pos=(half * 0.8, 0, r), euler=(0, H, 0),
                                      rgba=acc)))
        return ObjectAsset(name, "pretrain", "stick", tuple(parts), rolls=True)
    raise ValueError(f"pretraining object {name!r}: unknown kind {kind!r}; valid: box, can, ball, egg, rod")


OBJECTS = OBJECTS + tuple(_pretrain_object(*spec) for spec in _PRETRAIN_SPECS)


def _disc(r: float, h: float, rgba, z: float = 0.0) -> Part:
    return Part("cylinder", (r, h / 2), pos=(0, 0, z + h / 2), rgba=rgba)


def _slab(hx: float, hy: float, h: float, rgba, z: float = 0.0) -> Part:
    return Part("box", (hx, hy, h / 2), pos=(0, 0, z + h / 2), rgba=rgba)


BOWL_BLUE = (0.3, 0.5, 0.8, 1.0)
PAN_BLACK = (0.12, 0.12, 0.13, 1.0)
WICKER = (0.62, 0.46, 0.25, 1.0)

RECEPTACLES: tuple[ReceptacleAsset, ...] = (
    ReceptacleAsset("plate", "train", (
        _disc(0.065, 0.008, (0.85, 0.85, 0.88, 1.0)),
        _visual(_disc(0.05, 0.009, WHITE)),
    ), half_extent=(0.065, 0.065), round=True, top=0.008),
    # ---------------- test (16) ----------------
    ReceptacleAsset("cutting board", "test", (
        _slab(0.08, 0.06, 0.014, (0.72, 0.52, 0.3, 1.0)),
        _visual(Part("cylinder", (0.008, 0.0075), pos=(0.065, 0, 0.0075), rgba=(0.3, 0.2, 0.1, 1.0))),
    ), half_extent=(0.08, 0.06), round=False, top=0.014),
    ReceptacleAsset("bowl", "test", (
        _disc(0.072, 0.008, BOWL_BLUE), *ring_walls(0.074, 0.022, BOWL_BLUE),
    ), half_extent=(0.07, 0.07), round=True, top=0.008),
    ReceptacleAsset("tray", "test", (
        _slab(0.085, 0.065, 0.008, (0.55, 0.57, 0.6, 1.0)), *rect_walls(0.085, 0.065, 0.02, (0.5, 0.52, 0.55, 1.0)),
    ), half_extent=(0.085, 0.065), round=False, top=0.008),
    ReceptacleAsset("towel", "test", (
        _slab(0.08, 0.06, 0.006, (0.2, 0.45, 0.85, 1.0)),
        _visual(Part("box", (0.012, 0.0605, 0.0032), pos=(0.04, 0, 0.003), rgba=WHITE)),
        _visual(Part("box", (0.012, 0.0605, 0.0032), pos=(-0.04, 0, 0.003), rgba=WHITE)),
    ), half_extent=(0.08, 0.06), round=False, top=0.006),
    ReceptacleAsset("basket", "test", (
        _slab(0.08, 0.062, 0.01, WICKER), *rect_walls(0.08, 0.062, 0.028, (0.55, 0.4, 0.2, 1.0)),
    ), half_extent=(0.08, 0.062), round=False, top=0.01),
    ReceptacleAsset("frying pan", "test", (
        _disc(0.07, 0.01, PAN_BLACK), *ring_walls(0.072, 0.016, PAN_BLACK),
        _visual(Part("box", (0.05, 0.01, 0.005), pos=(0.12, 0, 0.012), rgba=(0.25, 0.15, 0.08, 1.0))),
    ), half_extent=(0.07, 0.07), round=True, top=0.01),
    ReceptacleAsset("coaster", "test", (
        _disc(0.056, 0.008, (0.72, 0.56, 0.36, 1.0)),
    ), half_extent=(0.056, 0.056), round=True, top=0.008),
    ReceptacleAsset("placemat", "test", (
        _slab(0.09, 0.065, 0.004, (0.75, 0.15, 0.15, 1.0)),
        _visual(_slab(0.08, 0.055, 0.0045, (0.9, 0.75, 0.3, 1.0))),
        _visual(_slab(0.075, 0.05, 0.005, (0.75, 0.15, 0.15, 1.0))),
    ), half_extent=(0.09, 0.065), round=False, top=0.004),
    ReceptacleAsset("saucer", "test", (
        _disc(0.062, 0.01, (0.65, 0.8, 0.92, 1.0)),
        _visual(_disc(0.035, 0.0105, (0.85, 0.92, 0.98, 1.0))),
    ), half_extent=(0.062, 0.062), round=True, top=0.01),
    ReceptacleAsset("baking sheet", "test", (
        _slab(0.09, 0.065, 0.006, (0.35, 0.35, 0.38, 1.0)), *rect_walls(0.09, 0.065, 0.014, (0.3, 0.3, 0.33, 1.0)),
    ), half_extent=(0.09, 0.065), round=False, top=0.006),
    ReceptacleAsset("napkin", "test", (
        _slab(0.062, 0.062, 0.003, (0.97, 0.92, 0.55, 1.0)),
        _visual(Part("box", (0.062, 0.004, 0.0016), pos=(0, 0, 0.0015), euler=(0, 0, 0.785), rgba=WHITE)),
    ), half_extent=(0.062, 0.062), round=False, top=0.003),
    ReceptacleAsset("platter", "test", (
        Part("mesh", (), mesh="platter_disc", rgba=(0.96, 0.92, 0.78, 1.0)),
        _visual(Part("cylinder", (0.004, 0.0041), pos=(0.085, 0, 0.004), rgba=(0.8, 0.65, 0.2, 1.0))),
    ), half_extent=(0.095, 0.065), round=True, top=0.008),
    ReceptacleAsset("notebook", "test", (
        _slab(0.075, 0.055, 0.012, (0.1, 0.25, 0.6, 1.0)),
        _visual(Part("box", (0.074, 0.0015, 0.005), pos=(0, -0.055, 0.006), rgba=WHITE)),
        _visual(Part("box", (0.012, 0.04, 0.0005), pos=(0.03, 0, 0.0122), rgba=WHITE)),
    ), half_extent=(0.075, 0.055), round=False, top=0.012),
    ReceptacleAsset("pie dish", "test", (
        _disc(0.07, 0.008, (0.8, 0.45, 0.2, 1.0)), *ring_walls(0.072, 0.018, (0.85, 0.5, 0.25, 1.0)),
    ), half_extent=(0.07, 0.07), round=True, top=0.008),
    ReceptacleAsset("rubber mat", "test", (
        _slab(0.09, 0.065, 0.006, (0.45, 0.2, 0.6, 1.0)),
        *(_visual(Part("box", (0.004, 0.064, 0.0032), pos=(x, 0, 0.003), rgba=(0.35, 0.12, 0.5, 1.0)))
          for x in (-0.06, -0.03, 0.0, 0.03, 0.06)),
    ), half_extent=(0.09, 0.065), round=False, top=0.006),
    ReceptacleAsset("tile", "test", (
        _slab(0.066, 0.066, 0.01, (0.93, 0.93, 0.9, 1.0)),
        _visual(Part("box", (0.03, 0.03, 0.0051), pos=(0, 0, 0.005), euler=(0, 0, 0.785), rgba=(0.15, 0.35, 0.7, 1.0))),
    ), half_extent=(0.066, 0.066), round=False, top=0.01),
    # ---------------- pretrain (8): the robot-pretraining corpus' receptacles, never in a benchmark condition ----
    ReceptacleAsset("clipboard", "pretrain", (
        _slab(0.075, 0.055, 0.008, (0.6, 0.42, 0.22, 1.0)),
        _visual(Part("box", (0.02, 0.012, 0.005), pos=(0.055, 0, 0.009), rgba=SILVER)),
    ), half_extent=(0.075, 0.055), round=False, top=0.008),
    ReceptacleAsset("pizza box", "pretrain", (
        _slab(0.08, 0.08, 0.018, (0.78, 0.65, 0.45, 1.0)),
        _visual(_disc(0.035, 0.0185, (0.85, 0.2, 0.15, 1.0))),
    ), half_extent=(0.08, 0.08), round=False, top=0.018),
    ReceptacleAsset("trivet", "pretrain", (
        _disc(0.06, 0.01, (0.7, 0.55, 0.35, 1.0)),
        _visual(_disc(0.04, 0.0105, (0.55, 0.4, 0.25, 1.0))),
    ), half_extent=(0.06, 0.06), round=True, top=0.01),
    ReceptacleAsset("cake stand", "pretrain", (
        _disc(0.07, 0.016, (0.95, 0.75, 0.8, 1.0)),
    ), half_extent=(0.07, 0.07), round=True, top=0.016),
    ReceptacleAsset("mouse pad", "pretrain", (
        _slab(0.085, 0.065, 0.004, (0.2, 0.22, 0.25, 1.0)),
        _visual(Part("box", (0.015, 0.015, 0.0021), pos=(0.05, 0.035, 0.002), rgba=(0.9, 0.3, 0.1, 1.0))),
    ), half_extent=(0.085, 0.065), round=False, top=0.004),
    ReceptacleAsset("crate lid", "pretrain", (
        _slab(0.085, 0.065, 0.012, (0.82, 0.68, 0.45, 1.0)),
        *(_visual(Part("box", (0.085, 0.003, 0.0061), pos=(0, y, 0.006), rgba=(0.6, 0.45, 0.28, 1.0)))
          for y in (-0.04, 0.0, 0.04)),
    ), half_extent=(0.085, 0.065), round=False, top=0.012),
    ReceptacleAsset("tin lid", "pretrain", (
        _disc(0.062, 0.006, SILVER), *ring_walls(0.064, 0.012, (0.6, 0.6, 0.63, 1.0)),
    ), half_extent=(0.062, 0.062), round=True, top=0.006),
    ReceptacleAsset("felt pad", "pretrain", (
        _slab(0.07, 0.07, 0.005, (0.45, 0.25, 0.55, 1.0)),
    ), half_extent=(0.07, 0.07), round=False, top=0.005),
)

TABLES: tuple[TableAsset, ...] = (
    TableAsset("light wood", "train", "wood", ((0.8, 0.64, 0.44), (0.66, 0.5, 0.32)), seed=1),
    TableAsset("dark wood", "train", "wood", ((0.4, 0.26, 0.15), (0.3, 0.18, 0.1)), seed=2),
    TableAsset("oak", "train", "wood", ((0.72, 0.55, 0.32), (0.58, 0.42, 0.22)), seed=3),
    TableAsset("walnut", "train", "wood", ((0.5, 0.34, 0.22), (0.36, 0.22, 0.14)), seed=4),
    TableAsset("grey marble", "train", "marble", ((0.85, 0.85, 0.85), (0.45, 0.45, 0.48)), seed=5),
    TableAsset("white marble", "train", "marble", ((0.95, 0.95, 0.93), (0.7, 0.7, 0.72)), seed=6),
    TableAsset("granite", "train", "marble", ((0.35, 0.35, 0.36), (0.2, 0.2, 0.22)), seed=7),
    TableAsset("green felt", "train", "fabric", ((0.2, 0.45, 0.25), (0.15, 0.35, 0.2)), seed=8),
    TableAsset("blue fabric", "train", "fabric", ((0.3, 0.4, 0.62), (0.22, 0.3, 0.5)), seed=9),
    TableAsset("red fabric", "train", "fabric", ((0.62, 0.22, 0.2), (0.5, 0.16, 0.15)), seed=10),
    TableAsset("linen", "train", "fabric", ((0.86, 0.82, 0.74), (0.76, 0.72, 0.64)), seed=11),
    TableAsset("beige", "train", "solid", ((0.82, 0.78, 0.68),), seed=12),
    TableAsset("white", "train", "solid", ((0.92, 0.92, 0.92),), seed=13),
    TableAsset("grey", "train", "solid", ((0.55, 0.55, 0.56),), seed=14),
    TableAsset("sand", "train", "solid", ((0.85, 0.74, 0.55),), seed=15),
    TableAsset("light blue", "train", "solid", ((0.7, 0.8, 0.9),), seed=16),
    # ---------------- test (5) ----------------
    TableAsset("blue checker", "test", "checker", ((0.25, 0.35, 0.7), (0.85, 0.85, 0.9)), seed=17),
    TableAsset("zebra stripes", "test", "stripes", ((0.1, 0.1, 0.1), (0.92, 0.92, 0.92)), seed=18),
    TableAsset("terrazzo", "test", "terrazzo",
               ((0.88, 0.86, 0.82), (0.8, 0.3, 0.25), (0.2, 0.45, 0.5), (0.3, 0.3, 0.3)), seed=19),
    TableAsset("bathroom tiles", "test", "tiles", ((0.55, 0.78, 0.75), (0.95, 0.95, 0.95)), seed=20),
    TableAsset("orange checker", "test", "checker", ((0.95, 0.55, 0.15), (0.35, 0.2, 0.1)), seed=21),
    # ---------------- pretrain (12): the training kinds of texture in new colours; no test pattern ----------
    TableAsset("cherry wood", "pretrain", "wood", ((0.6, 0.25, 0.15), (0.45, 0.15, 0.1)), seed=22),
    TableAsset("birch", "pretrain", "wood", ((0.9, 0.82, 0.66), (0.8, 0.7, 0.52)), seed=23),
    TableAsset("black marble", "pretrain", "marble", ((0.15, 0.15, 0.16), (0.5, 0.5, 0.5)), seed=24),
    TableAsset("pink marble", "pretrain", "marble", ((0.92, 0.8, 0.8), (0.7, 0.5, 0.52)), seed=25),
    TableAsset("green marble", "pretrain", "marble", ((0.3, 0.5, 0.4), (0.7, 0.8, 0.72)), seed=26),
    TableAsset("purple fabric", "pretrain", "fabric", ((0.45, 0.3, 0.6), (0.35, 0.22, 0.5)), seed=27),
    TableAsset("yellow fabric", "pretrain", "fabric", ((0.85, 0.75, 0.3), (0.7, 0.6, 0.2)), seed=28),
    TableAsset("denim", "pretrain", "fabric", ((0.2, 0.3, 0.5), (0.35, 0.45, 0.65)), seed=29),
    TableAsset("teal", "pretrain", "solid", ((0.3, 0.6, 0.6),), seed=30),
    TableAsset("olive", "pretrain", "solid", ((0.5, 0.5, 0.25),), seed=31),
    TableAsset("lavender", "pretrain", "solid", ((0.75, 0.7, 0.88),), seed=32),
    TableAsset("charcoal", "pretrain", "solid", ((0.25, 0.25, 0.27),), seed=33),
)

TRAIN_TEMPLATE = "put {object} on {receptacle}"
TEST_TEMPLATES: tuple[str, ...] = (
    "Place the {object} on the {receptacle}",
    "Can you put {object} on {receptacle}?",
    "{object} on the {receptacle}, please.",
    "Move the {object} onto the {receptacle}",
    "pick up the {object} and set it on the {receptacle}",
    "I need the {object} on the {receptacle}",
    "Set the {object} down on the {receptacle}.",
    "Transfer the {object} to the {receptacle}",
    "Would you place the {object} onto the {receptacle}?",
    "Grab the {object} and drop it on the {receptacle}",
    "the {receptacle} needs the {object} on it",
    "Put the {object} onto the {receptacle} now",
    "Lift the {object} and place it on top of the {receptacle}",
    "Please move {object} to {receptacle}",
    "Take the {object}, put it on the {receptacle}",
    "Relocate the {object} onto the {receptacle}",
)

# The robot-pretraining corpus' own phrasings: none is a test paraphrase (a test proves it).
PRETRAIN_TEMPLATES: tuple[str, ...] = (
    "put the {object} on the {receptacle}",
    "{object} to {receptacle}",
    "drop {object} onto {receptacle}",
    "carry the {object} over to the {receptacle}",
    "get the {object} onto the {receptacle}",
    "position the {object} on the {receptacle}",
    "the {object} belongs on the {receptacle}",
    "deliver {object} to {receptacle}",
    "lay the {object} on the {receptacle}",
    "bring the {object} to the {receptacle}",
    "stack the {object} on the {receptacle}",
    "rest the {object} on the {receptacle}",
)

N_PERTURBATION_TEXTURES = 16
