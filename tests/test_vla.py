"""The small VLA: exact save/load, pure forward, KV-cache decoding, learning, gradient isolation."""

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
    return {"rgb": rgb, "instruction": [TEXTS[i % 2] for i in range(n)]}


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
    before = {"rgb": obs["rgb"].copy(), "instruction": list(obs["instruction"])}
    out = m.act(obs)
    m.evaluate(obs, out.tokens)
    assert np.array_equal(obs["rgb"], before["rgb"]) and obs["instruction"] == before["instruction"]


def test_kv_cache_decoding_matches_the_full_forward():
    m = make_model().eval()
    obs = make_obs(6)
    out = m.act(obs, temperature=1.0)
    logp, _, value = m.evaluate(obs, out.tokens)
    np.testing.assert_allclose(out.logprob, logp.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.value, value.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert out.actions.shape == (6, 7) and out.tokens.dtype == np.int64


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


def test_minilm_text_encoder_is_real_and_cached():
    from rl4vla.policy.text import InstructionEncoder

    enc = InstructionEncoder()
    e = enc(["put carrot on plate", "Place the carrot on the plate", "the stock market fell today"])
    assert e.shape == (3, 384) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # paraphrases are close, unrelated text is far
    model = enc._model
    enc._model = None  # a cached string must not need the model again
    assert np.array_equal(enc(["put carrot on plate"])[0], e[0])
    enc._model = model


def test_frozen_efficientnet_encoder_caches_exactly_and_stays_frozen(tmp_path):
    from dataclasses import replace

    m = make_model(replace(CFG, image_encoder="efficientnet", patch_grid=2)).train()
    obs = make_obs(3)
    tokens = torch.zeros(3, 7, dtype=torch.long)
    cached = {**obs, "image_features": m.frozen_features(obs["rgb"])}
    torch.testing.assert_close(m.logits(obs, tokens), m.logits(cached, tokens), rtol=1e-5, atol=1e-5)
    assert not any("net" in k.split(".")[1:2] for k in m.state_dict())  # pretrained weights are not saved
    sft_loss(m.logits(obs, tokens), tokens).backward()
    assert m.image_encoder.proj.weight.grad is not None
    assert all(p.grad is None for p in m.image_encoder.net[0].parameters())
    m.save(str(tmp_path / "e.pt"))
    torch.testing.assert_close(SmallVLA.load(str(tmp_path / "e.pt")).eval().logits(obs, tokens),
                               m.eval().logits(obs, tokens), rtol=0, atol=0)
