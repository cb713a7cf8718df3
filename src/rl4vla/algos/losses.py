"""Pure RL loss functions with explicit shapes: GAE, PPO (policy + value), GRPO group advantages, DPO.

Every function checks its input shapes and raises ValueError on a mismatch: torch would
otherwise broadcast e.g. advantages (B, 1) against log-probs (B,) into a silent (B, B) loss.
Shapes: T = steps, N = env rows, B = samples, P = preference pairs, G = group size, D = action dimensions
(tokens per action), K = token bins.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _check(name: str, x: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")


def _length(name: str, x: torch.Tensor, dim: str) -> int:
    """The length of a 1-D tensor, or ValueError naming the expected shape."""
    if x.ndim != 1:
        raise ValueError(f"{name} must have shape ({dim},), got {tuple(x.shape)}")
    return x.shape[0]


def gae(rewards: torch.Tensor, values: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
        bootstrap: torch.Tensor, last_value: torch.Tensor, gamma: float = 0.99,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a rollout of T steps and N env rows.

    rewards, values (T, N): r_t and V(s_t). terminated, truncated (T, N) bool: the episode ended after
    step t. bootstrap (T, N): V(final obs) where truncated (read only there). last_value (N,): V of the
    obs after the last step, used where the last step did not end the episode.
    A termination has no future (next value 0); a truncation's future is its bootstrap value; either
    way the advantage trace is cut there. Returns advantages (T, N) and returns = advantages + values.
    """
    t_len, n = rewards.shape
    for name, x in (("values", values), ("terminated", terminated), ("truncated", truncated),
                    ("bootstrap", bootstrap)):
        _check(name, x, (t_len, n))
    _check("last_value", last_value, (n,))
    term, trunc = terminated.bool(), truncated.bool() & ~terminated.bool()
    done = (term | trunc).to(values.dtype)  # (T, N)
    adv = torch.zeros_like(values)
    running = torch.zeros_like(last_value)  # (N,) advantage of step t+1
    for t in reversed(range(t_len)):
        following = values[t + 1] if t + 1 < t_len else last_value  # (N,) V(s_{t+1}) if the episode goes on
        next_v = torch.where(term[t], torch.zeros_like(following), torch.where(trunc[t], bootstrap[t], following))
        delta = rewards[t] + gamma * next_v - values[t]
        running = delta + gamma * lam * (1.0 - done[t]) * running
        adv[t] = running
    return adv, adv + values


def ppo_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                    clip: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate on log-probs summed over the 7 action tokens.

    logp (B,) under the current policy (with grad), old_logp (B,) of the behaviour policy, advantages (B,).
    Returns (loss, clip fraction, approx KL), the KL being the low-variance estimator mean((r - 1) - log r).
    """
    b = _length("logp", logp, "B")
    _check("old_logp", old_logp, (b,))
    _check("advantages", advantages, (b,))
    log_ratio = logp - old_logp.detach()  # (B,)
    ratio = log_ratio.exp()
    surr = torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages)
    with torch.no_grad():
        clip_frac = ((ratio - 1.0).abs() > clip).float().mean()
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
    return -surr.mean(), clip_frac, approx_kl


def ppo_token_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                   clip: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate with a ratio per action token, summed over the D tokens of each action.

    logp (B, D) per-token log-probs under the current policy (with grad), old_logp (B, D) of the behaviour
    policy, advantages (B,) shared by the D tokens of a sample. Before any clipping its gradient equals
    `ppo_policy_loss`'s on the summed log-probs; past the clip only the tokens that moved too far stop
    contributing, not the whole action. Returns (loss, fraction of tokens clipped, approx KL per action:
    the per-token estimator summed over D, averaged over B).
    """
    if logp.ndim != 2:
        raise ValueError(f"logp must have shape (B, D), got {tuple(logp.shape)}")
    b, d = logp.shape
    _check("old_logp", old_logp, (b, d))
    _check("advantages", advantages, (b,))
    log_ratio = logp - old_logp.detach()  # (B, D)
    ratio = log_ratio.exp()
    a = advantages[:, None]  # (B, 1)
    surr = torch.minimum(ratio * a, ratio.clamp(1.0 - clip, 1.0 + clip) * a)  # (B, D)
    with torch.no_grad():
        clip_frac = ((ratio - 1.0).abs() > clip).float().mean()
        approx_kl = ((ratio - 1.0) - log_ratio).sum(1).mean()
    return -surr.sum(1).mean(), clip_frac, approx_kl


def token_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Exact KL(pi || ref) of each action's token distributions, summed over its D tokens: (B,).

    logp, ref_logp (B, D, K): log-probabilities over the K bins of each token (log_softmax, at the same
    temperature). Exact over the bins, so it is >= 0 and 0 only where the distributions agree."""
    if logp.ndim != 3:
        raise ValueError(f"logp must have shape (B, D, K), got {tuple(logp.shape)}")
    _check("ref_logp", ref_logp, logp.shape)
    return (logp.exp() * (logp - ref_logp)).sum(-1).sum(-1)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float = 0.2,
               delta: float = 10.0) -> torch.Tensor:
    """Clipped Huber value loss: mean over B of max(huber(v - R), huber(v_clipped - R)).

    values (B,) with grad; old_values (B,) predicted at collection; returns (B,) targets.
    v_clipped = old + clamp(v - old, -clip, clip) keeps the critic near its collection-time values.
    """
    b = _length("values", values, "B")
    _check("old_values", old_values, (b,))
    _check("returns", returns, (b,))
    old = old_values.detach()
    clipped = old + (values - old).clamp(-clip, clip)
    plain = F.huber_loss(values, returns, reduction="none", delta=delta)
    capped = F.huber_loss(clipped, returns, reduction="none", delta=delta)
    return torch.maximum(plain, capped).mean()


def group_advantages(returns: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """GRPO: (returns - group mean) / group std, within each group only.

    returns (n_groups, G), one row per group of trajectories from the same initial state.
    Uses the population std; a group whose returns are all equal gets zero advantages.
    """
    if returns.ndim != 2 or returns.shape[1] < 2:
        raise ValueError(f"returns must have shape (n_groups, G) with G >= 2, got {tuple(returns.shape)}")
    mean = returns.mean(1, keepdim=True)  # (n_groups, 1)
    std = returns.std(1, unbiased=False, keepdim=True)
    return (returns - mean) / (std + eps)


def broadcast_trajectory(per_trajectory: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """A per-trajectory value (N,) copied onto every valid step of its row: (T, N), zero where invalid."""
    if valid.ndim != 2:
        raise ValueError(f"valid must have shape (T, N), got {tuple(valid.shape)}")
    _check("per_trajectory", per_trajectory, (valid.shape[1],))
    return per_trajectory[None, :].expand_as(valid) * valid.to(per_trajectory.dtype)


def preference_pairs(returns: np.ndarray, group_size: int) -> list[tuple[int, int]]:
    """(winner row, loser row) pairs within each group of consecutive rows: the best with the worst, the
    second best with the second worst, ...; ties are skipped."""
    pairs = []
    for g0 in range(0, len(returns), group_size):
        rows = g0 + np.argsort(-returns[g0 : g0 + group_size], kind="stable")
        for i in range(len(rows) // 2):
            w, lo = int(rows[i]), int(rows[-1 - i])
            if returns[w] > returns[lo]:
                pairs.append((w, lo))
    return pairs


def dpo_loss(logp_w: torch.Tensor, ref_logp_w: torch.Tensor, logp_l: torch.Tensor, ref_logp_l: torch.Tensor,
             beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Trajectory-wise DPO: -log sigmoid(beta * [(logpi - logpi_ref)(w) - (logpi - logpi_ref)(l)]).

    All inputs (P,): trajectory log-probs of the winner (w) and loser (l), under the policy (with grad) and
    the reference: summed over every token of every step (the study's), or divided by the trajectory's steps
    or tokens by the caller (`--dpo-normalize`). Returns (mean loss, fraction of
    pairs whose implicit reward margin is positive).
    """
    p = _length("logp_w", logp_w, "P")
    for name, x in (("ref_logp_w", ref_logp_w), ("logp_l", logp_l), ("ref_logp_l", ref_logp_l)):
        _check(name, x, (p,))
    margin = beta * ((logp_w - ref_logp_w.detach()) - (logp_l - ref_logp_l.detach()))  # (P,)
    return -F.logsigmoid(margin).mean(), (margin.detach() > 0).float().mean()


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var(target - pred) / Var(target): 1 = perfect critic, 0 = no better than a constant."""
    _check("pred", pred, tuple(target.shape))
    var = target.var(unbiased=False)
    return float("nan") if var <= 0 else float(1.0 - (target - pred).var(unbiased=False) / var)
