"""Import MuJoCo with an offscreen GL backend, failing with an actionable message.

MuJoCo picks its GL backend from MUJOCO_GL at import time; we default it to EGL
(headless; Mesa llvmpipe on a CPU machine). Every module imports mujoco from here.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

GL_PACKAGES = {
    "egl": "apt-get install -y libegl1 libgl1-mesa-dri",
    "osmesa": "apt-get install -y libosmesa6",
    "glfw": "apt-get install -y libglfw3 libgl1 (and a display)",
}


def gl_help(err: BaseException) -> str:
    backend = os.environ.get("MUJOCO_GL", "egl")
    head = f"MuJoCo could not set up offscreen OpenGL with MUJOCO_GL={backend!r} ({type(err).__name__}: {err})."
    if backend not in GL_PACKAGES:
        return f"{head} MUJOCO_GL must be one of {', '.join(GL_PACKAGES)} (egl is the tested default)."
    return f"{head} Install the system GL library: `{GL_PACKAGES[backend]}` (MUJOCO_GL=egl is the tested default)."


try:
    import mujoco  # noqa: F401
except ModuleNotFoundError as e:
    if e.name == "mujoco":
        raise RuntimeError("the 'mujoco' package is missing: pip install mujoco") from e
    raise RuntimeError(gl_help(e)) from e
except (ImportError, AttributeError, OSError, RuntimeError) as e:
    raise RuntimeError(gl_help(e)) from e

__all__ = ["mujoco", "gl_help"]
