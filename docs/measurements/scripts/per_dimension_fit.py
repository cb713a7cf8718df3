"""How well a trained VLA fits a demo dataset, per action dimension, on the steps a frame stride trains on
and on the steps between them.

    python docs/measurements/scripts/per_dimension_fit.py MODEL.pt DATASET [--stride 4] [--demos 60]

For `--demos` random demos it scores every step with step % stride == 0 ("trained": what a stride that starts
at step 0 trains on) and every step with step % stride == stride // 2 ("between"), and prints, per action
dimension (x, y, z, roll, pitch, yaw, gripper), the cross-entropy of the expert's token, the argmax accuracy, and
the median and 90th-percentile distance in bins between the argmax and the expert's token.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from rl4vla.data.demos import DemoDataset
from rl4vla.policy.vla import SmallVLA


def fit(model: SmallVLA, data: DemoDataset, rows: np.ndarray, batch: int = 128) -> dict[str, np.ndarray]:
    tokens = torch.as_tensor(model.tokenizer.encode(data.actions[rows]))
    ce, acc, err = [], [], []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            idx, t = rows[i : i + batch], tokens[i : i + batch]
            obs = {"rgb": data.rgb[idx], "instruction": [data.instructions[j] for j in idx],
                   "proprio": data.proprio[idx]}
            logits = model.logits(obs, t, model.prefix(obs))  # (B, 7, bins)
            ce.append(F.cross_entropy(logits.flatten(0, 1), t.flatten(), reduction="none").view(t.shape))
            pred = logits.argmax(-1)
            acc.append((pred == t).float())
            err.append((pred - t).abs().float())
    e = torch.cat(err)
    return {"cross-entropy": torch.cat(ce).mean(0).numpy(), "accuracy": torch.cat(acc).mean(0).numpy(),
            "median bins off": e.median(0).values.numpy(), "p90 bins off": e.quantile(0.9, 0).numpy()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--demos", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.stride < 2:
        raise SystemExit(f"--stride must be >= 2 (there are no steps between), got {a.stride}")
    torch.set_num_threads(1)
    model, data = SmallVLA.load(a.model).eval(), DemoDataset(a.data)
    starts = np.cumsum([0] + [len(e.actions) for e in data.episodes])
    demos = np.random.default_rng(a.seed).choice(len(data.episodes), min(a.demos, len(data.episodes)), replace=False)
    print("dimension:", "x y z roll pitch yaw gripper")
    for name, phase in (("trained", 0), ("between", a.stride // 2)):
        rows = np.array([starts[d] + k for d in demos for k in range(len(data.episodes[d].actions))
                         if k % a.stride == phase])
        for metric, v in fit(model, data, rows).items():
            print(f"{name:8s} ({len(rows)} steps) {metric:16s}", np.round(v, 2))


if __name__ == "__main__":
    main()
