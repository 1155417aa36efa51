"""gemmlowp fixed-point primitives, as jitted scalar functions on raw int32 values.

Every value here is the *raw* int32 of a gemmlowp ``FixedPoint<int32_t, IB>`` (real value
``raw / 2**(31 - IB)``), carried in an int64 so that intermediate products cannot overflow; results
are always brought back into the int32 range exactly as the C++ code would (wrapping where gemmlowp
adds without saturation, saturating where it saturates).  Only the scalar (non-SIMD) gemmlowp paths
are mirrored; TFLM and the LiteRT reference kernels use exactly those.

Rounding conventions (the whole point of this module):

* :func:`srdhm` ``SaturatingRoundingDoublingHighMul(a, b)`` = ``floor(a*b / 2**31 + 1/2)`` (ties
  toward +inf, like ARM ``VQRDMULH``), saturating only ``INT32_MIN * INT32_MIN`` to ``INT32_MAX``.
* :func:`rdbpot` ``RoundingDivideByPOT(x, e)`` = ``x / 2**e`` rounded to nearest, ties away from zero.
* :func:`rshift_half_up` = ``(x + 2**(e-1)) >> e`` (ties toward +inf; ruy / ARM ``SRSHL``).
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel

INT32_MIN = -2147483648
INT32_MAX = 2147483647


@kernel
def wrap32(v):
    """int64 -> int64 holding ``(int32_t)v`` (two's complement wrap, as C++ on every target)."""
    return ((np.int64(v) + np.int64(2147483648)) & np.int64(4294967295)) - np.int64(2147483648)


@kernel
def srdhm(a, b):
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 raws (int64 in, int64 out)."""
    a = np.int64(a)
    b = np.int64(b)
    if a == b and a == INT32_MIN:
        return np.int64(INT32_MAX)
    # (ab + 2^30) >> 31 == the gemmlowp nudge-and-truncate for both signs: round half up.
    return (a * b + np.int64(1073741824)) >> np.int64(31)


@kernel
def rdbpot(x, exponent):
    """gemmlowp ``RoundingDivideByPOT``: round-to-nearest, ties away from zero; 0 <= exponent <= 31."""
    x = np.int64(x)
    e = np.int64(exponent)
    mask = (np.int64(1) << e) - np.int64(1)
    remainder = x & mask
    threshold = (mask >> np.int64(1)) + (np.int64(1) if x < 0 else np.int64(0))
    return (x >> e) + (np.int64(1) if remainder > threshold else np.int64(0))


@kernel
def rshift_half_up(x, exponent):
    """Rounding arithmetic right shift with ties toward +inf: ``(x + 2**(e-1)) >> e``."""
    x = np.int64(x)
    e = np.int64(exponent)
    if e <= 0:
        return x
    return (x + (np.int64(1) << (e - np.int64(1)))) >> e


@kernel
def sat_shl(x, exponent):
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<+exponent>``: left shift saturating to int32."""
    x = np.int64(x)
    e = np.int64(exponent)
    threshold = (np.int64(1) << (np.int64(31) - e)) - np.int64(1)
    if x > threshold:
        return np.int64(INT32_MAX)
    if x < -threshold:
        return np.int64(INT32_MIN)
    return x << e


@kernel
def rescale(x, src_integer_bits, dst_integer_bits):
    """gemmlowp ``Rescale<dst>(FixedPoint<src>)``."""
    e = src_integer_bits - dst_integer_bits
    if e > 0:
        return sat_shl(x, e)
    if e < 0:
        return rdbpot(x, -e)
    return np.int64(x)


@kernel
def mbqm(x, multiplier, shift):
    """TFLite ``MultiplyByQuantizedMultiplier(int32 x, M, shift)``, double-rounding build.

    ``RoundingDivideByPOT(SRDHM(x * 2**max(shift, 0), M), max(-shift, 0))``; the left shift
    wraps like the C++ ``x * (1 << left_shift)``.
    """
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rdbpot(srdhm(wrap32(np.int64(x) << np.int64(left)), multiplier), right)


@kernel
def mbqm_greater_than_one(x, multiplier, left_shift):
    """TFLite ``MultiplyByQuantizedMultiplierGreaterThanOne`` (no final rounding shift)."""
    return srdhm(wrap32(np.int64(x) << np.int64(left_shift)), multiplier)


@kernel
def rounding_half_sum(a, b):
    """gemmlowp ``RoundingHalfSum`` for int32: ``(a + b + sign) / 2`` with C truncation."""
    s = np.int64(a) + np.int64(b)
    s = s + (np.int64(1) if s >= 0 else np.int64(-1))
    # C integer division truncates toward zero
    q = abs(s) // np.int64(2)
    return q if s >= 0 else -q


@kernel
def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for Q0.31 ``a`` in [-1/4, 0), result Q0.31 (gemmlowp Taylor series around -1/8)."""
    constant_term = np.int64(1895147668)
    constant_1_over_3 = np.int64(715827883)
    x = wrap32(np.int64(a) + (np.int64(1) << np.int64(28)))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(wrap32(srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


@kernel
def exp_on_negative_values(a, integer_bits):
    """gemmlowp ``exp_on_negative_values(FixedPoint<int32, integer_bits>)`` -> Q0.31 raw."""
    a = np.int64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = np.int64(1) << np.int64(fractional_bits - 2)
    mask = one_quarter - np.int64(1)
    a_mod_quarter_minus_one_quarter = wrap32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    # barrel shifter: exponent e in -2..4 with multiplier exp(-2**e) in Q0.31
    mults = (np.int64(1672461947), np.int64(1302514674), np.int64(790015084),
             np.int64(290630308), np.int64(39332535), np.int64(720401), np.int64(242))
    for k in range(7):
        exponent = k - 2
        if integer_bits > exponent:
            shift_amount = fractional_bits + exponent
            if remainder & (np.int64(1) << np.int64(shift_amount)):
                result = srdhm(result, mults[k])
    if integer_bits > 5:
        clamp = -(np.int64(1) << np.int64(36 - integer_bits))
        if a < clamp:
            result = np.int64(0)
    if a == 0:
        result = np.int64(INT32_MAX)
    return result


@kernel
def _newton_reciprocal_q2(a):
    """The shared Newton-Raphson core of gemmlowp's x-in-(0,1) divisions; returns Q2.29 raw."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = np.int64(1515870810)
    constant_neg_32_over_17 = np.int64(-1010580540)
    one_q2 = np.int64(1) << np.int64(29)
    x = wrap32(constant_48_over_17 + srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = wrap32(one_q2 - half_denominator_times_x)
        x = wrap32(x + sat_shl(srdhm(x, one_minus), 2))
    return x


@kernel
def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1`` on Q0.31 raws."""
    x = _newton_reciprocal_q2(a)
    return sat_shl(x, 1)  # Rescale<0>(ExactMulByPot<-1>(x)): Q1 -> Q0


@kernel
def one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp ``one_minus_x_over_one_plus_x_for_x_in_0_1`` on Q0.31 raws."""
    x = _newton_reciprocal_q2(a)
    return sat_shl(wrap32(x - (np.int64(1) << np.int64(29))), 2)


@kernel
def fixed_tanh(a, integer_bits):
    """gemmlowp ``tanh(FixedPoint<int32, integer_bits>)`` -> Q0.31 raw."""
    a = np.int64(a)
    if a == 0:
        return np.int64(0)
    negative = a < 0
    n = a if negative else wrap32(-a)
    # neg_tanh_on_negative_values: ExactMulByPot<1> keeps the raw, adds an integer bit
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return wrap32(-t) if negative else t


@kernel
def fixed_logistic(a, integer_bits):
    """gemmlowp ``logistic(FixedPoint<int32, integer_bits>)`` -> Q0.31 raw."""
    a = np.int64(a)
    if a == 0:
        return np.int64(1) << np.int64(30)
    positive = a > 0
    abs_input = a if positive else wrap32(-a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap32(-abs_input), integer_bits))
    if positive:
        return result_if_positive
    return wrap32(np.int64(INT32_MAX) - result_if_positive)


@kernel
def clz32(x):
    """Count leading zeros of ``x`` viewed as uint32 (32 for 0)."""
    u = np.int64(x) & np.int64(4294967295)
    if u == 0:
        return 32
    n = 0
    while u < np.int64(2147483648):
        u = u << np.int64(1)
        n += 1
    return n
