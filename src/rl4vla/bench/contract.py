"""What the benchmark exchanges with any policy: `act(obs, temperature) -> PolicyOutput`.

Scripted, baseline and learned policies return a PolicyOutput on a batch of observations from the vectorized
env; scripted policies leave the learned fields None. It lives in the benchmark (the lowest package that acts),
so the scripted expert and the learned policies above it share it without importing upward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass
class PolicyOutput:
    actions: np.ndarray  # (N, 7) float
    tokens: Any = None  # (N, 7) action token ids, learned policies only
    logprob: Any = None  # (N,) log-prob of the tokens summed over the 7 dimensions, under the distribution they
    # were drawn from: softmax(logits / T) at temperature T > 0, softmax(logits) when greedy (T = 0)
    value: Any = None  # (N,) critic value
    extras: dict | None = None  # e.g. the expert's phase names


class Policy(Protocol):
    def act(self, obs: dict, temperature: float = 1.0) -> PolicyOutput: ...
