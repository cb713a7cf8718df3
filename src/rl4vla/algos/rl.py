"""RL fine-tuning from an SFT checkpoint: PPO (the study's recipe), GRPO and DPO in one trainer.

The algorithms differ only in data (`ALGOS`): whether env rows get independent initial states or
groups that share one (one whole trajectory per row), how advantages are computed (GAE with the
shared critic, or returns normalised within each group), and which loss the update minimises
(clipped surrogate, or trajectory-wise DPO against a frozen copy of the starting policy).

Checkpoints are atomic and taken between rollouts, which start from fresh episodes, so `--resume`
continues exactly: model, optimizer, counters (updates, env steps, episode stream) and torch RNG.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm
from tyro.conf import Suppress

from rl4vla.algos import losses as L
from rl4vla.algos.rollout import EpisodeStream, Rollout, collect
from rl4vla.algos.rundir import RunLogger, evaluate_in_distribution, open_run, restore, save_checkpoint, write_json
from rl4vla.algos.sft import DemoBatches, sft_loss, shift_augment
from rl4vla.bench.contract import ACTION_DIM, ACTION_LAYOUT
from rl4vla.bench.ray_backend import check_backend
from rl4vla.config import EnvArgs
from rl4vla.policy.vla import SmallVLA
from rl4vla.protocol import RL_EPISODE_SEED
from rl4vla.util import auto_threads, check_at_least, check_seed, check_workers


@dataclass(frozen=True)
class RLConfig:
    """`rl4vla train {ppo,grpo,dpo}`: RL fine-tuning of an SFT-warmed-up small VLA on the training distribution."""

    algo: str = "ppo"
    """ppo | grpo | dpo | fbc (filtered behaviour cloning on the policy's own successes: a yardstick, not RL)"""
    init: str = ""
    """SFT checkpoint to start from (model.pt, or a training checkpoint.pt); required"""
    out: str = "runs/ppo"
    """run directory: checkpoint.pt, model.pt, summary.json, metrics.jsonl, TensorBoard events"""
    preset: Suppress[str] = "default"
    """the preset these defaults come from (debug, default): a subcommand, `rl4vla train ALGO NAME [flags]`, whose
    values the flags override; recorded in config.json"""
    env_steps: int = 400_000
    """stop after this many env steps (study: RL passed SFT-16k after ~0.4M; its code default 2M)"""
    env: EnvArgs = EnvArgs(image_size=None)
    """the rollout's scenes: --env.num-envs env rows stepped in lockstep (study: 64; 16 on 2 CPU cores), at the
    policy's input size unless --env.image-size says otherwise; --env.backend (and --env.ray-address) also place the
    evaluation's workers, while the learner stays in this process, on its --device"""
    num_steps: int = 80
    """PPO steps per row per rollout (study: 80 = one episode); GRPO/DPO record one whole episode per row"""
    max_episode_steps: int = 80
    """control steps per episode (study: 80 at 5 Hz)"""
    torch_threads: int = 0
    """torch intra-op threads of the learner (0 = auto: torch's default, at most 4); the env workers
    wait while the policy acts and learns, so it may use every core: on 2 cores 2 threads cut a default-preset rollout's
    policy time from 6.5 to 4.3 s and its update from 4.3 to 2.7 s, and the debug preset ran 14.3 s either way"""
    condition: str = "in-distribution"
    """condition the training episodes are drawn from (the study trains on the training distribution only)"""
    episode_seed: int = RL_EPISODE_SEED
    """seed of the training episode stream; it differs from the evaluation and demonstration seeds
    (rl4vla.protocol), so RL never trains on their episodes"""
    episode_pool: int = 0
    """training initial states: 0 = a new one for every episode (the study); K > 0 = the stream's first K, cycled
    through (a sanity check of the learner: PPO should fit a few fixed scenes fast)"""
    temperature: float = 1.0
    """sampling temperature when collecting (study: 1.0; evaluation uses 0.6); the update then trains the
    distribution sampled from, softmax(logits / T), so ratios and log-probs stay on-policy at any T"""
    minibatch_size: int = 32
    """samples per forward/backward pass (study: 8 on GPU memory; 32 here is faster on CPU)"""
    grad_accum: int = 5
    """minibatches accumulated per optimizer step: 32 x 5 = the study's 160 samples a step (8 x 20)"""
    epochs: int = 1
    """passes over each rollout (study: 1; more gave no sample-efficiency gain)"""
    policy_lr: float = 3e-5
    """AdamW learning rate of everything but the value head (study: 1e-4 for LoRA on OpenVLA-7B; the small VLA is
    fully fine-tuned, and at 1e-4 its first PPO update from the warm-up moved it by an approx KL of 1.2 with 71%
    of the ratios clipped (GRPO: KL 3.9); 3e-5 keeps the KL near 0.01)"""
    value_lr: float = 3e-3
    """AdamW learning rate of the value head (study: 3e-3)"""
    weight_decay: float = 0.01
    """AdamW weight decay (the study's code keeps torch's AdamW default, 0.01)"""
    max_grad_norm: float = 10.0
    """gradient-norm clip (study: 10)"""
    clip: float = 0.2
    """PPO/GRPO ratio clip (study: 0.2)"""
    ratio: str = "token"
    """PPO/GRPO importance ratio: token (one ratio per action token, each clipped on its own, as LLM RL does: the
    same gradient until a clip, after which only the tokens that moved too far stop) or action (of the 7 tokens'
    summed log-prob: the study's). Measured from the co-trained warm-up (0.375 held-out), 32 fixed scenes, 102k
    env steps: held-out 0.484 with token ratios (p 0.049 over the warm-up) vs 0.320 with the study's (p 0.0025
    between them): a whole action's ratio is clipped as soon as any of its 7 tokens moves, so the x/y/z tokens
    (entropy 1-2 nats each) stop the updates of all the others"""
    value_clip: float = 0.2
    """value-prediction clip around the collection-time value (study: 0.2)"""
    huber_delta: float = 10.0
    """Huber delta of the value loss (study: 10)"""
    value_detach: bool | None = None
    """whether value-loss gradients stop at the value head (True) or also train the shared backbone (False, the
    study's shared actor-critic); None keeps the --init checkpoint's setting (the presets' SFT models: True)"""
    vf_coef: float = 1.0
    """weight of the value loss (study: 1, a plain sum; the value head has its own lr)"""
    ent_coef: float = 0.0
    """entropy bonus (study: 0)"""
    gamma: float = 0.99
    """discount (study: 0.99)"""
    gae_lambda: float = 0.95
    """GAE lambda (study: 0.95)"""
    bootstrap_truncated: bool = True
    """PPO: a time-limit truncation's future is V(final obs); False treats the limit as terminal (the study's code)"""
    norm_adv: bool = True
    """PPO: normalise advantages over each rollout buffer (study: yes); GRPO normalises within groups only"""
    group_size: int = 8
    """GRPO: trajectories per initial state (study: 8); DPO: trajectories per state that form pairs (2)"""
    same_init: bool = False
    """GRPO/DPO: every env row of a rollout shares one initial state ("GRPO (s)" in the study)"""
    dpo_beta: float = 0.1
    """DPO inverse temperature of the implicit reward"""
    dpo_reference: str = "init"
    """DPO reference policy: init (the frozen starting policy, the study's trajectory-wise DPO) or rollout (the
    policy that collected each round: the implicit rewards start at 0 every round, so an update is a bounded
    step from the behaviour policy and the reference costs no forward pass)"""
    dpo_pairs_per_step: int = 4
    """DPO preference pairs per optimizer step"""
    dpo_normalize: str = "none"
    """DPO log-ratio scale: none (the study's: summed over every token of every step of a trajectory), step
    (averaged over its valid steps) or token (over its tokens). The sum over 80 steps x 7 tokens puts margins
    of tens of nats in front of beta 0.1: on one scene the frozen-reference loss on fresh pairs rose to 3-5 with
    pair accuracy 0.1-0.2 and gradient norms of 60-110 (docs/measurements/rl-ladder.md). A normalised margin
    is ~80x smaller, so pair it with a larger --dpo-beta"""
    binary_gripper: bool | None = None
    """execute the gripper token as fully open or closed (its sign), the study's convention; False executes the
    bin centre (a sampled middle token half-closes the jaws); None keeps the --init checkpoint's setting"""
    encoder_train_blocks: int | None = None
    """the frozen EfficientNet's last K blocks before the image tokens train with the policy (float32, at
    --policy-lr, from their ImageNet weights: the --init policy unchanged at the start); None keeps the --init
    checkpoint's (the presets' models: 0, all frozen). The study's LoRA adapted OpenVLA's vision backbone too.
    Measured with 2 on 32 fixed scenes from the shipped prior's warm-up (0.227 held-out), three seeds, 102,400 env
    steps: held-out 0.125 / 0.172 / 0.125 vs 0.234 / 0.195 / 0.117 without (0.141 vs 0.182 pooled); one scene is
    still fitted (0.91 by 40,960 env steps); the update costs ~1.9x (docs/measurements/rl-ladder.md)"""
    policy_lr_warmup: int = 0
    """optimizer steps of linear warm-up of the policy lr from 0 (study: none; Adam's first steps move every
    weight by ~lr whatever its gradient, which gave the first update 2-4x the later approx KL)"""
    policy_lr_end: float = 1.0
    """the policy lr at --env-steps as a fraction of --policy-lr, reached linearly from the first update (study:
    1.0, constant; CleanRL's PPO anneals to 0). Each update uses the lr of the env steps collected before it, so a
    resumed run keeps its schedule unless --env-steps changes. On R3 a constant lr gained held-out success in the
    first 204,800 env steps (0.375 -> 0.461) and lost it in the next 204,800 (0.352) while the policy kept moving
    (docs/measurements/rl-ladder.md)"""
    critic_warmup: int = 0
    """updates at the start that train the value head only: the policy's lr is 0 and its loss is left out (study:
    0; RLinf and others warm the critic up). From the co-trained warm-up the critic explained 0.06 of the returns'
    variance in the first updates of R3, so those updates moved the policy on advantages that were mostly noise
    (held-out 0.258 -> 0.141 in the recipe's first 102,400 env steps). Measured on 32 fixed scenes, 10 updates: the
    critic explained 0.41-0.49 after them, as much as without them at the same env steps; held-out success after
    102,400 env steps 0.289 vs 0.172 without them with seed 0 (p 0.036), 0.195 vs 0.234 with seed 1 (p 0.50):
    no effect beyond the seeds' spread, and never above the warm-up's 0.250 (docs/measurements/rl-ladder.md).
    PPO only: the other algorithms have no critic"""
    kl_coef: float = 0.0
    """PPO/GRPO/FBC: weight of a penalty on KL(pi || pi_init), the exact KL of each action's 7 token distributions
    from the --init policy's at the collection temperature, added to every minibatch's loss and logged as
    losses/kl_init (0 = off, the study's PPO). It bounds drift: on R3 the policy moved a summed KL of 2.4 nats an
    action from its warm-up by 204,800 env steps and 4.2 by 409,600 (the x token's most likely bin changed on
    half the states or more) while held-out success went 0.375 -> 0.461 -> 0.352 (docs/measurements/rl-ladder.md)"""
    aug_coef: float = 0.0
    """PPO/GRPO: weight of DrAC's augmentation regulariser (Raileanu et al. 2021): each minibatch is scored again on
    its frames shifted by up to --aug-pad pixels, and KL(pi(s) || pi(shift(s))) plus (V(shift(s)) - V(s))^2, with
    the unshifted side held fixed, joins the loss, logged as losses/aug_policy and losses/aug_value (0 = off, the
    study's: no augmentation in RL). The surrogate itself stays on the frames the actions were sampled from, so its
    ratios stay on-policy. Costs one more forward pass, and a frozen-encoder pass, per minibatch (update share of
    wall-clock 50% instead of 28%). Measured on 32 fixed scenes at 0.1 (DrAC's value): it cut the policy's KL
    between shifted and unshifted frames 0.70 -> 0.44 nats an action, and held-out success fell as without it
    (0.156 vs 0.172, p 0.85; docs/measurements/rl-ladder.md)"""
    aug_pad: int = 4
    """the largest shift of --aug-coef's augmentation, in pixels of each side (edge-padded, as SFT's --augment)"""
    target_kl: float = 0.0
    """stop an update early once the mean approx KL of its optimizer steps so far exceeds this (0 = never;
    the study: never)"""
    bc_data: tuple[str, ...] = ()
    """co-training: demonstration datasets (e.g. the warm-up's demos and the robot-pretraining corpus) whose SFT
    loss joins every optimizer step, as the warm-up co-trains to keep its prior (InstructGPT's PPO-ptx); empty =
    off (the study). The small VLA's prior is fragile: RL on 32 scenes without it lowered held-out success. On
    the study's setting from the DAgger warm-up (0.281 over three evaluations), 204,800 env steps: 0.305 / 0.328
    with the warm-up's demos and corpus (two seeds, p 0.33) vs plain PPO's 0.273 over three seeds (p 0.25 between
    them). Paired with plain PPO on the same training scenes (another machine): ahead in updates 41-80 (p 0.027),
    behind in 81-160 (0.291 vs 0.320, p 0.020), and 0.367 vs 0.383 held out at 409,600 env steps; it holds the
    policy's entropy near the prior's (docs/measurements/rl-ladder.md): not a default"""
    bc_coef: float = 1.0
    """weight of the co-training SFT loss (--bc-data)"""
    bc_batch: int = 64
    """co-training samples per optimizer step, an equal share from each --bc-data set"""
    seed: int = 0
    """seed of action sampling, minibatch order and evaluation sampling"""
    eval_every: int = 10
    """rollouts between in-distribution evaluations at temperature 0.6 (0 = only at the end)"""
    eval_episodes: int = 32
    """pinned in-distribution episodes per evaluation (seed 1000; 0 = no evaluation, not even at the end:
    summary.json's eval_success is null; for a model measured afterwards with `rl4vla eval` on more episodes)"""
    eval_workers: int | Literal["auto"] = "auto"
    """env worker processes (or Ray actors, with --env.backend ray) for evaluation; auto = as --env.workers auto"""
    checkpoint_every: int = 1
    """rollouts between checkpoints"""
    snapshot_every: int = 0
    """rollouts between model snapshots kept as out/snapshots/model_<env steps>.pt (4 MB each; 0 = none): the
    held-out curve measured afterwards, on as many pinned episodes as needed (`rl4vla eval --policy ...`). One
    128-episode evaluation of the last model is not the run's curve: on R3 the same PPO run scored 0.461 at 204,800
    env steps and 0.352 at 409,600 (docs/measurements/rl-ladder.md)"""
    device: str = "auto"
    """where the policy acts, learns and is evaluated: auto (cuda when torch.cuda.is_available(), else cpu), cpu
    or cuda (an error when no GPU is present); rollouts are kept on the CPU and each minibatch is moved over.
    Checkpoints hold CPU tensors, so a run may resume on another device"""
    resume: bool = False
    """continue from out/checkpoint.pt (with the same settings; --env-steps may grow, and --env.workers,
    --eval-workers, threads, --checkpoint-every, --device and --env.backend/--env.ray-address may change)"""


# settings that do not change a run's result: a resumed run may use other values (config.json records them)
MAY_CHANGE_ON_RESUME = ("env_steps", "env.workers", "eval_workers", "torch_threads", "checkpoint_every",
                        "snapshot_every", "device",
                        "env.backend", "env.ray_address")

_DEBUG = RLConfig(preset="debug", env_steps=64, env=EnvArgs(num_envs=4, workers=0, image_size=None), num_steps=8,
                  max_episode_steps=8, minibatch_size=4, grad_accum=2, group_size=2, dpo_pairs_per_step=1, eval_every=0,
                  eval_episodes=4, eval_workers=0)
PRESETS: dict[str, dict[str, RLConfig]] = {
    "ppo": {"debug": dataclasses.replace(_DEBUG, algo="ppo", out="runs/ppo-debug"),
            "default": RLConfig(algo="ppo", out="runs/ppo")},
    "grpo": {"debug": dataclasses.replace(_DEBUG, algo="grpo", out="runs/grpo-debug"),
             "default": RLConfig(algo="grpo", out="runs/grpo", group_size=8)},
    "dpo": {"debug": dataclasses.replace(_DEBUG, algo="dpo", out="runs/dpo-debug"),
            "default": RLConfig(algo="dpo", out="runs/dpo", group_size=2)},
    "fbc": {"debug": dataclasses.replace(_DEBUG, algo="fbc", out="runs/fbc-debug", group_size=1),
            "default": RLConfig(algo="fbc", out="runs/fbc", group_size=1)},
}


def presets(algo: str) -> dict[str, RLConfig]:
    """The presets of an algorithm; ValueError naming the valid algorithms."""
    if algo not in PRESETS:
        raise ValueError(f"unknown algorithm {algo!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[algo]


def make_optimizer(model: SmallVLA, cfg: RLConfig) -> torch.optim.AdamW:
    """AdamW with two parameter groups: the value head at value_lr, everything else at policy_lr."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    value = [p for n, p in named if n.startswith("value_head.")]
    rest = [p for n, p in named if not n.startswith("value_head.")]
    return torch.optim.AdamW([{"params": rest, "lr": cfg.policy_lr}, {"params": value, "lr": cfg.value_lr}],
                             weight_decay=cfg.weight_decay)


def frozen(model: SmallVLA) -> SmallVLA:
    """A deep copy that never trains: no gradients, eval mode."""
    ref = copy.deepcopy(model)
    ref.requires_grad_(False)
    return ref.eval()


# ----- advantages ---------------------------------------------------------------------------
def _t(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x))


def _groups(cfg: RLConfig, n: int) -> int:
    """Trajectories per group: the whole batch when every row shares one initial state."""
    return n if cfg.same_init else cfg.group_size


def ppo_advantages(roll: Rollout, cfg: RLConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE advantages (T, N), normalised over the valid steps of the buffer, and value targets (T, N)."""
    term = roll.terminated if cfg.bootstrap_truncated else roll.terminated | roll.truncated
    adv, ret = L.gae(_t(roll.rewards), _t(roll.values), _t(term), _t(roll.truncated),
                     _t(roll.bootstrap), _t(roll.last_value), cfg.gamma, cfg.gae_lambda)
    if cfg.norm_adv:
        valid = _t(roll.valid)
        mean, std = adv[valid].mean(), adv[valid].std(unbiased=False)
        adv = (adv - mean) / (std + 1e-8)
    return adv, ret


def grpo_advantages(roll: Rollout, cfg: RLConfig) -> tuple[torch.Tensor, None]:
    """Each trajectory's (return - group mean) / group std, broadcast over its steps: (T, N)."""
    ret = _t(roll.trajectory_returns())  # (N,)
    per_traj = L.group_advantages(ret.view(-1, _groups(cfg, len(ret)))).view(-1)  # (N,)
    return L.broadcast_trajectory(per_traj, _t(roll.valid)), None


# ----- updates ------------------------------------------------------------------------------
def optimizer_steps(opt: torch.optim.Optimizer) -> int:
    """Optimizer steps taken so far (Adam's own count, so it resumes with the optimizer's state)."""
    first = opt.param_groups[0]["params"][0]
    return int(opt.state[first].get("step", 0)) if first in opt.state else 0


def _step(model: SmallVLA, opt: torch.optim.Optimizer, cfg: RLConfig, anchor: DemoBatches | None = None,
          stats: dict | None = None) -> float:
    """Add the co-training SFT loss (anchor), clip, set the policy lr of this optimizer step (cfg.policy_lr, which
    train_rl sets to the update's scheduled lr, times the linear warm-up over policy_lr_warmup steps), step."""
    done = optimizer_steps(opt)
    if anchor is not None and cfg.policy_lr:  # not during the critic warm-up: the policy stays where it is
        obs, tokens = anchor.batch(done)
        tokens = tokens.to(model.device)
        bc = sft_loss(model.logits(obs, tokens), tokens)
        (cfg.bc_coef * bc).backward()
        if stats is not None:
            stats["losses/bc"].append(bc.item())
    norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm)
    warm = min(1.0, (done + 1) / cfg.policy_lr_warmup) if cfg.policy_lr_warmup else 1.0
    opt.param_groups[0]["lr"] = cfg.policy_lr * warm
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(norm)


def shifted_obs(model: SmallVLA, obs: dict, rng: np.random.Generator, pad: int) -> dict:
    """obs with its frames shifted by up to `pad` pixels (shift_augment), and, for a frozen encoder, their
    features computed again (in the float16 form the rollout stores) in place of the unshifted ones."""
    rgb = shift_augment(np.asarray(obs["rgb"]), rng, pad)
    out = {**obs, "rgb": rgb, "image_features": None}
    if model.has_frozen_image_encoder:
        with torch.no_grad():
            out["image_features"] = model.frozen_features(rgb)
    return out


def surrogate_update(model: SmallVLA, opt: torch.optim.Optimizer, roll: Rollout, adv: torch.Tensor,
                     ret: torch.Tensor | None, cfg: RLConfig, rng: np.random.Generator,
                     mask: np.ndarray | None = None, anchor: DemoBatches | None = None,
                     ref: SmallVLA | None = None) -> dict:
    """Clipped-surrogate epochs over the valid samples of a rollout (PPO; GRPO when ret is None: no critic).

    adv, ret (T, N); mask (T, N) bool: train on these valid samples only (default: all). Each optimizer step
    averages minibatch_size x grad_accum samples. The model is put in train mode here: the study's public code
    left it in eval mode during updates (a bug). With target_kl > 0 the update stops after the optimizer
    step whose minibatches' mean approx KL exceeded it. With kl_coef > 0, `ref` (the starting policy) anchors
    every minibatch through kl_coef * KL(pi || ref). With aug_coef > 0 every minibatch also pays DrAC's
    regulariser: its policy and value on shifted frames are pulled towards those on the frames it saw. With
    cfg.policy_lr 0 (the critic warm-up) only the value loss (and the value's augmentation term) is minimised: the
    policy's terms are measured and logged, and left out of the gradient.
    """
    if cfg.kl_coef and ref is None:
        raise ValueError("kl_coef > 0 needs the reference policy (ref) to measure the KL from")
    model.train()
    keep = roll.valid if mask is None else roll.valid & mask
    samples = np.flatnonzero(keep.reshape(-1))  # flat t * N + n
    tokens = _t(roll.tokens.reshape(-1, roll.tokens.shape[-1]))  # (T*N, 7)
    per_token = cfg.ratio == "token"
    if per_token and roll.token_logprobs is None:
        raise ValueError("ratio 'token' needs the rollout's per-token behaviour log-probs (token_logprobs)")
    old_logp = _t(roll.token_logprobs.reshape(len(tokens), -1) if per_token else roll.logprobs.reshape(-1))
    old_v = _t(roll.values.reshape(-1))  # (T*N,)
    adv = adv.reshape(-1).float()
    ret = None if ret is None else ret.reshape(-1).float()
    # the rollout stays on the CPU (numpy); what the losses read is moved to the model's device once
    dev = model.device
    old_logp, old_v, adv_d = old_logp.to(dev), old_v.to(dev), adv.to(dev)
    ret_d = None if ret is None else ret.to(dev)
    per_step = cfg.minibatch_size * cfg.grad_accum
    stats: dict[str, list[float]] = defaultdict(list)
    opt.zero_grad(set_to_none=True)
    stopped, used = False, 0
    aug_rng = np.random.default_rng(rng.integers(2**63)) if cfg.aug_coef else None  # drawn only when on
    for _ in range(cfg.epochs):
        order = rng.permutation(samples)
        for s0 in range(0, len(order), per_step):
            chunk = order[s0 : s0 + per_step]
            step_kl = []
            for m0 in range(0, len(chunk), cfg.minibatch_size):
                mb = chunk[m0 : m0 + cfg.minibatch_size]
                obs = roll.obs(mb)
                logp, ent, v, dist = model.evaluate(obs, tokens[mb], cfg.temperature, per_dim=True, dist=True)
                surrogate = L.ppo_token_loss if per_token else L.ppo_policy_loss
                pg, clip_frac, kl = surrogate(logp if per_token else logp.sum(-1), old_logp[mb], adv_d[mb], cfg.clip)
                loss = pg - cfg.ent_coef * ent.sum(-1).mean()
                if not cfg.policy_lr:
                    loss = loss.detach()  # the critic warm-up: nothing moves the policy, nor Adam's moments of it
                if cfg.kl_coef and cfg.policy_lr:
                    with torch.no_grad():
                        ref_dist = ref.evaluate(obs, tokens[mb], cfg.temperature, dist=True)[3]
                    kl_init = L.token_kl(dist, ref_dist).mean()
                    loss = loss + cfg.kl_coef * kl_init
                    stats["losses/kl_init"].append(kl_init.item())
                if cfg.aug_coef:
                    _, _, v_aug, dist_aug = model.evaluate(shifted_obs(model, obs, aug_rng, cfg.aug_pad), tokens[mb],
                                                           cfg.temperature, dist=True)
                    aug_pi = L.token_kl(dist.detach(), dist_aug).mean()
                    aug_v = (v_aug - v.detach()).pow(2).mean()
                    loss = loss + cfg.aug_coef * ((aug_pi if cfg.policy_lr else aug_pi.detach())
                                                  + (aug_v if ret is not None else 0.0))
                    stats["losses/aug_policy"].append(aug_pi.item())
                    if ret is not None:
                        stats["losses/aug_value"].append(aug_v.item())
                if ret is not None:
                    vl = L.value_loss(v, old_v[mb], ret_d[mb], cfg.value_clip, cfg.huber_delta)
                    loss = loss + cfg.vf_coef * vl
                    stats["losses/value"].append(vl.item())
                (loss * len(mb) / len(chunk)).backward()  # the step's gradient is the mean over its samples
                stats["losses/policy"].append(pg.item())
                stats["losses/entropy"].append(ent.sum(-1).mean().item())
                for name, e in zip(ACTION_LAYOUT, ent.detach().mean(0).tolist()):
                    stats[f"entropy/{name}"].append(e)
                stats["losses/approx_kl"].append(kl.item())
                stats["losses/clip_frac"].append(clip_frac.item())
                step_kl.append(kl.item())
                used += len(mb)
            stats["losses/grad_norm"].append(_step(model, opt, cfg, anchor, stats))
            if cfg.target_kl and np.mean(step_kl) > cfg.target_kl:
                stopped = True
                break
        if stopped:
            break
    out = {k: float(np.mean(v)) for k, v in stats.items()}
    if ret is not None:
        valid = _t(roll.valid)
        out["losses/explained_variance"] = L.explained_variance(_t(roll.values)[valid], ret.view(valid.shape)[valid])
    out["train/update_samples"] = used
    out["train/optimizer_steps"] = len(stats["losses/grad_norm"])
    out["train/early_stop"] = float(stopped)
    return out


def _trajectory_logp(model: SmallVLA, roll: Rollout, rows: list[int], temperature: float) -> torch.Tensor:
    """(len(rows),) log-probs of each row's trajectory, summed over all tokens of all its valid steps, under the
    collection temperature's distribution."""
    n = roll.valid.shape[1]
    idx = [np.flatnonzero(roll.valid[:, r]) * n + r for r in rows]
    flat = np.concatenate(idx)
    logp = model.evaluate(roll.obs(flat), _t(roll.tokens.reshape(-1, roll.tokens.shape[-1])[flat]), temperature)[0]
    return torch.stack([part.sum() for part in logp.split([len(i) for i in idx])])


def _reference_logp(ref: SmallVLA | None, roll: Rollout, rows: list[int], cfg: RLConfig,
                    device: torch.device | None = None) -> dict[int, torch.Tensor]:
    """row -> () the reference's trajectory log-prob: the frozen starting policy's (dpo_reference "init"), or the
    behaviour log-probs recorded while collecting ("rollout"), on `device` (the trained model's)."""
    if cfg.dpo_reference == "rollout":
        per_row = _t((roll.logprobs * roll.valid).sum(0)).float().to(device)  # (N,)
        return {r: per_row[r] for r in rows}
    with torch.no_grad():
        return dict(zip(rows, _trajectory_logp(ref, roll, rows, cfg.temperature)))


DPO_NORMALIZE = {"none": 0, "step": 1, "token": ACTION_DIM}  # tokens per step in the divisor (0: no divisor)


def dpo_scale(roll: Rollout, rows: list[int], normalize: str) -> torch.Tensor:
    """(len(rows),) what each row's trajectory log-prob is divided by: 1, its valid steps, or its tokens."""
    per_step = DPO_NORMALIZE[normalize]
    if per_step == 0:
        return torch.ones(len(rows))
    return torch.as_tensor(roll.valid[:, rows].sum(0) * per_step, dtype=torch.float32).clamp(min=1.0)


def dpo_update(model: SmallVLA, ref: SmallVLA | None, opt: torch.optim.Optimizer, roll: Rollout, cfg: RLConfig,
               rng: np.random.Generator, anchor: DemoBatches | None = None) -> dict:
    """One round of trajectory-wise DPO on the preference pairs of a rollout of the current policy."""
    model.train()
    pairs = L.preference_pairs(roll.trajectory_returns(), _groups(cfg, roll.valid.shape[1]))
    out: dict[str, float] = {"train/dpo_pairs": len(pairs), "train/update_samples": 0}
    if not pairs:
        return out
    rows = sorted({r for p in pairs for r in p})
    scale = dict(zip(rows, dpo_scale(roll, rows, cfg.dpo_normalize).to(model.device)))
    ref_logp = {r: lp / scale[r] for r, lp in _reference_logp(ref, roll, rows, cfg, model.device).items()}
    stats: dict[str, list[float]] = defaultdict(list)
    opt.zero_grad(set_to_none=True)
    for _ in range(cfg.epochs):
        order = rng.permutation(len(pairs))
        for c0 in range(0, len(order), cfg.dpo_pairs_per_step):
            chunk = order[c0 : c0 + cfg.dpo_pairs_per_step]
            for k in chunk:
                w, lo = pairs[k]
                lw, ll = _trajectory_logp(model, roll, [w, lo], cfg.temperature) / torch.stack([scale[w], scale[lo]])
                loss, acc = L.dpo_loss(lw[None], ref_logp[w][None], ll[None], ref_logp[lo][None], cfg.dpo_beta)
                (loss / len(chunk)).backward()
                stats["losses/dpo"].append(loss.item())
                stats["losses/dpo_accuracy"].append(acc.item())
                out["train/update_samples"] += int(roll.valid[:, [w, lo]].sum())
            stats["losses/grad_norm"].append(_step(model, opt, cfg, anchor, stats))
    return out | {k: float(np.mean(v)) for k, v in stats.items()}


@dataclass(frozen=True)
class Algo:
    """What distinguishes an algorithm: data, not a subclass."""

    grouped: bool  # rows come in groups sharing an initial state, one whole trajectory per row
    update: Callable[..., dict]  # (model, ref, opt, rollout, cfg, rng, anchor) -> metrics
    min_group: int = 2  # trajectories a group needs (grouped algorithms)
    critic: bool = False  # it trains the value head (advantages from GAE over its values)


def _ppo(model, ref, opt, roll, cfg, rng, anchor=None) -> dict:
    return surrogate_update(model, opt, roll, *ppo_advantages(roll, cfg), cfg, rng, anchor=anchor, ref=ref)


def _grpo(model, ref, opt, roll, cfg, rng, anchor=None) -> dict:
    return surrogate_update(model, opt, roll, *grpo_advantages(roll, cfg), cfg, rng, anchor=anchor, ref=ref)


SUCCESS_REWARD = 1.0  # the success term of the task's potential (bench/task.py): a return >= it means success


def _fbc(model, ref, opt, roll, cfg, rng, anchor=None) -> dict:
    """Filtered behaviour cloning: every step of a successful trajectory gets advantage 1, the rest are
    left out; through the clipped surrogate, whose ratio clip bounds how far one round moves the policy."""
    won = roll.trajectory_returns() >= SUCCESS_REWARD  # (N,) the potential includes 1.0 only with success
    mask = np.broadcast_to(won[None], roll.valid.shape)
    out = {"train/fbc_successes": int(won.sum()), "train/update_samples": 0}
    if won.any():
        out |= surrogate_update(model, opt, roll, _t(mask.astype(np.float32)), None, cfg, rng, mask, anchor, ref)
    return out


ALGOS = {"ppo": Algo(grouped=False, update=_ppo, critic=True), "grpo": Algo(grouped=True, update=_grpo),
         "dpo": Algo(grouped=True, update=dpo_update), "fbc": Algo(grouped=True, update=_fbc, min_group=1)}


# ----- the trainer --------------------------------------------------------------------------
def _validate(cfg: RLConfig) -> Algo:
    presets(cfg.algo)  # ValueError naming the valid algorithms
    algo = ALGOS[cfg.algo]
    if not cfg.init:
        raise ValueError("pass --init CKPT: the SFT checkpoint RL starts from (e.g. runs/warmup/model.pt)")
    check_at_least(cfg, ("env_steps", "env.num_envs", "num_steps", "max_episode_steps", "minibatch_size",
                         "grad_accum", "epochs", "dpo_pairs_per_step", "checkpoint_every"))
    check_at_least(cfg, ("eval_every", "eval_episodes", "episode_pool", "torch_threads", "snapshot_every"), 0)
    if cfg.encoder_train_blocks is not None and cfg.encoder_train_blocks < 0:
        raise ValueError(f"--encoder-train-blocks must be >= 0 (0 = all frozen), got {cfg.encoder_train_blocks}")
    for name in ("kl_coef", "aug_coef"):  # terms of the clipped-surrogate loss, which DPO does not minimise
        coef = getattr(cfg, name)
        if coef < 0 or (coef and cfg.algo == "dpo"):
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, and applies to ppo, grpo and fbc (the "
                             f"surrogate algorithms; DPO's reference is --dpo-reference); got {coef} for {cfg.algo}")
    if cfg.aug_pad < 1:
        raise ValueError(f"--aug-pad is the largest shift in pixels and must be >= 1, got {cfg.aug_pad}")
    check_workers(cfg.env.workers)
    check_workers(cfg.eval_workers, "--eval-workers")
    check_seed(cfg.seed)
    check_seed(cfg.episode_seed, "--episode-seed")
    check_backend(cfg.env.backend)
    if cfg.policy_lr <= 0:
        raise ValueError(f"--policy-lr must be > 0, got {cfg.policy_lr} (to hold the policy still while the value "
                         f"head learns, use --critic-warmup N)")
    if cfg.temperature <= 0:
        raise ValueError(f"temperature must be > 0 to collect (RL needs a sampling policy), got {cfg.temperature}")
    n = cfg.env.num_envs
    if algo.grouped and not cfg.same_init and (cfg.group_size < algo.min_group or n % cfg.group_size):
        raise ValueError(f"{cfg.algo} needs group_size >= {algo.min_group} dividing num_envs; got group_size "
                         f"{cfg.group_size}, num_envs {n}")
    if cfg.ratio not in ("action", "token"):
        raise ValueError(f"unknown ratio {cfg.ratio!r}; valid: action, token")
    if cfg.dpo_normalize not in DPO_NORMALIZE:
        raise ValueError(f"unknown dpo_normalize {cfg.dpo_normalize!r}; valid: {', '.join(DPO_NORMALIZE)}")
    if cfg.dpo_reference not in ("init", "rollout"):
        raise ValueError(f"unknown dpo_reference {cfg.dpo_reference!r}; valid: init, rollout")
    if cfg.bc_data and cfg.bc_batch < len(cfg.bc_data):
        raise ValueError(f"--bc-batch must be >= the number of --bc-data sets ({len(cfg.bc_data)}), got {cfg.bc_batch}")
    if not 0 <= cfg.policy_lr_end <= 1:
        raise ValueError(f"--policy-lr-end is the final lr as a fraction of --policy-lr, in [0, 1] (1 = constant, the "
                         f"study's); got {cfg.policy_lr_end}")
    if cfg.critic_warmup and not algo.critic:
        raise ValueError(f"--critic-warmup trains the value head, and {cfg.algo} has none; algorithms with a "
                         f"critic: {', '.join(k for k, a in ALGOS.items() if a.critic)}")
    for name in ("policy_lr_warmup", "target_kl", "bc_coef", "critic_warmup"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0 (0 = off), got {getattr(cfg, name)}")
    return algo


def scheduled_policy_lr(cfg: RLConfig, env_steps: int, updates: int = 0) -> float:
    """The policy lr of the update that starts after `env_steps` env steps and `updates` updates: 0 during the
    critic warm-up (the first cfg.critic_warmup updates), else linear from cfg.policy_lr at 0 env steps to
    cfg.policy_lr_end x cfg.policy_lr at cfg.env_steps, constant after."""
    if updates < cfg.critic_warmup:
        return 0.0
    frac = min(1.0, env_steps / cfg.env_steps)
    return cfg.policy_lr * (1.0 - (1.0 - cfg.policy_lr_end) * frac)


def iteration(env, model: SmallVLA, ref: SmallVLA | None, opt: torch.optim.Optimizer, stream: EpisodeStream,
              cfg: RLConfig, update_index: int, anchor: DemoBatches | None = None) -> tuple[Rollout, dict, float]:
    """One rollout of the current policy on `env` from the stream's next episodes, then the algorithm's update
    (with the co-training batches of `anchor`, if any). Returns the rollout, the update's metrics and the time
    (perf_counter) at which collection ended."""
    algo = ALGOS[cfg.algo]
    if algo.grouped:
        eps = stream.draw_grouped(cfg.env.num_envs, cfg.group_size, cfg.same_init)
        roll = collect(env, model, eps, cfg.max_episode_steps, cfg.temperature)
    else:
        roll = collect(env, model, stream.draw(cfg.env.num_envs), cfg.num_steps, cfg.temperature, stream.refill)
    t_collected = time.perf_counter()
    metrics = algo.update(model, ref, opt, roll, cfg, np.random.default_rng([cfg.seed, update_index]), anchor)
    return roll, metrics, t_collected


def episode_metrics(roll: Rollout) -> dict:
    """Success and return of the rollout's finished episodes that began at its first step (train/success,
    train/return, train/episodes): every one of those finishes within the rollout, so their mean is unbiased. A
    row refilled mid-rollout (PPO, when --num-steps exceeds --max-episode-steps) counts only if its new episode
    ends before the rollout does; train/success_with_refills counts those too (the train/success of runs before
    2026-12-08). With the defaults (80-step rollouts of 80-step episodes) no row is refilled and the two agree."""
    first = np.asarray(roll.episode_initial, bool)
    success, ret = np.asarray(roll.episode_success, float), np.asarray(roll.episode_return, float)
    out = {"train/episodes": int(first.sum()), "train/refill_episodes": int((~first).sum())}
    if first.any():
        out |= {"train/success": float(success[first].mean()), "train/return": float(ret[first].mean())}
    if len(success):
        out["train/success_with_refills"] = float(success.mean())
    return out


def _evaluate(model: SmallVLA, cfg: RLConfig) -> float:
    """In-distribution success at temperature 0.6, with its own RNG so the training stream is untouched (the GPU's
    generator too, where the model samples on one)."""
    dev = model.device
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        return evaluate_in_distribution(model, cfg.eval_episodes, cfg.eval_workers, model.cfg.image_size,
                                        cfg.env.backend, cfg.env.ray_address)


def train_rl(cfg: RLConfig) -> dict:
    """Run RL fine-tuning; returns (and writes to out/summary.json) the run summary."""
    from rl4vla.bench.conditions import resolve_conditions
    from rl4vla.bench.env import TabletopVecEnv, env_config

    _validate(cfg)
    dev, run, ck = open_run(cfg, MAY_CHANGE_ON_RESUME)  # refuses other settings (--init, --policy-lr, ...)
    ckpt_path = run / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    model = SmallVLA.load(cfg.init)
    if cfg.encoder_train_blocks is not None:
        model = model.with_trainable_encoder_blocks(cfg.encoder_train_blocks)
    model = model.to(dev)
    # the starting policy: DPO's reference, or the anchor of the KL penalty
    ref = frozen(model) if (cfg.algo == "dpo" and cfg.dpo_reference == "init") or cfg.kl_coef else None
    c = {"updates": 0, "env_steps": 0, "episode_index": 0, "refill_index": 0, "wall_s": 0.0, "sim_s": 0.0,
         "policy_s": 0.0, "update_s": 0.0, "eval_s": 0.0, "update_samples": 0}
    if ck is not None:
        model = SmallVLA.from_state(ck["model"]).to(dev)
        c = ck["counters"]
    for name in ("value_detach", "binary_gripper"):  # RL-time choices saved with the model, not weights
        if getattr(cfg, name) is not None:
            model.cfg = dataclasses.replace(model.cfg, **{name: getattr(cfg, name)})
    opt = make_optimizer(model, cfg)
    if ck is not None:
        restore(ck, opt, dev)
    write_json(run / "config.json", cfg)
    cond = resolve_conditions([cfg.condition])[0]
    stream = EpisodeStream(cond, cfg.episode_seed, c["episode_index"], cfg.episode_pool, c.get("refill_index", 0))
    anchor = DemoBatches(model, cfg.bc_data, cfg.bc_batch, cfg.seed, run / "bc_features_") if cfg.bc_data else None
    env = TabletopVecEnv(env_config(cfg.env, image_size=cfg.env.image_size or model.cfg.image_size,
                                    max_steps=cfg.max_episode_steps), [cond])
    logger = RunLogger(run, None if ck is None else c["env_steps"], episodes=True)  # drops rows logged after ck
    bar = tqdm(total=cfg.env_steps, initial=min(c["env_steps"], cfg.env_steps), unit="step",
               desc=f"{cfg.algo} {cfg.preset}")
    t_session, wall0 = time.perf_counter(), c["wall_s"]
    threads = torch.get_num_threads()
    torch.set_num_threads(auto_threads(cfg.torch_threads))

    def save():
        c["wall_s"] = wall0 + time.perf_counter() - t_session
        save_checkpoint(ckpt_path, cfg, model, opt, dev, counters=dict(c))

    try:
        evals = cfg.eval_every if cfg.eval_episodes else 0
        if evals and c["env_steps"] == 0 and c["updates"] == 0:  # the curve starts at the initial policy
            t3 = time.perf_counter()
            logger.log(0, {"eval/success": _evaluate(model, cfg), "train/env_steps": 0})
            c["eval_s"] += time.perf_counter() - t3
        while c["env_steps"] < cfg.env_steps:
            t0 = time.perf_counter()
            ucfg = dataclasses.replace(cfg, policy_lr=scheduled_policy_lr(cfg, c["env_steps"], c["updates"]))
            roll, metrics, t1 = iteration(env, model, ref, opt, stream, ucfg, c["updates"], anchor)
            metrics["train/policy_lr"] = ucfg.policy_lr
            t2 = time.perf_counter()
            c["updates"] += 1
            c["env_steps"] += roll.env_steps
            c["episode_index"], c["refill_index"] = stream.index, stream.refill_index
            c["sim_s"] += roll.sim_s
            c["policy_s"] += roll.policy_s
            c["update_s"] += t2 - t1
            c["update_samples"] += metrics["train/update_samples"]
            metrics |= episode_metrics(roll)
            metrics |= {"train/updates": c["updates"],
                        "train/env_steps": c["env_steps"],
                        "time/rollout_s": t1 - t0, "time/sim_s": roll.sim_s, "time/policy_s": roll.policy_s,
                        "time/update_s": t2 - t1, "time/env_steps_per_s": roll.env_steps / (t1 - t0),
                        "time/update_samples_per_s": metrics["train/update_samples"] / max(t2 - t1, 1e-9)}
            logger.log(c["env_steps"], metrics)
            logger.log_episodes(c["env_steps"], c["updates"], roll.initial_outcomes())
            bar.update(min(c["env_steps"], cfg.env_steps) - bar.n)
            bar.set_postfix({k.split("/")[1]: f"{metrics[k]:.3g}" for k in (
                "train/success", "losses/policy", "losses/dpo", "time/env_steps_per_s") if k in metrics})
            done = c["env_steps"] >= cfg.env_steps
            if cfg.snapshot_every and c["updates"] % cfg.snapshot_every == 0:
                model.save(str(run / "snapshots" / f"model_{c['env_steps']}.pt"))
            if c["updates"] % cfg.checkpoint_every == 0 or done:
                save()
            if evals and c["updates"] % evals == 0 and not done:
                t3 = time.perf_counter()
                logger.log(c["env_steps"], {"eval/success": _evaluate(model, cfg)})
                c["eval_s"] += time.perf_counter() - t3
        env.close()
        model.save(str(run / "model.pt"))
        final = None
        if cfg.eval_episodes:
            t3 = time.perf_counter()
            final = _evaluate(model, cfg)
            c["eval_s"] += time.perf_counter() - t3
            logger.log(c["env_steps"], {"eval/success": final})
    finally:
        env.close()
        bar.close()
        logger.close()
        torch.set_num_threads(threads)
    wall = wall0 + time.perf_counter() - t_session
    summary = {"algo": cfg.algo, "env_steps": c["env_steps"], "updates": c["updates"], "wall_s": wall,
               "eval_success": final, "model": str(run / "model.pt"),
               "time": {k: c[k] for k in ("sim_s", "policy_s", "update_s", "eval_s")},
               "update_samples_per_s": c["update_samples"] / max(c["update_s"], 1e-9)}
    write_json(run / "summary.json", summary)
    return summary
