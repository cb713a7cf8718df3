"""A resumable run of named stages, recorded in DIR/stages.json: the machinery under `rl4vla study`.

Each stage does its work in `run` (resuming where it can) and returns what to record ({env_steps, outputs, ...}).
The record holds, per stage: status, wall_s, env_steps, cpus, outputs, attempts and the stage's inputs, written
atomically before and after each stage. A re-run skips finished stages whose outputs exist (unless a stage they
depend on ran again), resumes an interrupted one, and `check_inputs` refuses a stage whose recorded inputs differ
from the asked ones before any work is done. While a stage runs, a heartbeat file is touched every few seconds,
so a stage killed outright (its record still says "running") is charged the time until its last beat.

Generic: it knows stages, not what they do, and imports only rl4vla.util.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from rl4vla.util import atomic_write_text, changed_settings, usable_cpus

STAGES_FILE = "stages.json"
HEARTBEAT = ".heartbeat"  # touched every HEARTBEAT_S while a stage runs: a stage killed outright ran until then
HEARTBEAT_S = 10.0
FORMAT, VERSION = "rl4vla-study", 1


@dataclass(frozen=True)
class Stage:
    """One step of a run: `run` does the work (resuming where it can) and returns {env_steps, outputs}."""

    name: str
    inputs: dict  # what decides the stage's result; a different value for an existing DIR is refused
    run: Callable[[], dict]
    deps: tuple[str, ...] = ()  # stages whose outputs it reads: when one of them re-runs, so does this one


def read_stages(root: str | os.PathLike) -> dict:
    """DIR/stages.json, or an empty record when the run has not started."""
    path = Path(root) / STAGES_FILE
    if not path.exists():
        return {"format": FORMAT, "version": VERSION, "stages": {}}
    doc = json.loads(path.read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not an rl4vla study record")
    return doc


def write_stages(root: Path, doc: dict) -> None:
    atomic_write_text(root / STAGES_FILE, json.dumps(doc, indent=1))


def check_inputs(stages: list[Stage], doc: dict, out: str, preset: str) -> None:
    """Refuse to run when a recorded stage was run with other inputs (before any work is done); `out` and
    `preset` name the run in the message."""
    for s in stages:
        rec = doc["stages"].get(s.name)
        diff = [] if rec is None else changed_settings({**dict.fromkeys(s.inputs), **rec["inputs"]}, s.inputs)
        if not diff:
            continue
        shown = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in diff)
        raise ValueError(f"{out} holds a study run with other settings (recorded preset {doc.get('preset')!r}, "
                         f"asked preset {preset!r}): stage {s.name!r} differs in {shown}. Re-run with the same "
                         "preset and flags to resume it, or choose another --out")


def _done(root: Path, rec: dict | None) -> bool:
    return rec is not None and rec["status"] == "done" and all((root / p).exists() for p in rec["outputs"])


def _earlier_wall_s(root: Path, rec: dict | None) -> float:
    """Seconds a stage's earlier attempts ran. One killed outright (kill -9: its record still says running) ran
    from its start until the last heartbeat."""
    if rec is None:
        return 0.0
    if rec["status"] != "running":
        return rec["wall_s"]
    beat = root / HEARTBEAT
    alive = beat.stat().st_mtime if beat.exists() else 0.0
    return rec["wall_s"] + max(0.0, alive - datetime.fromisoformat(rec["started"]).timestamp())


@contextmanager
def heartbeat(path: Path, every: float) -> Iterator[None]:
    """Touch `path` now and every `every` seconds inside the block (from a daemon thread)."""
    stop = threading.Event()

    def beat() -> None:
        path.touch()
        while not stop.wait(every):
            path.touch()

    t = threading.Thread(target=beat, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def run_stages(root: Path, stages: list[Stage], doc: dict, heartbeat_s: float = HEARTBEAT_S,
               desc: str = "study") -> dict:
    """Run the stages in order into `doc` (the record read by read_stages), skipping finished ones; returns it."""
    bar = tqdm(total=len(stages), desc=desc, unit="stage")
    ran: set[str] = set()
    with bar:
        for s in stages:
            rec = doc["stages"].get(s.name)
            if _done(root, rec) and not ran.intersection(s.deps):
                bar.update(1)
                continue
            bar.set_postfix_str(s.name)
            prior = _earlier_wall_s(root, rec)  # time of earlier, interrupted or killed attempts
            rec = {"status": "running", "inputs": s.inputs, "wall_s": prior, "env_steps": None, "cpus": usable_cpus(),
                   "outputs": [], "attempts": (rec or {}).get("attempts", 0) + 1,
                   "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            doc["stages"][s.name] = rec
            write_stages(root, doc)
            t0 = time.perf_counter()
            try:
                with heartbeat(root / HEARTBEAT, heartbeat_s):
                    out = s.run()
            except BaseException:
                rec.update(status="interrupted", wall_s=prior + time.perf_counter() - t0)
                write_stages(root, doc)
                raise
            rec.update(out, status="done", wall_s=prior + time.perf_counter() - t0,
                       finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            write_stages(root, doc)
            ran.add(s.name)
            bar.update(1)
    return doc
