"""A naive, slow, obviously-correct pure-Python statement of the int8 arithmetic.

Rounding is written as exact rational arithmetic (``fractions.Fraction``), never as bit tricks, so
that each primitive reads like its definition; the gemmlowp function approximations (exp, tanh,
logistic, the Newton reciprocal) are transcribed operation by operation on Python ints.  Used only
by tests, to check ``wavenet_edge.int8`` (which is written for speed and numba).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# -- rounding primitives -----------------------------------------------------------------------
def floor_half_up(q: Fraction) -> int:
    """Nearest integer, ties toward +infinity."""
    return math.floor(q + Fraction(1, 2))


def round_half_away(q) -> int:
    """Nearest integer, ties away from zero."""
    q = Fraction(q)
    r = math.floor(abs(q) + Fraction(1, 2))
    return r if q >= 0 else -r


def round_half_even(q) -> int:
    q = Fraction(q)
    f = math.floor(q)
    d = q - f
    if d > Fraction(1, 2) or (d == Fraction(1, 2) and f % 2 == 1):
        return f + 1
    return f


def wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def wrap16(v: int) -> int:
    return (v + 2**15) % 2**16 - 2**15


def sat(v, lo, hi):
    return max(lo, min(hi, v))


def srdhm(a: int, b: int) -> int:
    """a*b/2**31 to nearest, ties up; the single overflow case saturates."""
    if a == b == INT32_MIN:
        return INT32_MAX
    return floor_half_up(Fraction(a * b, 2**31))


def rdbpot(x: int, e: int) -> int:
    return round_half_away(Fraction(x, 2**e))


def sat_mul_pot(x: int, e: int) -> int:
    """x * 2**e for e >= 0, saturated to int32."""
    return sat(x * 2**e, INT32_MIN, INT32_MAX)


def mbqm(x: int, m: int, shift: int) -> int:
    return rdbpot(srdhm(wrap32(x * 2 ** max(shift, 0)), m), max(-shift, 0))


# -- multipliers -------------------------------------------------------------------------------
def quantize_multiplier(real: float):
    if real == 0:
        return 0, 0
    q = Fraction(real)
    shift = 0
    while q >= 1:
        q /= 2
        shift += 1
    while q < Fraction(1, 2):
        q *= 2
        shift -= 1
    m = round_half_away(q * 2**31)
    if m == 2**31:
        m //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return m, shift


def f32(x) -> float:
    return float(np.float32(x))


# -- FULLY_CONNECTED ---------------------------------------------------------------------------
def fc_real(in_s, w_s, out_s, per_channel: bool) -> float:
    if per_channel:
        return float(in_s) * float(w_s) / float(out_s)
    return f32(np.float32(in_s) * np.float32(w_s)) / float(out_s)


def fc_output(acc, in_s, w_s, out_s, out_zp, act_min, act_max, profile, per_channel=True) -> int:
    """One FC output (int8 value) from its int32 accumulator, per profile name."""
    if profile == "litert-ref":
        v = round_half_away(Fraction(float(acc) * (float(in_s) * float(w_s) / float(out_s))))
    elif profile == "xnnpack":
        scale = np.float32(np.float32(np.float32(in_s) * np.float32(w_s)) / np.float32(out_s))
        v = round_half_even(Fraction(float(np.float32(np.float32(acc) * scale))))
    else:
        m, shift = quantize_multiplier(fc_real(in_s, w_s, out_s, per_channel))
        hm = srdhm(wrap32(acc * 2 ** max(shift, 0)), m)
        r = max(-shift, 0)
        v = floor_half_up(Fraction(hm, 2**r)) if profile == "litert" else rdbpot(hm, r)
    return sat(v + out_zp, act_min, act_max)


# -- ADD / MUL ---------------------------------------------------------------------------------
def add(x1, x2, s1, z1, s2, z2, so, zo, act_min, act_max, profile, simd=False) -> int:
    s1, s2, so = np.float32(s1), np.float32(s2), np.float32(so)
    if profile == "xnnpack":
        a, b = np.float32(s1 / so), np.float32(s2 / so)
        lo, hi = np.float32(1 / 1024), np.float32(256)
        if lo <= a < hi and lo <= b < hi:
            shift = 20 - math.frexp(float(max(a, b)))[1] + 1
            ma = round_half_even(Fraction(float(a)) * 2**shift)
            mb = round_half_even(Fraction(float(b)) * 2**shift)
            acc = 2 ** (shift - 1) + ma * (x1 - z1) + mb * (x2 - z2)
            return sat(math.floor(Fraction(acc, 2**shift)) + zo, act_min, act_max)
        profile = "litert"
    twice_max = 2 * float(max(s1, s2))
    m1, e1 = quantize_multiplier(float(s1) / twice_max)
    m2, e2 = quantize_multiplier(float(s2) / twice_max)
    mo, eo = quantize_multiplier(twice_max / (2**20 * float(so)))
    if profile == "litert" and simd:
        def pre(d, e):
            t = 20 + e
            return wrap32(d * 2**t) if t >= 0 else math.floor(Fraction(d, 2 ** -t))
        v1 = srdhm(pre(x1 - z1, e1), m1)
        v2 = srdhm(pre(x2 - z2, e2), m2)
        r = rdbpot(srdhm(wrap32(v1 + v2), mo), -eo)
        return sat(sat(wrap16(wrap16(r) + zo), -128, 127), act_min, act_max)
    v1 = rdbpot(srdhm((x1 - z1) * 2**20, m1), -e1)
    v2 = rdbpot(srdhm((x2 - z2) * 2**20, m2), -e2)
    return sat(rdbpot(srdhm(v1 + v2, mo), -eo) + zo, act_min, act_max)


def mul(x1, x2, s1, z1, s2, z2, so, zo, act_min, act_max, profile, simd=False) -> int:
    s1, s2, so = np.float32(s1), np.float32(s2), np.float32(so)
    scale32 = np.float32(np.float32(s1 * s2) / so)
    p = (x1 - z1) * (x2 - z2)
    if profile == "xnnpack" and np.float32(1 / 65536) <= scale32 < np.float32(256):
        v = round_half_even(Fraction(float(np.float32(np.float32(p) * scale32))))
        return sat(v + zo, act_min, act_max)
    real = float(s1) * float(s2) / float(so) if profile == "tflm" else float(scale32)
    m, shift = quantize_multiplier(real)
    r = mbqm(p, m, shift)
    if profile in ("litert", "xnnpack") and simd:
        return sat(sat(wrap16(sat(r, -32768, 32767) + zo), -128, 127), act_min, act_max)
    return sat(r + zo, act_min, act_max)


# -- gemmlowp fixed-point functions, Q-format raws as Python ints ------------------------------
def _exp_quarter(a):
    x = wrap32(a + 2**28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    t = rdbpot(wrap32(srdhm(wrap32(x4_over_4 + x3), 715827883) + x2), 1)
    c = 1895147668
    return wrap32(c + srdhm(c, wrap32(x + t)))


_BARREL = [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
           (2, 39332535), (3, 720401), (4, 242)]


def exp_on_negative_values(a, ib):
    fb = 31 - ib
    quarter = 2 ** (fb - 2)
    a_mod = wrap32((a % quarter) - quarter)  # a & (quarter - 1) == a mod quarter
    result = _exp_quarter(sat_mul_pot(a_mod, ib))
    remainder = wrap32(a_mod - a)
    for e, mult in _BARREL:
        if ib > e and (remainder >> (fb + e)) & 1:
            result = srdhm(result, mult)
    if ib > 5 and a < -(2 ** (36 - ib)):
        result = 0
    return INT32_MAX if a == 0 else result


def _newton(a):
    s = a + INT32_MAX
    s += 1 if s >= 0 else -1
    half = int(Fraction(s, 2))  # C division truncates toward zero
    x = wrap32(1515870810 + srdhm(half, -1010580540))
    for _ in range(3):
        one_minus = wrap32(2**29 - srdhm(half, x))
        x = wrap32(x + sat_mul_pot(srdhm(x, one_minus), 2))
    return x


def one_over_one_plus_x(a):
    return sat_mul_pot(_newton(a), 1)


def one_minus_x_over_one_plus_x(a):
    return sat_mul_pot(wrap32(_newton(a) - 2**29), 2)


def fixed_tanh(a, ib):
    if a == 0:
        return 0
    n = a if a < 0 else wrap32(-a)
    t = one_minus_x_over_one_plus_x(exp_on_negative_values(n, ib + 1))
    return wrap32(-t) if a < 0 else t


def fixed_logistic(a, ib):
    if a == 0:
        return 2**30
    absx = a if a > 0 else wrap32(-a)
    rp = one_over_one_plus_x(exp_on_negative_values(wrap32(-absx), ib))
    return rp if a > 0 else wrap32(INT32_MAX - rp)


def _tanh_prepare(in_s):
    q, shift = math.frexp(float(np.float32(in_s)) * 2**27)
    m = round_half_away(Fraction(q) * 2**31)
    radius = math.floor(Fraction(15 * 2**27, 1) / Fraction(2) ** shift)
    return m, shift, radius


def tanh_tflm(x, in_s, in_zp):
    m, shift, radius = _tanh_prepare(in_s)
    d = x - in_zp
    if d <= -radius:
        return -128
    if d >= radius:
        return 127
    return sat(rdbpot(fixed_tanh(mbqm(d, m, shift), 4), 24), -128, 127)


def logistic_tflm(x, in_s, in_zp):
    m, shift, radius = _tanh_prepare(in_s)
    d = x - in_zp
    if d <= -radius:
        return -128
    if d >= radius:
        return 127
    return sat(rdbpot(fixed_logistic(mbqm(d, m, shift), 4), 23) - 128, -128, 127)


def lut_float(x, in_s, in_zp, out_s, out_zp, fn):
    """LiteRT LUTPopulate entry for input x; ``fn`` maps a float32 to a float32."""
    deq = np.float32(np.float32(in_s) * np.float32(x - in_zp))
    y = np.float32(fn(deq) * np.float32(np.float32(1) / np.float32(out_s)))
    q = int(np.float32(np.float32(round_half_away(Fraction(float(y)))) + np.float32(out_zp)))
    return sat(q, -128, 127)


def lut_xnnpack(x, in_s, in_zp, out_s, out_zp, fn):
    """XNNPACK reference-kernel table entry: float32 dequantize, ``fn`` (float32 -> float32),
    ``y * (1/out_s) + out_zp`` in float32, then round half to even."""
    deq = np.float32(np.float32(np.float32(x) - np.float32(in_zp)) * np.float32(in_s))
    y = np.float32(fn(deq))
    r = np.float32(np.float32(y * np.float32(np.float32(1) / np.float32(out_s))) + np.float32(out_zp))
    return sat(round_half_even(Fraction(float(r))), -128, 127)


def sigmoid_xnnpack(v):
    if v > 100:
        return np.float32(1)
    if v < -100:
        return np.float32(0)
    e = math.exp(float(v))  # C double arithmetic, exactly as Python floats do it
    return np.float32(e / (1.0 + e))


# -- SOFTMAX -----------------------------------------------------------------------------------
def softmax_tflm(row, in_s, beta=1.0):
    real = min(float(np.float32(beta)) * float(np.float32(in_s)) * 2**26, 2**31 - 1.0)
    m, left = quantize_multiplier(real)
    diff_min = -math.floor(Fraction(31 * 2**26) / Fraction(2) ** left)
    mx = max(row)
    total = 0
    for v in row:
        d = v - mx
        if d >= diff_min:
            total = wrap32(total + rdbpot(exp_on_negative_values(srdhm(wrap32(d * 2**left), m), 5), 12))
    hp1 = 32 - total.bit_length()  # clz of a positive int32
    nbou = 12 - hp1
    scale = one_over_one_plus_x(wrap32((total << hp1) % 2**32 - 2**31))
    out = []
    for v in row:
        d = v - mx
        if d >= diff_min:
            e = exp_on_negative_values(srdhm(wrap32(d * 2**left), m), 5)
            out.append(sat(rdbpot(srdhm(scale, e), nbou + 23) - 128, -128, 127))
        else:
            out.append(-128)
    return out


def softmax_float(row, in_s, expf, beta=1.0):
    scale = np.float32(-np.float32(in_s) * np.float32(beta))
    table = {v: expf(np.float32(scale * np.float32(v))) for v in range(256)}  # exp(-scale_in * v)
    mx = max(row)
    s = np.float32(0)
    for v in row:
        s = np.float32(s + table[mx - v])
    inv = np.float32(np.float32(1) / np.float32(s * np.float32(1 / 256)))
    return [sat(round_half_away(Fraction(float(np.float32(table[mx - v] * inv)))) - 128, -128, 127)
            for v in row]
