"""Media of pinned episodes: captioned frames, one video per episode named by its outcome, a contact sheet.

`record_media` is what `rl4vla render` runs and what the study pipeline calls per policy; its
`media.json` index lets `rl4vla report --media DIR` embed the sheet and link the videos.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rl4vla.bench.conditions import Episode, resolve_conditions, sample_episodes
from rl4vla.bench.env import EnvConfig, TabletopVecEnv
from rl4vla.eval.evaluator import run_episodes, seeded_policy
from rl4vla.eval.results import default_label, policy_info
from rl4vla.eval.video import caption, contact_sheet, outcome_border, save_png, write_video
from rl4vla.protocol import EVAL_TEMPERATURE
from rl4vla.util import atomic_write_text, check_output_dir

MEDIA_INDEX = "media.json"
CONTACT_SHEET = "contact_sheet.png"


@dataclass
class Recording:
    """Captioned frames of one episode and its outcome."""

    episode: Episode
    frames: list[np.ndarray] = field(default_factory=list)
    success: bool = False
    first_success: int | None = None  # control step of the first success, if any


def record_episodes(env: TabletopVecEnv, policy, episodes: list[Episode], temperature: float = EVAL_TEMPERATURE,
                    desc: str = "record") -> list[Recording]:
    """Play `episodes` and keep every frame, captioned with the instruction, condition, step and status."""
    recs = [Recording(ep) for ep in episodes]

    def on_step(start, obs, pout, info):
        phases = (pout.extras or {}).get("phase")
        for j in range(len(obs["rgb"])):
            k = start + j
            if k >= len(recs):
                continue  # padding of the last wave
            r, t = recs[k], int(info["elapsed_steps"][j])
            status = "SUCCESS" if info["success"][j] else ("grasped" if info["ever_grasped"][j] else "")
            phase = phases[j] if phases else ""
            lines = [r.episode.instruction, f"{r.episode.condition}  t={t:02d}  {phase}  {status}"]
            r.frames.append(caption(obs["rgb"][j], lines))
            r.success = bool(info["success"][j])
            if r.success and r.first_success is None:
                r.first_success = t

    run_episodes(env, policy, episodes, temperature=temperature, on_step=on_step, desc=desc)
    return recs


def _sheet_row(rec: Recording, columns: int) -> list[np.ndarray]:
    # the sheet shows the interesting part: up to a little after the first success
    last = len(rec.frames) - 1
    end = last if rec.first_success is None else min(last, rec.first_success + 3)
    return [rec.frames[i] for i in np.linspace(0, end, columns).round().astype(int)]


def _title(sheet: np.ndarray, text: str) -> np.ndarray:
    band = np.full((max(16, sheet.shape[0] // 20), sheet.shape[1], 3), 30, np.uint8)
    return np.concatenate([caption(band, [text]), sheet], 0)


def record_media(policy_spec: str, out_dir: str | os.PathLike, conditions: Sequence[str] = ("in-distribution",),
                 episodes: int = 2, *, seed: int = 0, size: int = 256, workers: int | str = "auto", num_envs: int = 8,
                 sheet_columns: int = 6, temperature: float = EVAL_TEMPERATURE, label: str | None = None,
                 manifest: Sequence[Episode] | None = None, device: str = "auto", backend: str = "local",
                 ray_address: str | None = None) -> dict:
    """Record the first `episodes` pinned episodes of each condition (the same ones `eval` runs for `seed`).

    Writes one MP4 per episode (GIF without ffmpeg) named `NNN_condition_object_{success|failure}`, a
    labelled `contact_sheet.png` and the index `media.json`; returns that index. `manifest`, when given,
    replaces conditions/episodes/seed with explicit episodes. A VLA runs on `device` (auto, cpu or cuda); the env
    workers on `backend` (EnvConfig: local processes, or Ray actors of the cluster at `ray_address`).
    """
    if manifest is not None:
        eps = list(manifest)
    else:
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        eps = [e for c in resolve_conditions(conditions) for e in sample_episodes(c, seed, episodes)]
    if not eps:
        raise ValueError("no episodes to record")
    out = check_output_dir(out_dir)  # before the work: a bad path fails now
    label = label or default_label(policy_spec)
    policy = seeded_policy(policy_spec, seed, device)
    env = TabletopVecEnv(EnvConfig(num_envs=min(num_envs, len(eps)), workers=workers, image_size=size,
                                   backend=backend, ray_address=ray_address))
    try:
        recs = record_episodes(env, policy, eps, temperature=temperature, desc=f"record {label}")
    finally:
        env.close()
    videos, rows, labels = [], [], []
    for k, r in enumerate(recs):
        ep, outcome = r.episode, "success" if r.success else "failure"
        r.frames[-1] = outcome_border(r.frames[-1], r.success)
        path = write_video(out / f"{k:03d}_{ep.condition}_{ep.target_object.replace(' ', '-')}_{outcome}", r.frames)
        videos.append({"file": path.name, "condition": ep.condition, "seed": ep.seed, "index": ep.index,
                       "instruction": ep.instruction, "success": r.success})
        rows.append(_sheet_row(r, sheet_columns))
        labels.append(f"{ep.condition}: {ep.instruction} -> {outcome}")
    sheet = contact_sheet(rows, labels)
    save_png(out / CONTACT_SHEET, _title(sheet, f"{label} ({policy_spec}), seed {seed}"))
    index = {"label": label, "policy": policy_info(policy_spec), "seed": seed, "size": size,
             "temperature": temperature, "contact_sheet": CONTACT_SHEET, "videos": videos}
    atomic_write_text(out / MEDIA_INDEX, json.dumps(index, indent=1))
    print(f"wrote {len(videos)} videos and {out / CONTACT_SHEET}", file=sys.stderr)
    return index


def read_media_index(media_dir: str | os.PathLike) -> dict:
    """The media.json of a record_media directory, or one inferred from the files there (any PNG/MP4/GIF)."""
    d = Path(media_dir)
    if not d.is_dir():
        raise ValueError(f"media directory {d} does not exist")
    if (d / MEDIA_INDEX).is_file():
        try:
            return json.loads((d / MEDIA_INDEX).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{d / MEDIA_INDEX}: not valid JSON ({e})") from e
    sheets = sorted(p.name for p in d.glob("*.png"))
    vids = sorted(p.name for p in d.iterdir() if p.suffix in (".mp4", ".gif"))
    return {"label": d.name, "contact_sheet": sheets[0] if sheets else None,
            "videos": [{"file": v, "success": "success" in v} for v in vids]}
