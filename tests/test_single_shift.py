"""The one-shift form of the fixed-point rescale (int8.requant.single_shift) equals the
two-rounding gemmlowp/TFLite form it replaces in the engine's vector loops, for every profile
rounding and every multiplier/shift, around the ties too."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavenet_edge.int8.fixedpoint import rdbpot, rshift_half_up, srdhm, wrap32
from wavenet_edge.int8.requant import requantize, requantize_single_shift, single_shift


def _two_step(x, m, left, right, ties_away):
    h = srdhm(wrap32(np.int64(x) << np.int64(left)), m)
    return rdbpot(h, right) if ties_away else rshift_half_up(h, right)


@settings(deadline=None, max_examples=400)
@given(x=st.integers(-2**31, 2**31 - 1),
       m=st.one_of(st.just(0), st.integers(2**30, 2**31 - 1), st.integers(0, 2**31 - 1)),
       left=st.integers(0, 31), right=st.integers(0, 31), ties_away=st.booleans())
def test_single_shift_equals_the_two_roundings(x, m, left, right, ties_away):
    assert single_shift(x, m, left, right, ties_away) == _two_step(x, m, left, right, ties_away)


@pytest.mark.parametrize("ties_away", [True, False])
@pytest.mark.parametrize("m", [2**30, 2**30 + 1, 2**31 - 1, 1518500250])
def test_single_shift_around_ties(m, ties_away):
    # M = 2^30 halves exactly: every odd x is a tie of the SRDHM, every x ≡ 2^right (mod 2^(right+1))
    # a tie of the final shift, positive and negative
    for right in (0, 1, 2, 7, 31):
        for x in list(range(-3000, 3000)) + [2**31 - 1, -2**31, -2**31 + 1, 2**30, -2**30]:
            assert single_shift(x, m, 0, right, ties_away) == _two_step(x, m, 0, right, ties_away)


@settings(deadline=None, max_examples=300)
@given(acc=st.integers(-2**31, 2**31 - 1), m=st.integers(2**30, 2**31 - 1),
       shift=st.integers(-31, 20), profile=st.sampled_from([0, 1]))
def test_single_shift_is_the_fc_requantization(acc, m, shift, profile):
    # the FC profiles tflm (ties away from zero) and litert (ties up) from (M, shift)
    assert requantize_single_shift(acc, m, shift, profile == 0) == requantize(acc, m, shift, 0.0,
                                                                              profile)
