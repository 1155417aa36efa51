"""The batched FC accumulators (``_gemm_kernels``) equal numpy's exact products and the engine's
single-stream GEMV, for many shapes, stream counts (1 … 17, including 16), strides and offsets."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavenet_edge import _engine_kernels as K
from wavenet_edge import _gemm_kernels as G


@numba.njit
def _vnni(w, wo, x, xo, xs, cols, r0, r1, nb, accs, ao, ast, xu, us):
    G.to_unsigned(xu, 0, us, x, xo, xs, cols, nb)
    G.gemm_vnni16(w, wo, xu, 0, us, cols, r0, r1, nb, accs, ao, ast)


@numba.njit
def _plain(w, wo, x, xo, xs, cols, r0, r1, nb, xshift, accs, ao, ast):
    G.gemm_plain(w, wo, x, xo, xs, cols, r0, r1, nb, xshift, accs, ao, ast)


def _case(rng, rows, cols, nb, big):
    if big:   # int32 accumulators that wrap: extreme weights and inputs on long rows
        w = rng.choice(np.array([-128, 127], np.int8), (rows, cols))
        xs = rng.choice(np.array([-128, 127], np.int8), (nb, cols))
    else:
        w = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
        xs = rng.integers(-128, 128, (nb, cols)).astype(np.int8)
    xo = int(rng.integers(0, 9))                         # unaligned first input
    xstride = cols + int(rng.integers(0, 40))            # streams apart like arena slices
    x = rng.integers(-128, 128, xo + nb * xstride + 8).astype(np.int8)
    for b in range(nb):
        x[xo + b * xstride:xo + b * xstride + cols] = xs[b]
    return w, xs, x, xo, xstride


def _want(w, xs, shift, r0, r1):
    acc = (xs.astype(np.int64) + shift) @ w[r0:r1].astype(np.int64).T
    return ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)


def _accs(nb, rows, ao, astride):
    return np.full(ao + nb * astride + 16, 12345, np.int32)


@pytest.mark.skipif(not K.HAS_VNNI, reason="no AVX-512 VNNI on this CPU")
@settings(deadline=None, max_examples=60)
@given(blocks=st.integers(1, 5), quads=st.integers(1, 40), nb=st.integers(1, 17),
       sub=st.booleans(), big=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_vnni_gemm_equals_numpy(blocks, quads, nb, sub, big, seed):
    rng = np.random.default_rng(seed)
    rows, cols = 16 * blocks, 4 * quads
    w, xs, x, xo, xstride = _case(rng, rows, cols, nb, big)
    r0, r1 = (16 * int(rng.integers(0, blocks)), rows) if sub else (0, rows)
    ao, astride = int(rng.integers(0, 5)), rows + int(rng.integers(0, 20))
    accs = _accs(nb, rows, ao, astride)
    us = cols + int(rng.integers(0, 8))
    xu = np.zeros(nb * us + 4, np.uint8)
    _vnni(K.interleave16(w), 0, x, xo, xstride, cols, r0, r1, nb, accs, ao, astride, xu, us)
    want = _want(w, xs, 128, r0, r1)
    for b in range(nb):
        got = accs[ao + b * astride:ao + b * astride + rows]
        assert np.array_equal(got[r0:r1], want[b]), b
        assert np.all(got[:r0] == 12345)                 # rows outside [r0, r1) untouched
    assert np.all(accs[ao + (nb - 1) * astride + rows:] == 12345)


@settings(deadline=None, max_examples=60)
@given(rows=st.integers(1, 70), cols=st.integers(1, 150), nb=st.integers(1, 17),
       shift=st.sampled_from([0, 128]), big=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_plain_gemm_equals_numpy(rows, cols, nb, shift, big, seed):
    rng = np.random.default_rng(seed)
    w, xs, x, xo, xstride = _case(rng, rows, cols, nb, big)
    r0 = int(rng.integers(0, rows))
    ao, astride = int(rng.integers(0, 5)), rows + int(rng.integers(0, 20))
    accs = _accs(nb, rows, ao, astride)
    wo = int(rng.integers(0, 30))
    blob = np.concatenate([rng.integers(-128, 128, wo).astype(np.int8), w.ravel()])
    _plain(blob, wo, x, xo, xstride, cols, r0, rows, nb, shift, accs, ao, astride)
    want = _want(w, xs, shift, r0, rows)
    for b in range(nb):
        got = accs[ao + b * astride:ao + b * astride + rows]
        assert np.array_equal(got[r0:], want[b]), b
        assert np.all(got[:r0] == 12345)


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("nb", [3, 16])
def test_batched_accumulators_equal_the_single_stream_gemv(mode, nb):
    """Per stream, exactly the accumulators of the engine's B=1 ``_dot_rows`` in each mode."""
    if mode > 0 and not K.HAS_VNNI:
        pytest.skip("no AVX-512 VNNI on this CPU")
    rng = np.random.default_rng(mode * 100 + nb)
    rows, cols = 64, 96
    w, xs, x, xo, xstride = _case(rng, rows, cols, nb, False)
    blob = K.interleave16(w) if mode == 2 else w.ravel()
    accs = np.zeros(nb * rows, np.int32)
    if mode == 2:
        xu = np.zeros(nb * cols + 4, np.uint8)
        _vnni(blob, 0, x, xo, xstride, cols, 0, rows, nb, accs, 0, rows, xu, cols)
    else:
        _plain(blob, 0, x, xo, xstride, cols, 0, rows, nb, 128 if mode == 1 else 0, accs, 0,
               rows)
    for b in range(nb):
        one = np.zeros(rows + (cols + 3) // 4 + 1, np.int32)
        K._dot_rows(x, np.uint64(xo + b * xstride), blob, 0, 0, rows, cols, one, mode)
        assert np.array_equal(accs[b * rows:(b + 1) * rows], one[:rows]), b
