"""Supervised fine-tuning on demonstrations: cross-entropy on the 7 action tokens.

Checkpoints are atomic and hold everything needed to resume exactly: model, optimizer,
step and the RNG state; the data order is a pure function of (seed, step), so a resumed
run sees the same batches it would have seen without the interruption.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from tyro.conf import Suppress

from rl4vla.algos.rundir import RunLogger, evaluate_in_distribution, open_run, restore, save_checkpoint, write_json
from rl4vla.bench.contract import GRIPPER
from rl4vla.bench.ray_backend import check_backend
from rl4vla.config import EnvBackend
from rl4vla.policy.tokenizer import ActionTokenizer
from rl4vla.policy.vla import SmallVLA, VLAConfig
from rl4vla.util import atomic_torch_save, check_at_least, check_seed, check_workers, torch_threads


@dataclass(frozen=True)
class SFTConfig:
    """`rl4vla train sft`: supervised fine-tuning of the small VLA on a demo dataset."""

    data: str = "data/demos"
    """demonstration dataset directory (from `rl4vla collect`)"""
    out: str = "runs/sft"
    """run directory: checkpoint.pt, model.pt, metrics.jsonl, TensorBoard events"""
    preset: Suppress[str] = "warmup"
    """the preset these defaults come from (debug, warmup, pretrain, sft): a subcommand, `rl4vla train sft NAME
    [flags]`, whose values the flags override; recorded in config.json"""
    steps: int = 1500
    """optimizer steps"""
    batch_size: int = 64
    """samples per step"""
    lr: float = 3e-4
    """peak learning rate (AdamW)"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    warmup_frac: float = 0.05
    """fraction of steps with linear LR warm-up, then cosine decay to 10%"""
    grad_clip: float = 1.0
    """gradient-norm clip"""
    augment: bool = True
    """random +-4 px shifts of the frames"""
    label_sigma: float = 0.0
    """0: one-hot token targets (OpenVLA); > 0: Gaussian targets over neighbouring bins with this std (bins)"""
    aux_weight: float = 0.0
    """weight of an auxiliary loss that regresses the target object's and receptacle's table positions (x, y;
    known in simulation, stored in each demo's episode) from the image tokens, so they learn to locate them
    from few demos; the object's only until the first gripper toggle (it moves once grasped). A training
    aid: the policy never sees positions. 0 = off (OpenVLA)"""
    seed: int = 0
    """seed of initialisation, data order and augmentation"""
    checkpoint_every: int = 200
    """steps between checkpoints"""
    eval_every: int = 500
    """steps between in-distribution evaluations (0 = only at the end)"""
    eval_episodes: int = 32
    """pinned in-distribution episodes per evaluation (0 = no evaluation, not even at the end: summary.json's
    eval_success is null; for a model measured afterwards with `rl4vla eval` on more episodes)"""
    eval_workers: int | Literal["auto"] = "auto"
    """env worker processes (or Ray actors, with --env.backend ray) for evaluation; auto = as --env.workers auto"""
    env: EnvBackend = EnvBackend()
    """where the evaluation's env workers run (--env.backend, --env.ray-address); the model trains in this
    process, on its --device"""
    torch_threads: int = 0
    """torch intra-op threads (0 = auto: torch's default, at most 4)"""
    device: str = "auto"
    """where the model trains and is evaluated: auto (cuda when torch.cuda.is_available(), else cpu), cpu or cuda
    (an error when no GPU is present). Checkpoints hold CPU tensors, so a run may resume on another device"""
    resume: bool = False
    """continue from out/checkpoint.pt (with the same settings; only --torch-threads, --eval-workers,
    --checkpoint-every, --device and --env.backend/--env.ray-address may change)"""
    init: str | None = None
    """start from this model (model.pt or a run's checkpoint.pt, e.g. the robot-pretrained VLA): its
    architecture and action tokenizer are kept, so --model.* is ignored; None = a fresh model"""
    encoder_train_blocks: int | None = None
    """with --init: the frozen EfficientNet's last K blocks train from here on (from their ImageNet weights, so the
    --init model is unchanged at the start; as `train ppo --encoder-train-blocks`); None keeps the --init model's.
    A fresh model takes --model.encoder-train-blocks. The co-trained warm-up from `pretrained:small` with 2: 0.188
    held-out vs 0.227 without (p 0.47; docs/measurements/rl-ladder.md)"""
    mix_data: str | None = None
    """co-training: a second dataset whose samples fill `mix_fraction` of every batch, e.g. the robot-pretraining
    corpus during the warm-up so the 140 demos do not wash out the prior (None = off)"""
    mix_fraction: float = 0.5
    """share of each batch drawn from --mix-data"""
    frame_stride: int = 1
    """train on every k-th step of each demo (demo i from its step i % k, so every phase of the motion is covered),
    of --data and --mix-data (1 = every step). Neighbouring steps at
    5 Hz look nearly alike, and with a frozen encoder every kept frame is encoded once (~12k frames a minute on
    2 cores): the shipped prior used 2 on its 20,000-demo corpus (~230k of its ~460k frames)"""
    model: VLAConfig = VLAConfig()
    """architecture"""


_EFFNET = VLAConfig(image_encoder="efficientnet", patch_grid=4, keypoints=16, encoder_precision="bfloat16",
                    encoder_stride=16, layers=3)
PRESETS = {
    "debug": SFTConfig(preset="debug", steps=20, batch_size=8, checkpoint_every=10, eval_every=0, eval_episodes=4,
                       model=VLAConfig(d_model=64, layers=2, heads=2, patch_grid=4)),
    # the presets' model, measured on 2 cores (docs/measurements/README.md): the frozen pretrained EfficientNet-Lite0
    # beat the conv encoder trained from scratch, 0.33 vs 0.02 in-distribution after SFT on 2,000 demos, and 16
    # keypoints on its stride-16 map raised that to 0.41 (4,000 steps, 128 episodes). Features are encoded once and
    # cached on disk. The encoder runs in bfloat16 (2x faster acting; an SFT model scored 0.62 on bfloat16 features,
    # 0.65 on float32: within noise) and stops at its stride-16 stage, under 3 transformer layers: policy time per
    # 16-env rollout step 0.74-0.81x sim time on a quiet machine (median 0.88 over 15 runs; the whole encoder with
    # 4 layers: 1.1-1.2x). The sft preset on 4,000 demos: 0.60 (77/128) in 35 min, encoding included
    "warmup": SFTConfig(preset="warmup", steps=1500, batch_size=64, eval_every=500, augment=False,
                        model=_EFFNET),
    # robot pretraining: the same recipe on the robot-pretraining corpus (`collect --conditions
    # robot-pretraining`: objects outside every benchmark pool); warmup and sft then start from it (--init)
    "pretrain": SFTConfig(preset="pretrain", steps=6000, batch_size=64, eval_every=0, augment=False,
                          model=_EFFNET),
    "sft": SFTConfig(preset="sft", steps=16_000, batch_size=64, eval_every=0, eval_episodes=128, augment=False,
                     model=_EFFNET),
}


# settings that do not change a run's result: a resumed run may use other values (config.json records them)
MAY_CHANGE_ON_RESUME = ("eval_workers", "torch_threads", "checkpoint_every", "device", "env.backend",
                        "env.ray_address")


def lr_at(cfg: SFTConfig, step: int) -> float:
    warm = max(1, int(cfg.warmup_frac * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    p = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, p))))


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The samples of a step: epochs are seeded permutations, so the order depends on (seed, step) only."""
    per_epoch = max(1, n // batch_size)
    epoch, pos = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[pos * batch_size : (pos + 1) * batch_size]


def shift_augment(rgb: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """Random translation by up to `pad` pixels (edge-padded), per image."""
    b, h, w, _ = rgb.shape
    padded = np.pad(rgb, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    dy, dx = rng.integers(0, 2 * pad + 1, (2, b))
    return np.stack([padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def sft_loss(logits: torch.Tensor, tokens: torch.Tensor, label_sigma: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over the batch and the 7 dimensions. logits (B, 7, bins), tokens (B, 7).

    label_sigma > 0: the target is a discretised Gaussian over the bins around the demo's bin (std in bins)
    instead of one-hot (OpenVLA), so a near miss costs less than a far one: bins are ordered."""
    if logits.shape[:2] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match tokens {tuple(tokens.shape)}")
    if label_sigma < 0:
        raise ValueError(f"label_sigma must be >= 0, got {label_sigma}")
    flat, target = logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1)
    if label_sigma == 0:
        return F.cross_entropy(flat, target)
    bins = torch.arange(flat.shape[-1], device=flat.device, dtype=torch.float32)
    soft = torch.softmax(-0.5 * ((bins[None] - target[:, None].float()) / label_sigma) ** 2, -1)  # (B*7, bins)
    return -(soft * F.log_softmax(flat, -1)).sum(-1).mean()


AUX_SCALE = 10.0  # table positions (m, within ~0.3 of the centre) times this: targets of order 1


def aux_targets(episodes) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of the demos (in dataset order): targets (N, 4) = AUX_SCALE x (object x, y, receptacle x, y)
    of the episode's target object and receptacle as placed, and a mask (N, 4) that drops the object's
    entries from the first gripper toggle on (grasped objects move; receptacles stay put)."""
    targets, masks = [], []
    for e in episodes:
        obj, rec = e.episode["objects"][0], e.episode["receptacles"][0]
        t = len(e.actions)
        targets.append(np.tile(np.float32([obj["x"], obj["y"], rec["x"], rec["y"]]) * AUX_SCALE, (t, 1)))
        grip = np.sign(e.actions[:, GRIPPER])
        toggled = np.flatnonzero(grip != grip[0])
        first = toggled[0] if len(toggled) else t
        m = np.ones((t, 4), np.float32)
        m[first:, :2] = 0.0
        masks.append(m)
    return np.concatenate(targets), np.concatenate(masks)


def aux_loss(head: torch.nn.Module, image_tokens: torch.Tensor, targets: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
    """Masked mean squared error of the position read-out from the image tokens (B, P, d)."""
    pred = head(image_tokens.flatten(1))
    return ((pred - targets) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)


def cached_features(model: SmallVLA, data, path: Path, rows: np.ndarray | None = None) -> torch.Tensor:
    """The frozen encoder's features of the frames at `rows` (all when None): (len(rows), F), kept on disk
    (float16) beside the run so a resumed run does not encode the dataset again; recomputed when the file does
    not match the data."""
    frames = data.rgb if rows is None else data.rgb.rows(rows)
    if path.exists():
        ck = torch.load(path, map_location="cpu", weights_only=True)
        same = ck["frames"].item() == len(frames) and ck["checksum"].item() == _frames_checksum(frames)
        same = same and ck.get("precision", "float32") == model.cfg.encoder_precision
        same = same and int(ck.get("train_blocks", 0)) == model.cfg.encoder_train_blocks  # where the frozen part ends
        if same and ck["features"].shape[1:] == (model.image_encoder.feature_dim,):
            return ck["features"]
    feats = model.frozen_features(frames, progress=True)  # float16; batches are made float by the model
    atomic_torch_save({"features": feats, "frames": torch.tensor(len(frames)),
                        "precision": model.cfg.encoder_precision,
                        "train_blocks": torch.tensor(model.cfg.encoder_train_blocks),
                        "checksum": torch.tensor(_frames_checksum(frames))}, path)
    return feats


class DemoBatches:
    """Supervised batches from one or more demonstration datasets, an equal share of each batch from each, in an
    order that depends on (seed, step) only (so a resumed trainer draws the same batches). The frozen encoder's
    features are cached as `<cache_prefix><i>.pt` (see `cached_features`)."""

    def __init__(self, model: SmallVLA, roots: tuple[str, ...], batch_size: int, seed: int, cache_prefix: Path):
        from rl4vla.data.demos import DemoDataset

        if not roots:
            raise ValueError("DemoBatches needs at least one dataset")
        if batch_size < len(roots):
            raise ValueError(f"a batch of {batch_size} cannot hold a share of each of {len(roots)} datasets")
        self.sets, self.tokens, self.feats = [], [], []
        for i, root in enumerate(roots):
            data = DemoDataset(root)
            if int(data.meta["image_size"]) != model.cfg.image_size:
                raise ValueError(f"{root} holds {data.meta['image_size']} px frames, the model takes "
                                 f"{model.cfg.image_size} px")
            self.sets.append(data)
            self.tokens.append(torch.as_tensor(model.tokenizer.encode(data.actions)))  # outside its range: clipped
            frozen = model.has_frozen_image_encoder
            self.feats.append(cached_features(model, data, Path(f"{cache_prefix}{i}.pt")) if frozen else None)
        shares = np.full(len(roots), batch_size // len(roots))
        shares[: batch_size % len(roots)] += 1
        self.shares, self.seed = [int(k) for k in shares], seed

    def batch(self, step: int) -> tuple[dict, torch.Tensor]:
        """(obs, tokens (B, 7)) of step `step`."""
        rgb, tokens, instructions, proprio, feats = [], [], [], [], []
        for i, (data, k) in enumerate(zip(self.sets, self.shares)):
            idx = batch_indices(len(data), k, self.seed + 1_000_003 * i, step)
            rgb.append(data.rgb[idx] if self.feats[i] is None else None)
            tokens.append(self.tokens[i][idx])
            instructions += [data.instructions[j] for j in idx]
            proprio.append(data.proprio[idx])
            feats.append(None if self.feats[i] is None else self.feats[i][idx])
        obs = {"rgb": None if rgb[0] is None else np.concatenate(rgb), "instruction": instructions,
               "proprio": np.concatenate(proprio),
               "image_features": None if feats[0] is None else torch.cat(feats)}
        return obs, torch.cat(tokens)


def _frames_checksum(rgb: np.ndarray) -> int:
    """A cheap fingerprint of the frames (a strided sample), to notice a cache from other data."""
    sample = np.ascontiguousarray(rgb[:: max(1, len(rgb) // 64), ::7, ::7])
    return int(np.frombuffer(sample.tobytes(), np.uint8).astype(np.int64).sum() % (2**31))


def _validate(cfg: SFTConfig) -> None:
    check_at_least(cfg, ("steps", "batch_size", "checkpoint_every", "frame_stride"))
    check_at_least(cfg, ("eval_every", "eval_episodes", "torch_threads"), 0)
    check_workers(cfg.eval_workers, "--eval-workers")
    check_seed(cfg.seed)
    check_backend(cfg.env.backend)
    if cfg.aux_weight < 0:
        raise ValueError(f"--aux-weight must be >= 0, got {cfg.aux_weight}")
    if cfg.mix_data is not None and not 0 < cfg.mix_fraction < 1:
        raise ValueError(f"--mix-fraction must be in (0, 1) with --mix-data, got {cfg.mix_fraction}")


def train_sft(cfg: SFTConfig) -> dict:
    """Train (or resume) an SFT run; returns (and writes to out/summary.json) the run summary."""
    _validate(cfg)
    dev, run, ck = open_run(cfg, MAY_CHANGE_ON_RESUME)
    with torch_threads(cfg.torch_threads):
        return _train(cfg, run, ck, dev)


def _train(cfg: SFTConfig, run: Path, ck: dict | None, dev: torch.device) -> dict:
    from rl4vla.data.demos import DemoDataset

    ckpt_path = run / "checkpoint.pt"
    data = DemoDataset(cfg.data)
    if len(data) < cfg.batch_size:
        raise ValueError(f"{cfg.data} has {len(data)} samples, fewer than --batch-size {cfg.batch_size}")
    torch.manual_seed(cfg.seed)
    if cfg.init is not None:
        model = SmallVLA.load(cfg.init)
        if cfg.encoder_train_blocks is not None:
            model = model.with_trainable_encoder_blocks(cfg.encoder_train_blocks)
        tokenizer, model_cfg = model.tokenizer, model.cfg
        if model_cfg.image_size != int(data.meta["image_size"]):
            raise ValueError(f"--init {cfg.init} takes {model_cfg.image_size} px frames, {cfg.data} holds "
                             f"{data.meta['image_size']} px ones; collect with --env.image-size {model_cfg.image_size}")
    else:
        tokenizer = ActionTokenizer.from_range(data.action_q01, data.action_q99)
        model_cfg = dataclasses.replace(cfg.model, image_size=int(data.meta["image_size"]))
        model = SmallVLA(model_cfg, tokenizer)

    def aux_head_for(m: SmallVLA) -> torch.nn.Module | None:
        return torch.nn.Linear(m.n_image_tokens * m.cfg.d_model, 4).to(dev) if cfg.aux_weight > 0 else None

    def optimizer(m: SmallVLA, head) -> torch.optim.Optimizer:
        params = list(m.parameters()) + ([] if head is None else list(head.parameters()))
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    model = model.to(dev)
    aux_head = aux_head_for(model)
    opt = optimizer(model, aux_head)
    step = 0
    if ck is not None:
        model = SmallVLA.from_state(ck["model"]).to(dev)
        aux_head = aux_head_for(model)
        if aux_head is not None:
            aux_head.load_state_dict(ck["aux_head"])
        opt = optimizer(model, aux_head)
        restore(ck, opt, dev)
        step = int(ck["step"])
    write_json(run / "config.json", cfg)
    all_tokens = torch.as_tensor(tokenizer.encode(data.actions))  # (N, 7)
    aux_t = aux_m = None
    if aux_head is not None:
        aux_t, aux_m = (torch.as_tensor(a) for a in aux_targets(data.episodes))
    feats = None
    rows = data.frame_rows(cfg.frame_stride)  # the samples trained on; features[j] belongs to rows[j]
    if model.has_frozen_image_encoder and not cfg.augment:  # frozen and un-augmented: encode every frame once
        feats = cached_features(model, data, run / "image_features.pt", rows)
    model.text.warm(data.instructions, progress=True)  # every distinct instruction encoded once, batched
    mix = mix_tokens = mix_feats = None
    n_mix = 0
    if cfg.mix_data is not None:
        mix = DemoDataset(cfg.mix_data)
        n_mix = round(cfg.batch_size * cfg.mix_fraction)
        if int(mix.meta["image_size"]) != model_cfg.image_size:
            raise ValueError(f"--mix-data {cfg.mix_data} holds {mix.meta['image_size']} px frames, the model takes "
                             f"{model_cfg.image_size} px")
        mix_rows = mix.frame_rows(cfg.frame_stride)
        if len(mix_rows) < n_mix:
            raise ValueError(f"--mix-data {cfg.mix_data} has {len(mix_rows)} samples, fewer than the {n_mix} a batch "
                             "takes")
        mix_tokens = torch.as_tensor(tokenizer.encode(mix.actions))  # outside the tokenizer's range: clipped
        if feats is not None:
            mix_feats = cached_features(model, mix, run / "mix_features.pt", mix_rows)
        model.text.warm(mix.instructions, progress=True)
    logger = RunLogger(run, None if ck is None else step)
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc=f"sft {cfg.preset}")
    t0, seen = time.perf_counter(), 0

    def save():
        save_checkpoint(ckpt_path, cfg, model, opt, dev, step=step,
                        aux_head=None if aux_head is None else aux_head.state_dict())

    try:
        while step < cfg.steps:
            j = batch_indices(len(rows), cfg.batch_size - n_mix, cfg.seed, step)
            idx = rows[j]
            tokens = all_tokens[idx]
            rgb = data.rgb[idx] if feats is None else None  # cached features: no frames to read
            instructions, proprio = [data.instructions[i] for i in idx], data.proprio[idx]
            batch_feats = None if feats is None else feats[j]
            if n_mix:  # co-training: the rest of the batch from the mix dataset, in its own seeded order
                mj = batch_indices(len(mix_rows), n_mix, cfg.seed + 1_000_003, step)
                mi = mix_rows[mj]
                tokens = torch.cat([tokens, mix_tokens[mi]])
                rgb = None if feats is not None else np.concatenate([rgb, mix.rgb[mi]])
                instructions, proprio = instructions + [mix.instructions[i] for i in mi], np.concatenate(
                    [proprio, mix.proprio[mi]])
                batch_feats = None if feats is None else torch.cat([batch_feats, mix_feats[mj]])
            if cfg.augment:
                rgb = shift_augment(rgb, np.random.default_rng([cfg.seed, step, 1]))
            obs = {"rgb": rgb, "instruction": instructions, "proprio": proprio, "image_features": batch_feats}
            tokens = tokens.to(dev)  # the model moves its inputs itself; the loss's targets follow it
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, step)
            prefix = model.prefix(obs)
            ce = sft_loss(model.logits(obs, tokens, prefix), tokens, cfg.label_sigma)
            loss, extra = ce, {}
            if aux_head is not None:
                aux = aux_loss(aux_head, prefix[: len(idx), -model.n_image_tokens :], aux_t[idx].to(dev),
                               aux_m[idx].to(dev))
                extra["losses/aux_position"] = aux.item()
                loss = ce + cfg.aux_weight * aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.grad_clip)
            opt.step()
            step += 1
            seen += len(tokens)
            bar.update(1)
            bar.set_postfix(loss=f"{ce.item():.3f}", **{k.split("_")[-1]: f"{v:.3f}" for k, v in extra.items()})
            if step % 10 == 0 or step == cfg.steps:
                logger.log(step, {"losses/sft": ce.item(), **extra, "train/grad_norm": float(gnorm),
                                  "train/lr": lr_at(cfg, step - 1),
                                  "time/train_samples_per_s": seen / (time.perf_counter() - t0)})
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save()
            if cfg.eval_every and cfg.eval_episodes and step % cfg.eval_every == 0 and step < cfg.steps:
                logger.log(step, {"eval/success": evaluate_in_distribution(
                    model, cfg.eval_episodes, cfg.eval_workers, model_cfg.image_size, cfg.env.backend,
                    cfg.env.ray_address)})
        model.save(str(run / "model.pt"))
        final = None
        if cfg.eval_episodes:
            final = evaluate_in_distribution(model, cfg.eval_episodes, cfg.eval_workers, model_cfg.image_size,
                                             cfg.env.backend, cfg.env.ray_address)
            logger.log(step, {"eval/success": final})
    finally:
        bar.close()
        logger.close()
    summary = {"steps": step, "samples": len(rows), "eval_success": final, "model": str(run / "model.pt"),
               "wall_s": time.perf_counter() - t0}
    write_json(run / "summary.json", summary)
    return summary
