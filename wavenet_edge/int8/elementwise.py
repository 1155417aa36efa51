"""int8 ADD and MUL (same shapes, no broadcast), per runtime profile.

Parameters are packed into one int64 vector ``ip`` and one float64 vector ``fp`` (slot constants
below) so jitted callers take two arrays.  :func:`add_int8_vec` / :func:`mul_int8_vec` compute a
whole row; :func:`add_int8` / :func:`mul_int8` one element, given whether it sits in a full block
of 16 (``simd``): LiteRT's optimized x86 kernels run a NEON code path (through NEON_2_SSE) on blocks
of 16 elements and a scalar loop on the ``size % 16`` tail, and the two paths round differently.

ADD parameters (all profiles): ``left_shift = 20``, ``twice_max = 2 * double(max(s1, s2))``,
``(m_i, sh_i) = QuantizeMultiplier(s_i / twice_max)``, ``(mo, sho) = QuantizeMultiplier(twice_max /
(2**20 * so))`` (the power-of-two factors make float/double order irrelevant).

* ADD ``tflm`` / ``litert-ref`` / ``litert`` tail (``AddFunc``): ``v_i = RDBPOT(SRDHM((x_i - z_i) <<
  20, m_i), -sh_i)``; ``out = RDBPOT(SRDHM(v_1 + v_2, mo), -sho) + zo``, clamped.
* ADD ``litert`` blocks of 16 (NEON path): the input shift is folded: ``v_i = SRDHM((x_i - z_i) <<
  (20 + sh_i), m_i)`` (a negative total shift is a truncating right shift), ``r = RDBPOT(SRDHM(v_1 +
  v_2, mo), -sho)`` narrowed to int16 by truncation, ``+ zo`` in wrapping int16, saturated to int8,
  clamped.
* ADD ``xnnpack`` (when the delegate takes it: ``f32(s_i / so)`` in ``[2**-10, 256)`` for both
  inputs; otherwise the op stays on the builtin kernel = ``litert``): ``a = f32(s1/so)``, ``b =
  f32(s2/so)``, ``shift = 20 - exponent(max(a, b))``, ``ma = rint(a * 2**shift)``, ``mb`` likewise,
  ``bias = 2**(shift-1) - ma*z1 - mb*z2``; ``out = ((bias + ma*x1 + mb*x2) >> shift) + zo``, clamped.

MUL parameters: ``tflm``: ``real = double(s1) * double(s2) / double(so)``; LiteRT (all three
profiles): ``real = double(f32(f32(s1 * s2) / so))`` (float32 arithmetic in Prepare).

* MUL ``tflm`` / ``litert-ref`` / ``litert`` tail: ``MultiplyByQuantizedMultiplier((x1-z1)*(x2-z2),
  M, shift) + zo``, clamped.
* MUL ``litert`` blocks of 16: the same int32 value, saturated to int16, ``+ zo`` in wrapping int16,
  saturated to int8, clamped (differs only when the int32 value leaves the int16 range).
* MUL ``xnnpack`` (delegated when ``f32(f32(s1*s2)/so)`` in ``[2**-16, 256)``): ``rint(f32(p) *
  f32(f32(s1*s2)/so)) + zo`` in float32 (ties to even), clamped.
* MUL ``xnnpack-arm64`` (delegated likewise; XNNPACK's aarch64 ``rndnu`` NEON kernel): from the
  float32 bits of that scale, ``M = (mantissa | 2**23) << 7``, ``shift = 126 - exponent``,
  ``post = max(shift, 1)``, ``pre = post - shift``; ``v = sat32(p << pre)``, ``v = (2 v M) >>
  32``, ``v = (v + 2**(post-1)) >> post`` (ties up, where x86 rounds ties to even), ``sat16``,
  ``sat16(v + zo)``, ``sat8``, clamped.  ``ip[M_XNN] = 2`` marks it (profile id stays 3).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import kernel
from ..errors import ConversionError
from .fixedpoint import mbqm, rdbpot, srdhm, wrap32
from .multiplier import activation_range, f32, quantize_multiplier
from .requant import ARM64_PROFILES, TFLM, XNNPACK, profile_id, single_shift

__all__ = ["ElementwiseParams", "add_params", "mul_params", "add_int8", "mul_int8",
           "add_input_term", "add_int8_vec", "mul_int8_vec", "shift_params_fit",
           "add_int8_shift", "add_int8_shift_blk", "mul_int8_shift"]

# ip slots, ADD
A_Z1, A_Z2, A_LEFT, A_M1, A_S1, A_M2, A_S2, A_MO, A_SO, A_ZO, A_MIN, A_MAX, A_XNN = range(13)
# fp slots, ADD (xnnpack integer parameters, exact in float64)
AX_MA, AX_MB, AX_SHIFT, AX_BIAS = range(4)
# ip slots, MUL
M_Z1, M_Z2, M_M, M_S, M_ZO, M_MIN, M_MAX, M_XNN = range(8)
# fp slots, MUL
MX_SCALE = 0
MX_MULT, MX_PRE, MX_POST = 1, 2, 3  # xnnpack-arm64 only (M_XNN == 2)


class ElementwiseParams(NamedTuple):
    """ip : int64[K] integer parameters; fp : float64[J] xnnpack parameters; profile : int id.
    ``ip[A_XNN]`` / ``ip[M_XNN]`` is 1 when the XNNPACK delegate takes the op (xnnpack profile)."""

    ip: np.ndarray
    fp: np.ndarray
    profile: int


def _xnn_add_fp(s1, z1, s2, z2, so):
    """XNNPACK ``xnn_init_qs8_add_minmax_scalar_params`` -> ([ma, mb, shift, bias], delegated)."""
    a = np.float32(s1 / so)
    b = np.float32(s2 / so)
    lo, hi = np.float32(1.0 / 1024.0), np.float32(256.0)
    if not (lo <= a < hi and lo <= b < hi):
        return np.zeros(4, np.float64), 0
    mx = max(a, b)
    exponent = int((int(np.float32(mx).view(np.uint32)) >> 23) & 0xFF) - 127
    shift = 20 - exponent
    ma = int(np.rint(np.float64(a) * 2.0 ** shift))  # exact: adding to the exponent field
    mb = int(np.rint(np.float64(b) * 2.0 ** shift))
    bias = (1 << (shift - 1)) - ma * int(z1) - mb * int(z2)
    return np.array([ma, mb, shift, bias], np.float64), 1


def _prepare(what, in1_scale, in2_scale, out_scale, profile):
    """(profile id, the three scales as float32), checked positive."""
    s1, s2, so = np.float32(in1_scale), np.float32(in2_scale), np.float32(out_scale)
    if not (s1 > 0 and s2 > 0 and so > 0):
        raise ConversionError(f"{what} scales must be positive")
    return profile_id(profile), s1, s2, so


def add_params(in1_scale, in1_zp, in2_scale, in2_zp, out_scale, out_zp, fused="NONE",
               profile="tflm") -> ElementwiseParams:
    """Prepare-time parameters of int8 ADD (scales float32, zero points int)."""
    pid, s1, s2, so = _prepare("ADD", in1_scale, in2_scale, out_scale, profile)
    left = 20
    twice_max = 2.0 * float(max(s1, s2))
    if not twice_max / (float(1 << left) * float(so)) < 1.0:
        # QuantizeMultiplierSmallerThanOneExp CHECK-fails (aborts) in every runtime
        raise ConversionError(f"ADD input/output scale ratio {float(max(s1, s2)) / float(so):.6g} "
                              "is too large (TFLite requires < 2**19)")
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / (float(1 << left) * float(so)))
    lo, hi = activation_range(so, out_zp, fused)
    fp, xnn = np.zeros(4, np.float64), 0
    if pid == XNNPACK:
        fp, xnn = _xnn_add_fp(s1, in1_zp, s2, in2_zp, so)
    ip = np.array([in1_zp, in2_zp, left, m1, sh1, m2, sh2, mo, sho, out_zp, lo, hi, xnn], np.int64)
    return ElementwiseParams(ip, fp, pid)


def mul_params(in1_scale, in1_zp, in2_scale, in2_zp, out_scale, out_zp, fused="NONE",
               profile="tflm") -> ElementwiseParams:
    """Prepare-time parameters of int8 MUL (scales float32, zero points int)."""
    pid, s1, s2, so = _prepare("MUL", in1_scale, in2_scale, out_scale, profile)
    scale32 = np.float32(np.float32(s1 * s2) / so)
    real = float(s1) * float(s2) / float(so) if pid == TFLM else float(scale32)
    m, sh = quantize_multiplier(real)
    lo, hi = activation_range(so, out_zp, fused)
    xnn = int(pid == XNNPACK and np.float32(1.0 / 65536.0) <= scale32 < np.float32(256.0))
    fp = np.array([f32(scale32)], np.float64)
    if xnn and isinstance(profile, str) and profile in ARM64_PROFILES:
        xnn, fp = 2, np.array([f32(scale32), *_rndnu_params(scale32)], np.float64)
    ip = np.array([in1_zp, in2_zp, m, sh, out_zp, lo, hi, xnn], np.int64)
    return ElementwiseParams(ip, fp, pid)


def _rndnu_params(scale32):
    """XNNPACK's ``xnn_init_qs8_mul_minmax_rndnu_neon_params``: (multiplier, left pre-shift,
    post shift) from the float32 bits of ``scale32`` (the 24-bit mantissa << 7 and the exponent,
    the shift split so the rounding post shift is at least 1)."""
    bits = int(np.float32(scale32).view(np.uint32))
    multiplier = ((bits & 0x007FFFFF) | 0x00800000) << 7
    shift = 127 + 31 - 32 - (bits >> 23)
    post = max(shift, 1)
    return multiplier, post - shift, post


@kernel
def _mul_rndnu(prod, fp):
    """XNNPACK's aarch64 MUL requantization (``qs8-vmul`` rndnu NEON kernel) of one int32
    product, before the output zero point: saturating left pre-shift, ``vqdmulh`` (doubling
    high half, truncating), rounding right shift (ties up), saturated to int16."""
    v = _sat(np.int64(prod) << np.int64(fp[MX_PRE]), -2147483648, 2147483647)
    v = (v * np.int64(fp[MX_MULT]) * np.int64(2)) >> np.int64(32)
    post = np.int64(fp[MX_POST])
    v = (v + (np.int64(1) << (post - np.int64(1)))) >> post
    return _sat(v, -32768, 32767)


@kernel
def _clamp(v, lo, hi):
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


@kernel
def _wrap16(v):
    return ((np.int64(v) + np.int64(32768)) & np.int64(65535)) - np.int64(32768)


@kernel
def _sat(v, lo, hi):
    return min(max(np.int64(v), np.int64(lo)), np.int64(hi))


@kernel
def _shl_or_trunc(x, s):
    """NEON ``vshlq_s32`` by a signed amount: left shift (wrapping) or truncating right shift."""
    if s >= 0:
        return wrap32(np.int64(x) << np.int64(s))
    return np.int64(x) >> np.int64(-s)


@kernel
def add_input_term(d, left, m, shift):
    """One input's rescaled term of ADD (``tflm``/``litert-ref``, ``litert`` tail): ``RDBPOT(SRDHM(
    d << left, m), -shift)`` for the input minus its zero point ``d``; the output is requantized
    from the sum of the two terms.  A function of the int8 input alone, so it can be tabulated."""
    return rdbpot(srdhm(wrap32(np.int64(d) << np.int64(left)), m), -shift)


@kernel
def add_int8(x1, x2, ip, fp, profile, simd):
    """int8 ADD of one element pair; ``simd``: element lies in a full block of 16 (litert only).
    Returns int64 in [act_min, act_max]."""
    if profile == 3 and ip[A_XNN] == 1:
        acc = np.int64(fp[AX_BIAS]) + np.int64(x1) * np.int64(fp[AX_MA]) \
            + np.int64(x2) * np.int64(fp[AX_MB])
        v = (wrap32(acc) >> np.int64(fp[AX_SHIFT])) + ip[A_ZO]
        return _clamp(v, ip[A_MIN], ip[A_MAX])
    d1 = np.int64(x1) - ip[A_Z1]
    d2 = np.int64(x2) - ip[A_Z2]
    left = ip[A_LEFT]
    if (profile == 1 or profile == 3) and simd:
        v1 = srdhm(_shl_or_trunc(d1, left + ip[A_S1]), ip[A_M1])
        v2 = srdhm(_shl_or_trunc(d2, left + ip[A_S2]), ip[A_M2])
        r = rdbpot(srdhm(wrap32(v1 + v2), ip[A_MO]), -ip[A_SO])
        s = _wrap16(_wrap16(r) + ip[A_ZO])
        return _clamp(_sat(s, -128, 127), ip[A_MIN], ip[A_MAX])
    v1 = add_input_term(d1, left, ip[A_M1], ip[A_S1])
    v2 = add_input_term(d2, left, ip[A_M2], ip[A_S2])
    raw = rdbpot(srdhm(wrap32(v1 + v2), ip[A_MO]), -ip[A_SO]) + ip[A_ZO]
    return _clamp(raw, ip[A_MIN], ip[A_MAX])


@kernel
def mul_int8(x1, x2, ip, fp, profile, simd):
    """int8 MUL of one element pair; ``simd`` as in :func:`add_int8`. Returns int64."""
    prod = (np.int64(x1) - ip[M_Z1]) * (np.int64(x2) - ip[M_Z2])
    if profile == 3 and ip[M_XNN] == 2:  # xnnpack-arm64
        v = _sat(_sat(_mul_rndnu(prod, fp) + ip[M_ZO], -32768, 32767), -128, 127)
        return _clamp(v, ip[M_MIN], ip[M_MAX])
    if profile == 3 and ip[M_XNN] == 1:
        p = np.float32(np.float64(np.float32(prod)) * np.float64(np.float32(fp[MX_SCALE])))
        v = np.int64(np.rint(np.float64(p))) + ip[M_ZO]
        return _clamp(v, ip[M_MIN], ip[M_MAX])
    r = mbqm(prod, ip[M_M], ip[M_S])
    if (profile == 1 or profile == 3) and simd:
        s = _wrap16(_sat(r, -32768, 32767) + ip[M_ZO])
        return _clamp(_sat(s, -128, 127), ip[M_MIN], ip[M_MAX])
    return _clamp(r + ip[M_ZO], ip[M_MIN], ip[M_MAX])


@kernel
def add_int8_vec(x1, x2, ip, fp, profile, out):
    """Row ADD: int8[N] + int8[N] -> ``out`` int8[N] (no allocation)."""
    n = x1.shape[0]
    blocked = (n // 16) * 16
    for i in range(n):
        out[i] = add_int8(x1[i], x2[i], ip, fp, profile, i < blocked)


@kernel
def mul_int8_vec(x1, x2, ip, fp, profile, out):
    """Row MUL: int8[N] * int8[N] -> ``out`` int8[N] (no allocation)."""
    n = x1.shape[0]
    blocked = (n // 16) * 16
    for i in range(n):
        out[i] = mul_int8(x1[i], x2[i], ip, fp, profile, i < blocked)


# --------------------------------------------------------------------------------------------
# ADD/MUL of profiles tflm and litert as one-shift rescales (vectorizable element loops)
# --------------------------------------------------------------------------------------------
@kernel
def shift_params_fit(ip, is_mul, profile):
    """True when the op's shifts fit :func:`~.requant.single_shift` (``left``/``right`` in
    [0, 31]; litert's ADD blocks also need ``20 + shift_i`` ≥ 0); then
    :func:`add_int8_shift` / :func:`mul_int8_shift` equal :func:`add_int8` / :func:`mul_int8`
    for profiles tflm (0) and litert (1).  (Every multiplier below one has a shift ≤ 0; shifts
    beyond these bounds come only from scales more than 2²⁰ apart.)"""
    if is_mul:
        return -31 <= ip[M_S] <= 31
    ok = (ip[A_LEFT] == 20 and -31 <= ip[A_S1] <= 0 and -31 <= ip[A_S2] <= 0
          and -31 <= ip[A_SO] <= 0)
    if profile == 1:
        ok = ok and ip[A_S1] >= -20 and ip[A_S2] >= -20
    return ok


@kernel
def add_int8_shift(x1, x2, z1, z2, m1, r1, m2, r2, mo, ro, zo, lo, hi):
    """:func:`add_int8` of ``tflm``/``litert-ref`` and the ``litert`` tail, branch-free:
    ``v_i = single_shift(x_i − z_i, m_i, 20, r_i)`` (the ``<< 20`` never wraps: |x − z| ≤ 255),
    ``out = single_shift(wrap32(v_1 + v_2), mo, 0, ro) + zo``, clamped (every shift ties away
    from zero; ``r = −shift``, see :func:`shift_params_fit`)."""
    v1 = single_shift(np.int64(x1) - z1, m1, 20, r1, True)
    v2 = single_shift(np.int64(x2) - z2, m2, 20, r2, True)
    v = single_shift(v1 + v2, mo, 0, ro, True) + zo
    return min(max(v, lo), hi)


@kernel
def add_int8_shift_blk(x1, x2, z1, z2, m1, t1, m2, t2, mo, ro, zo, lo, hi):
    """:func:`add_int8` of ``litert`` in a full block of 16 (the NEON path), branch-free:
    ``v_i = SRDHM((x_i − z_i) << t_i, m_i)`` with ``t_i = 20 + shift_i`` ≥ 0 (no wrap), the
    output rescale as the tail, narrowed to int16, ``+ zo`` in wrapping int16, saturated to
    int8, clamped."""
    v1 = single_shift((np.int64(x1) - z1) << t1, m1, 0, 0, True)
    v2 = single_shift((np.int64(x2) - z2) << t2, m2, 0, 0, True)
    r = single_shift(v1 + v2, mo, 0, ro, True)
    s = _wrap16(_wrap16(r) + zo)
    return min(max(min(max(s, -128), 127), lo), hi)


@kernel
def mul_int8_shift(x1, x2, z1, z2, m, left, right, zo, lo, hi, blk):
    """:func:`mul_int8` of ``tflm``/``litert-ref``/``litert``, branch-free: the product of the
    offset inputs (int32: |Π| ≤ 255²) rescaled with :func:`~.requant.single_shift` (ties away,
    ``left = max(shift, 0)``, ``right = max(−shift, 0)``), ``+ zo``, clamped; ``blk`` (litert's
    blocks of 16): first saturated to int16, ``+ zo`` in wrapping int16, saturated to int8."""
    r = single_shift((np.int64(x1) - z1) * (np.int64(x2) - z2), m, left, right, True)
    if blk:
        r = min(max(_wrap16(min(max(r, -32768), 32767) + zo), -128), 127)
    else:
        r = r + zo
    return min(max(r, lo), hi)
