"""Offscreen rendering of many scenes through one GL context.

All scenes are copies of one compiled model (same meshes and textures), so a
single MjrContext serves them all; only `mjv_updateScene` reads the scene's
own model (for its materials). Segmentation is rendered on request.
"""

from __future__ import annotations

import os

import numpy as np

from rl4vla.sim.gl import gl_help, mujoco  # noqa: E402

def _make_gl_context(width: int, height: int):
    backend = os.environ.get("MUJOCO_GL", "egl")
    try:
        if backend == "egl":
            from mujoco.egl import GLContext
        elif backend == "osmesa":
            from mujoco.osmesa import GLContext
        else:
            from mujoco.glfw import GLContext
        ctx = GLContext(width, height)
        ctx.make_current()
        return ctx
    except Exception as err:  # ImportError, RuntimeError, OSError from ctypes/PyOpenGL
        raise RuntimeError(gl_help(err)) from err


class SceneRenderer:
    """Renders RGB (and optionally segmentation) frames of scenes sharing one base model."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int, max_geom: int = 2000):
        if not (16 <= width <= model.vis.global_.offwidth and 16 <= height <= model.vis.global_.offheight):
            raise ValueError(
                f"image size {width}x{height} is out of range: width in [16, {model.vis.global_.offwidth}], "
                f"height in [16, {model.vis.global_.offheight}]"
            )
        self.width, self.height = width, height
        self._gl = _make_gl_context(width, height)
        self._ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._ctx)
        self._scn = mujoco.MjvScene(model, max_geom)
        self._opt = mujoco.MjvOption()
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._rgb = np.empty((height, width, 3), np.uint8)

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: int,
               segmentation: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """RGB (H, W, 3) uint8; with segmentation also (H, W) int32 geom ids (-1 = background)."""
        self._gl.make_current()
        self._cam.fixedcamid = camera
        mujoco.mjv_updateScene(model, data, self._opt, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL, self._scn)
        mujoco.mjr_render(self._rect, self._scn, self._ctx)
        mujoco.mjr_readPixels(self._rgb, None, self._rect, self._ctx)
        rgb = np.flipud(self._rgb).copy()
        if not segmentation:
            return rgb
        flags = self._scn.flags
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 1
        flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 1
        try:
            mujoco.mjr_render(self._rect, self._scn, self._ctx)
            seg = np.empty((self.height, self.width, 3), np.uint8)
            mujoco.mjr_readPixels(seg, None, self._rect, self._ctx)
        finally:
            flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 0
            flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 0
        seg = np.flipud(seg).astype(np.int32)
        ids = seg[..., 0] + (seg[..., 1] << 8) + (seg[..., 2] << 16) - 1  # scene-geom index, -1 = none
        geom_of = np.full(self._scn.ngeom + 1, -1, np.int32)
        for i in range(self._scn.ngeom):
            g = self._scn.geoms[i]
            if g.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                geom_of[i] = g.objid
        ids = np.where((ids >= 0) & (ids < self._scn.ngeom), ids, self._scn.ngeom)
        return rgb, geom_of[ids]

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.free()
            self._ctx = None
        if self._gl is not None:
            self._gl.free()
            self._gl = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
