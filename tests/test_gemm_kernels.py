"""The batched FC accumulators of the stream-minor layout (``_gemm_kernels``: streams in vector
lanes with VNNI, the plain stream loop otherwise) equal numpy's exact products and the engine's
single-stream GEMV, for many shapes, stream counts (2 … 40: both lane widths, partial groups),
both weight layouts and unaligned inputs; accumulators outside the asked rows stay untouched."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavenet_edge import _engine_kernels as K
from wavenet_edge import _gemm_kernels as G


@numba.njit
def _lanes(w, wo, rs_hi, rs_lo, cs, r0, r1, nb, x, xo, cols, accs, astride, xt):
    G.transpose_lanes(x, xo, nb, cols, xt)
    G.gemm_lanes(w, wo, rs_hi, rs_lo, cs, r0, r1, nb, xt, cols, accs, astride)


@numba.njit
def _minor_plain(w, wo, x, xo, nb, cols, r0, r1, xshift, accs, astride):
    xr = np.empty(nb * cols, np.int8)
    G.gemm_minor_plain(w, wo, x, xo, nb, cols, r0, r1, xshift, accs, astride, xr)


@numba.njit
def _lanes_of(nb):
    return G.lanes_of(nb)


def _case(rng, rows, cols, nb, big):
    """Weights, per-stream inputs xs (nb, cols) and the stream-minor array x holding them at
    byte offset xo (x[xo + i·nb + b] = xs[b, i]), with 64 spare bytes after it."""
    if big:   # int32 accumulators that wrap: extreme weights and inputs on long rows
        w = rng.choice(np.array([-128, 127], np.int8), (rows, cols))
        xs = rng.choice(np.array([-128, 127], np.int8), (nb, cols))
    else:
        w = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
        xs = rng.integers(-128, 128, (nb, cols)).astype(np.int8)
    xo = int(rng.integers(0, 9)) * nb                    # a tensor offset in the arena
    x = rng.integers(-128, 128, xo + nb * cols + 64).astype(np.int8)
    x[xo:xo + nb * cols] = xs.T.ravel()
    return w, xs, x, xo


def _want(w, xs, shift, r0, r1):
    acc = (xs.astype(np.int64) + shift) @ w[r0:r1].astype(np.int64).T
    return ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)


@pytest.mark.skipif(not K.HAS_VNNI, reason="no AVX-512 VNNI on this CPU")
@settings(deadline=None, max_examples=60)
@given(blocks=st.integers(1, 5), quads=st.integers(1, 40), nb=st.integers(2, 40),
       interleaved=st.booleans(), sub=st.booleans(), big=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_lanes_gemm_equals_numpy(blocks, quads, nb, interleaved, sub, big, seed):
    rng = np.random.default_rng(seed)
    rows, cols = 16 * blocks, 4 * quads
    if not interleaved:
        rows -= int(rng.integers(0, 16))                 # row-major: any row count
    w, xs, x, xo = _case(rng, rows, cols, nb, big)
    r0 = int(rng.integers(0, rows)) if sub else 0
    L = _lanes_of(nb)
    astride = (nb + L - 1) // L * L + int(rng.integers(0, 3)) * L
    accs = np.full(rows * astride + 16, 12345, np.int32)
    xt = np.zeros(astride * cols, np.uint8)
    wo = int(rng.integers(0, 30))
    if interleaved:
        blob, hi, lo, cs = K.interleave16(w), 16 * cols, 4, 64
    else:
        blob, hi, lo, cs = w.ravel(), 16 * cols, cols, 4
    blob = np.concatenate([rng.integers(-128, 128, wo).astype(np.int8), blob])
    _lanes(blob, wo, hi, lo, cs, r0, rows, nb, x, xo, cols, accs, astride, xt)
    want = _want(w, xs, 128, r0, rows)
    got = accs[:rows * astride].reshape(rows, astride)
    assert np.array_equal(got[r0:, :nb].T, want)
    assert np.all(got[:r0] == 12345)                     # rows outside [r0, r1) untouched
    assert np.all(accs[rows * astride:] == 12345)


@settings(deadline=None, max_examples=60)
@given(rows=st.integers(1, 70), cols=st.integers(1, 150), nb=st.integers(2, 17),
       shift=st.sampled_from([0, 128]), big=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_minor_plain_gemm_equals_numpy(rows, cols, nb, shift, big, seed):
    rng = np.random.default_rng(seed)
    w, xs, x, xo = _case(rng, rows, cols, nb, big)
    r0 = int(rng.integers(0, rows))
    astride = nb + int(rng.integers(0, 20))
    accs = np.full(rows * astride + 16, 12345, np.int32)
    wo = int(rng.integers(0, 30))
    blob = np.concatenate([rng.integers(-128, 128, wo).astype(np.int8), w.ravel()])
    _minor_plain(blob, wo, x, xo, nb, cols, r0, rows, shift, accs, astride)
    got = accs[:rows * astride].reshape(rows, astride)
    assert np.array_equal(got[r0:, :nb].T, _want(w, xs, shift, r0, rows))
    assert np.all(got[:r0] == 12345)
    assert np.all(got[r0:, nb:] == 12345)                # padding lanes untouched


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("nb", [3, 16])
def test_batched_accumulators_equal_the_single_stream_gemv(mode, nb):
    """Per stream, exactly the accumulators of the engine's B=1 ``_dot_rows`` in each mode."""
    if mode > 0 and not K.HAS_VNNI:
        pytest.skip("no AVX-512 VNNI on this CPU")
    rng = np.random.default_rng(mode * 100 + nb)
    rows, cols = 64, 96
    w, xs, x, xo = _case(rng, rows, cols, nb, False)
    blob = K.interleave16(w) if mode == 2 else w.ravel()
    L = _lanes_of(nb)
    astride = (nb + L - 1) // L * L
    accs = np.zeros(rows * astride, np.int32)
    if mode > 0:
        hi, lo, cs = (16 * cols, 4, 64) if mode == 2 else (16 * cols, cols, 4)
        _lanes(blob, 0, hi, lo, cs, 0, rows, nb, x, xo, cols, accs, astride,
               np.zeros(astride * cols, np.uint8))
    else:
        _minor_plain(blob, 0, x, xo, nb, cols, 0, rows, 0, accs, astride)
    for b in range(nb):
        one = np.zeros(rows + (cols + 3) // 4 + 1, np.int32)
        xb = np.ascontiguousarray(xs[b])
        K._dot_rows(xb, np.uint64(0), blob, 0, 0, rows, cols, one, mode)
        assert np.array_equal(accs.reshape(rows, astride)[:, b], one[:rows]), b
