"""The shipped prior: export a trained VLA with its provenance, and list the shipped ones.

The files and their loading live in rl4vla.policy.pretrained (no pickle anywhere). This module adds what
needs the layers above the policy: the corpus manifest (data), the zero-shot results (eval).
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import rl4vla
from rl4vla.policy import pretrained as P


@dataclass(frozen=True)
class PretrainedConfig:
    """List the pretrained VLAs shipped with rl4vla (load one with `--init pretrained:NAME` or
    `eval --policy pretrained:NAME`), with their provenance."""

    json: bool = False
    """print the provenance documents as one JSON object (name -> provenance)"""


@dataclass(frozen=True)
class ExportConfig:
    """Write a trained VLA as a pretrained folder: safetensors weights, JSON config/tokenizer, provenance.
    Any folder written so loads with `--init FOLDER`; the shipped ones live in rl4vla/pretrained/NAME."""

    model: str
    """the checkpoint to export (model.pt written by `rl4vla train`)"""
    out: str
    """the folder to write (created); src/rl4vla/pretrained/NAME ships it as pretrained:NAME"""
    corpus: str | None = None
    """the dataset it was pretrained on: its manifest hash, size and conditions are recorded"""
    zero_shot: str | None = None
    """a results JSON of the model (`rl4vla eval --out`): its success and Wilson interval are recorded"""
    commands: str | None = None
    """a text file with the exact commands that made the model, recorded verbatim"""
    notes: str = ""
    """free text recorded in the provenance"""


def corpus_record(root: str) -> dict:
    """A dataset's identity: the hash of the manifest of every episode its collection attempted (the pinned
    episode specs, so equal hashes mean the same scenes, objects and instructions), its size and settings."""
    from rl4vla.bench.conditions import manifest_hash, resolve_conditions, sample_episode
    from rl4vla.data.demos import read_meta

    meta = read_meta(Path(root))
    conds = resolve_conditions(meta["conditions"])
    attempted = [sample_episode(conds[i % len(conds)], meta["seed"], i) for i in range(meta["next_index"])]
    return {"path": str(root), "conditions": meta["conditions"], "seed": meta["seed"], "attempted": len(attempted),
            "episodes": meta["episodes"], "transitions": meta["transitions"], "image_size": meta["image_size"],
            "manifest_hash": manifest_hash(attempted),
            "objects": sorted({p.name for e in attempted for p in e.objects}),
            "receptacles": sorted({p.name for e in attempted for p in e.receptacles}),
            "tables": sorted({e.table for e in attempted})}


def zero_shot_record(path: str) -> dict:
    """Success per condition of a results file, with its Wilson interval and the manifest it was measured on."""
    from rl4vla.eval.results import load_results

    doc = load_results(path)
    return {"results": str(path), "manifest_hash": doc.get("manifest_hash"),
            "conditions": {name: {k: c[k] for k in ("episodes", "successes", "success_rate", "ci95")}
                           for name, c in doc["conditions"].items()}}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def export_pretrained(cfg) -> dict:
    """`rl4vla export`: the checkpoint as a pretrained folder with its provenance (see ExportConfig)."""
    from rl4vla.policy.vla import SmallVLA
    from rl4vla.sim import catalog as C

    model = SmallVLA.load(cfg.model)
    prov = {"model": Path(cfg.out).name, "rl4vla_version": rl4vla.__version__, "git_commit": _git_commit(),
            "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "source_checkpoint": cfg.model,
            "python": platform.python_version(), "notes": cfg.notes,
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    if cfg.commands:
        prov["commands"] = [ln for ln in Path(cfg.commands).read_text().splitlines() if ln.strip()]
    if cfg.corpus:
        prov["corpus"] = corpus_record(cfg.corpus)
    if cfg.zero_shot:
        prov["zero_shot"] = zero_shot_record(cfg.zero_shot)
    # the shipped instruction cache: the benchmark's training instructions (the rest is embedded on first use)
    keep = [C.TRAIN_TEMPLATE.format(object=o.name, receptacle="plate") for o in C.OBJECTS if o.split == "train"]
    model.text(keep)  # embed them now (the text encoder runs offline), so they ship in the cache
    return P.export(model, Path(cfg.out), prov, keep_instructions=keep)


def list_pretrained() -> dict:
    """{name: provenance} of the shipped models."""
    return {name: P.provenance(P.PREFIX + name) for name in P.names()}


def format_pretrained(docs: dict) -> str:
    if not docs:
        return "no pretrained models are shipped with this installation"
    lines = []
    for name, prov in docs.items():
        lines.append(f"pretrained:{name}  (rl4vla {prov.get('rl4vla_version')}, sha256 {prov['sha256'][:16]}...)")
        corpus = prov.get("corpus")
        if corpus:
            lines.append(f"  corpus: {corpus['episodes']:,} demos ({corpus['transitions']:,} frames) of "
                         f"{', '.join(corpus['conditions'])}, manifest {corpus['manifest_hash']}; "
                         f"{len(corpus['objects'])} objects, {len(corpus['receptacles'])} receptacles, "
                         f"{len(corpus['tables'])} tables")
        for cond, c in (prov.get("zero_shot") or {}).get("conditions", {}).items():
            lo, hi = c["ci95"]
            lines.append(f"  zero-shot {cond}: {c['success_rate']:.3f} ({c['successes']}/{c['episodes']}) "
                         f"[{lo:.2f}, {hi:.2f}]")
        for cmd in prov.get("commands", []):
            lines.append(f"  $ {cmd}")
    return "\n".join(lines)
