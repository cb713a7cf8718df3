"""Pretrained VLAs shipped inside the package, loadable by name: `--init pretrained:small`.

A shipped model is a folder `rl4vla/pretrained/<name>/` with three files, none of them a pickle:
- `model.safetensors`: the weights and the instruction-embedding cache (tensors `text_cache.<i>`);
- `model.json`: the architecture config, the action tokenizer and the cached instructions (in cache order);
- `provenance.json`: how it was made (the exact commands, the corpus manifest hash, the rl4vla version), its
  zero-shot success with a Wilson interval, the sha256 of model.safetensors, and a probe: the outputs of a
  fixed input, which tests/test_pretrained.py checks so that a change of architecture cannot break it unseen.

`rl4vla pretrained` lists them; `rl4vla pretrained export` writes one from a trained checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from rl4vla.util import atomic_write_text, file_sha256

PREFIX = "pretrained:"
SHIPPED = Path(__file__).resolve().parent.parent / "pretrained"
FILES = ("model.safetensors", "model.json", "provenance.json")
FORMAT = "rl4vla-pretrained"


def names() -> list[str]:
    """The shipped models' names."""
    return sorted(p.name for p in SHIPPED.iterdir() if (p / "model.safetensors").is_file()) if SHIPPED.is_dir() else []


def is_pretrained(spec: str) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def folder(spec: str) -> Path:
    """The folder of `pretrained:NAME` (a shipped model) or of an exported model's folder path."""
    if is_pretrained(spec):
        name = spec[len(PREFIX):]
        if name not in names():
            raise ValueError(f"no shipped pretrained model {name!r}; shipped: {', '.join(names()) or 'none'} "
                             "(`rl4vla pretrained` lists them)")
        return SHIPPED / name
    path = Path(spec)
    if not (path / "model.safetensors").is_file():
        raise ValueError(f"{spec} is not a pretrained model folder (it has no model.safetensors)")
    return path


def provenance(spec: str) -> dict:
    return json.loads((folder(spec) / "provenance.json").read_text())


def config(spec: str) -> dict:
    """The architecture config of `pretrained:NAME` or of an exported folder (model.json only: no weights read)."""
    return json.loads((folder(spec) / "model.json").read_text())["config"]


def load(spec: str):
    """The SmallVLA of `pretrained:NAME` or of an exported folder. Reads JSON and safetensors only."""
    from safetensors.torch import load_file

    from rl4vla.policy.vla import SmallVLA

    root = folder(spec)
    doc = json.loads((root / "model.json").read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{root}/model.json is not an rl4vla pretrained model (format {doc.get('format')!r})")
    tensors = load_file(str(root / "model.safetensors"))
    cache = {s: tensors.pop(f"text_cache.{i}").numpy() for i, s in enumerate(doc["instructions"])}
    st = {"format": doc["checkpoint_format"], "config": doc["config"], "tokenizer": doc["tokenizer"],
          "text_cache": cache, "weights": tensors}
    return SmallVLA.from_state(st)


def probe_inputs(image_size: int, instructions: list[str]) -> tuple[dict, torch.Tensor]:
    """A fixed observation batch (2 frames of seeded noise, two cached instructions, fixed robot states) and
    fixed action tokens: the probe's input."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, image_size, image_size, 3), dtype=np.uint8)
    proprio = rng.uniform(-1, 1, (2, 10)).astype(np.float32)
    texts = (instructions * 2)[:2] if instructions else ["put carrot on plate"] * 2
    tokens = torch.as_tensor(rng.integers(0, 256, (2, 7)))
    return {"rgb": rgb, "instruction": texts, "proprio": proprio}, tokens


@torch.no_grad()
def probe(model) -> dict:
    """Outputs of the fixed input: per-token log-probabilities of the fixed tokens, the greedy first token and
    the value. They move only if the weights or the forward pass change."""
    model.eval()
    obs, tokens = probe_inputs(model.cfg.image_size, sorted(model.text.cache))
    tokens = tokens.clamp(max=model.cfg.n_bins - 1)
    logits, h0 = model._forward(model.prefix(obs), tokens[:, :-1])  # (2, 7, bins), (2, d)
    logp = torch.log_softmax(logits.float(), -1).gather(-1, tokens[..., None])[..., 0]
    return {"token_logprobs": np.round(logp.numpy(), 4).tolist(), "greedy_first": logits[:, 0].argmax(-1).tolist(),
            "value": np.round(model.value(h0).float().numpy().ravel(), 4).tolist()}


def export(model, out: Path, provenance_doc: dict, keep_instructions: list[str] | None = None) -> dict:
    """Write a model as a pretrained folder (each file atomically); returns the provenance written.

    keep_instructions: the instruction cache entries to ship (None: all). The text encoder embeds any other
    instruction on first use, so the cache only saves start-up time.
    """
    from safetensors.torch import save_file

    from rl4vla.policy.vla import CHECKPOINT_FORMAT

    out.mkdir(parents=True, exist_ok=True)
    st = model.state()
    cache = st["text_cache"]
    kept = [s for s in cache if keep_instructions is None or s in set(keep_instructions)]
    tensors = {k: v.detach().contiguous().clone() for k, v in st["weights"].items()}
    tensors.update({f"text_cache.{i}": torch.as_tensor(np.asarray(cache[s], np.float32)) for i, s in enumerate(kept)})
    tmp = out / "model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    os.chmod(tmp, 0o644)  # shipped inside the package: readable by every user
    tmp.replace(out / "model.safetensors")
    doc = {"format": FORMAT, "checkpoint_format": CHECKPOINT_FORMAT, "config": st["config"],
           "tokenizer": st["tokenizer"], "instructions": kept}
    atomic_write_text(out / "model.json", json.dumps(doc, indent=1))
    shipped = load(str(out))  # what users will get: the probe is taken from the exported files themselves
    prov = {**provenance_doc, "sha256": file_sha256(out / "model.safetensors"), "probe": probe(shipped)}
    atomic_write_text(out / "provenance.json", json.dumps(prov, indent=1))
    return prov
