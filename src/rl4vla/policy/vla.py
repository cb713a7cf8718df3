"""The small VLA (built for the CPU, runs on a GPU too): image + instruction -> 7 action tokens (OpenVLA style)
+ a value.

    instruction --MiniLM (frozen, cached)--> 1 token ─┐
    robot state (TCP pose, gripper) --MLP--> 1 token ─┤   (optional, `proprio`)
    RGB frame --image encoder--> image tokens ────────┼─> transformer (prefix-LM mask) ─> 7 x 256 logits
    [BOS, a0 .. a5] action-token embeddings ──────────┘            └─ h at BOS (first action position) ─> value

The prefix (text + image) attends bidirectionally; action positions attend to the prefix and
to earlier actions, so a_i is predicted at the position of a_{i-1} (BOS for a_0). The value
head reads the hidden state at the first action-token position, as the study's shared
actor-critic does (docs/recipe.md). pi(a) = product of the 7 token probabilities.

The model runs where its parameters are (`model.to(device)`): inputs follow it, outputs (`act`) are numpy, and
checkpoints (`state`, `save`) always hold CPU tensors, so a model trained on a GPU loads on a laptop and back.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rl4vla.bench.contract import ACTION_DIM, GRIPPER, PROPRIO_DIM, PolicyOutput, proprio_from_state
from rl4vla.policy.encoders import PRECISIONS, ConvEncoder, EfficientNetEncoder
from rl4vla.policy.text import EMBED_DIM, InstructionEncoder
from rl4vla.policy.tokenizer import ActionTokenizer
from rl4vla.util import atomic_torch_save, on_cpu

CHECKPOINT_FORMAT = "rl4vla-vla"


def gumbel_noise(shape: tuple[int, ...], temperature: float, device=None) -> torch.Tensor | None:
    """temperature * g with g = -log(-log(u)), u ~ U[0, 1) standard Gumbel noise; None at temperature 0."""
    if temperature <= 0:
        return None
    g = torch.rand(shape, device=device).log_().neg_().log_().neg_()
    return g.mul_(temperature)


def tempered_log_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logits / T) over the last dim: the log-probs of what `sample_token` draws at temperature T; at
    T = 1 and when greedy (T <= 0) the logits as they are."""
    return F.log_softmax(logits if temperature <= 0 or temperature == 1 else logits / temperature, -1)


def sample_token(logits: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """(B, bins) logits -> (B,) a bin drawn from softmax(logits / T), given noise = `gumbel_noise(.., T)`;
    the argmax without noise (T = 0).

    Gumbel-max: argmax(logits / T + g) = argmax(logits + T g) is distributed as
    `Categorical(logits=logits / T).sample()`, in two elementwise ops instead of a distribution object, and
    the noise of all 7 draws of an act comes from one uniform draw (~7x cheaper than torch's exponential
    sampler here)."""
    return logits.argmax(-1) if noise is None else (logits + noise).argmax(-1)


@dataclass(frozen=True)
class VLAConfig:
    """Architecture of the small VLA."""

    image_size: int = 128
    """input frame size (frames are resized to it)"""
    d_model: int = 128
    """transformer width"""
    layers: int = 4
    """transformer layers"""
    heads: int = 4
    """attention heads"""
    patch_grid: int = 6
    """the image becomes patch_grid x patch_grid tokens"""
    n_bins: int = 256
    """action bins per dimension (OpenVLA: 256)"""
    dropout: float = 0.0
    """dropout in the transformer"""
    image_encoder: str = "conv"
    """conv (small, trained from scratch) or efficientnet (frozen pretrained EfficientNet-Lite0)"""
    value_detach: bool = True
    """value-loss gradients train only the value head (the backbone learns from the policy loss)"""
    keypoints: int = 0
    """spatial-softmax keypoint tokens (conv: from its 1/8 map; efficientnet: from its frozen stride-16 map)"""
    proprio: bool = True
    """add a robot-state token (TCP pose + gripper opening; OpenVLA itself sees only the image)"""
    encoder_stride: int = 32
    """efficientnet: how deep the frozen network runs, 32 (all of it; patch tokens from its 1280-channel head)
    or 16 (up to its stride-16 stage; patch tokens pooled from that 112-channel map: ~25% faster)"""
    binary_gripper: bool = False
    """execute the gripper dimension as its sign (1 open, -1 closed; the study's convention) instead of the bin
    centre, where a middle token half-closes the jaws"""
    encoder_precision: str = "float32"
    """dtype the frozen EfficientNet runs in: float32 or bfloat16 (~2x faster on CPUs with bf16 units; its
    features move ~5% relative, so a model is trained, cached and run with one setting)"""
    encoder_train_blocks: int = 0
    """efficientnet, stride 16: the last K blocks before the image tokens train with the rest (float32, from the
    ImageNet weights), the frozen network ending at their input (0 = all frozen). The study's LoRA adapted
    OpenVLA's vision backbone as well as its language model; a frozen encoder can only be re-read, not re-tuned"""


class Block(nn.Module):
    """Pre-norm transformer block whose attention can extend a key/value cache (fast decoding)."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None, pos: int = 0,
                last_only: bool = False) -> torch.Tensor:
        """x (B, T, d) -> (B, T, d); allowed (T, pos+T) bool or None (attend to everything).

        cache: (keys, values) buffers (B, H, L, dh) of a decode: this call's keys/values are written at
        positions pos..pos+T-1 and attention reads positions 0..pos+T-1 (no copy of the cache per token).
        last_only: keys/values for all T positions, the output (B, 1, d) for the last one only (a decode's
        last layer: only its last position is read, the rest of the layer's work would be thrown away).

        Written with functional ops on the modules' parameters: a decoding step is ~15 tiny ops, and the
        per-module call overhead was a third of its time on CPU."""
        b, t, d = x.shape
        fc1, fc2 = self.mlp[0], self.mlp[2]
        h = F.layer_norm(x, (d,), self.ln1.weight, self.ln1.bias, self.ln1.eps)
        qkv = F.linear(h, self.qkv.weight, self.qkv.bias).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, dh)
        if cache is not None:
            cache[0][:, :, pos : pos + t], cache[1][:, :, pos : pos + t] = k, v
            k, v = cache[0][:, :, : pos + t], cache[1][:, :, : pos + t]
        if last_only:
            x, q, t = x[:, -1:], q[:, :, -1:], 1
            allowed = None if allowed is None else allowed[-1:]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        y = F.linear(a.transpose(1, 2).reshape(b, t, d), self.proj.weight, self.proj.bias)
        x = x + (self.drop(y) if self.training else y)
        h = F.layer_norm(x, (d,), self.ln2.weight, self.ln2.bias, self.ln2.eps)
        y = F.linear(F.gelu(F.linear(h, fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
        return x + (self.drop(y) if self.training else y)


class SmallVLA(nn.Module):
    """Shared actor-critic VLA. Use `act` to sample and `evaluate` to score given tokens."""

    def __init__(self, cfg: VLAConfig, tokenizer: ActionTokenizer, text_cache: dict | None = None):
        super().__init__()
        if tokenizer.n_bins != cfg.n_bins:
            raise ValueError(f"tokenizer has {tokenizer.n_bins} bins, config {cfg.n_bins}")
        self.cfg, self.tokenizer = cfg, tokenizer
        self.text = InstructionEncoder(text_cache)
        if cfg.encoder_precision not in PRECISIONS:
            raise ValueError(f"unknown encoder_precision {cfg.encoder_precision!r}; valid: {', '.join(PRECISIONS)}")
        d = cfg.d_model
        if cfg.image_encoder == "conv":
            if cfg.encoder_train_blocks:
                raise ValueError("encoder_train_blocks applies to the efficientnet encoder; conv trains whole")
            self.image_encoder = ConvEncoder(d, cfg.patch_grid, cfg.keypoints)
        elif cfg.image_encoder == "efficientnet":
            self.image_encoder = EfficientNetEncoder(d, cfg.patch_grid, cfg.keypoints, cfg.encoder_precision,
                                                    cfg.encoder_stride, cfg.encoder_train_blocks)
        else:
            raise ValueError(f"unknown image_encoder {cfg.image_encoder!r}; valid: conv, efficientnet")
        self.text_proj = nn.Linear(EMBED_DIM, d)
        if cfg.proprio:
            self.proprio_proj = nn.Sequential(nn.Linear(PROPRIO_DIM, d), nn.GELU(), nn.Linear(d, d))
        n_prefix = 1 + int(cfg.proprio) + cfg.patch_grid**2 + cfg.keypoints
        self.pos = nn.Parameter(torch.zeros(1, n_prefix + ACTION_DIM, d))
        self.bos = nn.Parameter(torch.zeros(1, 1, d))
        self.action_embed = nn.Embedding(ACTION_DIM * cfg.n_bins, d)  # a token per (dimension, bin)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        self.action_head = nn.Linear(d, cfg.n_bins)
        self.dim_embed = nn.Parameter(torch.zeros(1, ACTION_DIM, d))  # which dimension is predicted
        self.value_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.bos, std=0.02)
        nn.init.normal_(self.dim_embed, std=0.02)
        # prefix-LM attention over [prefix | BOS, a0..a5]: True = may attend
        n = n_prefix + ACTION_DIM
        allowed = torch.ones(n, n, dtype=torch.bool)
        allowed[:n_prefix, n_prefix:] = False
        allowed[n_prefix:, n_prefix:] = torch.tril(torch.ones(ACTION_DIM, ACTION_DIM, dtype=torch.bool))
        self.register_buffer("allowed", allowed, persistent=False)
        self.n_prefix = n_prefix

    # ----- inputs -------------------------------------------------------------------------
    @staticmethod
    def _frames(rgb) -> torch.Tensor:
        """(B, H, W, 3) frames as a tensor (no copy), checked."""
        x = torch.as_tensor(np.asarray(rgb)) if not torch.is_tensor(rgb) else rgb
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"rgb must be (B, H, W, 3) uint8, got shape {tuple(x.shape)}")
        return x

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are, and so where it computes."""
        return self.pos.device

    def _images(self, rgb) -> torch.Tensor:
        """(B, 3, s, s) float frames in [0, 1] on the model's device (moved as uint8: a quarter of the bytes)."""
        x = self._frames(rgb).to(self.pos.device).permute(0, 3, 1, 2).float().div(255.0)  # a copy: input untouched
        s = self.cfg.image_size
        if x.shape[-1] != s or x.shape[-2] != s:
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        return x

    def prefix(self, obs: dict) -> torch.Tensor:
        """(B, n_prefix, d): instruction token [+ robot-state token] + image patch tokens.

        obs may carry "image_features" (B, F) precomputed by `frozen_features` instead of
        running the frozen image encoder again, and "proprio" (B, 10) instead of the env's "state".
        """
        dev = self.pos.device
        txt = torch.as_tensor(self.text(list(obs["instruction"])), device=dev)  # (B, 384)
        if obs.get("image_features") is not None:
            img = self.image_encoder(None, torch.as_tensor(obs["image_features"], device=dev))
        else:
            img = self.image_encoder(self._images(obs["rgb"]))  # (B, P, d)
        parts = [self.text_proj(txt)[:, None]]
        if self.cfg.proprio:
            if obs.get("proprio") is not None:
                prop = torch.as_tensor(np.asarray(obs["proprio"], np.float32), device=dev)
            elif obs.get("state") is not None:
                prop = torch.as_tensor(proprio_from_state(obs["state"]), device=dev)
            else:
                raise ValueError("this VLA reads the robot state: obs needs 'proprio' (B, 10) or the env's 'state'")
            if prop.shape != (img.shape[0], PROPRIO_DIM):
                raise ValueError(f"proprio must be (B, {PROPRIO_DIM}), got {tuple(prop.shape)}")
            parts.append(self.proprio_proj(prop)[:, None])
        return torch.cat([*parts, img], 1)

    @property
    def has_frozen_image_encoder(self) -> bool:
        return isinstance(self.image_encoder, EfficientNetEncoder)

    def frozen_features(self, rgb: np.ndarray, batch: int = 128, progress: bool = False) -> torch.Tensor:
        """(N, F) float16 features of the frozen image encoder, computed in batches on the model's device and kept
        on the CPU (for caching; float16 halves the memory of a large dataset's cache, and acting rounds its
        features the same way)."""
        from tqdm import tqdm

        if not self.has_frozen_image_encoder:
            raise ValueError("only a frozen image encoder's features can be cached")
        out = torch.empty((len(rgb), self.image_encoder.feature_dim), dtype=torch.float16)  # filled in place
        for i in tqdm(range(0, len(rgb), batch), desc="encode frames", unit="batch", disable=not progress):
            out[i : i + batch] = self._stored_features(rgb[i : i + batch]).cpu()
        return out

    def _stored_features(self, rgb) -> torch.Tensor:
        """The frozen encoder's features of a batch of frames, in the float16 form trainers store."""
        x, s = self._frames(rgb), self.cfg.image_size
        if x.shape[1:3] != (s, s):
            return self.image_encoder.features(self._images(x)).half()
        # uint8 as a (B, 3, H, W) view: the encoder normalises it in one pass (three copies fewer)
        return self.image_encoder.features(x.to(self.pos.device).permute(0, 3, 1, 2)).half()

    def _forward(self, prefix: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prefix (B, n_prefix, d), tokens (B, k) with k <= 6 given actions -> logits (B, k+1, bins), h0 (B, d)."""
        b, k = tokens.shape
        offs = torch.arange(k, device=tokens.device) * self.cfg.n_bins
        act = self.action_embed(tokens + offs)  # (B, k, d)
        act = torch.cat([self.bos.expand(b, -1, -1), act], 1) + self.dim_embed[:, : k + 1]  # (B, k+1, d)
        seq = torch.cat([prefix, act], 1)  # (B, n_prefix + 1 + k, d)
        n = seq.shape[1]
        h = self._run(seq + self.pos[:, :n], self.allowed[:n, :n])
        ha = h[:, self.n_prefix :]  # (B, k+1, d): position i predicts action dimension i
        return self.action_head(ha), ha[:, 0]

    def _run(self, x: torch.Tensor, allowed: torch.Tensor | None = None, caches: list | None = None,
             pos: int = 0, last_only: bool = False) -> torch.Tensor:
        """x (B, T, d) through every block (with per-block key/value `caches`, see `Block.forward`), normed;
        last_only: (B, 1, d), the last position's output only."""
        for i, blk in enumerate(self.blocks):
            x = blk(x, allowed, None if caches is None else caches[i], pos, last_only and i == len(self.blocks) - 1)
        return self.norm(x)

    def value(self, h0: torch.Tensor) -> torch.Tensor:
        """(B,) value from the first action-token hidden state; detached from the backbone by default."""
        return self.value_head(h0.detach() if self.cfg.value_detach else h0)[:, 0]

    # ----- the policy interface ---------------------------------------------------------
    def evaluate(self, obs: dict, tokens: torch.Tensor, temperature: float = 1.0,
                 per_dim: bool = False, dist: bool = False) -> tuple[torch.Tensor, ...]:
        """log pi_T(tokens) summed over the 7 dims (B,), entropy of pi_T summed (B,), value (B,); per_dim: the
        log-probs and entropies per action dimension instead, (B, 7) each; dist: a fourth output, the whole
        log pi_T of every token (B, 7, bins). pi_T is softmax(logits / T), the distribution `act` samples from at
        temperature T (T = 1: the policy itself)."""
        tokens = torch.as_tensor(tokens, dtype=torch.long, device=self.pos.device)
        if tokens.ndim != 2 or tokens.shape[1] != ACTION_DIM:
            raise ValueError(f"tokens must be (B, {ACTION_DIM}), got {tuple(tokens.shape)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 to score tokens, got {temperature}")
        logits, h0 = self._forward(self.prefix(obs), tokens[:, :-1])  # (B, 7, bins)
        logp = tempered_log_softmax(logits, temperature)
        taken = logp.gather(-1, tokens[..., None])[..., 0]  # (B, 7)
        entropy = -(logp.exp() * logp).sum(-1)  # (B, 7)
        if not per_dim:
            taken, entropy = taken.sum(-1), entropy.sum(-1)
        return (taken, entropy, self.value(h0), logp) if dist else (taken, entropy, self.value(h0))

    def logits(self, obs: dict, tokens: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, 7, bins) for supervised training (`prefix`: `self.prefix(obs)` when a
        trainer already has it)."""
        tokens = torch.as_tensor(tokens, dtype=torch.long, device=self.pos.device)
        return self._forward(self.prefix(obs) if prefix is None else prefix, tokens[:, :-1])[0]

    @property
    def n_image_tokens(self) -> int:
        """Image tokens at the end of the prefix (patch tokens, then keypoint tokens)."""
        return self.cfg.patch_grid**2 + self.cfg.keypoints

    @torch.inference_mode()  # ~3% less per-op overhead than no_grad (34 vs 35 ms on 16 rows); it returns numpy only
    def act(self, obs: dict, temperature: float = 1.0) -> PolicyOutput:
        """Sample 7 tokens autoregressively with a key/value cache (greedy at temperature 0); the log-prob is
        of the distribution sampled from, softmax(logits / T) (`evaluate(obs, tokens, T)` rescores it).

        With a frozen image encoder the output's extras carry the frames' "image_features" (float16), so
        a trainer can score the same observations later without running the encoder again."""
        feats = None
        if self.has_frozen_image_encoder and obs.get("image_features") is None:
            # as trainers store them (float16), so acting and later scoring see the same input
            feats = self._stored_features(obs["rgb"])
            obs = {**obs, "image_features": feats}
        prefix = self.prefix(obs)
        b, n0, dev = prefix.shape[0], self.n_prefix, prefix.device
        heads, n = self.cfg.heads, n0 + ACTION_DIM
        shape = (b, heads, n, self.cfg.d_model // heads)
        caches = [(prefix.new_empty(shape), prefix.new_empty(shape)) for _ in self.blocks]  # keys, values
        first = torch.cat([prefix, self.bos.expand(b, -1, -1) + self.dim_embed[:, :1]], 1) + self.pos[:, : n0 + 1]
        h = self._run(first, self.allowed[: n0 + 1, : n0 + 1], caches, last_only=True)[:, 0]  # (B, d) at BOS
        value = self.value(h)
        gumbel = gumbel_noise((ACTION_DIM, b, self.cfg.n_bins), temperature, dev)  # all 7 draws' noise at once
        step_in = self.dim_embed[0, 1:] + self.pos[0, n0 + 1 :]  # (6, d) what marks action position i + 1
        tokens, logits = [], []
        for i in range(ACTION_DIM):
            last = self.action_head(h)  # (B, bins) for dimension i
            nxt = sample_token(last, None if gumbel is None else gumbel[i])
            tokens.append(nxt)
            logits.append(last)
            if i + 1 < ACTION_DIM:  # feed a_i at the next position; it attends to everything before
                x = self.action_embed(nxt + i * self.cfg.n_bins) + step_in[i]
                h = self._run(x[:, None], None, caches, n0 + 1 + i)[:, 0]
        tok_t = torch.stack(tokens, 1)  # (B, 7)
        logp = tempered_log_softmax(torch.stack(logits, 1), temperature)  # (B, 7, bins): of what was sampled
        logp_tok = logp.gather(-1, tok_t[..., None])[..., 0]  # (B, 7)
        tok = tok_t.cpu().numpy()
        actions = self.tokenizer.decode(tok)
        if self.cfg.binary_gripper:  # the study's convention: the gripper is open or closed, nothing between
            actions[:, GRIPPER] = np.where(actions[:, GRIPPER] >= 0, 1.0, -1.0)
        extras = {"token_logprobs": logp_tok.cpu().numpy()}  # (B, 7): per-token PPO ratios need them
        if feats is not None:
            extras["image_features"] = feats.cpu().numpy()
        return PolicyOutput(actions, tok, logp_tok.sum(1).cpu().numpy(), value.cpu().numpy(), extras)

    # ----- checkpoints ------------------------------------------------------------------
    def state(self) -> dict:
        """Everything `from_state` needs, with the weights as CPU tensors wherever the model runs."""
        return {"format": CHECKPOINT_FORMAT, "config": asdict(self.cfg), "tokenizer": self.tokenizer.to_dict(),
                "text_cache": {k: v.tolist() for k, v in self.text.cache.items()}, "weights": on_cpu(self.state_dict())}

    def save(self, path: str) -> None:
        """Write atomically (temporary file, then rename)."""
        atomic_torch_save(self.state(), path)

    @staticmethod
    def from_state(st: dict) -> SmallVLA:
        """The model of a `state` dict, on the CPU (move it with `.to(device)`)."""
        if st.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not an rl4vla VLA checkpoint (format {st.get('format')!r})")
        cache = {k: np.asarray(v, np.float32) for k, v in st["text_cache"].items()}
        cfg = {"proprio": False, **st["config"]}  # a checkpoint without "proprio" has no robot-state token
        model = SmallVLA(VLAConfig(**cfg), ActionTokenizer.from_dict(st["tokenizer"]), cache)
        model.load_state_dict(st["weights"])
        return model

    def with_trainable_encoder_blocks(self, k: int) -> SmallVLA:
        """A copy of this all-frozen model (on the CPU) whose encoder's last k blocks are trainable, built from the
        same ImageNet weights: the same policy, up to running those blocks in float32 rather than in the encoder's
        precision. A model whose blocks train already is returned as it is for its own k."""
        have = self.cfg.encoder_train_blocks
        if k == have:
            return self
        if have:
            raise ValueError(f"this model trains {have} encoder blocks already; it cannot change to {k}")
        model = SmallVLA(replace(self.cfg, encoder_train_blocks=k), self.tokenizer, self.text.cache)
        missing, unexpected = model.load_state_dict(self.state_dict(), strict=False)
        if unexpected or any(not m.startswith("image_encoder.top.") for m in missing):
            raise ValueError(f"cannot carry the weights over: missing {missing}, unexpected {unexpected}")
        return model

    @staticmethod
    def load(path: str) -> SmallVLA:
        """A checkpoint written by `rl4vla train` (model.pt or checkpoint.pt), a shipped model by name
        (`pretrained:small`, see rl4vla.policy.pretrained) or an exported pretrained folder, on the CPU whatever
        device wrote it (move it with `.to(device)`)."""
        from rl4vla.policy import pretrained

        if pretrained.is_pretrained(path) or os.path.isdir(path):
            return pretrained.load(path)
        try:
            st = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise ValueError(f"cannot read checkpoint {path} ({type(e).__name__}: {e})") from e
        if isinstance(st, dict) and "model" in st:  # a training checkpoint holds the model state inside
            st = st["model"]
        if not isinstance(st, dict) or st.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is a torch file but not an rl4vla VLA checkpoint (it holds "
                             f"{type(st).__name__ if not isinstance(st, dict) else 'another dict'}); pass a model.pt "
                             "or checkpoint.pt written by `rl4vla train`")
        return SmallVLA.from_state(st)


class VLAPolicy:
    """Wraps a SmallVLA for evaluation loops (eval mode, no gradients)."""

    def __init__(self, model: SmallVLA):
        self.model = model.eval()
        self.name = "vla"

    def reset(self) -> None:
        """Stateless: each action depends on the current observation only."""

    def act(self, obs: dict, temperature: float = 1.0) -> PolicyOutput:
        return self.model.act(obs, temperature)
