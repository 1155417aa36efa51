"""int8 SOFTMAX of LiteRT's optimized kernel as built for aarch64 (profiles ``litert-arm64``,
``xnnpack-arm64``).

LiteRT's ``optimized_ops.h`` defines ``TFLITE_SOFTMAX_USE_UINT16_LUT`` when compiled by clang for
aarch64 (the ai-edge-litert aarch64 wheels, Android, Raspberry Pi builds); int8 -> int8 SOFTMAX
then runs ``SoftmaxInt8LUT`` instead of the float-table ``Softmax`` the x86-64 build uses.
XNNPACK does not take int8 SOFTMAX, so the default (delegated) resolver runs the same kernel.

Prepare (``PopulateSoftmaxUInt8LookupTable``), for ``v`` in 0..255 with ``scale = f32(in_scale *
beta)``: ``e = expf(scale * f32(v - 255))``; ``table[v] = min(65535, int(double(f32(e * 65535))
+ 0.5))`` (truncating conversion), i.e. ``exp((v - 255) * scale)`` in units of 1/65535, stored as
two byte tables that the kernel recombines.

Per row (``SoftmaxInt8LUT``): ``max`` of the row; each element's exponential is
``table[255 - (max - x)]`` (an exact integer); ``sum`` = their int32 sum (at most 256 * 65535,
exact in float32 too); ``inv = 1.0f / (f32(sum) * out_scale)``; ``(M, shift) =
QuantizeMultiplier(double(inv))`` (per row); output ``MultiplyByQuantizedMultiplier(e, M, shift)
+ out_zp`` clamped to int8.  The NEON body (16 lanes: ``vqrdmulhq`` then ``vrshlq``) and the
scalar tail (``SRDHM`` then ``RoundingDivideByPOT``) agree here because every value is >= 0 and
``shift <= -7`` (``sum >= 65535``), so both round ties up.

It differs from the x86 float path by +-1 LSB on about 0.01-0.02 % of outputs (measured on
whole models against the real aarch64 interpreter; see ``converters.litert_arm64``).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import kernel
from ._libm import expf
from .fixedpoint import mbqm
from .requant import ARM64_PROFILES
from .softmax import row_max

__all__ = ["ARM64_PROFILES", "uses_uint16_softmax", "softmax_uint16_table", "softmax_uint16_lut",
           "softmax_int8_arm64"]


def uses_uint16_softmax(profile) -> bool:
    """Whether the named profile's int8 SOFTMAX is the aarch64 uint16-table kernel."""
    return isinstance(profile, str) and profile in ARM64_PROFILES


def softmax_uint16_table(in_scale, beta=1.0) -> np.ndarray:
    """int32[256]: ``table[v]`` = the uint16 exponential of ``(v - 255) * in_scale * beta``
    (``PopulateSoftmaxUInt8LookupTable``), indexed by ``v = 255 - (max - x)``."""
    scale = np.float32(np.float32(in_scale) * np.float32(beta))
    table = np.empty(256, np.int32)
    for v in range(256):
        e = expf(np.float32(scale * np.float32(v - 255)))
        table[v] = min(65535, int(float(np.float32(e * np.float32(65535.0))) + 0.5))
    return table


@kernel
def _quantize_multiplier(real):
    """TFLite ``QuantizeMultiplier(double)`` for ``0 < real < 1`` (jitted, per row)."""
    q, shift = math.frexp(real)
    v = q * 2147483648.0
    m = np.int64(math.floor(v))
    if v - np.float64(m) >= 0.5:
        m += 1
    if m == np.int64(2147483648):
        m = np.int64(1073741824)
        shift += 1
    if shift < -31:
        return np.int64(0), np.int64(0)
    return m, np.int64(shift)


@kernel
def softmax_uint16_lut(src, xo, dst, yo, n, table):
    """aarch64 LiteRT int8 SOFTMAX of ``src[xo:xo+n]`` into ``dst[yo:yo+n]`` (int8), output
    quantization (1/256, -128), with ``table`` from :func:`softmax_uint16_table`."""
    ux = np.uint64(xo)
    uy = np.uint64(yo)
    un = np.uint64(n)
    base = np.int64(255) - row_max(src, xo, n)
    total = np.int64(0)
    for c in range(un):
        total += np.int64(table[np.uint64(base + np.int64(src[ux + c]))])
    denom = np.float32(np.float32(total) * np.float32(1.0 / 256.0))
    inv = np.float32(np.float32(1.0) / denom)
    m, shift = _quantize_multiplier(np.float64(inv))
    for c in range(un):
        e = np.int64(table[np.uint64(base + np.int64(src[ux + c]))])
        v = mbqm(e, m, shift) - 128
        v = np.int64(127) if v > 127 else v
        dst[uy + c] = np.int8(np.int64(-128) if v < -128 else v)


@kernel
def softmax_int8_arm64(x, table, out):
    """Row form of :func:`softmax_uint16_lut`: int8[N] ``x`` -> int8[N] ``out``."""
    softmax_uint16_lut(x, 0, out, 0, x.shape[0], table)
