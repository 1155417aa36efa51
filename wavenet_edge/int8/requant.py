"""FULLY_CONNECTED requantization, per runtime *profile*.

Profiles (``PROFILES[name]`` is the small int passed to jitted code):

===============  ==  =========================================================================
``tflm``          0  TFLM reference kernels (CMSIS-NN claims the same): gemmlowp double rounding
                     ``RoundingDivideByPOT(SRDHM(acc << max(shift,0), M), max(-shift,0))``
                     (the last step rounds ties away from zero).
``litert``        1  LiteRT builtin optimized kernels (x86-64 build): same ``SRDHM`` but the
                     final right shift rounds ties up: ``(v + 2**(r-1)) >> r`` (ARM ``SRSHL``
                     semantics), for every batch size.
``litert-ref``    2  LiteRT ``BUILTIN_REF``: ``round_half_away(double(acc) * fmul)`` with
                     ``fmul = double(in) * double(w[c]) / double(out)``.
``xnnpack``       3  LiteRT default XNNPACK delegate: ``rint(f32(acc) * fmul)`` (ties to even)
                     with ``fmul = f32(f32(in * w[c]) / out)``; XNNPACK refuses ``fmul >= 256``
                     (the interpreter fails to prepare), so :func:`fc_params` raises.
===============  ==  =========================================================================

The aarch64 builds, ``litert-arm64`` (builtin kernels) and ``xnnpack-arm64`` (default delegate),
share the id of ``litert`` / ``xnnpack`` and their arithmetic for every op except SOFTMAX (uint16
exp table, :mod:`wavenet_edge.int8.softmax_arm64`) and XNNPACK's MUL (``rndnu``, see
:mod:`wavenet_edge.int8.elementwise`); parameter functions given their *name* build those.

How ``M, shift`` are derived (all profiles that use them): per-channel weights (more than one
scale) use ``double(in) * double(w[c]) / double(out)``; per-tensor weights (one scale) use
``double(f32(in * w)) / double(out)`` (``GetQuantizedConvolutionMultipler`` multiplies the two
float32 scales in float32 first).

Measured (single-op graphs, 4,000 random shapes/scales/batch sizes 1-200, per-channel and
per-tensor, with and without RELU): 0 mismatches in 7.1 M outputs for each profile; the profiles
differ from each other in ~0.03-0.05 % of outputs (ties), so they are not interchangeable.

Shapes/dtypes: ``acc`` is the int32 accumulator ``sum_k w[c,k] * (x[k] - in_zp) + bias[c]``
(int64 in jitted code, always within int32); the requantized value is returned *before* adding the
output zero point; :func:`requantize_int8` adds it and clamps to ``[act_min, act_max]``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import kernel
from ..errors import ConversionError, UnknownProfileError
from .fixedpoint import rdbpot, rshift_half_up, srdhm, wrap32
from .multiplier import activation_range, f32, quantize_multiplier

__all__ = ["PROFILES", "PROFILE_NAMES", "TFLM", "LITERT", "LITERT_REF", "XNNPACK", "profile_id",
           "FCParams", "fc_params", "requantize", "requantize_int8", "round_half_away_f64",
           "rint_f32_product", "fold_input_offset", "single_shift",
           "requantize_single_shift"]

PROFILES = {"tflm": 0, "litert": 1, "litert-ref": 2, "xnnpack": 3}
PROFILE_NAMES = {v: k for k, v in PROFILES.items()}
TFLM, LITERT, LITERT_REF, XNNPACK = 0, 1, 2, 3
#: the aarch64 builds (clang) -> the x86-64 profile whose id they share (module docstring)
ARM64_PROFILES = {"litert-arm64": "litert", "xnnpack-arm64": "xnnpack"}


def profile_id(profile) -> int:
    """Accept a profile name or id; return the id. Raises UnknownProfileError on anything else."""
    if isinstance(profile, str):
        if profile in PROFILES:
            return PROFILES[profile]
        if profile in ARM64_PROFILES:
            return PROFILES[ARM64_PROFILES[profile]]
    elif isinstance(profile, (int, np.integer)) and int(profile) in PROFILE_NAMES:
        return int(profile)
    known = list(PROFILES) + list(ARM64_PROFILES)
    raise UnknownProfileError(f"unknown profile {profile!r}; known: {', '.join(known)}")


class FCParams(NamedTuple):
    """Per-output-channel requantization parameters of one FULLY_CONNECTED op.

    multiplier : int32[C]  quantized multiplier ``M`` (Q0.31, in [2**30, 2**31) or 0)
    shift      : int32[C]  exponent (> 0 = left shift)
    fmul       : float64[C]  real multiplier of the float profiles (litert-ref: float64 product;
                 xnnpack: a float32 value stored exactly in a float64; tflm/litert: the float64
                 product too, informative only)
    in_zp, out_zp, act_min, act_max : int  (act_* already include the fused activation)
    profile    : int  profile id
    """

    multiplier: np.ndarray
    shift: np.ndarray
    fmul: np.ndarray
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int
    profile: int


def fc_params(in_scale, in_zp, w_scales, out_scale, out_zp, fused="NONE", profile="tflm", *,
              n_out=None) -> FCParams:
    """Build :class:`FCParams` from the float32 scales stored in the model.

    ``w_scales``: float32[C] per-channel scales, or one scale (per-tensor; broadcast to ``n_out``
    channels if given).  ``fused``: ``"NONE"`` or ``"RELU"``.
    """
    pid = profile_id(profile)
    in_s = np.float32(in_scale)
    out_s = np.float32(out_scale)
    ws = np.atleast_1d(np.asarray(w_scales, dtype=np.float32))
    if ws.ndim != 1 or ws.size == 0:
        raise ConversionError("fully-connected weight scales must be a non-empty 1-D array")
    if not (in_s > 0 and out_s > 0 and np.all(ws > 0)):
        raise ConversionError("fully-connected scales must be positive")
    per_channel = ws.size > 1
    n = ws.size if (per_channel or n_out is None) else int(n_out)
    mult = np.empty(n, np.int32)
    shift = np.empty(n, np.int32)
    fmul = np.empty(n, np.float64)
    for c in range(n):
        w = ws[c] if per_channel else ws[0]
        if per_channel:
            real = float(in_s) * float(w) / float(out_s)
        else:
            real = float(np.float32(in_s * w)) / float(out_s)
        m, s = quantize_multiplier(real)
        mult[c], shift[c] = m, s
        if pid == XNNPACK:
            fmul[c] = f32(np.float32(in_s * w) / out_s)
            if fmul[c] >= 256.0:
                # xnn_create_fully_connected_nc_qs8_qc8w refuses; the delegate fails to prepare
                raise ConversionError(f"fully-connected multiplier {fmul[c]:.6g} >= 256 is not "
                                      "supported by XNNPACK")
        else:
            fmul[c] = float(in_s) * float(w) / float(out_s)
    lo, hi = activation_range(out_s, out_zp, fused)
    return FCParams(mult, shift, fmul, int(in_zp), int(out_zp), lo, hi, pid)


def fold_input_offset(bias, weights, offset) -> np.ndarray:
    """int32[C]: ``bias[o] − offset·Σ_i weights[o, i]``, wrapped to int32 as C does.

    With ``offset`` the input zero point this moves the zero point out of the dot product:
    ``Σ_i w (x − zp) + b = Σ_i w x + (b − zp Σ_i w)``, exact in int32, so an FC's inner loop
    is a plain int8·int8 sum.  Folding is modular, so folding a second offset into an already
    folded bias (a kernel that feeds ``x + 128`` as unsigned) equals folding their sum.
    ``bias`` (C,) integers, ``weights`` int8 (C, N)."""
    w = np.asarray(weights, np.int64)
    folded = np.asarray(bias, np.int64).ravel() - int(offset) * w.reshape(w.shape[0], -1).sum(axis=1)
    return ((folded + 2**31) % 2**32 - 2**31).astype(np.int32)


@kernel
def round_half_away_f64(x):
    """C ``round(double)`` -> int64 (ties away from zero, exact: no ``floor(x + 0.5)`` error)."""
    t = np.float64(np.trunc(x))
    d = x - t  # exact for |x| < 2**52
    if d >= 0.5:
        t += 1.0
    elif d <= -0.5:
        t -= 1.0
    return np.int64(t)


@kernel
def rint_f32_product(a, b):
    """``rint(f32(f32(a) * f32(b)))`` -> int64: float32 product, round half to even."""
    # float32 x float32 is exact in float64 (48 significant bits), so one rounding to float32
    # reproduces the IEEE float32 multiply
    p = np.float32(np.float64(np.float32(a)) * np.float64(np.float32(b)))
    return np.int64(np.rint(np.float64(p)))


@kernel
def requantize(acc, multiplier, shift, fmul, profile):
    """Requantize one int32 accumulator for one output channel; returns int64 (pre zero point).

    ``profile`` is an int id (see module docstring); ``fmul`` is only read by litert-ref/xnnpack.
    """
    if profile == 2:
        v = round_half_away_f64(np.float64(acc) * fmul)
    elif profile == 3:
        v = rint_f32_product(acc, fmul)
    else:
        left = shift if shift > 0 else 0
        right = -shift if shift < 0 else 0
        hm = srdhm(wrap32(np.int64(acc) << np.int64(left)), multiplier)
        if profile == 1:
            v = rshift_half_up(hm, right)
        else:
            v = rdbpot(hm, right)
    # saturate so that int64 -> int32 casts downstream are safe; clamping to int8 comes later
    if v > 2147483647:
        v = np.int64(2147483647)
    elif v < -2147483648:
        v = np.int64(-2147483648)
    return v


@kernel
def requantize_int8(acc, multiplier, shift, fmul, out_zp, act_min, act_max, profile):
    """:func:`requantize` + output zero point + clamp to ``[act_min, act_max]``; returns int64."""
    v = requantize(acc, multiplier, shift, fmul, profile) + np.int64(out_zp)
    if v < act_min:
        v = np.int64(act_min)
    if v > act_max:
        v = np.int64(act_max)
    return v



@kernel
def single_shift(x, multiplier, left, right, ties_away):
    """``R(SRDHM(wrap32(x << left), M), right)`` (``R`` = :func:`~.fixedpoint.rdbpot`, ties away
    from zero, when ``ties_away``; else :func:`~.fixedpoint.rshift_half_up`) in one rounding
    shift, for every int32 ``x``; returns int64 (always in the int32 range).

    Why it is exact: with ``P = wrap32(x << left)·M`` (|P| < 2⁶²; ``M`` in [0, 2³¹) so SRDHM
    never saturates), ``SRDHM = ⌊(P + 2³⁰) / 2³¹⌋ = h``, and the rounding shift is
    ``⌊(h + c) / 2^right⌋`` with ``c = 2^(right−1)`` (minus 1 when ``h < 0`` and ties go away
    from zero; ``c = 0`` when ``right = 0``).  Nested floors of integer quotients compose,
    ``⌊(⌊y/p⌋ + c)/q⌋ = ⌊(y + c·p)/(p·q)⌋``, and ``h < 0 ⇔ P + 2³⁰ < 0``: one multiply, one add
    and one arithmetic shift by ``31 + right``, all in int64 without overflow and without
    branches, so a loop of it vectorizes (8 int64 lanes).  ``left``, ``right`` in [0, 31]."""
    p = np.int64(np.int32(np.int32(x) << np.int32(left))) * np.int64(multiplier)
    r = np.int64(right)
    s = np.int64(31) + r
    k = (np.int64(1) << (s - np.int64(1))) + (np.int64(1073741824) if r > 0 else np.int64(0))
    n = np.int64(-2147483648) if (r > 0 and ties_away) else np.int64(0)
    return (p + k + ((p + np.int64(1073741824)) >> np.int64(63) & n)) >> s


@kernel
def requantize_single_shift(acc, multiplier, shift, ties_away):
    """:func:`requantize` of profiles tflm (``ties_away``) and litert as :func:`single_shift`
    (``left = max(shift, 0)``, ``right = max(−shift, 0)``)."""
    sh = np.int64(shift)
    return single_shift(acc, multiplier, max(sh, np.int64(0)), max(-sh, np.int64(0)), ties_away)
