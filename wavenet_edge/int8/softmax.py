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
row (int8[N] -> int8[N] written into ``out``) without allocating.  The fixed-point profiles'
only per-element transcendental is the exponential of ``d = x - max(x)``, one of 256 values:
:func:`softmax_exp_table` tabulates it and :func:`softmax_from_exps` is the same SOFTMAX on that
table (what the engine runs and the C export ships).
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

__all__ = ["SoftmaxParams", "softmax_params", "softmax_int8", "softmax_exp_table",
           "softmax_from_exps", "row_max", "SOFTMAX_OUT"]

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
def _exp_of_diff(d, multiplier, left_shift, diff_min):
    """Q0.31 exponential of one input difference ``d = x − max(x) <= 0``; 0 where ``d <
    diff_min`` (such an element adds nothing to the sum and outputs −128, exactly what the
    reference's exclusion gives, so no sentinel is needed)."""
    if d < diff_min:
        return np.int64(0)
    return exp_on_negative_values(mbqm_greater_than_one(d, multiplier, left_shift), 5)


@kernel
def _exp_table_kernel(multiplier, left_shift, diff_min, out):
    for k in range(256):
        out[k] = _exp_of_diff(-k, multiplier, left_shift, diff_min)


def softmax_exp_table(multiplier, left_shift, diff_min) -> np.ndarray:
    """int32[256]: ``table[k]`` = the Q0.31 exponential of the input difference ``d = −k``
    (0 below ``diff_min``), the only per-element transcendental of the fixed-point SOFTMAX.
    :func:`softmax_from_exps` with this table is :func:`softmax_int8` (profiles tflm,
    litert-ref); the C export ships the same table."""
    out = np.empty(256, np.int32)
    _exp_table_kernel(int(multiplier), int(left_shift), int(diff_min), out)
    return out


@kernel
def _reciprocal(sum_of_exps):
    """``GetReciprocal(sum, 12)`` of the Q12.19 sum: (Q0.31 scale, output exponent)."""
    headroom_plus_one = clz32(sum_of_exps)
    num_bits_over_unit = 12 - headroom_plus_one
    shifted_sum_minus_one = wrap32(((sum_of_exps << np.int64(headroom_plus_one))
                                    & np.int64(4294967295)) - np.int64(2147483648))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit + 31 - 8


@kernel
def _scaled_output(scale, exponent, e):
    """int8 output of an element with exponential ``e`` (0 gives −128)."""
    v = rdbpot(srdhm(scale, e), exponent) - 128
    v = np.int64(127) if v > 127 else v
    return np.int64(-128) if v < -128 else v


@kernel
def _softmax_fixed(x, multiplier, left_shift, diff_min, out):
    n = x.shape[0]
    max_in_row = np.int64(-128)
    for c in range(n):
        if np.int64(x[c]) > max_in_row:
            max_in_row = np.int64(x[c])
    sum_of_exps = np.int64(0)
    for c in range(n):
        e = _exp_of_diff(np.int64(x[c]) - max_in_row, multiplier, left_shift, diff_min)
        sum_of_exps = wrap32(sum_of_exps + rdbpot(e, 12))
    scale, exponent = _reciprocal(sum_of_exps)
    for c in range(n):
        e = _exp_of_diff(np.int64(x[c]) - max_in_row, multiplier, left_shift, diff_min)
        out[c] = _scaled_output(scale, exponent, e)


@kernel
def row_max(src, xo, n):
    """The largest of the int8 values ``src[xo:xo+n]`` as int64 (−128 when n = 0); unsigned,
    branch-free loop (vectorizes).  Every SOFTMAX kernel starts with it."""
    ux = np.uint64(xo)
    mx = np.int64(-128)
    for c in range(np.uint64(n)):
        v = np.int64(src[ux + c])
        mx = v if v > mx else mx
    return mx


@kernel
def softmax_from_exps(src, xo, dst, yo, n, exps, buf):
    """Fixed-point SOFTMAX of ``src[xo:xo+n]`` into ``dst[yo:yo+n]`` (int8) with the
    exponentials looked up in ``exps`` (:func:`softmax_exp_table`) instead of recomputed: the
    same values as :func:`softmax_int8` (tflm, litert-ref).  ``buf``: int32 scratch of at least
    ``n``; the summing pass keeps each element's exponential there so the output pass reads it
    contiguously (and vectorizes)."""
    # unsigned indices and branch-free bodies: numba then emits no wraparound selects and the
    # loops vectorize.  The Q12.19 sum is accumulated in int64 and wrapped to int32 once: int32
    # wrapping addition is modular, so this equals wrapping after every addition.
    ux = np.uint64(xo)
    uy = np.uint64(yo)
    un = np.uint64(n)
    mx = row_max(src, xo, n)
    total = np.int64(0)
    for c in range(un):
        e = np.int64(exps[np.uint64(mx - np.int64(src[ux + c]))])
        buf[c] = np.int32(e)
        total += rdbpot(e, 12)
    scale, exponent = _reciprocal(wrap32(total))
    for c in range(un):
        dst[uy + c] = np.int8(_scaled_output(scale, exponent, np.int64(buf[c])))


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
