"""ORACLE tests: single-op int8 graphs run in the real runtimes, compared bit for bit with
wavenet_edge.int8 for every profile.

Profiles and the interpreters that define them:
``tflm`` -> tflite-micro's Python interpreter; ``litert`` -> LiteRT
``BUILTIN_WITHOUT_DEFAULT_DELEGATES``; ``litert-ref`` -> ``BUILTIN_REF``; ``xnnpack`` -> ``BUILTIN``
(the default XNNPACK delegate).  Many random inputs are batched into one graph where the op allows.
Each test tallies its outputs per profile (:class:`Tally`) and asserts that none differs; the
counts of the whole module are printed at its end (``-s``).
"""

import numpy as np
import pytest

from wavenet_edge.errors import ConversionError

from wavenet_edge.int8 import (PROFILES, add_int8_vec, add_params, fc_params, logistic_table,
                               mul_int8_vec, mul_params, requantize_int8, softmax_int8,
                               softmax_params, tanh_table)

litert = pytest.importorskip("ai_edge_litert.interpreter")
tflm_runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
GraphBuilder = pytest.importorskip("converters.tflite_writer").GraphBuilder

RESOLVERS = {
    "litert": litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "litert-ref": litert.OpResolverType.BUILTIN_REF,
    "xnnpack": litert.OpResolverType.BUILTIN,
}
MISMATCHES: dict = {}


def run(model: bytes, inputs, profile: str) -> np.ndarray:
    """Invoke ``model`` once in the runtime behind ``profile``; return output 0."""
    if profile == "tflm":
        it = tflm_runtime.Interpreter.from_bytes(model, arena_size=1 << 21)
        for i, x in enumerate(inputs):
            it.set_input(x, i)
        it.invoke()
        return it.get_output(0).copy()
    it = litert.Interpreter(model_content=model, experimental_op_resolver_type=RESOLVERS[profile])
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


class Tally:
    """Outputs compared and mismatches per profile, for one test's op."""

    def __init__(self, op):
        self.op, self.counts = op, {}

    def add(self, profile, got, want):
        assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
        n, bad = self.counts.get(profile, (0, 0))
        self.counts[profile] = (n + got.size, bad + int(np.count_nonzero(got != want)))
        n, bad = MISMATCHES.get((self.op, profile), (0, 0))
        MISMATCHES[(self.op, profile)] = (n + got.size,
                                          bad + int(np.count_nonzero(got != want)))

    def assert_identical(self, profiles=PROFILES):
        assert set(self.counts) == set(profiles), f"{self.op}: ran {sorted(self.counts)}"
        wrong = {p: c for p, c in self.counts.items() if c[1] or not c[0]}
        assert not wrong, f"{self.op} mismatches / outputs per profile: {wrong}"


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nint8 oracle mismatches (op, profile): mismatches / outputs")
    for (op, prof), (n, bad) in sorted(MISMATCHES.items()):
        print(f"  {op:9s} {prof:10s} {bad} / {n}")


def f32(v):
    return np.float32(v)


# -- FULLY_CONNECTED ---------------------------------------------------------------------------
def fc_model(in_s, in_zp, w, w_scales, bias, out_s, out_zp, batch, relu):
    g = GraphBuilder()
    o, k = w.shape
    x = g.add_tensor("x", (batch, k), np.int8, scale=in_s, zero_point=in_zp)
    wt = g.add_tensor("w", (o, k), np.int8, data=w, scale=w_scales, zero_point=0)
    bs = (np.float32(in_s) * np.asarray(w_scales, np.float32)).astype(np.float32)
    b = g.add_tensor("b", (o,), np.int32, data=bias, scale=bs, zero_point=0)
    y = g.add_tensor("y", (batch, o), np.int8, scale=out_s, zero_point=out_zp)
    g.add_operator("FULLY_CONNECTED", [x, wt, b], [y],
                   fused_activation_function="RELU" if relu else "NONE")
    g.set_inputs([x])
    g.set_outputs([y])
    return g.build()


def fc_expected(x, w, bias, p):
    acc = (x.astype(np.int64) - p.in_zp) @ w.T.astype(np.int64) + bias
    out = np.empty(acc.shape, np.int8)
    for i in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            out[i, c] = requantize_int8(acc[i, c], p.multiplier[c], p.shift[c], p.fmul[c],
                                        p.out_zp, p.act_min, p.act_max, p.profile)
    return out


FC_CASES = [  # (seed, out channels, depth, batch, per_channel, relu, output scale factor)
    (1, 32, 64, 128, True, False, 1.0),
    (2, 48, 96, 128, True, True, 1.0),
    (3, 256, 32, 16, True, False, 0.3),
    (4, 16, 48, 128, False, True, 1.0),     # per-tensor weights: float32 in*w product
    (5, 24, 16, 128, True, False, 0.01),    # multipliers > 1 (positive shifts)
    (6, 64, 40, 1, True, True, 3.0),        # batch 1, the engine's shape
]


@pytest.mark.parametrize("case", FC_CASES, ids=lambda c: f"seed{c[0]}")
def test_fully_connected(case):
    seed, o, k, batch, per_channel, relu, factor = case
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (o, k)).astype(np.int8)
    in_s, in_zp = f32(10 ** rng.uniform(-3, 0)), int(rng.integers(-128, 128))
    ws = (10 ** rng.uniform(-3, -1, o if per_channel else 1)).astype(np.float32)
    out_s = f32(np.sqrt(k) * 60 * in_s * ws.max() / 128 * factor)
    out_zp = int(rng.integers(-128, 128))
    bias = rng.integers(-20000, 20000, o).astype(np.int32)
    model = fc_model(in_s, in_zp, w, ws, bias, out_s, out_zp, batch, relu)
    reps = 8 if batch == 1 else 1
    xs = [rng.integers(-128, 128, (batch, k)).astype(np.int8) for _ in range(reps)]
    tally = Tally("FC")
    for profile in PROFILES:
        p = fc_params(in_s, in_zp, ws, out_s, out_zp, "RELU" if relu else "NONE", profile, n_out=o)
        for x in xs:
            tally.add(profile, run(model, [x], profile), fc_expected(x, w, bias, p))
    tally.assert_identical()


def test_fully_connected_xnnpack_refuses_large_multipliers():
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (8, 16)).astype(np.int8)
    ws = np.full(8, 0.05, np.float32)
    in_s, out_s = f32(0.5), f32(0.5 * 0.05 / 300)  # multiplier 300
    model = fc_model(in_s, 0, w, ws, np.zeros(8, np.int32), out_s, 0, 4, False)
    with pytest.raises(ConversionError):
        fc_params(in_s, 0, ws, out_s, 0, profile="xnnpack")
    with pytest.raises(RuntimeError):
        run(model, [np.zeros((4, 16), np.int8)], "xnnpack")
    x = rng.integers(-128, 128, (4, 16)).astype(np.int8)
    tally = Tally("FC")
    others = ("tflm", "litert", "litert-ref")
    for profile in others:
        p = fc_params(in_s, 0, ws, out_s, 0, profile=profile)
        tally.add(profile, run(model, [x], profile), fc_expected(x, w, np.zeros(8, np.int64), p))
    tally.assert_identical(others)


# -- TANH / LOGISTIC ---------------------------------------------------------------------------
def unary_model(op, in_s, in_zp, out_s, out_zp, n=256):
    g = GraphBuilder()
    x = g.add_tensor("x", (1, n), np.int8, scale=in_s, zero_point=in_zp)
    y = g.add_tensor("y", (1, n), np.int8, scale=out_s, zero_point=out_zp)
    g.add_operator(op, [x], [y])
    g.set_inputs([x])
    g.set_outputs([y])
    return g.build()


ALL_INPUTS = np.arange(-128, 128, dtype=np.int8)[None, :]
# scales found (by searching the tables) where the fixed-point and float algorithms disagree
DIVERGENT = [(0.016941655427217484, 31), (0.02811606600880623, 82), (0.013207584619522095, -95)]


@pytest.mark.parametrize("op", ["TANH", "LOGISTIC"])
def test_tanh_logistic(op):
    rng = np.random.default_rng(11 if op == "TANH" else 12)
    cases = [(f32(10 ** rng.uniform(-3, 0.3)), int(rng.integers(-128, 128))) for _ in range(12)]
    cases += [(f32(s), z) for s, z in DIVERGENT]
    out_q = (1 / 128, 0) if op == "TANH" else (1 / 256, -128)
    build = tanh_table if op == "TANH" else logistic_table
    tally = Tally(op)
    for in_s, in_zp in cases:
        model = unary_model(op, in_s, in_zp, *out_q)
        for profile in PROFILES:
            table = build(in_s, in_zp, profile)
            want = table[ALL_INPUTS[0].astype(np.int64) + 128]
            tally.add(profile, run(model, [ALL_INPUTS], profile)[0], want)
    tally.assert_identical()


def test_divergent_tables_really_differ():
    """The runtimes do not agree everywhere: at these scales the TFLM fixed-point tables and the
    LiteRT float tables differ, and each profile still matches its own runtime (checked above)."""
    s, z = DIVERGENT[0]
    assert (tanh_table(s, z, "tflm") != tanh_table(s, z, "litert")).sum() == 1
    assert (logistic_table(s, z, "tflm") != logistic_table(s, z, "litert")).sum() == 2


# -- SOFTMAX -----------------------------------------------------------------------------------
def softmax_rows(seed, n_rows):
    rng = np.random.default_rng(seed)
    rows = np.clip(rng.normal(rng.uniform(-50, 50, (n_rows, 1)), rng.uniform(1, 60, (n_rows, 1)),
                              (n_rows, 256)), -128, 127).astype(np.int8)
    return rows


def divergent_softmax(t):
    """Row t of the search that found fixed-point/float softmax disagreements (t in 1523, 6171)."""
    rng = np.random.default_rng([7, t])
    in_s = f32(10 ** rng.uniform(-2.5, 0))
    x = np.clip(rng.normal(rng.uniform(-50, 50), rng.uniform(1, 60), 256), -128, 127).astype(np.int8)
    return in_s, x


def softmax_model(in_s, in_zp, batch, n=256):
    g = GraphBuilder()
    x = g.add_tensor("x", (batch, n), np.int8, scale=in_s, zero_point=in_zp)
    y = g.add_tensor("y", (batch, n), np.int8, scale=1 / 256, zero_point=-128)
    g.add_operator("SOFTMAX", [x], [y], beta=1.0)
    g.set_inputs([x])
    g.set_outputs([y])
    return g.build()


def test_softmax():
    rng = np.random.default_rng(21)
    cases = [(f32(10 ** rng.uniform(-2.5, 0)), softmax_rows(100 + i, 64)) for i in range(8)]
    for t in (1523, 6171):
        in_s, x = divergent_softmax(t)
        cases.append((in_s, x[None, :]))
    tally = Tally("SOFTMAX")
    for in_s, rows in cases:
        model = softmax_model(in_s, 0, rows.shape[0])
        for profile in PROFILES:
            p = softmax_params(in_s, 1.0, profile)
            want = np.empty_like(rows)
            for i in range(rows.shape[0]):
                softmax_int8(rows[i], p.multiplier, p.left_shift, p.diff_min, p.table,
                             p.out_scale, p.profile, want[i])
            tally.add(profile, run(model, [rows], profile), want)
    tally.assert_identical()
    in_s, x = divergent_softmax(1523)
    a, b = np.empty_like(x), np.empty_like(x)
    pq, pf = softmax_params(in_s, 1.0, "tflm"), softmax_params(in_s, 1.0, "litert")
    softmax_int8(x, pq.multiplier, pq.left_shift, pq.diff_min, pq.table, pq.out_scale, 0, a)
    softmax_int8(x, pf.multiplier, pf.left_shift, pf.diff_min, pf.table, pf.out_scale, 1, b)
    assert (a != b).sum() == 1


# -- ADD / MUL ---------------------------------------------------------------------------------
def binary_model(op, s1, z1, s2, z2, so, zo, n, relu):
    g = GraphBuilder()
    a = g.add_tensor("a", (1, n), np.int8, scale=s1, zero_point=z1)
    b = g.add_tensor("b", (1, n), np.int8, scale=s2, zero_point=z2)
    y = g.add_tensor("y", (1, n), np.int8, scale=so, zero_point=zo)
    g.add_operator(op, [a, b], [y], fused_activation_function="RELU" if relu else "NONE")
    g.set_inputs([a, b])
    g.set_outputs([y])
    return g.build()


@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_add_mul(op):
    rng = np.random.default_rng(31 if op == "ADD" else 32)
    n = 4096 + 11  # blocks of 16 and a scalar tail
    params, vec = (add_params, add_int8_vec) if op == "ADD" else (mul_params, mul_int8_vec)
    tally = Tally(op)
    for trial in range(10):
        s = (10 ** rng.uniform(-3, 0, 3)).astype(np.float32)
        z = [int(v) for v in rng.integers(-128, 128, 3)]
        if op == "ADD":
            so = f32(s[2] * s[0] * (1.0 if trial < 8 else 3000.0))  # last two: not delegated
        else:
            so = f32(s[0] * s[1] * 10 ** rng.uniform(0, 3) if trial < 8 else s[0] * s[1] * 1e6)
        if trial == 0 and op == "MUL":  # the WaveNet gate: tanh (1/128, 0) * sigmoid (1/256, -128)
            s[0], z[0], s[1], z[1] = 1 / 128, 0, 1 / 256, -128
            so = f32(1 / 128)
        relu = bool(trial % 3 == 1)
        x1 = rng.integers(-128, 128, (1, n)).astype(np.int8)
        x2 = rng.integers(-128, 128, (1, n)).astype(np.int8)
        model = binary_model(op, s[0], z[0], s[1], z[1], so, z[2], n, relu)
        for profile in PROFILES:
            p = params(s[0], z[0], s[1], z[1], so, z[2], "RELU" if relu else "NONE", profile)
            want = np.empty(n, np.int8)
            vec(x1[0], x2[0], p.ip, p.fp, p.profile, want)
            tally.add(profile, run(model, [x1, x2], profile)[0], want)
    tally.assert_identical()
