"""Load-time (pure Python) parameter arithmetic shared by every op: multipliers, radii, ranges.

Scales arrive as float32 (they are stored as float32 in the ``.tflite``); every function here states
which products the runtimes form in float32 and which in float64, because that changes the
quantized multiplier ``M`` in its last bits and hence outputs near rounding ties.

* :func:`quantize_multiplier` is TFLite's ``QuantizeMultiplier`` (double-rounding build, i.e. without
  ``TFLITE_SINGLE_ROUNDING``): ``q, shift = frexp(real)``, ``M = round_half_away(q * 2**31)``,
  ``M == 2**31`` folds to ``(2**30, shift + 1)``, ``shift < -31`` flushes to ``(0, 0)``.
* :func:`frexp_multiplier` is the variant TANH / LOGISTIC Prepare use inline (no folding, no flush).
* :func:`input_radius` is ``CalculateInputRadius``.
* :func:`activation_range` is ``CalculateActivationRangeQuantized`` for int8 outputs.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConversionError

__all__ = ["quantize_multiplier", "frexp_multiplier", "input_radius", "activation_range",
           "round_half_away", "f32", "FUSED"]

FUSED = ("NONE", "RELU")


def f32(x) -> float:
    """Round a Python float to the nearest float32 (returned as a Python float, exactly)."""
    return float(np.float32(x))


def round_half_away(x: float) -> int:
    """C ``round()``/``roundf()``: nearest integer, ties away from zero (exact for any double)."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += 1 if x > 0 else -1
    return int(t)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier(double)`` -> ``(M, shift)`` with ``real ~= M * 2**(shift - 31)``.

    ``M`` is an int32 in ``[2**30, 2**31 - 1]`` (or 0), ``shift`` an int (positive = left shift).
    """
    real = float(real)
    if real < 0 or not math.isfinite(real):
        raise ConversionError(f"quantized multiplier must be finite and >= 0, got {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * 2147483648.0)
    if q_fixed == 2147483648:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def frexp_multiplier(real: float) -> tuple[int, int]:
    """The inline ``frexp`` + ``round(q * 2**31)`` of TANH/LOGISTIC Prepare (no fold, no flush)."""
    q, shift = math.frexp(float(real))
    q_fixed = round_half_away(q * 2147483648.0)
    if q_fixed >= 2147483648:  # int32 cast of 2**31 wraps in practice; cannot happen for f32 scales
        q_fixed -= 4294967296
    return int(q_fixed), int(shift)


def input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """``CalculateInputRadius``: floor((2**ib - 1) * 2**(tsb - ib) / 2**left_shift)."""
    num = ((1 << input_integer_bits) - 1) << (total_signed_bits - input_integer_bits)
    if input_left_shift >= 0:
        return num >> input_left_shift
    return num << (-input_left_shift)


def activation_range(out_scale: float, out_zp: int, fused: str = "NONE") -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for int8: ``(act_min, act_max)``.

    RELU: ``act_min = max(-128, out_zp + round(0.0 / scale))`` = ``max(-128, out_zp)``.
    """
    if fused == "NONE":
        return -128, 127
    if fused == "RELU":
        return max(-128, int(out_zp)), 127
    raise ConversionError(f"unsupported fused activation {fused!r} (expected one of {FUSED})")
