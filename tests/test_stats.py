"""Wilson intervals and paired tests against hand-computed values."""

import math

import numpy as np
import pytest

from rl4vla.eval.stats import (
    discordant,
    mcnemar_exact,
    paired_bootstrap,
    paired_test,
    stratified_exact,
    wilson_interval,
)


@pytest.mark.parametrize("k, n, lo, hi", [
    # center = (p + z^2/2n) / (1 + z^2/n), half = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n), z = 1.96
    (8, 10, 0.490157, 0.943319),
    (0, 10, 0.0, 0.277540),
    (10, 10, 0.722460, 1.0),
    (5, 10, 0.236590, 0.763410),
])
def test_wilson_matches_hand_computed_values(k, n, lo, hi):
    assert wilson_interval(k, n) == pytest.approx((lo, hi), abs=2e-6)


def test_wilson_is_mirror_symmetric_and_narrows_with_n():
    for k in range(11):
        lo, hi = wilson_interval(k, 10)
        lo2, hi2 = wilson_interval(10 - k, 10)
        assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)
        assert lo <= k / 10 <= hi
    assert np.diff(wilson_interval(80, 100)) < np.diff(wilson_interval(8, 10))


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_mcnemar_exact_known_values():
    assert mcnemar_exact(1, 9) == pytest.approx(0.021484375)  # 2 * (1 + 10) / 2^10
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 5 discordant pairs can never reach p < 0.05
    for b in (0, 1, 7, 30):
        assert mcnemar_exact(b, b) == 1.0


def test_mcnemar_is_an_exact_binomial_tail():
    b, c = 3, 12
    tail = sum(math.comb(15, i) for i in range(4)) / 2**15
    assert mcnemar_exact(b, c) == pytest.approx(2 * tail)


def test_discordant_counts_only_disagreeing_pairs():
    a = [1, 1, 0, 0, 1, 0]
    b = [1, 0, 1, 1, 1, 0]
    assert discordant(a, b) == (1, 2)
    with pytest.raises(ValueError):
        discordant([1, 0], [1])


def test_paired_test_reports_difference_and_counts():
    a = [0] * 10 + [1] * 10
    b = [1] * 9 + [0] + [1] * 9 + [0]  # B alone solves 9, A alone solves 1
    r = paired_test(a, b)
    assert (r["a_only"], r["b_only"], r["n"]) == (1, 9, 20)
    assert r["diff"] == pytest.approx(8 / 20)
    assert r["p"] == pytest.approx(0.021484375)
    with pytest.raises(ValueError, match="mcnemar, bootstrap"):
        paired_test(a, b, test="t")


def test_bootstrap_is_seeded_and_agrees_with_the_paired_variance():
    rng = np.random.default_rng(0)
    a = rng.random(200) < 0.5
    b = np.where(rng.random(200) < 0.3, ~a, a)
    r1 = paired_bootstrap(a, b, n_boot=4000, seed=3)
    assert r1 == paired_bootstrap(a, b, n_boot=4000, seed=3)
    assert r1["diff"] == pytest.approx(b.mean() - a.mean())
    # resampling pairs: Var(diff*) = (p01 + p10 - (p01 - p10)^2) / n
    a_only, b_only = discordant(a, b)
    p10, p01 = a_only / 200, b_only / 200
    sd = math.sqrt((p01 + p10 - (p01 - p10) ** 2) / 200)
    lo, hi = r1["ci"]
    assert lo <= r1["diff"] <= hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * sd, rel=0.15)


def test_bootstrap_p_values_for_no_and_a_clear_difference():
    same = paired_bootstrap([1, 0, 1, 0] * 5, [1, 0, 1, 0] * 5, n_boot=500)
    assert same["p"] == 1.0 and same["ci"] == (0.0, 0.0)
    clear = paired_bootstrap([0] * 30, [1] * 25 + [0] * 5, n_boot=999)
    assert 0 < clear["p"] < 0.01 and clear["ci"][0] > 0.5


def test_stratified_exact_is_mcnemar_for_one_run_each_and_hypergeometric_for_more():
    rng = np.random.default_rng(1)
    a = rng.random(40) < 0.4
    b = np.where(rng.random(40) < 0.3, ~a, a)
    assert stratified_exact(a, b) == mcnemar_exact(*discordant(a, b))
    # two runs each, one mixed episode: A 0,0 and B 1,1 -> B holds both of its 2 successes out of 4 with
    # chance C(2,2) C(2,0) / C(4,2) = 1/6; doubled
    assert stratified_exact([[0, 1], [0, 1]], [[1, 1], [1, 1]]) == pytest.approx(2 / 6)
    # equal runs that agree everywhere: nothing to test
    assert stratified_exact([[1, 0, 1]], [[1, 0, 1], [1, 0, 1]]) == 1.0
    # two such episodes with equal numbers of runs: the same as two discordant pairs split evenly
    assert stratified_exact([[0, 1], [0, 1]], [[1, 0], [1, 0]]) == 1.0
    with pytest.raises(ValueError, match="same episodes: A has 3, B has 2"):
        stratified_exact([[1, 0, 1]], [[1, 0]])


def test_paired_test_pools_runs_per_episode():
    a = np.array([[0, 0, 1, 1], [0, 1, 1, 1]], bool)  # 2 runs x 4 episodes
    b = np.array([[1, 0, 1, 0]], bool)
    r = paired_test(a, b)
    assert r["runs"] == (2, 1) and r["n"] == 4
    assert (r["a"], r["b"]) == (5 / 8, 2 / 4)
    assert (r["a_only"], r["b_only"]) == (2, 1)  # episodes 1 and 3 / episode 0
    boot = paired_test(a, b, test="bootstrap", n_boot=500)
    assert boot["diff"] == pytest.approx(-1 / 8) and boot["ci"][0] < -1 / 8 < boot["ci"][1]
