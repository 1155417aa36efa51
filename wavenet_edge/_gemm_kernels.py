"""Batched FULLY_CONNECTED accumulators: one weight load serves several streams (a small GEMM).

With ``nb`` streams, stream ``b``'s input vector is ``x[xo + b·xstride : … + cols]`` and its int32
accumulators go to ``accs[ao + b·astride + o]``.  The accumulators are exactly those of the
single-stream GEMV of :mod:`wavenet_edge._engine_kernels` (``_dot_rows``): int32 lanes that wrap
like C's, and since wrapping addition is associative modulo 2³², summing in a different order or
over other partial sums gives the same bits.  The weight layouts are the engine's:

* mode 2 (AVX-512 VNNI): weights interleaved as [rows/16][cols/4][16][4]
  (``_engine_kernels.interleave16``) and the input fed as unsigned ``x + 128`` (the program folded
  ``128·Σw`` into the bias).  Per 16 rows and 4 inputs one 64-byte weight vector is loaded and
  multiplied (``vpdpbusd``) against up to eight streams' broadcast inputs, each into its own
  accumulator register: the weights are read once per tile of eight streams instead of once per
  stream, and eight independent accumulator chains hide the instruction's latency.
* modes 0 and 1: weights row-major [rows][cols]; a plain loop that LLVM vectorizes, each row
  used by every stream while it is in L1, the input shifted by ``xshift`` (0 in mode 0, 128 in
  mode 1: what that mode's bias folding expects).  This is also the portable path
  (``NUMBA_CPU_NAME=generic``: no VNNI, mode 0 everywhere).

Private kernels, inlined into their callers at the numba IR level (no call overhead per FC).
"""

from __future__ import annotations

import numpy as np

from llvmlite import ir as _ir
from numba import types as _nt
from numba.core import cgutils as _cg
from numba.extending import intrinsic as _intrinsic

from ._cpu import HAS_VNNI
from ._jit import jit

_inline_kernel = jit(inline="always")

#: streams per register tile of the VNNI GEMM (accumulators in flight per weight vector)
VNNI_TILE = 8


@_intrinsic
def _vpdpbusd_gemm16(typingctx, w, wo, xu, xo, xstride, cols, r0, r1, nb, accs, ao, astride):
    """``accs[ao + b·astride + r] = Σ_i xu[xo + b·xstride + i] · s8(W[r, i])`` (u8 inputs) for r
    in [r0, r1) (multiples of 16) and b < nb, W interleaved at byte offset ``wo``.  Streams go in
    tiles of 8, then 4, 2, 1: per tile and 64-byte weight vector, one ``vpdpbusd`` per stream."""
    u64 = _nt.uint64
    sig = _nt.void(w, u64, xu, u64, u64, u64, u64, u64, u64, accs, u64, u64)

    def codegen(context, builder, sig, args):
        warr, woff, xarr, xoff, xstr, ncols, r0, r1, nstreams, aarr, aoff, astr = args
        wa = context.make_array(sig.args[0])(context, builder, warr)
        xa = context.make_array(sig.args[2])(context, builder, xarr)
        aa = context.make_array(sig.args[9])(context, builder, aarr)
        i8, i32, i64 = _ir.IntType(8), _ir.IntType(32), _ir.IntType(64)
        v16 = _ir.VectorType(i32, 16)
        fn = _cg.get_or_insert_function(builder.module, _ir.FunctionType(v16, [v16, v16, v16]),
                                        "llvm.x86.avx512.vpdpbusd.512")
        c = lambda v: _ir.Constant(i64, v)  # noqa: E731
        zero = _ir.Constant(v16, None)
        xdata = builder.gep(builder.bitcast(xa.data, i8.as_pointer()), [xoff])
        adata = builder.gep(aa.data, [aoff])
        wbase = builder.gep(wa.data, [woff])
        nchunk = builder.udiv(ncols, c(4))
        b0 = builder.udiv(r0, c(16))
        nblk = builder.sub(builder.udiv(r1, c(16)), b0)
        tiles = []
        t = VNNI_TILE
        while t >= 1:
            tiles.append(t)
            t //= 2
        accp = [_cg.alloca_once_value(builder, zero) for _ in range(VNNI_TILE)]
        sp = _cg.alloca_once_value(builder, c(0))    # first stream of the current tile

        def tile(wblk, blk, T):
            s0 = builder.load(sp)
            xps = [builder.gep(xdata, [builder.mul(builder.add(s0, c(j)), xstr)])
                   for j in range(T)]
            for j in range(T):
                builder.store(zero, accp[j])
            with _cg.for_range(builder, nchunk) as ch:
                wv = builder.load(builder.bitcast(
                    builder.gep(wblk, [builder.mul(ch.index, c(64))]), v16.as_pointer()), align=1)
                off = builder.mul(ch.index, c(4))
                for j in range(T):
                    xv = builder.load(builder.bitcast(builder.gep(xps[j], [off]), i32.as_pointer()),
                                      align=1)
                    xb = builder.insert_element(_ir.Constant(v16, _ir.Undefined), xv,
                                                _ir.Constant(i32, 0))
                    xb = builder.shuffle_vector(xb, _ir.Constant(v16, _ir.Undefined), zero)
                    builder.store(builder.call(fn, [builder.load(accp[j]), xb, wv]), accp[j])
            for j in range(T):
                ap = builder.gep(adata, [builder.add(builder.mul(builder.add(s0, c(j)), astr),
                                                     builder.mul(blk, c(16)))])
                builder.store(builder.load(accp[j]), builder.bitcast(ap, v16.as_pointer()),
                              align=4)
            builder.store(builder.add(s0, c(T)), sp)

        with _cg.for_range(builder, nblk) as bl:
            blk = builder.add(b0, bl.index)
            wblk = builder.gep(wbase, [builder.mul(blk, builder.mul(ncols, c(16)))])
            builder.store(c(0), sp)
            for T in tiles:
                if T == VNNI_TILE:
                    # as many full tiles as fit
                    with _cg.for_range(builder, builder.udiv(nstreams, c(T))):
                        tile(wblk, blk, T)
                else:
                    # at most one tile of each smaller size: bit T of nb
                    has = builder.icmp_unsigned("!=", builder.and_(nstreams, c(T)), c(0))
                    with builder.if_then(has):
                        tile(wblk, blk, T)
        return context.get_dummy_value()

    return sig, codegen


if HAS_VNNI:
    @_inline_kernel
    def gemm_vnni16(w, wo, xu, xo, xstride, cols, r0, r1, nb, accs, ao, astride):
        """Mode 2 for ``nb`` streams (see module docstring); ``xu`` holds the inputs already
        as unsigned bytes ``x + 128`` (:func:`to_unsigned`), ``cols`` a multiple of 4."""
        _vpdpbusd_gemm16(w, np.uint64(wo), xu, np.uint64(xo), np.uint64(xstride),
                         np.uint64(cols), np.uint64(r0), np.uint64(r1), np.uint64(nb), accs,
                         np.uint64(ao), np.uint64(astride))
else:
    @_inline_kernel
    def gemm_vnni16(w, wo, xu, xo, xstride, cols, r0, r1, nb, accs, ao, astride):
        pass   # never called: without VNNI on the target no FC runs in mode 2 (vnni_mode)


@_inline_kernel
def to_unsigned(dst, do, dstride, src, so, sstride, n, nb):
    """``dst[do + b·dstride + i] = u8(src[so + b·sstride + i] + 128)`` (flip the sign bit) for
    i < n, b < nb: the VNNI GEMM's inputs, converted once per FC instead of per weight vector."""
    for b in range(np.uint64(nb)):
        ud = np.uint64(do) + b * np.uint64(dstride)
        us = np.uint64(so) + b * np.uint64(sstride)
        for i in range(np.uint64(n)):
            dst[ud + i] = np.uint8(src[us + i]) ^ np.uint8(128)


@_inline_kernel
def gemm_plain(w, wo, x, xo, xstride, cols, r0, r1, nb, xshift, accs, ao, astride):
    """Modes 0/1 for ``nb`` streams: ``accs[…] = Σ_i W[o, i]·(x_b[i] + xshift)``, W row-major at
    ``wo``.  Row by row, every stream's dot product while the row is in L1 (a large matrix is
    read from memory once per step, not once per stream).  One accumulator per loop: register
    tiles of four streams (each weight vector loaded once for four) measured 1.1-2.4× slower,
    as LLVM then vectorizes the four reductions poorly."""
    uc = np.uint64(cols)
    sh = np.int32(xshift)
    for o in range(np.uint64(r0), np.uint64(r1)):
        uw = np.uint64(wo) + o * uc
        for b in range(np.uint64(nb)):
            xb = np.uint64(xo) + b * np.uint64(xstride)
            acc = np.int32(0)
            for i in range(uc):
                acc += np.int32(w[uw + i]) * (np.int32(x[xb + i]) + sh)
            accs[np.uint64(ao) + b * np.uint64(astride) + o] = acc
