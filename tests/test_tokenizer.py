"""Action tokenizer: 256 bins per dimension between the 1st and 99th percentile."""

import numpy as np
import pytest

from rl4vla.policy.tokenizer import ActionTokenizer


@pytest.fixture()
def tok():
    rng = np.random.default_rng(0)
    acts = rng.normal(0, [0.02, 0.02, 0.02, 0.1, 0.1, 0.1, 1.0], (5000, 7))
    return ActionTokenizer.fit(acts), acts


def test_round_trip_error_is_at_most_half_a_bin_inside_the_range(tok):
    t, acts = tok
    inside = ((acts >= t.low) & (acts <= t.high)).all(1)
    err = np.abs(t.decode(t.encode(acts[inside])) - acts[inside])
    assert (err <= t.width / 2 + 1e-12).all()
    assert err.max() > 0.3 * t.width.min()  # not trivially exact


def test_bins_span_the_1st_to_99th_percentile(tok):
    t, acts = tok
    assert np.allclose(t.low, np.percentile(acts, 1, axis=0))
    assert np.allclose(t.high, np.percentile(acts, 99, axis=0))
    tokens = t.encode(acts)
    assert tokens.min() == 0 and tokens.max() == 255 and tokens.dtype == np.int64
    # about 1% of samples fall below the range and are clipped into bin 0
    assert 0.005 < (tokens[:, 0] == 0).mean() < 0.03


def test_out_of_range_actions_clip_to_the_edge_bins(tok):
    t, _ = tok
    big = np.full((1, 7), 1e3)
    assert (t.encode(big) == 255).all() and (t.encode(-big) == 0).all()
    assert np.allclose(t.decode(t.encode(big)), np.asarray(t.high) - t.width / 2)


def test_constant_dimension_and_bad_input():
    acts = np.zeros((10, 7))
    acts[:, 6] = np.r_[np.ones(5), -np.ones(5)]
    t = ActionTokenizer.fit(acts)
    assert np.isfinite(t.decode(t.encode(acts))).all()
    with pytest.raises(ValueError, match="NaN"):
        t.encode(np.full((1, 7), np.nan))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        t.decode(np.full((1, 7), 256))
    with pytest.raises(ValueError, match="shape"):
        ActionTokenizer.fit(np.zeros((3, 6)))
    assert ActionTokenizer.from_dict(t.to_dict()) == t
