"""int8 → int8 QUANTIZE (a requantization into another scale / zero point), per profile.

The step graph of a vocoder requantizes its ``cond`` input into every layer's input
quantization with one QUANTIZE each (docs/step-graph.md).  Measured against the real interpreters
(``tests/test_cond_step_graph.py``: random scales, zero points and lengths 1–69):

* ``tflm``, ``litert-ref`` and the ``litert`` tail: ``(M, shift) = QuantizeMultiplier(double(s_in)
  / double(s_out))``; ``out = MultiplyByQuantizedMultiplier(x − z_in, M, shift) + z_out``
  (gemmlowp double rounding, the last step ties away from zero), saturated to int8.
* ``litert`` blocks of 16 (its NEON path through NEON_2_SSE, like ADD/MUL): the same, but the final
  right shift rounds ties up (``(v + 2**(r−1)) >> r``); elements past the last full block of 16
  take the tail formula.
* ``xnnpack`` (the delegate takes the op when ``2**-8 ≤ f32(f32(s_in) / f32(s_out)) ≤ 2**7``;
  otherwise it stays on the builtin kernel = ``litert``): ``m = rint(256·f32(s_in / s_out))``,
  ``bias = (z_out << 8) − m·z_in + 128``, ``out = (bias + x·m) >> 8`` (arithmetic shift), saturated.

Parameters are packed into one int64 vector (slots ``Q_*``) so jitted callers take one array.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import kernel
from ..errors import ConversionError
from .fixedpoint import rdbpot, rshift_half_up, srdhm, wrap32
from .multiplier import quantize_multiplier
from .requant import XNNPACK, profile_id

__all__ = ["RequantizeParams", "requantize_params", "requantize_op_int8", "requantize_op_vec",
           "Q_ZIN", "Q_ZOUT", "Q_M", "Q_SHIFT", "Q_XNN", "Q_XMULT", "Q_XBIAS"]

# ip slots
Q_ZIN, Q_ZOUT, Q_M, Q_SHIFT, Q_XNN, Q_XMULT, Q_XBIAS = range(7)


class RequantizeParams(NamedTuple):
    """ip : int64[7] (slots ``Q_*``; ``ip[Q_XNN]`` is 1 when XNNPACK takes the op);
    profile : int id."""

    ip: np.ndarray
    profile: int


def requantize_params(in_scale, in_zp, out_scale, out_zp, profile="tflm") -> RequantizeParams:
    """Prepare-time parameters of an int8 → int8 QUANTIZE (scales float32, zero points int)."""
    pid = profile_id(profile)
    si, so = np.float32(in_scale), np.float32(out_scale)
    if not (si > 0 and so > 0):
        raise ConversionError("QUANTIZE scales must be positive")
    m, s = quantize_multiplier(float(si) / float(so))
    ip = np.zeros(7, np.int64)
    ip[Q_ZIN], ip[Q_ZOUT], ip[Q_M], ip[Q_SHIFT] = int(in_zp), int(out_zp), m, s
    if pid == XNNPACK:
        r = np.float32(si / so)
        if np.float32(2.0 ** -8) <= r <= np.float32(2.0 ** 7):
            xm = int(np.rint(np.float32(256.0) * r))
            ip[Q_XNN], ip[Q_XMULT] = 1, xm
            ip[Q_XBIAS] = (int(out_zp) << 8) - xm * int(in_zp) + 0x80
    return RequantizeParams(ip, pid)


@kernel
def requantize_op_int8(x, ip, profile, simd):
    """QUANTIZE of one int8 element; ``simd``: it lies in a full block of 16 (litert only).
    Returns int64 in [-128, 127]."""
    if profile == 3 and ip[Q_XNN] == 1:
        v = (ip[Q_XBIAS] + np.int64(x) * ip[Q_XMULT]) >> np.int64(8)
    else:
        d = np.int64(x) - ip[Q_ZIN]
        sh = ip[Q_SHIFT]
        left = sh if sh > 0 else np.int64(0)
        right = -sh if sh < 0 else np.int64(0)
        hm = srdhm(wrap32(d << left), ip[Q_M])
        if (profile == 1 or profile == 3) and simd:
            v = rshift_half_up(hm, right) + ip[Q_ZOUT]
        else:
            v = rdbpot(hm, right) + ip[Q_ZOUT]
    if v < -128:
        return np.int64(-128)
    if v > 127:
        return np.int64(127)
    return v


@kernel
def requantize_op_vec(x, ip, profile, out):
    """Row QUANTIZE: int8[N] -> ``out`` int8[N] (no allocation)."""
    n = x.shape[0]
    blocked = (n // 16) * 16
    for i in range(n):
        out[i] = requantize_op_int8(x[i], ip, profile, i < blocked)
