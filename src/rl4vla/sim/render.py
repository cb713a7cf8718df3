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

    def __init__(self, model: mujoco.MjModel, width: int, height: int, max_geom: int = 2000,
                 background_group: int = 2, seg_scale: int = 2):
        max_w = model.vis.global_.offwidth * 2 // 3  # room for the half-size segmentation viewport
        if not (16 <= width <= max_w and 16 <= height <= model.vis.global_.offheight):
            raise ValueError(
                f"image size {width}x{height} is out of range: width in [16, {max_w}], "
                f"height in [16, {model.vis.global_.offheight}]"
            )
        self.width, self.height = width, height
        self._gl = _make_gl_context(width, height)
        self._ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._ctx)
        self._scn = mujoco.MjvScene(model, max_geom)
        self._opt = mujoco.MjvOption()
        self._seg_opt = mujoco.MjvOption()
        self._seg_opt.geomgroup[background_group] = 0
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, width, height)
        # segmentation masks are rendered at 1/seg_scale resolution when the frame is large enough
        self._seg_scale = seg_scale if min(width, height) >= 96 else 1  # small frames: full-res masks
        self._seg_rect = mujoco.MjrRect(width, 0, -(-width // self._seg_scale), -(-height // self._seg_scale))
        self._rgb = np.empty((height, width, 3), np.uint8)

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: int,
               segmentation: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """RGB (H, W, 3) uint8; with segmentation also (H, W) int32 geom ids (-1 = background)."""
        self._gl.make_current()
        self._cam.fixedcamid = camera
        mujoco.mjv_updateScene(model, data, self._opt, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL, self._scn)
        mujoco.mjr_render(self._rect, self._scn, self._ctx)
        if not segmentation:
            mujoco.mjr_readPixels(self._rgb, None, self._rect, self._ctx)
            return np.flipud(self._rgb).copy()
        # segmentation pass beside the RGB viewport (robot and objects only: background groups
        # need no mask), then one read-back of both: each read-back waits for the rasteriser
        mujoco.mjv_updateScene(model, data, self._seg_opt, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL, self._scn)
        flags = self._scn.flags
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 1
        flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 1
        try:
            mujoco.mjr_render(self._seg_rect, self._scn, self._ctx)
        finally:
            flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 0
            flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 0
        both = np.empty((self.height, self.width + self._seg_rect.width, 3), np.uint8)
        mujoco.mjr_readPixels(both, None, mujoco.MjrRect(0, 0, both.shape[1], both.shape[0]), self._ctx)
        both = np.flipud(both)
        rgb = both[:, : self.width].copy()
        seg = both[self.height - self._seg_rect.height :, self.width :]
        seg = np.flipud(seg).astype(np.int32)
        if self._seg_scale > 1:  # nearest-neighbour upsampling back to the frame size
            seg = seg.repeat(self._seg_scale, 0).repeat(self._seg_scale, 1)[: self.height, : self.width]
        ids = seg[..., 0] + (seg[..., 1] << 8) + (seg[..., 2] << 16) - 1  # scene-geom index, -1 = none
        geom_of = self._scene_geom_ids(model)
        ids = np.where((ids >= 0) & (ids < len(geom_of) - 1), ids, len(geom_of) - 1)
        return rgb, geom_of[ids]

    def _scene_geom_ids(self, model: mujoco.MjModel) -> np.ndarray:
        """Model geom id of each scene geom (and -1 appended for the background).

        mjv_updateScene adds the visible geoms in model order; when the count matches we
        use that (fast), otherwise we read every scene geom (slow, always right).
        """
        groups = np.asarray(self._seg_opt.geomgroup, dtype=bool)
        visible = np.flatnonzero(groups[np.clip(model.geom_group, 0, len(groups) - 1)] & (model.geom_rgba[:, 3] > 0))
        if len(visible) != self._scn.ngeom:
            visible = np.array([g.objid if g.objtype == mujoco.mjtObj.mjOBJ_GEOM else -1
                                for g in self._scn.geoms[: self._scn.ngeom]], dtype=np.int64)
        return np.append(visible, -1).astype(np.int32)

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
