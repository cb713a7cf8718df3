"""Frames a person can look at: captions, MP4/GIF episodes and PNG contact sheets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def caption(frame: np.ndarray, lines: list[str], color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Write lines of text on a dark band at the top of an RGB frame."""
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    size = max(9, frame.shape[0] // 22)
    font = _font(size)
    band = (size + 3) * len(lines) + 4
    draw.rectangle([0, 0, frame.shape[1], band], fill=(0, 0, 0))
    for i, text in enumerate(lines):
        draw.text((4, 2 + i * (size + 3)), text, fill=color, font=font)
    return np.asarray(img)


def outcome_border(frame: np.ndarray, success: bool, width: int = 4) -> np.ndarray:
    """Green border for a success, red for a failure."""
    out = frame.copy()
    c = np.array([40, 200, 60] if success else [220, 40, 40], np.uint8)
    out[:width], out[-width:], out[:, :width], out[:, -width:] = c, c, c, c
    return out


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: int = 5) -> Path:
    """MP4 via imageio-ffmpeg; falls back to GIF when no ffmpeg is available. Returns the path written."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with imageio.get_writer(path.with_suffix(".mp4"), fps=fps, codec="libx264", quality=8,
                                macro_block_size=1) as w:
            for f in frames:
                w.append_data(f)
        return path.with_suffix(".mp4")
    except Exception:
        gif = path.with_suffix(".gif")
        imageio.mimsave(gif, frames, duration=1.0 / fps, loop=0)
        return gif


def contact_sheet(rows: list[list[np.ndarray]], labels: list[str] | None = None, pad: int = 2) -> np.ndarray:
    """Tile rows of equally sized frames into one image; optional label per row (left band)."""
    h, w = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    label_w = 0
    if labels:
        label_w = w
    sheet = np.full((len(rows) * (h + pad) + pad, label_w + ncol * (w + pad) + pad, 3), 30, np.uint8)
    for i, r in enumerate(rows):
        y = pad + i * (h + pad)
        if labels:
            tile = np.full((h, w, 3), 30, np.uint8)
            img = Image.fromarray(tile)
            draw = ImageDraw.Draw(img)
            font = _font(max(9, h // 12))
            words, line, lines = labels[i].split(), "", []
            for word in words:  # greedy wrap
                if len(line) + len(word) + 1 > 22:
                    lines.append(line)
                    line = word
                else:
                    line = f"{line} {word}".strip()
            lines.append(line)
            for k, t in enumerate(lines):
                draw.text((4, 4 + k * (h // 10)), t, fill=(235, 235, 235), font=font)
            sheet[y : y + h, pad : pad + w] = np.asarray(img)
        for j, f in enumerate(r):
            x = label_w + pad + j * (w + pad)
            sheet[y : y + h, x : x + w] = f
    return sheet


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    import io

    from rl4vla.util import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
