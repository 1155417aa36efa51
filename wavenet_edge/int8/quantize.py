"""int8 → int8 QUANTIZE (requantization of one tensor into another's scale/zero point), per profile.

The conditioned step graph requantizes its ``cond`` input into each layer's input quantization
with this op (docs/step-graph.md).  Prepare (every runtime): ``real = double(in_scale) /
double(out_scale)`` from the float32 scales, ``(M, shift) = QuantizeMultiplier(real)``.

* ``tflm`` (``reference_ops::Requantize``) and ``litert-ref`` (same reference kernel):
  ``out = MultiplyByQuantizedMultiplier(x - in_zp, M, shift) + out_zp`` (double rounding: SRDHM,
  then ``RoundingDivideByPOT``, ties away from zero), clamped to int8.
* ``litert`` (``optimized_ops::Requantize<int8_t, int8_t>``, NEON through NEON_2_SSE on x86):
  blocks of 16 elements use ``MultiplyByQuantizedMultiplier4Rows`` (``VQRDMULH`` then ``VRSHL``:
  the final right shift rounds ties up), the ``size % 16`` tail the scalar form above.
* ``xnnpack``: the delegate takes the op when ``f32(in_scale / out_scale)`` lies in
  ``[2**-8, 2**7]`` (XNNPACK ``qs8-vcvt``): ``m = lrintf(256 · f32(in/out))`` (ties to even),
  ``out = ((out_zp << 8) + 128 + (x - in_zp) · m) >> 8`` (arithmetic shift: ties up), clamped;
  otherwise the op stays on the builtin kernel (= ``litert``).  Measured: below ``2**-8`` the
  builtin kernel's results appear; at and above ``2**7`` both forms saturate alike, so the upper
  bound is not observable.

Checked against the real interpreters by single-op graphs (tests/test_int8_quantize_oracle.py).
The result depends on the input value only (and, for LiteRT, on whether the element sits in a
full block of 16), so the engine tabulates it: :func:`quantize_tables`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import kernel
from ..errors import ConversionError
from .fixedpoint import mbqm, rshift_half_up, srdhm, wrap32
from .multiplier import quantize_multiplier
from .requant import LITERT, XNNPACK, profile_id

__all__ = ["QuantizeParams", "quantize_params", "quantize_int8", "quantize_int8_vec",
           "quantize_tables", "Q_ZI", "Q_ZO", "Q_M", "Q_SHIFT", "Q_XNN", "Q_XM"]

# ip slots
Q_ZI, Q_ZO, Q_M, Q_SHIFT, Q_XNN, Q_XM = range(6)
#: XNNPACK delegates int8 → int8 QUANTIZE for float32 scale ratios in this closed range
XNN_RATIO_RANGE = (2.0 ** -8, 2.0 ** 7)


class QuantizeParams(NamedTuple):
    """``ip`` int64[6] (slots ``Q_*``): zero points, ``M``/``shift``, XNNPACK flag and
    multiplier; ``profile`` int id."""

    ip: np.ndarray
    profile: int


def quantize_params(in_scale, in_zp, out_scale, out_zp, profile="tflm") -> QuantizeParams:
    """Prepare-time parameters of an int8 → int8 QUANTIZE (scales as stored: float32)."""
    pid = profile_id(profile)
    s_in, s_out = np.float32(in_scale), np.float32(out_scale)
    if not (s_in > 0 and s_out > 0 and np.isfinite(s_in) and np.isfinite(s_out)):
        raise ConversionError("QUANTIZE scales must be positive and finite")
    for z in (in_zp, out_zp):
        if not -128 <= int(z) <= 127:
            raise ConversionError(f"QUANTIZE zero point {z} outside the int8 range")
    m, shift = quantize_multiplier(float(s_in) / float(s_out))
    xnn, xm = 0, 0
    if pid == XNNPACK:
        r32 = float(np.float32(s_in / s_out))
        if XNN_RATIO_RANGE[0] <= r32 <= XNN_RATIO_RANGE[1]:
            xnn, xm = 1, int(np.rint(np.float32(256.0) * np.float32(r32)))
    ip = np.array([in_zp, out_zp, m, shift, xnn, xm], np.int64)
    return QuantizeParams(ip, pid)


@kernel
def quantize_int8(x, ip, profile, simd):
    """One element: int8 ``x`` → int64 in [-128, 127].  ``simd``: the element lies in a full
    block of 16 (LiteRT's NEON path)."""
    v = np.int64(x) - ip[Q_ZI]
    if profile == XNNPACK and ip[Q_XNN] == 1:
        r = ((ip[Q_ZO] << np.int64(8)) + np.int64(128) + v * ip[Q_XM]) >> np.int64(8)
    else:
        if (profile == LITERT or profile == XNNPACK) and simd:
            sh = ip[Q_SHIFT]
            left = sh if sh > 0 else np.int64(0)
            right = -sh if sh < 0 else np.int64(0)
            q = rshift_half_up(srdhm(wrap32(v << left), ip[Q_M]), right)
        else:
            q = mbqm(v, ip[Q_M], ip[Q_SHIFT])
        r = q + ip[Q_ZO]
    if r < -128:
        r = np.int64(-128)
    elif r > 127:
        r = np.int64(127)
    return r


@kernel
def quantize_int8_vec(x, ip, profile, out):
    """A whole tensor: ``out[i] = quantize_int8(x[i], …)`` (int8 arrays of one length)."""
    n = x.shape[0]
    blocked = n // 16 * 16
    for i in range(n):
        out[i] = np.int8(quantize_int8(x[i], ip, profile, i < blocked))


def quantize_tables(params: QuantizeParams) -> tuple[np.ndarray, np.ndarray]:
    """int8[256] tables indexed by ``x + 128``: (elements in full blocks of 16, the tail).
    They are equal except for the LiteRT profiles."""
    xs = np.arange(-128, 128).astype(np.int8)
    blk = np.array([quantize_int8(x, params.ip, params.profile, True) for x in xs], np.int8)
    tail = np.array([quantize_int8(x, params.ip, params.profile, False) for x in xs], np.int8)
    return blk, tail
