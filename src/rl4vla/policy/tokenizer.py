"""OpenVLA-style action tokenizer: 256 uniform bins per action dimension.

The bins span each dimension's [1st, 99th] percentile over the demonstration data
(docs/recipe.md). Only this module knows bins and token ids.

Round-trip bound: for an action inside [low, high], |decode(encode(a)) - a| <= width / 2
per dimension, with width = (high - low) / n_bins; outside the range the action is
clipped first, so the error is the distance to the range plus at most width / 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl4vla.bench.contract import ACTION_DIM

N_BINS = 256
MIN_WIDTH = 1e-6  # a dimension that never varies still gets a valid (tiny) range


@dataclass(frozen=True)
class ActionTokenizer:
    low: tuple[float, ...]  # (7,) lower edge of bin 0
    high: tuple[float, ...]  # (7,) upper edge of the last bin
    n_bins: int = N_BINS

    def __post_init__(self):
        low, high = np.asarray(self.low, float), np.asarray(self.high, float)
        if low.shape != (ACTION_DIM,) or high.shape != (ACTION_DIM,):
            raise ValueError(f"low and high must have {ACTION_DIM} values, got {low.shape} and {high.shape}")
        if not (np.isfinite(low).all() and np.isfinite(high).all()) or (high < low).any():
            raise ValueError(f"need finite low <= high per dimension, got low={low}, high={high}")
        if self.n_bins < 2:
            raise ValueError(f"n_bins must be >= 2, got {self.n_bins}")

    @staticmethod
    def fit(actions: np.ndarray, n_bins: int = N_BINS, q: tuple[float, float] = (1.0, 99.0)) -> ActionTokenizer:
        """Bins between the q[0]-th and q[1]-th percentile of each dimension of actions (N, 7)."""
        a = np.asarray(actions, float)
        if a.ndim != 2 or a.shape[1] != ACTION_DIM or len(a) == 0:
            raise ValueError(f"actions must have shape (N, {ACTION_DIM}) with N > 0, got {a.shape}")
        return ActionTokenizer.from_range(np.percentile(a, q[0], axis=0), np.percentile(a, q[1], axis=0), n_bins)

    @staticmethod
    def from_range(low, high, n_bins: int = N_BINS) -> ActionTokenizer:
        """Bins between low and high (7,), a range narrower than MIN_WIDTH (e.g. a dimension the demos never
        move, so both percentiles are 0) widened to MIN_WIDTH around its middle."""
        low, high = np.asarray(low, float), np.asarray(high, float)
        mid = (low + high) / 2
        narrow = high - low < MIN_WIDTH
        low = np.where(narrow, mid - MIN_WIDTH / 2, low)
        high = np.where(narrow, mid + MIN_WIDTH / 2, high)
        return ActionTokenizer(tuple(map(float, low)), tuple(map(float, high)), n_bins)

    @property
    def width(self) -> np.ndarray:
        return (np.asarray(self.high) - np.asarray(self.low)) / self.n_bins

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Actions (..., 7) -> tokens (..., 7) int64 in [0, n_bins)."""
        a = np.asarray(actions, float)
        if a.shape[-1] != ACTION_DIM:
            raise ValueError(f"actions must end in {ACTION_DIM} dimensions, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("actions contain NaN or inf")
        t = np.floor((a - np.asarray(self.low)) / self.width)
        return np.clip(t, 0, self.n_bins - 1).astype(np.int64)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens (..., 7) -> actions (..., 7) at the bin centres."""
        t = np.asarray(tokens)
        if t.shape[-1] != ACTION_DIM:
            raise ValueError(f"tokens must end in {ACTION_DIM} dimensions, got shape {t.shape}")
        if (t < 0).any() or (t >= self.n_bins).any():
            raise ValueError(f"tokens must be in [0, {self.n_bins}), got min {t.min()}, max {t.max()}")
        return np.asarray(self.low) + (t + 0.5) * self.width

    def to_dict(self) -> dict:
        return {"low": list(self.low), "high": list(self.high), "n_bins": self.n_bins}

    @staticmethod
    def from_dict(d: dict) -> ActionTokenizer:
        return ActionTokenizer(tuple(d["low"]), tuple(d["high"]), int(d.get("n_bins", N_BINS)))
