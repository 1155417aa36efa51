"""ORACLE: single-op int8 graphs in the real aarch64 LiteRT (qemu-aarch64, Cortex-A76), against
wavenet_edge.int8's ``litert-arm64`` / ``xnnpack-arm64`` arithmetic.

SOFTMAX is the op whose aarch64 kernel differs (uint16 exp table, per-row QuantizeMultiplier);
its cases cover several input scales, zero points and betas, rounding ties of the final
rescale, all-equal rows, 256 classes and row lengths that exercise the 16-lane NEON body and the
scalar tail.  The other ops are checked to be the x86 profiles' arithmetic on this build too.
Each test puts all its cases, as independent ops, into one graph: one emulated interpreter
start (~2-5 s) per test."""

import numpy as np
import pytest

from arm64_oracle import arm64_root_or_skip
from converters.tflite_writer import GraphBuilder
from wavenet_edge.int8 import (add_int8_vec, add_params, fc_params, logistic_table,
                               mul_int8_vec, mul_params, requantize_int8, softmax_int8,
                               softmax_params, tanh_table)
from wavenet_edge.int8.multiplier import quantize_multiplier
from wavenet_edge.int8.softmax_arm64 import (_quantize_multiplier, softmax_int8_arm64,
                                             softmax_uint16_table)
from wavenet_edge.tflite_file import read_tflite


@pytest.fixture(scope="module")
def arm64():
    arm64_root_or_skip()


def f32(v):
    return float(np.float32(v))


class Cases:
    """Independent single-op cases gathered into one graph, run once in one runtime."""

    def __init__(self):
        self.g = GraphBuilder()
        self.ins, self.feeds, self.outs = [], [], []

    def tensor(self, shape, scale, zp, data=None, dtype=np.int8, **kw):
        name = f"t{len(self.g._names)}"
        return self.g.add_tensor(name, shape, dtype, data=data, scale=scale, zero_point=zp, **kw)

    def op(self, opcode, inputs, feeds, out_shape, out_q, **options):
        """``inputs``: tensor ids (the first ``len(feeds)`` are graph inputs fed ``feeds``)."""
        for t, x in zip(inputs, feeds):
            self.ins.append(t)
            self.feeds.append(x)
        y = self.tensor(out_shape, *out_q)
        self.g.add_operator(opcode, inputs, [y], **options)
        self.outs.append(y)
        return len(self.outs) - 1

    def run(self, runtime):
        from converters.litert_arm64 import Arm64Runner
        self.g.set_inputs(self.ins)
        self.g.set_outputs(self.outs)
        model = self.g.build()
        r = Arm64Runner(model, runtime, read_tflite(model))
        try:
            for name, x in zip(r.input_names, self.feeds):
                r.set_input(name, x)
            r.invoke()
            return [r.get_output(n) for n in r.output_names]
        finally:
            r.close()


# -- SOFTMAX -----------------------------------------------------------------------------------
def arm64_softmax(rows, in_s, beta=1.0):
    table = softmax_uint16_table(in_s, beta)
    out = np.empty_like(rows)
    for i in range(rows.shape[0]):
        softmax_int8_arm64(rows[i], table, out[i])
    return out


def x86_softmax(rows, in_s, beta=1.0):
    p = softmax_params(in_s, beta, "litert")
    out = np.empty_like(rows)
    for i in range(rows.shape[0]):
        softmax_int8(rows[i], p.multiplier, p.left_shift, p.diff_min, p.table, p.out_scale,
                     p.profile, out[i])
    return out


def random_rows(rng, n_rows, n):
    return np.clip(rng.normal(rng.uniform(-60, 60, (n_rows, 1)), rng.uniform(0.5, 60, (n_rows, 1)),
                              (n_rows, n)), -128, 127).astype(np.int8)


def tie_rows(in_s, beta, n, limit=48):
    """Two-level rows (``k`` elements at 127, the rest ``d`` lower) on which some element's final
    rescale ``RoundingDivideByPOT(SRDHM(e, M), -shift)`` is an exact tie, found with the model's
    own table and per-row multiplier: the rounding direction there is what is tested."""
    table = softmax_uint16_table(in_s, beta).astype(np.int64)
    rows = []
    for d in range(1, 256):
        for k in range(1, n):
            total = k * 65535 + (n - k) * int(table[255 - d])
            inv = np.float32(np.float32(1.0) / np.float32(np.float32(total) * np.float32(1 / 256)))
            m, shift = (int(v) for v in _quantize_multiplier(np.float64(inv)))
            for e in (65535, int(table[255 - d])):
                hi = (e * m + (1 << 30)) >> 31  # SRDHM of non-negative values
                if hi & ((1 << -shift) - 1) == 1 << (-shift - 1):
                    row = np.full(n, 127 - d, np.int8)
                    row[:k] = 127
                    rows.append(row)
                    break
            if len(rows) >= limit:
                return np.array(rows)
    return np.array(rows).reshape(-1, n)


def add_softmax(cases, rows, in_s, zp, beta=1.0):
    n = rows.shape[1]
    x = cases.tensor(rows.shape, in_s, zp)
    return cases.op("SOFTMAX", [x], [rows], rows.shape, (1 / 256, -128), beta=beta)


def test_softmax_scales_zero_points_lengths_ties_and_equal_rows(arm64):
    rng = np.random.default_rng(1000)
    cases, want, x86_differs = Cases(), {}, 0
    for n in (256, 16, 40, 7):
        for u in list(rng.uniform(-2.5, 0.3, 5)) + [np.log10(1 / 16), np.log10(0.25)]:
            in_s, zp = f32(10 ** u), int(rng.integers(-20, 20))
            rows = random_rows(rng, 200, n)
            want[add_softmax(cases, rows, in_s, zp)] = arm64_softmax(rows, in_s)
            if n == 256:
                x86_differs += int((x86_softmax(rows, in_s) != want[len(cases.outs) - 1]).sum())
    for beta in (1.0, 0.5, 2.0):
        in_s, n = f32(0.0625), 256
        equal = np.array([np.full(n, v, np.int8) for v in (-128, -1, 0, 77, 127)])
        extremes = np.full((3, n), -128, np.int8)
        extremes[0, 0] = 127
        extremes[1, :128] = 127
        extremes[2, ::3] = 5
        ties = tie_rows(in_s, beta, n)
        assert ties.shape[0] > 0
        rows = np.concatenate([equal, extremes, ties])
        k = add_softmax(cases, rows, in_s, 0, beta)
        want[k] = arm64_softmax(rows, in_s, beta)
        assert np.all(want[k][:5] == want[k][:5, :1])  # all-equal rows: one value per row
    got = cases.run("litert-arm64")
    for k, w in want.items():
        assert np.array_equal(got[k], w), (k, int((got[k] != w).sum()))
    assert x86_differs > 0  # the x86 float arithmetic would fail this oracle


def test_softmax_default_resolver_runs_the_same_kernel(arm64):
    """XNNPACK does not take int8 SOFTMAX: the default resolver gives the builtin kernel's
    output, so ``xnnpack-arm64`` has the same SOFTMAX."""
    rng = np.random.default_rng(5)
    cases, want = Cases(), {}
    for in_s, zp in ((f32(0.03), 3), (f32(0.2), -40), (f32(0.008), 0)):
        rows = random_rows(rng, 300, 256)
        want[add_softmax(cases, rows, in_s, zp)] = arm64_softmax(rows, in_s)
    got = cases.run("xnnpack-arm64")
    for k, w in want.items():
        assert np.array_equal(got[k], w), (k, int((got[k] != w).sum()))


def test_table_and_per_row_multiplier():
    t = softmax_uint16_table(0.1)
    assert t[255] == 65535 and np.all(np.diff(t) >= 0) and t[0] >= 0
    rng = np.random.default_rng(3)
    for real in list(rng.uniform(1e-9, 0.999, 500)) + [0.5, 0.25, 1 / 65535, 1 / 256]:
        real = f32(real)
        assert tuple(int(v) for v in _quantize_multiplier(real)) == quantize_multiplier(real)


# -- the other ops: the x86 profiles' arithmetic, except XNNPACK's MUL ------------------------
@pytest.mark.parametrize("runtime", ["litert-arm64", "xnnpack-arm64"])
def test_fc_tanh_logistic_add_mul(arm64, runtime):
    profile = runtime  # the runtime's own profile
    rng = np.random.default_rng(9)
    cases, want = Cases(), {}
    # batch 1, as in the step graphs: with batch > 1 this build's FC (ruy GEMM) rounds once,
    # like litert-ref (measured: batch 8 and 64 differ from the litert profile in ~1-3 per
    # thousand outputs, 0 from litert-ref), which the engine never needs
    shapes = [(True, False, 32, 64, 1.0), (True, True, 48, 96, 1.0), (False, True, 16, 48, 1.0),
              (True, False, 24, 16, 0.01), (True, True, 64, 40, 3.0), (True, False, 256, 32, 0.3),
              (False, False, 128, 128, 1.0), (True, False, 256, 256, 1.0)]
    batch = 1
    for per_channel, relu, nout, depth, fac in shapes * 4:
        w = rng.integers(-127, 128, (nout, depth)).astype(np.int8)
        in_s, out_s = f32(10 ** rng.uniform(-2, 0)), f32(10 ** rng.uniform(-1, 0.5) * fac)
        ws = (10 ** rng.uniform(-3, -1.5, nout if per_channel else 1)).astype(np.float32)
        bias = rng.integers(-5000, 5000, nout).astype(np.int32)
        x = rng.integers(-128, 128, (batch, depth)).astype(np.int8)
        in_zp, out_zp = int(rng.integers(-30, 30)), int(rng.integers(-30, 30))
        act = "RELU" if relu else "NONE"
        p = fc_params(in_s, in_zp, ws, out_s, out_zp, act, profile)
        xt = cases.tensor((batch, depth), in_s, in_zp)
        wt = cases.tensor((nout, depth), ws, 0, data=w)
        bt = cases.tensor((nout,), (np.float32(in_s) * ws).astype(np.float32), 0, data=bias,
                          dtype=np.int32)
        acc = (x.astype(np.int64) - in_zp) @ w.T.astype(np.int64) + bias
        k = cases.op("FULLY_CONNECTED", [xt, wt, bt], [x], (batch, nout), (out_s, out_zp),
                     fused_activation_function=act)
        mult, shift, fmul = (np.broadcast_to(v, (nout,)) for v in (p.multiplier, p.shift, p.fmul))
        want[k] = np.array([[requantize_int8(acc[i, c], mult[c], shift[c], fmul[c], p.out_zp,
                                             p.act_min, p.act_max, p.profile)
                             for c in range(nout)] for i in range(batch)], np.int8)
    every = np.arange(-128, 128, dtype=np.int8)[None, :]
    for op, build, out_q in (("TANH", tanh_table, (1 / 128, 0)),
                             ("LOGISTIC", logistic_table, (1 / 256, -128))):
        for in_s, in_zp in ((f32(0.016941655427217484), 31), (f32(0.2), 3), (f32(2.5), -1)):
            k = cases.op(op, [cases.tensor((1, 256), in_s, in_zp)], [every], (1, 256), out_q)
            want[k] = build(in_s, in_zp, profile)[every.astype(np.int64) + 128]
    n = 1024 + 11
    for op, params, vec in (("ADD", add_params, add_int8_vec), ("MUL", mul_params, mul_int8_vec)):
        for (s1, s2, so), (z1, z2) in (((1 / 128, 1 / 256, 1 / 128), (0, -128)),  # the gate
                                       ((0.031, 0.047, 0.052), (5, -9))):
            s1, s2, so = f32(s1), f32(s2), f32(so)
            x1 = rng.integers(-128, 128, (1, n)).astype(np.int8)
            x2 = rng.integers(-128, 128, (1, n)).astype(np.int8)
            k = cases.op(op, [cases.tensor((1, n), s1, z1), cases.tensor((1, n), s2, z2)],
                         [x1, x2], (1, n), (so, 3))
            p = params(s1, z1, s2, z2, so, 3, "NONE", profile)
            want[k] = np.empty((1, n), np.int8)
            vec(x1[0], x2[0], p.ip, p.fp, p.profile, want[k][0])
    got = cases.run(runtime)
    for k, w in want.items():
        assert np.array_equal(got[k], w), (k, int((got[k] != w).sum()))


def test_xnnpack_mul_rounds_ties_up_on_aarch64(arm64):
    """The gate MUL (tanh (1/128, 0) x sigmoid (1/256, -128) -> 1/128): its scale 1/256 makes
    every odd product a tie; XNNPACK's aarch64 kernel rounds those up, x86's to even."""
    x1 = np.repeat(np.arange(-128, 128, dtype=np.int8), 256)[None, :]
    x2 = np.tile(np.arange(-128, 128, dtype=np.int8), 256)[None, :]
    s1, s2, so = f32(1 / 128), f32(1 / 256), f32(1 / 128)
    cases = Cases()
    cases.op("MUL", [cases.tensor(x1.shape, s1, 0), cases.tensor(x2.shape, s2, -128)], [x1, x2],
             x1.shape, (so, 0))
    got = cases.run("xnnpack-arm64")[0][0]
    outs = {}
    for profile in ("xnnpack-arm64", "xnnpack"):
        p = mul_params(s1, 0, s2, -128, so, 0, "NONE", profile)
        outs[profile] = np.empty(x1.shape[1], np.int8)
        mul_int8_vec(x1[0], x2[0], p.ip, p.fp, p.profile, outs[profile])
    assert np.array_equal(got, outs["xnnpack-arm64"])
    assert (outs["xnnpack"] != got).sum() > 100  # 512 of the 65,536 pairs
