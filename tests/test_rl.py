"""RL: GAE, PPO/GRPO/DPO losses and updates, rollouts with partial resets, the trainer end to end with resume."""

import copy
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rl4vla.algos import losses as L
from rl4vla.algos import rl
from rl4vla.algos.rollout import EpisodeStream, Rollout, collect
from rl4vla.bench.conditions import CONDITIONS, sample_episodes
from rl4vla.bench.contract import ACTION_LAYOUT
from rl4vla.cli import main
from rl4vla.config import EnvArgs
from rl4vla.policy.tokenizer import ActionTokenizer
from rl4vla.policy.vla import SmallVLA, VLAConfig
from rl4vla.sim import assets as A
from rl4vla.sim import catalog as C

CFG = VLAConfig(image_size=32, d_model=32, layers=1, heads=2, patch_grid=2)
RL_ENV = EnvArgs(num_envs=4, workers=0, image_size=None)  # at the policy's input size
TEXTS = [C.TRAIN_TEMPLATE.format(object=o, receptacle=r)
         for o in A.split_names(C.OBJECTS, "train") for r in A.split_names(C.RECEPTACLES, "train")]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(seed=0):
    """A tiny VLA whose text cache holds every in-distribution instruction (no MiniLM load)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(0)
    cache = {t: rng.normal(size=384).astype(np.float32) for t in TEXTS}
    tok = ActionTokenizer(tuple([-0.02] * 6 + [-1.0]), tuple([0.02] * 6 + [1.0]))
    return SmallVLA(CFG, tok, cache)


def make_rollout(model, t_len=4, n=2, seed=0, rewards=None, temperature=1.0):
    """A synthetic rollout: random frames, tokens sampled by the model (so old log-probs are exact)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (t_len, n, 32, 32, 3), dtype=np.uint8)
    instr = [[TEXTS[j % len(TEXTS)] for j in range(n)] for _ in range(t_len)]
    proprio = rng.normal(size=(t_len, n, 10)).astype(np.float32)
    model.eval()
    obs = {"rgb": rgb.reshape(-1, 32, 32, 3), "instruction": sum(instr, []), "proprio": proprio.reshape(-1, 10)}
    out = model.act(obs, temperature)
    z = np.zeros((t_len, n), np.float32)
    term = np.zeros((t_len, n), bool)
    trunc = term.copy()
    trunc[-1] = True
    return Rollout(rgb=rgb, instructions=instr, proprio=proprio, tokens=out.tokens.reshape(t_len, n, 7),
                   logprobs=out.logprob.reshape(t_len, n).astype(np.float32),
                   values=out.value.reshape(t_len, n).astype(np.float32),
                   rewards=z.copy() if rewards is None else np.asarray(rewards, np.float32), terminated=term,
                   truncated=trunc, bootstrap=z.copy(), last_value=np.zeros(n, np.float32),
                   valid=np.ones((t_len, n), bool), initial=[],
                   token_logprobs=out.extras["token_logprobs"].reshape(t_len, n, 7).astype(np.float32))


# ----- GAE --------------------------------------------------------------------------------
def test_gae_matches_a_reference_loop_with_terminations_and_truncation_bootstrap():
    rng = np.random.default_rng(0)
    t_len, n, gamma, lam = 7, 3, 0.9, 0.8
    r, v, boot, last = rng.normal(size=(t_len, n)), rng.normal(size=(t_len, n)), rng.normal(size=(t_len, n)), \
        rng.normal(size=n)
    term, trunc = np.zeros((t_len, n), bool), np.zeros((t_len, n), bool)
    term[2, 0] = True
    trunc[4, 1] = True
    trunc[1, 2] = term[5, 2] = True
    ref = np.zeros((t_len, n))
    for j in range(n):
        running = 0.0
        for t in reversed(range(t_len)):
            if term[t, j]:
                next_v, cont = 0.0, 0.0
            elif trunc[t, j]:
                next_v, cont = boot[t, j], 0.0
            else:
                next_v, cont = (v[t + 1, j] if t + 1 < t_len else last[j]), 1.0
            running = r[t, j] + gamma * next_v - v[t, j] + gamma * lam * cont * running
            ref[t, j] = running
    f = torch.as_tensor
    adv, ret = L.gae(f(r), f(v), f(term), f(trunc), f(boot), f(last), gamma, lam)
    np.testing.assert_allclose(adv.numpy(), ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ret.numpy(), ref + v, rtol=1e-6, atol=1e-9)
    # lambda = 1: the advantage is the discounted return to the episode's end (+ bootstrap) minus V
    adv1, _ = L.gae(f(r), f(v), f(term), f(trunc), f(boot), f(last), gamma, 1.0)
    mc = sum(gamma**k * r[k, 1] for k in range(5)) + gamma**5 * boot[4, 1]
    assert adv1[0, 1].item() == pytest.approx(mc - v[0, 1])
    mc = sum(gamma**k * r[3 + k, 0] for k in range(4)) + gamma**4 * last[0]
    assert adv1[3, 0].item() == pytest.approx(mc - v[3, 0])


def test_ppo_advantages_bootstrap_truncations_unless_told_to_treat_them_as_terminal():
    roll = make_rollout(make_model(), t_len=3, n=2, rewards=[[0, 0], [0, 0], [1.0, 0]])
    roll.bootstrap[-1] = [5.0, 5.0]
    cfg = rl.RLConfig(norm_adv=False, gamma=0.5, gae_lambda=1.0)
    _, ret = rl.ppo_advantages(roll, cfg)
    assert ret[2].tolist() == pytest.approx([1.0 + 0.5 * 5.0, 0.5 * 5.0])
    _, ret = rl.ppo_advantages(roll, dataclasses.replace(cfg, bootstrap_truncated=False))
    assert ret[2].tolist() == pytest.approx([1.0, 0.0]) and ret[0].tolist() == pytest.approx([0.25, 0.0])


# ----- losses -----------------------------------------------------------------------------
def test_ppo_policy_loss_equals_a_hand_computed_value():
    logp = torch.log(torch.tensor([1.0, 1.5, 0.5]))  # ratios 1, 1.5, 0.5 against old log-probs 0
    loss, clip_frac, kl = L.ppo_policy_loss(logp, torch.zeros(3), torch.tensor([1.0, 1.0, -1.0]), clip=0.2)
    # min(r A, clip(r) A) = 1, min(1.5, 1.2) = 1.2, min(-0.5, -0.8) = -0.8
    assert loss.item() == pytest.approx(-(1.0 + 1.2 - 0.8) / 3)
    assert clip_frac.item() == pytest.approx(2 / 3)
    assert kl.item() == pytest.approx(((0.5 - np.log(1.5)) + (-0.5 - np.log(0.5))) / 3)


def test_value_loss_is_the_max_of_clipped_and_plain_huber():
    old, ret = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 30.0])
    v = torch.tensor([0.5, 1.0, 0.1])
    # row 0: plain 0.125, clipped (0.2) 0.32 -> 0.32; row 1: plain 0.5, clipped 0.02 -> 0.5;
    # row 2 (Huber's linear part): plain 10 * (29.9 - 5) = 249, clipped 10 * (29.9 - 5) = 249
    expect = (0.32 + 0.5 + 249.0) / 3
    assert L.value_loss(v, old, ret, clip=0.2, delta=10.0).item() == pytest.approx(expect)


def test_wrong_shapes_raise_instead_of_broadcasting():
    logp = torch.zeros(4)
    with pytest.raises(ValueError, match="advantages"):
        L.ppo_policy_loss(logp, torch.zeros(4), torch.zeros(4, 1))  # torch would make a silent (4, 4)
    with pytest.raises(ValueError, match="returns"):
        L.value_loss(logp, logp, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="per_trajectory"):
        L.broadcast_trajectory(torch.zeros(3), torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="last_value"):
        z = torch.zeros(5, 3)
        L.gae(z, z, z.bool(), z.bool(), z, torch.zeros(5))
    with pytest.raises(ValueError, match="ref_logp_l"):
        L.dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2, 1))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_one_step_with_positive_advantage_raises_the_taken_tokens_logprob(sign):
    model = make_model()
    roll = make_rollout(model, t_len=2, n=4)
    obs, tokens = roll.obs(np.arange(8)), torch.as_tensor(roll.tokens.reshape(-1, 7))
    opt = rl.make_optimizer(model, rl.RLConfig())
    model.train()
    before = model.evaluate(obs, tokens)[0].detach()
    loss, _, _ = L.ppo_policy_loss(model.evaluate(obs, tokens)[0], before, torch.full((8,), sign))
    loss.backward()
    opt.step()
    after = model.evaluate(obs, tokens)[0].detach()
    assert (sign * (after - before) > 0).all()


def test_value_loss_gradients_reach_only_the_value_head():
    model = make_model()
    roll = make_rollout(model)
    obs, tokens = roll.obs(np.arange(8)), torch.as_tensor(roll.tokens.reshape(-1, 7))
    _, _, v = model.train().evaluate(obs, tokens)
    L.value_loss(v, v.detach() + 0.1, torch.ones(8)).backward()
    moved = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert moved and all(n.startswith("value_head.") for n in moved)
    model.zero_grad(set_to_none=True)
    logp = model.evaluate(obs, tokens)[0]
    L.ppo_policy_loss(logp, logp.detach(), torch.ones(8))[0].backward()
    assert model.action_head.weight.grad.abs().sum() > 0 and model.value_head[0].weight.grad is None


def test_grpo_normalises_within_groups_only():
    ret = torch.tensor([[0.0, 1.0, 1.0, 0.0], [5.0, 5.0, 5.0, 6.0], [2.0, 2.0, 2.0, 2.0]])
    adv = L.group_advantages(ret)
    torch.testing.assert_close(adv.mean(1), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(adv[:2].std(1, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert (adv[2] == 0).all()  # a group with one outcome carries no signal
    shifted = ret.clone()
    shifted[1] += 100.0  # another group's scale and offset do not leak into a group
    torch.testing.assert_close(L.group_advantages(shifted), adv, atol=1e-4, rtol=0)
    # in the trainer: each trajectory's advantage is broadcast over its valid steps only
    roll = make_rollout(make_model(), t_len=3, n=4, rewards=[[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    roll.valid[2, 0] = False
    steps, _ = rl.grpo_advantages(roll, rl.RLConfig(group_size=2))
    expect = torch.tensor([-1.0, 1.0, -1.0, 1.0])
    torch.testing.assert_close(steps[0], expect, atol=1e-4, rtol=0)
    assert steps[2, 0] == 0 and steps[2, 1] == pytest.approx(1.0, abs=1e-4)


def test_an_episode_pool_cycles_through_the_streams_first_episodes_and_resumes():
    cond = CONDITIONS["in-distribution"]
    key = lambda eps: [json.dumps(e.to_dict(), sort_keys=True) for e in eps]  # noqa: E731
    first3 = key(EpisodeStream(cond, 10_000).draw(3))
    pooled = EpisodeStream(cond, 10_000, pool=3)
    assert key(pooled.draw(5)) == first3 + first3[:2] and pooled.index == 5
    assert key(EpisodeStream(cond, 10_000, index=pooled.index, pool=3).draw(2)) == first3[2:] + first3[:1]
    with pytest.raises(ValueError, match="pool"):
        EpisodeStream(cond, 10_000, pool=-1)


def test_groups_share_initial_states_and_preference_pairs_skip_ties():
    cond = CONDITIONS["in-distribution"]
    eps = EpisodeStream(cond, 10_000).draw_grouped(6, 3)
    assert eps[0] == eps[1] == eps[2] and eps[3] == eps[4] == eps[5] and eps[0] != eps[3]
    assert len(set(map(id, EpisodeStream(cond, 10_000).draw_grouped(4, 2, same_init=True)))) == 1
    with pytest.raises(ValueError, match="multiple"):
        EpisodeStream(cond, 10_000).draw_grouped(5, 2)
    evals = {json.dumps(e.to_dict(), sort_keys=True) for e in sample_episodes(cond, 1000, 64)}
    train = {json.dumps(e.to_dict(), sort_keys=True) for e in EpisodeStream(cond, 10_000).draw(64)}
    assert not any(json.loads(t)["seed"] == 1000 for t in train) and not evals & train
    assert L.preference_pairs(np.array([0.2, 1.2, 0.0, 0.0, 1.0, 0.1]), 2) == [(1, 0), (4, 5)]
    assert L.preference_pairs(np.array([0.0, 1.0, 0.5, 0.2]), 4) == [(1, 0), (2, 3)]


def test_dpo_step_raises_the_winner_over_the_loser_and_leaves_the_reference_frozen():
    model = make_model()
    ref = rl.frozen(model)
    ref_before = {k: v.clone() for k, v in ref.state_dict().items()}
    cfg = rl.RLConfig(algo="dpo", group_size=2, dpo_pairs_per_step=1, policy_lr=1e-3)
    roll = make_rollout(model, t_len=3, n=2, rewards=[[0, 0], [0, 0], [0, 1.0]])  # row 1 wins
    opt = rl.make_optimizer(model, cfg)

    def loss_now():
        with torch.no_grad():
            lw, ll = rl._trajectory_logp(model, roll, [1, 0], cfg.temperature)
            rw, rl_ = rl._trajectory_logp(ref, roll, [1, 0], cfg.temperature)
            return L.dpo_loss(lw[None], rw[None], ll[None], rl_[None], cfg.dpo_beta)[0].item()

    before = loss_now()
    assert before == pytest.approx(np.log(2), abs=1e-5)  # policy == reference: margin 0
    out = rl.dpo_update(model, ref, opt, roll, cfg, np.random.default_rng(0))
    assert out["train/dpo_pairs"] == 1 and out["losses/dpo"] == pytest.approx(before, abs=1e-5)
    assert loss_now() < before
    assert not ref.training and not any(p.requires_grad for p in ref.parameters())
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(v, ref_before[k], rtol=0, atol=0)


def test_surrogate_update_trains_in_train_mode():
    model = make_model()
    roll = make_rollout(model, t_len=4, n=2, rewards=[[0, 0], [0, 0], [0, 0], [1.0, 0]])
    model.eval()  # the study's code left the model in eval mode during updates; ours must switch
    modes, real = [], model.evaluate

    def spy(*a, **k):
        modes.append(model.training)
        return real(*a, **k)

    model.evaluate = spy
    cfg = rl.RLConfig(minibatch_size=2, grad_accum=2)
    out = rl.ALGOS["ppo"].update(model, None, rl.make_optimizer(model, cfg), roll, cfg, np.random.default_rng(0))
    assert modes and all(modes)
    assert len(modes) == 4 and out["train/update_samples"] == 8  # 8 samples in minibatches of 2
    assert {"losses/policy", "losses/value", "losses/approx_kl", "losses/clip_frac",
            "losses/explained_variance"} <= set(out)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_the_update_scores_tokens_at_the_collection_temperature(temperature):
    """One optimizer step over the whole rollout: the ratios are those before any step, exactly 1 when the update
    rescores at the temperature the tokens were sampled at, and far from 1 if it scored the T = 1 policy."""
    model = make_model()
    roll = make_rollout(model, t_len=4, n=4, rewards=[[0] * 4, [0] * 4, [0] * 4, [1.0, 0, 1.0, 0]],
                        temperature=temperature)
    cfg = rl.RLConfig(minibatch_size=16, grad_accum=1, temperature=temperature)
    same = copy.deepcopy(model)  # the behaviour policy, for the mis-scored update below
    out = rl.ALGOS["ppo"].update(model, None, rl.make_optimizer(model, cfg), roll, cfg, np.random.default_rng(0))
    assert out["losses/approx_kl"] == pytest.approx(0.0, abs=1e-6) and out["losses/clip_frac"] == 0.0
    if temperature != 1.0:
        wrong = dataclasses.replace(cfg, temperature=1.0)
        out = rl.ALGOS["ppo"].update(same, None, rl.make_optimizer(same, cfg), roll, wrong, np.random.default_rng(0))
        assert out["losses/clip_frac"] > 0.5


# ----- rollouts ---------------------------------------------------------------------------
def test_collect_resets_ended_rows_and_bootstraps_truncations():
    from rl4vla.bench.env import EnvConfig, TabletopVecEnv

    model = make_model()
    env = TabletopVecEnv(EnvConfig(num_envs=3, workers=0, image_size=32, max_steps=3))
    try:
        stream = EpisodeStream(CONDITIONS["in-distribution"], 10_000)
        roll = collect(env, model, stream.draw(3), num_steps=7, refill=stream.refill)
        assert roll.rgb.shape == (7, 3, 32, 32, 3) and roll.tokens.shape == (7, 3, 7) and roll.valid.all()
        assert roll.truncated[[2, 5]].all() and roll.truncated.sum() == 6 and not roll.terminated.any()
        assert (roll.bootstrap[[2, 5]] != 0).all() and (roll.bootstrap[[0, 1, 3, 4, 6]] == 0).all()
        # 3 initial episodes + 2 refills of 3 rows; refills come from their own part of the stream, so the next
        # rollout begins on episodes 3-5 whatever happened in this one
        assert (stream.index, stream.refill_index) == (3, 6) and len(roll.episode_success) == 6
        assert roll.episode_initial == [True] * 3 + [False] * 3 and roll.episode_row == [0, 1, 2] * 2
        assert [o["index"] for o in roll.initial_outcomes()] == [0, 1, 2]
        assert roll.instructions[3] == [e.instruction for e in
                                        EpisodeStream(CONDITIONS["in-distribution"], 10_000).refill(3)]
        assert roll.instructions[0] == [e.instruction for e in
                                        sample_episodes(CONDITIONS["in-distribution"], 10_000, 3)]
        assert roll.sim_s > 0 and roll.policy_s > 0 and roll.env_steps == 21
        # trajectory mode: one episode per row, the rollout stops when every row has ended
        eps = stream.draw_grouped(3, 3)
        one = collect(env, model, eps, num_steps=10)
        assert one.rgb.shape[0] == 3 and one.env_steps == 9 and one.initial == eps
        assert (one.rgb[0, 0] == one.rgb[0, 1]).all()  # same initial state, same first frame
    finally:
        env.close()


def test_training_success_counts_only_the_episodes_that_began_the_rollout():
    """A refilled row finishes its episode within the rollout only if it succeeds early: counting those reads high."""
    roll = SimpleNamespace(episode_success=[True, False, False, False, True, True],
                           episode_return=[1.5, 0.2, 0.1, 0.3, 1.2, 1.1],
                           episode_initial=[True, True, True, True, False, False])
    m = rl.episode_metrics(roll)
    assert m["train/success"] == 0.25 and m["train/episodes"] == 4 and m["train/refill_episodes"] == 2
    assert m["train/success_with_refills"] == pytest.approx(0.5) and m["train/return"] == pytest.approx(0.525)
    empty = rl.episode_metrics(SimpleNamespace(episode_success=[], episode_return=[], episode_initial=[]))
    assert empty == {"train/episodes": 0, "train/refill_episodes": 0}


def test_frozen_encoder_features_are_kept_and_rescoring_them_gives_the_behaviour_logprobs():
    """With EfficientNet (+ keypoints from its stride-16 map), collect stores the frozen features and the
    update's evaluate on them reproduces the collection log-probs exactly (PPO ratio 1 before any step)."""
    from rl4vla.bench.env import EnvConfig, TabletopVecEnv

    eff = dataclasses.replace(CFG, image_size=64, patch_grid=2, image_encoder="efficientnet", keypoints=3)
    torch.manual_seed(0)
    cache = {t: np.random.default_rng(0).normal(size=384).astype(np.float32) for t in TEXTS}
    model = SmallVLA(eff, make_model().tokenizer, cache)
    env = TabletopVecEnv(EnvConfig(num_envs=2, workers=0, image_size=64, max_steps=3))
    try:
        roll = collect(env, model, EpisodeStream(CONDITIONS["in-distribution"], 10_000).draw(2), num_steps=3)
    finally:
        env.close()
    feature_dim = 2 * 2 * 1280 + 4 * 2 * 2 * 112  # 2x2 stride-32 tokens + the 4x4 stride-16 map
    assert roll.image_features.shape == (3, 2, feature_dim) and roll.image_features.dtype == np.float16
    flat = np.arange(6)
    obs = roll.obs(flat)
    assert obs["image_features"].shape == (6, feature_dim)
    with torch.no_grad():
        logp = model.evaluate(obs, torch.as_tensor(roll.tokens.reshape(6, 7)))[0]
        again = model.evaluate({k: v for k, v in obs.items() if k != "image_features"},
                               torch.as_tensor(roll.tokens.reshape(6, 7)))[0]
    torch.testing.assert_close(logp.numpy(), roll.logprobs.reshape(-1), rtol=0, atol=1e-4)
    torch.testing.assert_close(again, logp, rtol=0, atol=1e-2)  # from pixels: same encoder, no fp16 rounding


# ----- the trainer ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def init_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("init") / "model.pt"
    make_model().save(str(path))
    return str(path)


def _cfg(algo, init, out, **kw):
    base = dataclasses.replace(rl.presets(algo)["debug"], init=init, out=str(out), env=RL_ENV, num_steps=6,
                               max_episode_steps=6, env_steps=24, eval_episodes=2)
    return dataclasses.replace(base, **kw)


def test_ppo_debug_run_writes_outputs_and_resumes_exactly(init_ckpt, tmp_path):
    straight = rl.train_rl(_cfg("ppo", init_ckpt, tmp_path / "straight", env_steps=48, snapshot_every=1))
    first = rl.train_rl(_cfg("ppo", init_ckpt, tmp_path / "resumed"))
    assert first["env_steps"] == 24 and first["updates"] == 1
    for name in ("model.pt", "checkpoint.pt", "summary.json", "metrics.jsonl", "config.json"):
        assert (tmp_path / "resumed" / name).exists()
    with pytest.raises(ValueError, match="--resume"):
        rl.train_rl(_cfg("ppo", init_ckpt, tmp_path / "resumed", env_steps=48))
    resumed = rl.train_rl(_cfg("ppo", init_ckpt, tmp_path / "resumed", env_steps=48, resume=True, snapshot_every=1))
    assert resumed["env_steps"] == straight["env_steps"] == 48 and resumed["updates"] == 2
    a = SmallVLA.load(str(tmp_path / "straight" / "model.pt")).state_dict()
    b = SmallVLA.load(str(tmp_path / "resumed" / "model.pt")).state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    init = SmallVLA.load(init_ckpt).state_dict()
    assert max((a[k] - init[k]).abs().max().item() for k in a) > 1e-6  # PPO moved the weights
    # snapshots: one per update (--snapshot-every may change on resume); the last is the final model
    assert sorted(p.name for p in (tmp_path / "straight" / "snapshots").iterdir()) == ["model_24.pt", "model_48.pt"]
    assert [p.name for p in (tmp_path / "resumed" / "snapshots").iterdir()] == ["model_48.pt"]
    first_snap = SmallVLA.load(str(tmp_path / "straight" / "snapshots" / "model_24.pt")).state_dict()
    last_snap = SmallVLA.load(str(tmp_path / "straight" / "snapshots" / "model_48.pt")).state_dict()
    assert all(torch.equal(last_snap[k], a[k]) for k in a) and not all(torch.equal(first_snap[k], a[k]) for k in a)
    rows = [json.loads(line) for line in open(tmp_path / "resumed" / "metrics.jsonl")]
    assert [r["step"] for r in rows if "losses/policy" in r] == [24, 48]
    # the training episodes: one line per update, the same after the resume; each rollout begins on new scenes
    logged = (tmp_path / "resumed" / "episodes.jsonl").read_text()
    assert logged == (tmp_path / "straight" / "episodes.jsonl").read_text()
    lines = [json.loads(line) for line in logged.splitlines()]
    assert [(x["step"], x["update"]) for x in lines] == [(24, 1), (48, 2)]
    assert [[e["index"] for e in x["episodes"]] for x in lines] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert {"train/success", "losses/value", "losses/approx_kl", "losses/clip_frac", "losses/explained_variance",
            "time/env_steps_per_s", "time/sim_s", "time/policy_s", "time/update_s",
            "time/update_samples_per_s"} <= set(rows[0])
    assert any("eval/success" in r for r in rows)
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["env_steps"] == 48 and set(summary["time"]) == {"sim_s", "policy_s", "update_s", "eval_s"}


def test_runs_pair_scene_by_scene_on_their_training_episodes(init_ckpt, tmp_path, capsys):
    """Two PPO seeds begin every rollout on the same scenes, refills or not; `compare` pairs their training
    episodes (a run directory stands for them), over --updates; other scenes (GRPO's groups) are refused."""
    for seed, steps in ((0, 96), (1, 144)):  # 12-step rollouts of 6-step episodes: every row is refilled once
        rl.train_rl(_cfg("ppo", init_ckpt, tmp_path / f"s{seed}", seed=seed, num_steps=12, env_steps=steps,
                         eval_episodes=0))
    rl.train_rl(_cfg("grpo", init_ckpt, tmp_path / "g", num_steps=12, env_steps=96, eval_episodes=0))
    a, b = str(tmp_path / "s0"), str(tmp_path / "s1")
    assert main(["compare", a, b, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ind = out["conditions"]["in-distribution"]
    assert ind["n"] == 8 and out["runs"] == [1, 1] and ind["a_only"] + ind["b_only"] <= 8  # the 2 common updates
    assert main(["compare", a, b, "--updates", "2", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["conditions"]["in-distribution"]["n"] == 4
    assert main(["compare", a, str(tmp_path / "g")]) == 2
    assert "different training scenes: algo 'grpo' != 'ppo'" in capsys.readouterr().err
    assert main(["compare", a, b, "--updates", "3", "4"]) == 2
    assert "past its 2 logged updates" in capsys.readouterr().err
    (tmp_path / "s0" / "episodes.jsonl").unlink()  # a run from before the episode log
    assert main(["compare", a, b]) == 2 and "no episodes.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("algo", ["grpo", "dpo"])
def test_grpo_and_dpo_debug_runs(init_ckpt, tmp_path, algo):
    out = rl.train_rl(_cfg(algo, init_ckpt, tmp_path / algo))
    assert out["env_steps"] == 24 and (tmp_path / algo / "model.pt").exists()
    row = json.loads(open(tmp_path / algo / "metrics.jsonl").readline())
    assert ("losses/value" not in row) and (("losses/policy" in row) if algo == "grpo" else "train/dpo_pairs" in row)


def test_cli_rejects_unknown_presets_and_algorithms(capsys, init_ckpt):
    assert main(["train", "ppo", "nope"]) == 2
    assert "valid: debug, default" in capsys.readouterr().err
    assert main(["train", "a2c"]) == 2
    assert "ppo" in capsys.readouterr().err
    with pytest.raises(ValueError, match="valid: ppo, grpo, dpo"):
        rl.train_rl(rl.RLConfig(algo="a2c", init=init_ckpt))
    assert main(["train", "grpo", "debug", "--init", init_ckpt, "--algo", "dpo"]) == 2
    assert "instead of --algo" in capsys.readouterr().err


def test_value_detach_flag_sends_value_gradients_into_the_backbone_and_is_saved(init_ckpt, tmp_path):
    runs = {d: tmp_path / f"detach-{d}" for d in (None, False)}
    for d, out in runs.items():
        rl.train_rl(_cfg("ppo", init_ckpt, out, value_detach=d, eval_every=0))
    kept, shared = (SmallVLA.load(str(runs[d] / "model.pt")) for d in (None, False))
    assert SmallVLA.load(init_ckpt).cfg.value_detach and kept.cfg.value_detach and not shared.cfg.value_detach
    a, b = kept.state_dict(), shared.state_dict()
    backbone = [k for k in a if k.startswith("blocks.")]
    # same data (collected before the first update), so only the value loss's gradients tell them apart
    assert max((a[k] - b[k]).abs().max().item() for k in backbone) > 0


# ----- learner options ----------------------------------------------------------------------
def test_token_ratio_loss_has_the_summed_ratio_gradient_until_a_token_is_clipped():
    torch.manual_seed(0)
    old = torch.randn(5, 7)
    adv = torch.randn(5)
    grads = []
    for per_token in (False, True):
        logp = old.clone().requires_grad_(True)
        loss = L.ppo_token_loss(logp, old, adv)[0] if per_token else \
            L.ppo_policy_loss(logp.sum(1), old.sum(1), adv)[0]
        loss.backward()
        grads.append(logp.grad)
    torch.testing.assert_close(grads[0], grads[1])  # ratios 1: the same gradient
    moved = old.clone()
    moved[:, 3] += 0.5  # one token far past the clip (ratio e^0.5), the other six unchanged
    logp = moved.clone().requires_grad_(True)
    loss, clip_frac, kl = L.ppo_token_loss(logp, old, torch.ones(5))
    loss.backward()
    assert clip_frac.item() == pytest.approx(1 / 7)
    assert (logp.grad[:, 3] == 0).all() and (logp.grad[:, [0, 1, 2, 4, 5, 6]] != 0).all()
    joint = old.sum(1).clone().requires_grad_(True)
    L.ppo_policy_loss(joint + 0.5, old.sum(1), torch.ones(5))[0].backward()
    assert (joint.grad == 0).all()  # the study's joint ratio stops the whole action
    with pytest.raises(ValueError, match="old_logp"):
        L.ppo_token_loss(logp, old[:, :6], torch.ones(5))


def test_ppo_update_with_token_ratios_logs_entropy_per_dimension():
    model = make_model()
    roll = make_rollout(model, t_len=4, n=2, rewards=[[0, 0], [0, 0], [0, 0], [1.0, 0]])
    cfg = rl.RLConfig(minibatch_size=8, grad_accum=1, ratio="token")
    out = rl.ALGOS["ppo"].update(model, None, rl.make_optimizer(model, cfg), roll, cfg, np.random.default_rng(0))
    assert out["losses/approx_kl"] == pytest.approx(0.0, abs=1e-6) and out["losses/clip_frac"] == 0.0
    per_dim = [out[f"entropy/{d}"] for d in ACTION_LAYOUT]
    assert sum(per_dim) == pytest.approx(out["losses/entropy"], rel=1e-5) and min(per_dim) > 0
    with pytest.raises(ValueError, match="token_logprobs"):
        rl.surrogate_update(model, rl.make_optimizer(model, cfg), dataclasses.replace(roll, token_logprobs=None),
                            torch.zeros(4, 2), None, cfg, np.random.default_rng(0))


def test_policy_lr_warms_up_linearly_over_optimizer_steps_and_target_kl_stops_an_update():
    model = make_model()
    roll = make_rollout(model, t_len=4, n=4, rewards=[[0] * 4, [0] * 4, [0] * 4, [1.0, 0, 1.0, 0]])
    cfg = rl.RLConfig(minibatch_size=2, grad_accum=1, policy_lr=1e-3, policy_lr_warmup=4)
    opt = rl.make_optimizer(model, cfg)
    lrs, real = [], opt.step

    def spy(*a, **k):
        lrs.append(opt.param_groups[0]["lr"])
        return real(*a, **k)

    opt.step = spy
    adv, ret = rl.ppo_advantages(roll, cfg)
    out = rl.surrogate_update(model, opt, roll, adv, ret, cfg, np.random.default_rng(0))
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3])
    assert out["train/optimizer_steps"] == 8 and out["train/early_stop"] == 0.0
    stop = dataclasses.replace(cfg, policy_lr=1e-1, policy_lr_warmup=0, target_kl=1e-4)
    fresh = make_model()
    out = rl.surrogate_update(fresh, rl.make_optimizer(fresh, stop), roll, adv, ret, stop, np.random.default_rng(0))
    assert out["train/early_stop"] == 1.0 and 1 < out["train/optimizer_steps"] < 8
    assert out["train/update_samples"] == 2 * out["train/optimizer_steps"]


def test_policy_lr_decays_linearly_with_env_steps_to_its_end_fraction(init_ckpt, tmp_path):
    cfg = rl.RLConfig(policy_lr=1e-4, policy_lr_end=0.2, env_steps=1000)
    lrs = [rl.scheduled_policy_lr(cfg, s) for s in (0, 500, 1000, 2000)]
    assert lrs == pytest.approx([1e-4, 6e-5, 2e-5, 2e-5])
    assert rl.scheduled_policy_lr(rl.RLConfig(policy_lr=1e-4), 10**9) == 1e-4  # the study's: constant
    out = tmp_path / "decay"
    s = rl.train_rl(_cfg("ppo", init_ckpt, out, env_steps=72, policy_lr=3e-5, policy_lr_end=0.0, eval_every=1,
                         eval_episodes=0))
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["train/policy_lr"] for r in rows if "train/policy_lr" in r] == pytest.approx([3e-5, 2e-5, 1e-5])
    # --eval-episodes 0: no evaluation at all, whatever --eval-every says
    assert s["eval_success"] is None and not any("eval/success" in r for r in rows)
    with pytest.raises(ValueError, match="policy-lr-end"):
        rl.train_rl(_cfg("ppo", init_ckpt, tmp_path / "bad", policy_lr_end=1.5))


def test_critic_warmup_trains_the_value_head_alone_then_the_policy(init_ckpt, tmp_path):
    out = tmp_path / "warm"
    rl.train_rl(_cfg("ppo", init_ckpt, out, env_steps=72, policy_lr=1e-3, critic_warmup=2, snapshot_every=1))
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["train/policy_lr"] for r in rows if "train/policy_lr" in r] == pytest.approx([0.0, 0.0, 1e-3])
    init = SmallVLA.load(init_ckpt).state_dict()
    snaps = [SmallVLA.load(str(out / "snapshots" / f"model_{s}.pt")).state_dict() for s in (24, 48, 72)]
    policy = [k for k in init if not k.startswith("value_head.")]
    for snap in snaps[:2]:  # the warm-up updates: the policy exactly where it started, the value head trained
        assert all(torch.equal(snap[k], init[k]) for k in policy)
        assert not torch.equal(snap["value_head.4.weight"], init["value_head.4.weight"])
    assert any(not torch.equal(snaps[2][k], init[k]) for k in policy)  # then the policy moves
    with pytest.raises(ValueError, match="critic-warmup.*grpo has none"):
        rl.train_rl(_cfg("grpo", init_ckpt, tmp_path / "bad", critic_warmup=1))
    with pytest.raises(ValueError, match="policy-lr must be > 0"):
        rl.train_rl(_cfg("ppo", init_ckpt, tmp_path / "bad", policy_lr=0.0))


def test_token_kl_is_the_exact_kl_summed_over_an_actions_tokens():
    p = torch.log_softmax(torch.tensor([[[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]]), -1)  # (B=1, D=2, K=3)
    q = torch.log_softmax(torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]]), -1)
    by_hand = sum(float((a.exp() * (a - b)).sum()) for a, b in zip(p[0], q[0]))
    assert L.token_kl(p, q).item() == pytest.approx(by_hand) and by_hand > 0
    assert L.token_kl(p, p).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="ref_logp"):
        L.token_kl(p, q[:, :1])
    with pytest.raises(ValueError, match=r"\(B, D, K\)"):
        L.token_kl(p[0], q[0])


def test_kl_penalty_pulls_a_drifted_policy_back_to_its_start():
    """With no advantage signal, the update moves the policy only through --kl-coef, and towards the start."""
    start = make_model()
    ref = rl.frozen(start)
    roll = make_rollout(start, t_len=4, n=4)
    drifted = copy.deepcopy(start)
    with torch.no_grad():
        for p in drifted.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    tokens = torch.as_tensor(roll.tokens.reshape(-1, 7))

    def kl(m):
        with torch.no_grad():
            return L.token_kl(m.evaluate(roll.obs(np.arange(16)), tokens, 1.0, dist=True)[3],
                              ref.evaluate(roll.obs(np.arange(16)), tokens, 1.0, dist=True)[3]).mean().item()

    before = kl(drifted)
    zero = torch.zeros(4, 4)
    for coef in (0.0, 1.0):
        m = copy.deepcopy(drifted)
        cfg = rl.RLConfig(minibatch_size=4, grad_accum=1, policy_lr=1e-3, kl_coef=coef)
        out = rl.surrogate_update(m, rl.make_optimizer(m, cfg), roll, zero, None, cfg, np.random.default_rng(0),
                                  ref=ref)
        if coef:
            assert kl(m) < 0.8 * before and out["losses/kl_init"] > 0
        else:
            assert kl(m) == pytest.approx(before, rel=1e-3) and "losses/kl_init" not in out
    with pytest.raises(ValueError, match="reference policy"):
        rl.surrogate_update(m, rl.make_optimizer(m, cfg), roll, zero, None, cfg, np.random.default_rng(0))
    with pytest.raises(ValueError, match="applies to ppo, grpo and fbc"):
        rl._validate(dataclasses.replace(rl.presets("dpo")["debug"], init="x", kl_coef=0.1))


def test_augmentation_regulariser_makes_the_policy_invariant_to_shifted_frames():
    """With no advantage signal, --aug-coef alone moves the policy, and towards the same actions on shifted
    frames; without it nothing moves."""
    start = make_model()
    roll = make_rollout(start, t_len=4, n=4)
    tokens = torch.as_tensor(roll.tokens.reshape(-1, 7))
    obs = roll.obs(np.arange(16))

    def gap(m):  # the regulariser's policy term on one fixed draw of shifts
        shifted = rl.shifted_obs(m, obs, np.random.default_rng(5), 4)
        assert shifted["image_features"] is None and shifted["rgb"].shape == obs["rgb"].shape
        with torch.no_grad():
            return L.token_kl(m.evaluate(obs, tokens, 1.0, dist=True)[3],
                              m.evaluate(shifted, tokens, 1.0, dist=True)[3]).mean().item()

    before = gap(start)
    zero = torch.zeros(4, 4)
    for coef in (0.0, 3.0):
        m = copy.deepcopy(start)
        cfg = rl.RLConfig(minibatch_size=16, grad_accum=1, policy_lr=3e-3, epochs=20, weight_decay=0.0,
                          aug_coef=coef)
        out = rl.surrogate_update(m, rl.make_optimizer(m, cfg), roll, zero, None, cfg, np.random.default_rng(0))
        if coef:
            assert gap(m) < 0.5 * before and out["losses/aug_policy"] > 0
        else:
            assert gap(m) == pytest.approx(before, rel=1e-4) and "losses/aug_policy" not in out
    with pytest.raises(ValueError, match="aug-coef.*surrogate algorithms"):
        rl._validate(dataclasses.replace(rl.presets("dpo")["debug"], init="x", aug_coef=0.1))
    with pytest.raises(ValueError, match="aug-pad"):
        rl._validate(dataclasses.replace(rl.presets("ppo")["debug"], init="x", aug_coef=0.1, aug_pad=0))


def test_binary_gripper_executes_the_gripper_token_as_open_or_closed():
    model = make_model()
    obs = {"rgb": np.zeros((64, 32, 32, 3), np.uint8), "instruction": [TEXTS[0]] * 64,
           "proprio": np.zeros((64, 10), np.float32)}
    torch.manual_seed(0)
    plain = model.act(obs, 1.0)
    model.cfg = dataclasses.replace(model.cfg, binary_gripper=True)
    torch.manual_seed(0)
    binary = model.act(obs, 1.0)
    np.testing.assert_array_equal(plain.tokens, binary.tokens)
    np.testing.assert_array_equal(plain.actions[:, :6], binary.actions[:, :6])
    assert (np.abs(plain.actions[:, 6]) < 1).any() and set(binary.actions[:, 6]) <= {-1.0, 1.0}
    np.testing.assert_array_equal(np.sign(plain.actions[:, 6]) >= 0, binary.actions[:, 6] > 0)


def test_dpo_rollout_reference_is_the_behaviour_policy():
    model = make_model()
    roll = make_rollout(model, t_len=3, n=2, rewards=[[0, 0], [0, 0], [0, 1.0]])
    cfg = rl.RLConfig(algo="dpo", group_size=2, dpo_reference="rollout")
    ref = rl._reference_logp(None, roll, [0, 1], cfg)
    with torch.no_grad():
        rescored = rl._trajectory_logp(model, roll, [0, 1], cfg.temperature)
    torch.testing.assert_close(torch.stack([ref[0], ref[1]]), rescored, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="valid: init, rollout"):
        rl._validate(dataclasses.replace(cfg, init="x", dpo_reference="frozen"))


@pytest.mark.parametrize("normalize, per_step", [("none", 0), ("step", 1), ("token", 7)])
def test_dpo_normalize_divides_each_trajectorys_log_ratio_by_its_steps_or_tokens(normalize, per_step):
    model = make_model()
    ref = rl.frozen(make_model(seed=1))  # a reference unlike the policy: the margin is not 0
    roll = make_rollout(model, t_len=4, n=2, rewards=[[0, 0], [0, 0], [0, 0], [0, 1.0]])  # row 1 wins
    roll.valid[3, 0] = False  # the loser ends a step early: 3 valid steps against the winner's 4
    cfg = rl.RLConfig(algo="dpo", group_size=2, dpo_pairs_per_step=1, dpo_normalize=normalize, dpo_beta=0.5)
    scale = rl.dpo_scale(roll, [1, 0], normalize)
    torch.testing.assert_close(scale, torch.tensor([4.0, 3.0]) * per_step if per_step else torch.ones(2))
    with torch.no_grad():
        lw, ll = rl._trajectory_logp(model, roll, [1, 0], cfg.temperature)
        rw, rl_ = rl._trajectory_logp(ref, roll, [1, 0], cfg.temperature)
    expected = -torch.nn.functional.logsigmoid(0.5 * ((lw - rw) / scale[0] - (ll - rl_) / scale[1])).item()
    out = rl.dpo_update(model, ref, rl.make_optimizer(model, cfg), roll, cfg, np.random.default_rng(0))
    assert out["losses/dpo"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="valid: none, step, token"):
        rl._validate(dataclasses.replace(cfg, init="x", dpo_normalize="mean"))


def test_fbc_trains_only_on_the_steps_of_successful_trajectories():
    model = make_model()
    roll = make_rollout(model, t_len=3, n=4, rewards=[[0] * 4, [0.1, 0, 0, 0], [1.1, 0, 0.1, 0]])
    cfg = rl.RLConfig(algo="fbc", group_size=1, minibatch_size=2, grad_accum=1)
    seen, real = [], model.evaluate

    def spy(obs, tokens, *a, **k):
        seen.append(tokens.clone())
        return real(obs, tokens, *a, **k)

    model.evaluate = spy
    out = rl.ALGOS["fbc"].update(model, None, rl.make_optimizer(model, cfg), roll, cfg, np.random.default_rng(0))
    assert out["train/fbc_successes"] == 1 and out["train/update_samples"] == 3  # row 0's three steps only
    torch.testing.assert_close(torch.cat(seen).sort(0).values, torch.as_tensor(roll.tokens[:, 0]).sort(0).values)
    out = rl.ALGOS["fbc"].update(model, None, rl.make_optimizer(model, cfg), dataclasses.replace(
        roll, rewards=np.zeros((3, 4), np.float32)), cfg, np.random.default_rng(0))
    assert out == {"train/fbc_successes": 0, "train/update_samples": 0}


def test_co_training_adds_the_demos_sft_loss_to_every_optimizer_step(demos, tmp_path):
    from rl4vla.algos.sft import DemoBatches

    model = make_model()
    anchor = DemoBatches(model, (str(demos), str(demos)), 9, 0, tmp_path / "bc_")
    obs, tokens = anchor.batch(3)
    assert tokens.shape == (9, 7) and len(obs["instruction"]) == 9 and obs["image_features"] is None  # conv model
    again = anchor.batch(3)[1]
    torch.testing.assert_close(tokens, again)  # the order is a function of (seed, step): resumes exactly
    roll = make_rollout(model, t_len=4, n=4)  # no reward: zero advantages, only the demos' loss moves the policy
    cfg = rl.RLConfig(minibatch_size=4, grad_accum=1, policy_lr=1e-3, bc_data=(str(demos),), bc_batch=9)
    opt = rl.make_optimizer(model, cfg)
    bc = []
    for u in range(3):
        out = rl.ALGOS["ppo"].update(model, None, opt, roll, cfg, np.random.default_rng(u), anchor)
        assert out["train/optimizer_steps"] == 4
        bc.append(out["losses/bc"])
    assert rl.optimizer_steps(opt) == 12 and bc[-1] < bc[0]
    with pytest.raises(ValueError, match="bc-batch"):
        rl._validate(dataclasses.replace(cfg, init="x", bc_data=("a", "b"), bc_batch=1))


def test_encoder_train_blocks_flag_trains_the_frozen_encoders_top_blocks(tmp_path):
    """`--encoder-train-blocks 1` from an all-frozen EfficientNet checkpoint: the run's model trains its last
    encoder block (it moves from the ImageNet weights it starts from) and saves it; negative counts are refused."""
    eff = dataclasses.replace(CFG, image_size=64, patch_grid=2, image_encoder="efficientnet", keypoints=2,
                              encoder_stride=16)
    torch.manual_seed(0)
    cache = {t: np.random.default_rng(0).normal(size=384).astype(np.float32) for t in TEXTS}
    init = tmp_path / "init.pt"
    SmallVLA(eff, make_model().tokenizer, cache).save(str(init))
    rl.train_rl(_cfg("ppo", str(init), tmp_path / "r", encoder_train_blocks=1, eval_every=0, eval_episodes=1))
    trained = SmallVLA.load(str(tmp_path / "r" / "model.pt"))
    start = SmallVLA.load(str(init)).with_trainable_encoder_blocks(1)
    assert trained.cfg.encoder_train_blocks == 1
    a, b = trained.image_encoder.top.state_dict(), start.image_encoder.top.state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) > 0
    with pytest.raises(ValueError, match="--encoder-train-blocks must be >= 0"):
        rl.train_rl(_cfg("ppo", str(init), tmp_path / "bad", encoder_train_blocks=-1))
