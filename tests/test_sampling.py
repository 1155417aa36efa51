"""The integer sampler: PCG32 reference values, inverse CDF, the weight table on the logits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavenet_edge.errors import ConfigError
from wavenet_edge.int8 import logit_weight_table
from wavenet_edge.int8.sampling import WEIGHT_ONE
from wavenet_edge.sampling import (MODE_GREEDY, MODE_TABLE, Sampler, draw, pcg32_next,
                                   pcg32_seed, sampling_mode, temperature_table)

M64 = 2**64 - 1


def _pcg_ref(seed, seq, n):
    """Textbook pcg32_srandom_r / pcg32_random_r with Python integers."""
    state, inc = 0, ((seq << 1) | 1) & M64

    def nxt():
        nonlocal state
        old = state
        state = (old * 6364136223846793005 + inc) & M64
        xs = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xs >> rot) | (xs << ((-rot) & 31))) & 0xFFFFFFFF

    nxt()
    state = (state + seed) & M64
    nxt()
    return [nxt() for _ in range(n)]


def test_pcg32_reference_vector():
    # pcg32-demo (O'Neill's pcg-c-basic) with initstate 42, initseq 54 prints these first outputs
    ref = _pcg_ref(42, 54, 6)
    assert ref == [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]
    st_ = pcg32_seed(42, 55)
    got = [int(pcg32_next(st_, 54)) for _ in range(6)]
    assert got == ref


@given(st.integers(0, 2**64 - 1), st.integers(0, 5))
def test_pcg32_matches_python_reference(seed, seq):
    rng = pcg32_seed(seed, seq + 1)
    assert [int(pcg32_next(rng, seq)) for _ in range(5)] == _pcg_ref(seed, seq, 5)


def test_draw_inverse_cdf():
    w = np.array([0, 3, 0, 1], np.int64)    # total 4: r = (u * 4) >> 32
    assert draw(w, 0) == 1
    assert draw(w, (3 << 32) // 4 - 1) == 1
    assert draw(w, (3 << 32) // 4) == 3
    assert draw(w, 2**32 - 1) == 3
    assert draw(np.zeros(4, np.int64), 123) == -1


def test_weight_table_and_modes():
    t = temperature_table(0.1, 1.0)
    assert t[0] == WEIGHT_ONE == 32768 and np.all(np.diff(t) <= 0) and t.dtype == np.int64
    assert abs(t[10] - np.floor(32768 * np.exp(-1.0) + 0.5)) <= 1
    assert sampling_mode(1.0, 0.1)[0] == MODE_TABLE          # T = 1 samples the logits too
    np.testing.assert_array_equal(sampling_mode(1.0, 0.1)[1], t)
    assert sampling_mode(0.0, 0.1)[0] == MODE_GREEDY
    assert sampling_mode(0.5, 0.1)[0] == MODE_TABLE
    # far above any logits range: every weight one (uniform), not an error
    np.testing.assert_array_equal(temperature_table(0.1, 1e12), np.full(256, WEIGHT_ONE))
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError):
            sampling_mode(bad, 0.1)
    with pytest.raises(ConfigError):
        sampling_mode("hot", 0.1)
    with pytest.raises(ConfigError):
        pcg32_seed(1.5)


@given(st.floats(0.002, 2.0), st.floats(0.05, 20.0))
def test_weight_table_is_the_exponential(scale, temperature):
    """table[k] = 32768 exp(-k s / T) to within one unit (gemmlowp's fixed-point exponential,
    float32 scale and beta); non-increasing, uint16, 0 only where the exponential is < 1/2 unit."""
    t = logit_weight_table(scale, temperature)
    s32 = float(np.float32(scale)) * float(np.float32(1.0 / temperature))
    ref = 32768.0 * np.exp(-np.arange(256) * s32)
    assert t[0] == 32768 and np.all(np.diff(t) <= 0) and t.max() < 2**16
    assert np.abs(t - ref).max() <= 1.0
    assert np.all(ref[t == 0] < 1.0)


def test_weight_table_at_one_is_the_softmax_exponentials():
    """At T = 1 the weights are the exponentials the graph's SOFTMAX sums (its exp table, Q0.31,
    rounded to Q15): sampling on the logits draws from the SOFTMAX's own distribution."""
    from wavenet_edge.int8 import softmax_exp_table, softmax_params
    from wavenet_edge.int8.fixedpoint import rdbpot
    for scale in (0.013, 0.1, 0.37):
        p = softmax_params(scale)
        e = softmax_exp_table(p.multiplier, p.left_shift, p.diff_min)
        np.testing.assert_array_equal(logit_weight_table(scale, 1.0),
                                      [rdbpot(int(v), 16) for v in e])


def test_t1_sampling_follows_the_probabilities():
    """At T = 1 the draws on the logits follow the int8 probabilities the SOFTMAX outputs."""
    from wavenet_edge.int8 import softmax_int8, softmax_params
    rng = np.random.default_rng(5)
    scale = 0.08
    logits = np.clip(rng.normal(-40, 25, 256), -128, 127).astype(np.int8)
    probs = np.empty(256, np.int8)
    softmax_int8(logits, *softmax_params(scale), probs)
    p = (probs.astype(np.float64) + 128) / 256
    s = Sampler(11, logits_scale=scale)
    draws = np.bincount([s.sample(logits) for _ in range(20000)], minlength=256) / 20000
    assert np.abs(draws - p).max() < 0.015
    # ... and more closely the exact softmax, which the 8-bit probabilities round (they sum to
    # 0.95 here): L1 distance of 20,000 draws ~0.06 against it, ~0.17 against the int8 probs
    exact = np.exp((logits - logits.max()) * float(np.float32(scale)))
    exact /= exact.sum()
    assert np.abs(draws - exact).sum() < 0.1 < np.abs(draws - p).sum()


def test_sampler_frequencies_follow_the_weights():
    # logits scale ln(3)/10: a logit 10 steps lower weighs 1/3; 128 steps lower weighs 0
    logits = np.full(256, -128, np.int8)
    logits[[10, 20]] = [-10, 0]
    s = Sampler(3, logits_scale=np.log(3.0) / 10)
    draws = np.array([s.sample(logits) for _ in range(4000)])
    assert set(np.unique(draws)) == {10, 20}
    assert abs(np.mean(draws == 20) - 0.75) < 0.03
    # greedy takes the first maximum of the logits
    logits[[5, 9]] = 100
    assert Sampler(0, temperature=0.0).sample(logits) == 5
    with pytest.raises(ConfigError):
        Sampler(0).sample(logits[:10])
