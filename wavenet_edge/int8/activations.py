"""TANH and LOGISTIC as 256-entry int8 lookup tables, built per runtime profile at load time.

A table ``t`` (int8[256]) maps an int8 input ``x`` to ``t[x + 128]``; :func:`lookup_int8` applies it.
Output quantization is fixed by the runtimes: TANH (1/128, 0), LOGISTIC (1/256, -128).

* ``tflm`` (TFLM ``reference_integer_ops::Tanh/Logistic``): ``input_multiplier, input_left_shift =
  frexp(double(in_scale) * 2**27)`` (4 integer bits), ``input_range_radius =
  CalculateInputRadius(4, shift, 31)``; ``d = x - in_zp``; ``d <= -radius`` -> -128, ``d >= radius``
  -> 127, else ``q4 = MultiplyByQuantizedMultiplier(d, M, shift)`` (double rounding), gemmlowp
  ``tanh``/``logistic`` in Q4.27 -> Q0.31, then ``RoundingDivideByPOT(., 24)`` (tanh) or
  ``RoundingDivideByPOT(., 23) - 128`` (logistic), clamped to int8.
* ``litert`` / ``litert-ref`` (LiteRT ``LUTPopulate<int8_t>``, used by both the optimized and the
  reference kernel): ``deq = f32(in_scale * (x - in_zp))``, ``y = tanhf(deq)`` or ``1.0f / (1.0f +
  expf(-deq))`` in float32 (glibc's functions, see :mod:`._libm`), ``q = roundf(y * f32(1 /
  out_scale)) + out_zp`` in float32 (ties away from zero), truncated to int32, clamped to int8.
* ``xnnpack`` (the delegate takes int8 TANH/LOGISTIC and fills a table with its reference
  kernel, ``src/reference/unary-elementwise.cc``): ``deq = f32(f32(x - in_zp) * in_scale)``; TANH
  ``y = tanhf(deq)``; LOGISTIC ``y = 1`` if ``deq > 100``, ``0`` if ``deq < -100``, else ``e =
  exp(double(deq))``, ``y = f32(e / (1 + e))``; then ``q = nearbyint(f32(f32(y * f32(1 /
  out_scale)) + f32(out_zp)))`` -- ties to EVEN, and the zero point is added in float32 before
  rounding -- clamped to int8.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import kernel
from ..errors import ConversionError
from ._libm import expf, tanhf
from .fixedpoint import fixed_logistic, fixed_tanh, mbqm, rdbpot
from .multiplier import frexp_multiplier, input_radius, round_half_away
from .requant import TFLM, XNNPACK, profile_id

__all__ = ["tanh_table", "logistic_table", "lookup_int8", "TANH_OUT", "LOGISTIC_OUT",
           "tanh_fixed_params", "tanh_int8_tflm", "logistic_int8_tflm"]

TANH_OUT = (1.0 / 128.0, 0)
LOGISTIC_OUT = (1.0 / 256.0, -128)


def tanh_fixed_params(in_scale) -> tuple[int, int, int]:
    """TFLM TANH/LOGISTIC Prepare: ``(input_multiplier, input_left_shift, input_range_radius)``."""
    m, shift = frexp_multiplier(float(np.float32(in_scale)) * float(1 << 27))
    return m, shift, input_radius(4, shift, 31)


@kernel
def _sigmoidal_int8_tflm(x, in_zp, multiplier, shift, radius, logistic):
    """TFLM int8 TANH (``logistic`` False) or LOGISTIC of one value: saturate beyond the input
    radius, else the gemmlowp function on the Q4.27 input (Q0.31 out, rounded to int8)."""
    d = np.int64(x) - np.int64(in_zp)
    if d <= -radius:
        return np.int64(-128)
    if d >= radius:
        return np.int64(127)
    q4 = mbqm(d, multiplier, shift)
    if logistic:
        v = rdbpot(fixed_logistic(q4, 4), 23) - 128
    else:
        v = rdbpot(fixed_tanh(q4, 4), 24)
    return min(max(v, np.int64(-128)), np.int64(127))


@kernel
def tanh_int8_tflm(x, in_zp, multiplier, shift, radius):
    """TFLM int8 TANH of one value (int64 in [-128, 127] out)."""
    return _sigmoidal_int8_tflm(x, in_zp, multiplier, shift, radius, False)


@kernel
def logistic_int8_tflm(x, in_zp, multiplier, shift, radius):
    """TFLM int8 LOGISTIC of one value (int64 in [-128, 127] out)."""
    return _sigmoidal_int8_tflm(x, in_zp, multiplier, shift, radius, True)


def _check_out(name, out_scale, out_zp, expected):
    if out_scale is None:
        return expected
    if float(np.float32(out_scale)) != expected[0] or int(out_zp) != expected[1]:
        raise ConversionError(f"{name} output quantization must be scale {expected[0]!r}, "
                              f"zero point {expected[1]} (got {out_scale!r}, {out_zp!r})")
    return expected


def _lut_float(in_scale, in_zp, out_scale, out_zp, transform) -> np.ndarray:
    in_s = np.float32(in_scale)
    inv = np.float32(np.float32(1.0) / np.float32(out_scale))
    table = np.empty(256, np.int8)
    for val in range(-128, 128):
        deq = np.float32(in_s * np.float32(val - int(in_zp)))
        y = transform(deq)
        rescaled = np.float32(round_half_away(float(np.float32(y * inv))))
        q = int(np.float32(rescaled + np.float32(out_zp)))
        table[val + 128] = max(-128, min(127, q))
    return table


def _lut_xnnpack(in_scale, in_zp, out_scale, out_zp, fn) -> np.ndarray:
    in_s = np.float32(in_scale)
    inv = np.float32(np.float32(1.0) / np.float32(out_scale))
    zo = np.float32(out_zp)
    table = np.empty(256, np.int8)
    for val in range(-128, 128):
        deq = np.float32(np.float32(np.float32(val) - np.float32(in_zp)) * in_s)
        y = fn(deq)
        # the zero point is added in float32 *before* rounding (ties to even)
        r = np.float32(np.float32(y * inv) + zo)
        table[val + 128] = max(-128, min(127, int(np.rint(np.float64(r)))))
    return table


def _sigmoid_xnnpack(v):
    """XNNPACK's reference SigmoidOp: clamp at +-100, else exp and division in float64."""
    if v > 100:
        return np.float32(1.0)
    if v < -100:
        return np.float32(0.0)
    e = math.exp(float(v))
    return np.float32(e / (1.0 + e))


def _tanh_f32(v):
    return tanhf(v)


def _logistic_f32(v):
    return np.float32(np.float32(1.0) / np.float32(np.float32(1.0) + expf(np.float32(-v))))


def tanh_table(in_scale, in_zp, profile="tflm", *, out_scale=None, out_zp=0) -> np.ndarray:
    """int8[256] TANH table (index ``x + 128``) for input quantization ``(in_scale, in_zp)``.

    ``out_scale``/``out_zp`` are only checked (must be 1/128, 0) when given.
    """
    pid = profile_id(profile)
    osc, ozp = _check_out("TANH", out_scale, out_zp, TANH_OUT)
    if pid == TFLM:
        m, shift, radius = tanh_fixed_params(in_scale)
        return np.array([tanh_int8_tflm(x, int(in_zp), m, shift, radius) for x in range(-128, 128)],
                        dtype=np.int8)
    if pid == XNNPACK:
        return _lut_xnnpack(in_scale, in_zp, osc, ozp, _tanh_f32)
    return _lut_float(in_scale, in_zp, osc, ozp, _tanh_f32)


def logistic_table(in_scale, in_zp, profile="tflm", *, out_scale=None, out_zp=-128) -> np.ndarray:
    """int8[256] LOGISTIC table (index ``x + 128``); output must be (1/256, -128)."""
    pid = profile_id(profile)
    osc, ozp = _check_out("LOGISTIC", out_scale, out_zp, LOGISTIC_OUT)
    if pid == TFLM:
        m, shift, radius = tanh_fixed_params(in_scale)
        return np.array([logistic_int8_tflm(x, int(in_zp), m, shift, radius)
                         for x in range(-128, 128)], dtype=np.int8)
    if pid == XNNPACK:
        return _lut_xnnpack(in_scale, in_zp, osc, ozp, _sigmoid_xnnpack)
    return _lut_float(in_scale, in_zp, osc, ozp, _logistic_f32)


@kernel
def lookup_int8(x, table):
    """Apply a 256-entry table to one int8 value: ``table[x + 128]``."""
    return table[np.int64(x) + 128]
