"""wavenet_edge.int8 against hand-computed boundary cases and the naive reference (no runtimes)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_int8 as ref
from wavenet_edge.errors import ConversionError, UnknownProfileError
from wavenet_edge.int8 import (PROFILES, activation_range, add_int8, add_params, fc_params,
                               logistic_table, mul_int8, mul_params, quantize_multiplier,
                               requantize, requantize_int8, softmax_int8, softmax_params,
                               tanh_table)
from wavenet_edge.int8._libm import expf, tanhf
from wavenet_edge.int8.fixedpoint import rdbpot, rshift_half_up, srdhm

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
NAMES = sorted(PROFILES)


# -- hand-computed boundary cases --------------------------------------------------------------
def test_srdhm_saturation_and_ties():
    assert srdhm(I32_MIN, I32_MIN) == I32_MAX          # the only overflow: -1 * -1
    assert srdhm(I32_MIN, I32_MAX) == -I32_MAX         # -1 * (1 - 2**-31)
    assert srdhm(I32_MAX, I32_MAX) == I32_MAX - 1
    assert srdhm(2**30, 1) == 1                          # +0.5 -> 1 (ties up)
    assert srdhm(-(2**30), 1) == 0                       # -0.5 -> 0 (ties up, not away)
    assert srdhm(-3 * 2**30, 1) == -1                    # -1.5 -> -1
    assert srdhm(-(2**30) - 1, 1) == -1                  # just below -0.5
    assert srdhm(0, I32_MIN) == 0


def test_rounding_shifts():
    assert rdbpot(3, 1) == 2 and rdbpot(-3, 1) == -2     # ties away from zero
    assert rdbpot(5, 2) == 1 and rdbpot(-6, 2) == -2 and rdbpot(-5, 2) == -1
    assert rdbpot(-7, 0) == -7 and rdbpot(I32_MIN, 31) == -1 and rdbpot(I32_MAX, 31) == 1
    assert rshift_half_up(3, 1) == 2 and rshift_half_up(-3, 1) == -1   # ties up
    assert rshift_half_up(-5, 2) == -1 and rshift_half_up(-6, 2) == -1 and rshift_half_up(-7, 2) == -2


def test_requantize_ties_per_profile():
    m, shift = 2**30, -1              # real multiplier 0.25, exactly
    fmul = 0.25
    # acc = +-2 -> exactly +-0.5; acc = +-6 -> +-1.5
    expect = {  # profile: (2, -2, 6, -6)
        "tflm": (1, -1, 2, -2),       # away from zero
        "litert": (1, 0, 2, -1),      # half up
        "litert-ref": (1, -1, 2, -2),  # C round(): away from zero
        "xnnpack": (0, 0, 2, -2),     # rint: half to even
    }
    for name, want in expect.items():
        got = tuple(int(requantize(a, m, shift, fmul, PROFILES[name])) for a in (2, -2, 6, -6))
        assert got == want, name


def test_requantize_shift_signs_and_large_multiplier():
    # real = 2 (shift +2, M = 0.5): exact doubling, the left shift happens before SRDHM
    assert requantize(3, 2**30, 2, 2.0, PROFILES["tflm"]) == 6
    assert requantize(-3, 2**30, 2, 2.0, PROFILES["litert"]) == -6
    # M close to 2**31: real just below 1
    m, shift = quantize_multiplier(1.0 - 2.0**-30)
    assert (m, shift) == (2**31 - 2, 0)
    assert requantize(1000, m, shift, 1.0, 0) == 1000
    assert requantize(-(2**31), m, shift, 1.0, 0) == -(2**31) + 2
    # the left shift wraps like the C++ (x * (1 << s)) in int32
    assert requantize(2**30, 2**30, 2, 2.0, 0) == 0


def test_quantize_multiplier_edges():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(1.0) == (2**30, 1)
    assert quantize_multiplier(1.0 - 2.0**-40) == (2**30, 1)   # rounds to 2**31: folded
    assert quantize_multiplier(2.0**-32) == (2**30, -31)
    assert quantize_multiplier(2.0**-33) == (0, 0)              # shift < -31: flushed
    assert quantize_multiplier(0.75) == (3 * 2**29, 0)
    with pytest.raises(ConversionError):
        quantize_multiplier(-1.0)


def test_activation_range_relu():
    assert activation_range(0.1, -5, "NONE") == (-128, 127)
    assert activation_range(0.1, -5, "RELU") == (-5, 127)
    assert activation_range(0.1, -128, "RELU") == (-128, 127)
    with pytest.raises(ConversionError):
        activation_range(0.1, 0, "RELU6")


def test_fc_params_float_order():
    # per-tensor: in*w is a float32 product; per-channel: double. Pick scales where they differ.
    in_s, w, out_s = np.float32(0.1), np.float32(0.3), np.float32(0.7)
    pt = fc_params(in_s, 0, [w], out_s, 0, profile="tflm", n_out=3)
    pc = fc_params(in_s, 0, [w, w, w], out_s, 0, profile="tflm")
    assert pt.multiplier.shape == (3,) and pc.multiplier.shape == (3,)
    assert (pt.multiplier[0], pt.shift[0]) == quantize_multiplier(
        float(np.float32(in_s * w)) / float(out_s))
    assert (pc.multiplier[0], pc.shift[0]) == quantize_multiplier(float(in_s) * float(w) / float(out_s))
    assert pt.multiplier[0] != pc.multiplier[0]
    xnn = fc_params(in_s, 0, [w, w], out_s, 0, profile="xnnpack")
    assert xnn.fmul[0] == float(np.float32(np.float32(in_s * w) / out_s))
    with pytest.raises(UnknownProfileError, match="known: tflm, litert"):
        fc_params(in_s, 0, [w], out_s, 0, profile="cmsis")


def test_fixed_output_quantization_is_checked():
    with pytest.raises(ConversionError):
        tanh_table(0.05, 0, "tflm", out_scale=1 / 256, out_zp=0)
    with pytest.raises(ConversionError):
        logistic_table(0.05, 0, "litert", out_scale=1 / 256, out_zp=0)
    with pytest.raises(ConversionError):
        softmax_params(0.05, 1.0, "tflm", out_scale=1 / 128, out_zp=-128)


def test_libm_functions_are_float32():
    assert isinstance(expf(0.5), np.float32) and expf(0.0) == 1.0
    assert abs(float(tanhf(0.5)) - math.tanh(0.5)) < 1e-7


# -- property tests against the naive reference ------------------------------------------------
scales = st.floats(1e-4, 1.0).map(lambda v: float(np.float32(v)))
zps = st.integers(-128, 127)
i8 = st.integers(-128, 127)


@settings(max_examples=300)
@given(st.floats(0.0, 1e4, allow_subnormal=False))
def test_quantize_multiplier_matches_reference(real):
    assert quantize_multiplier(real) == ref.quantize_multiplier(real)


@settings(max_examples=400)
@given(acc=st.integers(-(2**27), 2**27), in_s=scales, w_s=st.floats(1e-5, 0.1).map(
    lambda v: float(np.float32(v))), out_s=st.floats(1e-3, 1.0).map(lambda v: float(np.float32(v))),
    out_zp=zps, relu=st.booleans(), per_channel=st.booleans(), profile=st.sampled_from(NAMES))
def test_fc_requantize_matches_reference(acc, in_s, w_s, out_s, out_zp, relu, per_channel, profile):
    ws = [w_s, w_s] if per_channel else [w_s]
    p = fc_params(in_s, 0, ws, out_s, out_zp, "RELU" if relu else "NONE", profile, n_out=2)
    got = requantize_int8(acc, p.multiplier[0], p.shift[0], p.fmul[0], p.out_zp, p.act_min,
                          p.act_max, p.profile)
    want = ref.fc_output(acc, in_s, w_s, out_s, out_zp, p.act_min, p.act_max, profile, per_channel)
    assert got == want


@settings(max_examples=300)
@given(acc=st.integers(I32_MIN, I32_MAX), m=st.integers(2**30, I32_MAX),
       shift=st.integers(-31, 0))
def test_double_rounding_matches_reference(acc, m, shift):
    assert requantize(acc, m, shift, 0.0, 0) == ref.mbqm(acc, m, shift)


@settings(max_examples=300)
@given(x1=i8, x2=i8, s1=scales, s2=scales, so=scales, z1=zps, z2=zps, zo=zps,
       relu=st.booleans(), simd=st.booleans(), profile=st.sampled_from(NAMES))
def test_add_matches_reference(x1, x2, s1, s2, so, z1, z2, zo, relu, simd, profile):
    p = add_params(s1, z1, s2, z2, so, zo, "RELU" if relu else "NONE", profile)
    lo, hi = int(p.ip[10]), int(p.ip[11])
    assert add_int8(x1, x2, p.ip, p.fp, p.profile, simd) == ref.add(
        x1, x2, s1, z1, s2, z2, so, zo, lo, hi, profile, simd)


@settings(max_examples=300)
@given(x1=i8, x2=i8, s1=scales, s2=scales, so=st.floats(1e-6, 1.0).map(
    lambda v: float(np.float32(v))), z1=zps, z2=zps, zo=zps, relu=st.booleans(),
    simd=st.booleans(), profile=st.sampled_from(NAMES))
def test_mul_matches_reference(x1, x2, s1, s2, so, z1, z2, zo, relu, simd, profile):
    p = mul_params(s1, z1, s2, z2, so, zo, "RELU" if relu else "NONE", profile)
    lo, hi = int(p.ip[5]), int(p.ip[6])
    assert mul_int8(x1, x2, p.ip, p.fp, p.profile, simd) == ref.mul(
        x1, x2, s1, z1, s2, z2, so, zo, lo, hi, profile, simd)


@settings(max_examples=25)
@given(in_s=st.floats(1e-3, 1.0).map(lambda v: float(np.float32(v))), zp=zps)
def test_tanh_logistic_tables_match_reference(in_s, zp):
    xs = range(-128, 128)
    assert list(tanh_table(in_s, zp, "tflm")) == [ref.tanh_tflm(x, in_s, zp) for x in xs]
    assert list(logistic_table(in_s, zp, "tflm")) == [ref.logistic_tflm(x, in_s, zp) for x in xs]
    lg = lambda v: np.float32(np.float32(1) / np.float32(np.float32(1) + expf(-v)))  # noqa: E731
    for prof in ("litert", "litert-ref"):
        assert list(tanh_table(in_s, zp, prof)) == [
            ref.lut_float(x, in_s, zp, 1 / 128, 0, tanhf) for x in xs]
        assert list(logistic_table(in_s, zp, prof)) == [
            ref.lut_float(x, in_s, zp, 1 / 256, -128, lg) for x in xs]
    assert list(tanh_table(in_s, zp, "xnnpack")) == [
        ref.lut_xnnpack(x, in_s, zp, 1 / 128, 0, tanhf) for x in xs]
    assert list(logistic_table(in_s, zp, "xnnpack")) == [
        ref.lut_xnnpack(x, in_s, zp, 1 / 256, -128, ref.sigmoid_xnnpack) for x in xs]


@settings(max_examples=40)
@given(in_s=st.floats(0.005, 1.0).map(lambda v: float(np.float32(v))),
       row=st.lists(i8, min_size=1, max_size=64), profile=st.sampled_from(NAMES))
def test_softmax_matches_reference(in_s, row, profile):
    p = softmax_params(in_s, 1.0, profile)
    x = np.array(row, np.int8)
    out = np.empty_like(x)
    softmax_int8(x, p.multiplier, p.left_shift, p.diff_min, p.table, p.out_scale, p.profile, out)
    if profile in ("litert", "xnnpack"):
        want = ref.softmax_float(row, in_s, expf)
    else:
        want = ref.softmax_tflm(row, in_s)
    assert out.tolist() == want
