"""int8 SOFTMAX (beta = 1 by default, output quantization fixed at (1/256, -128)), per profile.

* ``tflm`` and ``litert-ref`` (``reference_ops::Softmax``, TFLM's kernel): fixed point.
  Prepare: ``PreprocessSoftmaxScaling(beta, in_scale, 5)``: ``real = min(double(beta) *
  double(in_scale) * 2**26, 2**31 - 1)``, ``(M, left_shift) = QuantizeMultiplier(real)``,
  ``diff_min = -CalculateInputRadius(5, left_shift, 31)``.  Per row: ``d = x - max(x)``; for
  ``d >= diff_min``: ``r = SRDHM(d << left_shift, M)`` (Q5.26), ``e = exp_on_negative_values(r)``
  (Q0.31), ``sum += RoundingDivideByPOT(e, 12)`` (Q12.19); ``GetReciprocal(sum, 12)`` gives
  ``scale`` (Q0.31) and ``num_bits_over_unit``; output ``RoundingDivideByPOT(SRDHM(scale, e),
  num_bits_over_unit + 23) - 128`` clamped; entries with ``d < diff_min`` output -128.
* ``litert`` and ``xnnpack`` (``optimized_ops::Softmax`` on x86; XNNPACK does not take int8
  SOFTMAX): float32.  Prepare: ``table[255 - v] = expf(f32(-in_scale * beta) * v)`` for v in
  0..255.  Per row: ``sum`` = float32 left-to-right sum of ``table[255 - max + x]``;
  ``inv = 1.0f / (sum * out_scale)``; ``out = roundf(table[255 - max + x] * inv) - 128`` clamped.

:func:`softmax_params` returns a :class:`SoftmaxParams`; :func:`softmax_int8` (jitted) computes one
row (int8[N] -> int8[N] written into ``out``) without allocating.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import kernel
from ..errors import ConversionError
from ._libm import expf
from .fixedpoint import (clz32, exp_on_negative_values, mbqm_greater_than_one,
                         one_over_one_plus_x_for_x_in_0_1, rdbpot, srdhm, wrap32)
from .multiplier import input_radius, quantize_multiplier
from .requant import profile_id

__all__ = ["SoftmaxParams", "softmax_params", "softmax_int8", "SOFTMAX_OUT"]

SOFTMAX_OUT = (1.0 / 256.0, -128)


class SoftmaxParams(NamedTuple):
    """multiplier, left_shift, diff_min : int (fixed-point profiles);
    table : float32[256] exp table (float profiles; also built for the others);
    out_scale : float32 value as float; profile : int id."""

    multiplier: int
    left_shift: int
    diff_min: int
    table: np.ndarray
    out_scale: float
    profile: int


def softmax_params(in_scale, beta=1.0, profile="tflm", *, out_scale=None, out_zp=-128) -> SoftmaxParams:
    """Prepare-time parameters of int8 SOFTMAX for input scale ``in_scale`` (float32)."""
    pid = profile_id(profile)
    if out_scale is not None and (float(np.float32(out_scale)) != SOFTMAX_OUT[0]
                                  or int(out_zp) != SOFTMAX_OUT[1]):
        raise ConversionError(f"SOFTMAX output quantization must be (1/256, -128), got "
                              f"({out_scale!r}, {out_zp!r})")
    in_s = np.float32(in_scale)
    b = np.float32(beta)
    real = min(float(b) * float(in_s) * float(1 << 26), float((1 << 31) - 1))
    if not real > 1.0:
        raise ConversionError(f"SOFTMAX input scale {float(in_s)!r} is too small (beta*scale*2**26 <= 1)")
    m, left = quantize_multiplier(real)
    diff_min = -input_radius(5, left, 31)
    scale = np.float32(-in_s * b)
    table = np.empty(256, np.float32)
    for v in range(256):
        table[255 - v] = expf(np.float32(scale * np.float32(v)))
    return SoftmaxParams(m, left, diff_min, table, SOFTMAX_OUT[0], pid)


@kernel
def _softmax_fixed(x, multiplier, left_shift, diff_min, out):
    n = x.shape[0]
    max_in_row = np.int64(-128)
    for c in range(n):
        if np.int64(x[c]) > max_in_row:
            max_in_row = np.int64(x[c])
    sum_of_exps = np.int64(0)
    for c in range(n):
        d = np.int64(x[c]) - max_in_row
        if d >= diff_min:
            r = mbqm_greater_than_one(d, multiplier, left_shift)
            sum_of_exps = wrap32(sum_of_exps + rdbpot(exp_on_negative_values(r, 5), 12))
    headroom_plus_one = clz32(sum_of_exps)
    num_bits_over_unit = 12 - headroom_plus_one
    shifted_sum_minus_one = wrap32(((sum_of_exps << np.int64(headroom_plus_one)) & np.int64(4294967295))
                                   - np.int64(2147483648))
    shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
    exponent = num_bits_over_unit + 31 - 8
    for c in range(n):
        d = np.int64(x[c]) - max_in_row
        if d >= diff_min:
            r = mbqm_greater_than_one(d, multiplier, left_shift)
            e = exp_on_negative_values(r, 5)
            v = rdbpot(srdhm(shifted_scale, e), exponent) - 128
            if v > 127:
                v = np.int64(127)
            if v < -128:
                v = np.int64(-128)
            out[c] = v
        else:
            out[c] = -128


@kernel
def _softmax_float(x, table, out_scale, out):
    n = x.shape[0]
    max_val = np.int64(-128)
    for c in range(n):
        if np.int64(x[c]) > max_val:
            max_val = np.int64(x[c])
    base = 255 - max_val
    s = np.float32(0.0)
    for c in range(n):
        s = np.float32(s + table[base + np.int64(x[c])])
    inv = np.float32(np.float32(1.0) / np.float32(s * np.float32(out_scale)))
    for c in range(n):
        p = np.float32(table[base + np.int64(x[c])] * inv)
        # roundf: ties away from zero (p >= 0 here)
        t = np.float64(np.floor(np.float64(p)))
        if np.float64(p) - t >= 0.5:
            t += 1.0
        v = np.int64(t) - 128
        if v > 127:
            v = np.int64(127)
        if v < -128:
            v = np.int64(-128)
        out[c] = v


@kernel
def softmax_int8(x, multiplier, left_shift, diff_min, table, out_scale, profile, out):
    """Softmax of one int8 row ``x`` (int8[N]) into ``out`` (int8[N]) for profile id ``profile``."""
    if profile == 1 or profile == 3:
        _softmax_float(x, table, out_scale, out)
    else:
        _softmax_fixed(x, multiplier, left_shift, diff_min, out)
