"""The engine's speed paths give exactly what the plain paths give: the fused gate rows
(the schedule's GATE rows) vs one row per operator, every activation tensor at every step; the
four-accumulator VNNI GEMV vs numpy; the ring-slot helper vs the modulo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_engine_helpers import model_bytes, speech
from wavenet_edge import encode_classes
from wavenet_edge import _engine_kernels as K
from wavenet_edge.engine import Engine
from wavenet_edge.lowered import OpKind
from wavenet_edge.program import schedule


@pytest.mark.parametrize("profile", ["tflm", "litert"])
@pytest.mark.parametrize("name", ["odd", "k3", "tiny"])
def test_fused_gates_equal_unfused_ops(name, profile):
    data = model_bytes(name)
    fused = Engine.from_bytes(data, profile=profile)
    plain = Engine.from_bytes(data, profile=profile)
    p = plain.program
    assert np.count_nonzero(fused._shared.consts.ops["kind"] == OpKind.GATE) == fused.config.n_layers
    plain._shared.consts = schedule(p, fuse=False)
    plain._shared.head = None
    codes = encode_classes(speech("b", 600), convention=fused.config.mulaw)
    names = sorted(p.tensor_offsets)
    a = fused.trace(codes, names)
    b = plain.trace(codes, names)
    for n in names:
        assert np.array_equal(a[n], b[n]), n


@pytest.mark.skipif(not K.HAS_VNNI, reason="no AVX-512 VNNI on this CPU")
@settings(deadline=None, max_examples=25)
@given(blocks=st.integers(1, 6), quads=st.integers(1, 70), seed=st.integers(0, 2**31 - 1))
def test_gemv16_four_accumulators_equal_numpy(blocks, quads, seed):
    rows, cols = 16 * blocks, 4 * quads      # any chunk count: remainder chunks too
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
    x = rng.integers(-128, 128, cols + 7).astype(np.int8)
    off = int(rng.integers(0, 8))            # unaligned input inside the arena
    accs = np.zeros(rows + 4, np.int32)
    K._dot_rows(x, np.uint64(off), K.interleave16(w), 0, 0, rows, cols, accs, 2)
    want = w.astype(np.int64) @ (x[off:off + cols].astype(np.int64) + 128)
    assert np.array_equal(accs[:rows], want)


@settings(deadline=None, max_examples=200)
@given(s=st.integers(0, 2**40), length=st.integers(1, 5000))
def test_ring_slot_is_the_modulo(s, length):
    assert K._slot(s, length) == s % length
    p2 = 1 << (length % 12)
    assert K._slot(s, p2) == s % p2


@pytest.mark.parametrize("profile", ["tflm", "litert", "xnnpack"])
def test_batch_table_path_equals_single_stream_arithmetic(profile):
    """Several streams look ADD/MUL up in the pair tables; one stream calls add_int8/mul_int8:
    every tensor agrees (odd channel count: LiteRT's blocked and tail rounding both occur)."""
    data = model_bytes("odd")
    one = Engine.from_bytes(data, profile=profile)
    three = Engine.from_bytes(data, profile=profile, batch=3)
    codes = encode_classes(speech("c", 400), convention=one.config.mulaw)
    others = np.random.default_rng(5).integers(0, 256, (2, codes.size))
    names = sorted(one.program.tensor_offsets)
    a = one.trace(codes, names)
    b = three.trace(np.vstack([others[:1], codes[None], others[1:]]), names)
    for n in names:
        assert np.array_equal(a[n], b[n][1]), n


@pytest.mark.parametrize("profile", ["tflm", "xnnpack"])
@pytest.mark.parametrize("batch", [1, 2])
def test_logits_only_runs_skip_softmax_exactly(profile, batch):
    """``process(logits=True)`` skips the final SOFTMAX: logits, later probabilities (streaming
    on), ``tensor`` of the probabilities and a following ``generate`` are what full steps give."""
    data = model_bytes("odd")
    full = Engine.from_bytes(data, profile=profile, batch=batch)
    skip = Engine.from_bytes(data, profile=profile, batch=batch)
    assert skip._shared.head is not None
    codes = encode_classes(speech("d", 300), convention=full.config.mulaw)
    codes = np.vstack([codes, codes[::-1]])[:batch]
    if batch == 1:
        codes = codes[0]
    full_logits = full.trace(codes, list(full.program.tensor_offsets))
    got = skip.process(codes, logits=True)
    probs_name = [k for k, (o, _) in full.program.tensor_offsets.items()
                  if o == full.program.probs_off][0]
    logits_name = [k for k, (o, _) in full.program.tensor_offsets.items()
                   if o == full.program.logits_off][0]
    assert np.array_equal(got, full_logits[logits_name])
    assert skip._tail_stale
    assert np.array_equal(skip.tensor(probs_name), full.tensor(probs_name))
    skip.process(codes, logits=True)
    full.process(codes, logits=True)
    more = codes[..., :50]
    assert np.array_equal(skip.process(more), full.process(more))
    skip.process(more, logits=True)
    full.process(more)
    assert np.array_equal(skip.generate(40, seed=3), full.generate(40, seed=3))
    skip.process(more, logits=True)
    skip.reset()
    full.reset()
    assert np.array_equal(skip.tensor(probs_name), full.tensor(probs_name))


@settings(deadline=None, max_examples=60)
@given(n=st.integers(0, 200), xo=st.integers(0, 40), yo=st.integers(0, 40),
       table=st.integers(0, 3), seed=st.integers(0, 2**31 - 1))
def test_vbmi_table_lookup_equals_indexing(n, xo, yo, table, seed):
    """``_lut_rows`` (``vpermi2b`` 32 at a time where available, then scalar) == numpy indexing,
    at any offsets and lengths, touching no other byte."""
    rng = np.random.default_rng(seed)
    flat = rng.integers(-128, 128, 4 * 256).astype(np.int8)
    arena = rng.integers(-128, 128, 512).astype(np.int8)
    yo = 250 + yo                              # output range disjoint from the input range
    want = arena.copy()
    want[yo:yo + n] = flat[table * 256 + arena[xo:xo + n].astype(np.int64) + 128]
    K._lut_rows(arena, np.uint64(xo), np.uint64(yo), flat, table * 256, n)
    assert np.array_equal(arena, want)


@settings(deadline=None, max_examples=40)
@given(in_scale=st.floats(0.002, 0.5), seed=st.integers(0, 2**31 - 1))
def test_softmax_with_scratch_equals_int8_softmax(in_scale, seed):
    """The engine's SOFTMAX with the exponentials kept in scratch (``accs``) == the int8
    module's, value for value, whatever the scratch held before."""
    from test_engine_helpers import softmax_cases
    from wavenet_edge.int8 import softmax_from_exps

    rng = np.random.default_rng(seed + 1)
    for x, ref, exps in softmax_cases(in_scale, seed):
        arena = np.concatenate([x, np.zeros(256, np.int8)])
        buf = rng.integers(-2**31, 2**31, 300).astype(np.int32)
        softmax_from_exps(arena, 0, arena, 256, 256, exps, buf)
        np.testing.assert_array_equal(arena[256:], ref)


@pytest.mark.parametrize("is_mul", [False, True])
@pytest.mark.parametrize("profile", ["tflm", "litert"])
@pytest.mark.parametrize("seed", range(6))
def test_one_shift_add_mul_equal_the_int8_kernels(seed, profile, is_mul):
    """One stream's ADD/MUL rows (vectorized one-shift rescales, ``_pair_rows``) == the int8
    module's ``add_int8_vec``/``mul_int8_vec`` on every int8 pair, in litert's blocks of 16 and
    its tail, for scales from equal to 2¹⁶ apart, with and without RELU."""
    from wavenet_edge._kernels_elementwise import _pair_rows
    from wavenet_edge.int8.elementwise import (add_int8_vec, add_params, mul_int8_vec,
                                               mul_params, shift_params_fit)
    from wavenet_edge.int8.requant import PROFILES

    rng = np.random.default_rng(100 * seed + 7 * is_mul + (profile == "litert"))
    s1, s2, so = 2.0 ** rng.uniform(-12, 0, 3) * (1.0 if seed else 1.0 / 65536)
    z1, z2, zo = rng.integers(-128, 128, 3)
    fused = "RELU" if seed % 3 == 2 else "NONE"
    make = mul_params if is_mul else add_params
    pp = make(s1, int(z1), s2, int(z2), so, int(zo), fused=fused, profile=profile)
    pid = PROFILES[profile]
    assert shift_params_fit(pp.ip, is_mul, pid)
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    n = 65536 + 9                                  # a tail after the last full block of 16
    x1 = np.concatenate([a.ravel(), a.ravel()[:9]]).astype(np.int8)
    x2 = np.concatenate([b.ravel(), b.ravel()[::-1][:9]]).astype(np.int8)
    want = np.empty(n, np.int8)
    (mul_int8_vec if is_mul else add_int8_vec)(x1, x2, pp.ip, pp.fp, pid, want)
    arena = np.concatenate([x1, x2, np.zeros(n, np.int8)])
    _pair_rows(arena, np.uint64(0), np.uint64(n), np.uint64(2 * n), n, n // 16 * 16, pp.ip,
               pp.fp, pid, is_mul)
    assert np.array_equal(arena[2 * n:], want)
