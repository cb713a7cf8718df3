"""Per-frame visual perturbations of the dynamic vision conditions (image space).

- texture: the robot's pixels and each object's pixels (from segmentation) are blended
  with a perturbation texture resized to their current bounding box, every frame.
- noise: the whole frame is blended with a crop of a perturbation texture whose
  window drifts every frame.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from rl4vla.sim.assets import perturbation_texture

TEX_SIZE = 256


@cache
def texture(index: int) -> np.ndarray:
    return perturbation_texture(index, TEX_SIZE)


def _mix(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """(1 - alpha) * a + alpha * b for uint8 arrays, in 8-bit fixed point (rounded)."""
    w = int(round(alpha * 256))
    return ((a.astype(np.uint16) * (256 - w) + b.astype(np.uint16) * w + 128) >> 8).astype(np.uint8)


def _resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
    rows = (np.arange(h) * img.shape[0] // h).clip(0, img.shape[0] - 1)
    cols = (np.arange(w) * img.shape[1] // w).clip(0, img.shape[1] - 1)
    return img[rows[:, None], cols[None, :]]


def blend_masked_texture(rgb: np.ndarray, mask: np.ndarray, tex: np.ndarray, alpha: float) -> np.ndarray:
    """Blend `tex`, fitted to the bounding box of `mask`, into the masked pixels of rgb (in place)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return rgb
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    fitted = _resize_nearest(tex, y1 - y0, x1 - x0)  # (h, w, 3)
    m = mask[y0:y1, x0:x1]
    box = rgb[y0:y1, x0:x1]
    box[m] = _mix(box[m], fitted[m], alpha)
    return rgb


def noise_window(seed: int, t: int, h: int, w: int) -> tuple[int, int]:
    """Top-left corner of the texture crop at frame t: a random start drifting at a random velocity."""
    rng = np.random.default_rng(seed)
    oy, ox = rng.integers(0, TEX_SIZE, 2)
    vy, vx = rng.uniform(3, 9, 2) * rng.choice([-1, 1], 2)  # texels per frame
    return int(oy + vy * t) % TEX_SIZE, int(ox + vx * t) % TEX_SIZE


def blend_noise(rgb: np.ndarray, tex: np.ndarray, alpha: float, seed: int, t: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    oy, ox = noise_window(seed, t, h, w)
    rows = (oy + np.arange(h)) % TEX_SIZE
    cols = (ox + np.arange(w)) % TEX_SIZE
    crop = tex[rows[:, None], cols[None, :]]
    return _mix(rgb, crop, alpha)


def group_labels(seg: np.ndarray, groups: list[np.ndarray], ngeom: int) -> np.ndarray:
    """(H, W) labels from a geom-id image: 0 = other, k + 1 = in groups[k]."""
    lut = np.zeros(ngeom + 1, np.int8)  # last slot: background (-1)
    for k, g in enumerate(groups):
        lut[g] = k + 1
    return lut[seg]


def apply(rgb: np.ndarray, spec: dict, t: int, labels: np.ndarray | None = None) -> np.ndarray:
    """Perturb one frame (H, W, 3) uint8 per the episode's perturbation spec at control step t.

    For "texture", `labels` (H, W) marks the regions to texture separately (robot, each object):
    label k >= 1 is region k, 0 is untouched (see `group_labels`).
    """
    tex = texture(int(spec["texture"]))
    alpha = float(spec["alpha"])
    if spec["kind"] == "noise":
        return blend_noise(rgb, tex, alpha, int(spec["seed"]), t)
    if spec["kind"] == "texture":
        if labels is None:
            raise ValueError("the texture perturbation needs region labels from a segmentation image")
        out = rgb.copy()
        for k in range(1, int(labels.max()) + 1):
            blend_masked_texture(out, labels == k, tex, alpha)
        return out
    raise ValueError(f"unknown perturbation kind {spec['kind']!r}; valid: texture, noise")
