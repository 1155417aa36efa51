"""The integer sampler: PCG32 reference values, inverse CDF, temperature table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavenet_edge.errors import ConfigError
from wavenet_edge.sampling import (Sampler, draw, pcg32_next, pcg32_seed, sampling_mode,
                                   temperature_table)

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


def test_temperature_table_and_modes():
    t = temperature_table(0.1, 1.0)
    assert t[0] == 65536 and np.all(np.diff(t) <= 0) and t.dtype == np.int64
    assert t[10] == int(np.floor(65536 * np.exp(-1.0) + 0.5))
    assert sampling_mode(1.0, 0.1)[0] == 0
    assert sampling_mode(0.0, 0.1)[0] == 2
    assert sampling_mode(0.5, 0.1)[0] == 1
    with pytest.raises(ConfigError):
        sampling_mode(-1.0, 0.1)
    with pytest.raises(ConfigError):
        sampling_mode("hot", 0.1)
    with pytest.raises(ConfigError):
        pcg32_seed(1.5)


def test_sampler_frequencies_follow_the_probabilities():
    probs = np.full(256, -128, np.int8)
    probs[[10, 20]] = [64 - 128, 192 - 128]      # weights 64 and 192 of 256
    logits = np.zeros(256, np.int8)
    s = Sampler(3)
    draws = np.array([s.sample(probs, logits) for _ in range(4000)])
    assert set(np.unique(draws)) == {10, 20}
    assert abs(np.mean(draws == 20) - 0.75) < 0.03
    # greedy takes the first maximum of the logits
    logits[[5, 9]] = 100
    assert Sampler(0, temperature=0.0).sample(probs, logits) == 5
    # all-zero weights fall back to greedy
    assert Sampler(0).sample(np.full(256, -128, np.int8), logits) == 5
