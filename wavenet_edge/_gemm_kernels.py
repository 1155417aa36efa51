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


# -- stream-minor layout (the engine's B >= 2 arena: byte x of stream b at x·nb + b) -----------
#
# An FC's input is then [cols][nb] and its output [rows][nb].  The VNNI path puts streams in the
# vector lanes: the input is transposed once per FC into [groups][cols/4][L][4] unsigned bytes
# (lane l of group g = stream g·L + l, its four consecutive inputs in one int32 lane), and per
# output row the four weights W[o, 4c:4c+4] are broadcast to every lane, so one ``vpdpbusd``
# makes 4 MACs for each of L streams.  The int32 sums per stream are exactly those of the
# single-stream GEMV (wrapping int32 addition is associative).

#: output rows per register tile of the lanes GEMM (independent accumulator chains)
LANES_ROW_TILE = 16


def _vec(i, n):
    return _ir.VectorType(_ir.IntType(i), n)


def _make_transpose(L):
    """The input transpose for L lanes (16: zmm, 8: ymm)."""

    @_intrinsic
    def transpose(typingctx, x, xo, nb, cols4, groups, xt):
        u64 = _nt.uint64
        sig = _nt.void(x, u64, u64, u64, u64, xt)

        def codegen(context, builder, sig, args):
            xarr, xoff, nstreams, nc4, ngroups, tarr = args
            xa = context.make_array(sig.args[0])(context, builder, xarr)
            ta = context.make_array(sig.args[5])(context, builder, tarr)
            i8, i64 = _ir.IntType(8), _ir.IntType(64)
            c = lambda v: _ir.Constant(i64, v)  # noqa: E731
            vl, v2l, v4l = _vec(8, L), _vec(8, 2 * L), _vec(8, 4 * L)
            xp = builder.gep(builder.bitcast(xa.data, i8.as_pointer()), [xoff])
            tp = builder.bitcast(ta.data, i8.as_pointer())
            # out[l·4 + k] = in[k·L + l]
            perm = _ir.Constant(_ir.VectorType(_ir.IntType(32), 4 * L),
                                [(j % 4) * L + j // 4 for j in range(4 * L)])
            lo = _ir.Constant(_ir.VectorType(_ir.IntType(32), 2 * L), list(range(2 * L)))
            full = _ir.Constant(_ir.VectorType(_ir.IntType(32), 4 * L), list(range(4 * L)))
            flip = _ir.Constant(v4l, [0x80] * (4 * L))
            with _cg.for_range(builder, ngroups) as gl:
                gx = builder.gep(xp, [builder.mul(gl.index, c(L))])
                gt = builder.gep(tp, [builder.mul(builder.mul(gl.index, nc4), c(4 * L))])
                with _cg.for_range(builder, nc4) as cl:
                    row = builder.mul(builder.mul(cl.index, c(4)), nstreams)
                    v = []
                    for k in range(4):
                        p = builder.gep(gx, [builder.add(row, builder.mul(c(k), nstreams))])
                        v.append(builder.load(builder.bitcast(p, vl.as_pointer()), align=1))
                    a = builder.shuffle_vector(v[0], v[1], lo)
                    b = builder.shuffle_vector(v[2], v[3], lo)
                    w = builder.shuffle_vector(a, b, full)
                    w = builder.xor(builder.shuffle_vector(w, w, perm), flip)
                    dst = builder.gep(gt, [builder.mul(cl.index, c(4 * L))])
                    builder.store(w, builder.bitcast(dst, v4l.as_pointer()), align=1)
            del v2l
            return context.get_dummy_value()

        return sig, codegen

    return transpose


def _make_gemm_lanes(L):
    """The lanes GEMM for L lanes (16: zmm, 8: ymm)."""
    name = "llvm.x86.avx512.vpdpbusd.512" if L == 16 else "llvm.x86.avx512.vpdpbusd.256"

    @_intrinsic
    def gemm(typingctx, w, wo, rs_hi, rs_lo, cs, r0, r1, xt, cols4, groups, accs, astride):
        u64 = _nt.uint64
        sig = _nt.void(w, u64, u64, u64, u64, u64, u64, xt, u64, u64, accs, u64)

        def codegen(context, builder, sig, args):
            (warr, woff, rhi, rlo, cstr, row0, row1, tarr, nc4, ngroups, aarr, astr) = args
            wa = context.make_array(sig.args[0])(context, builder, warr)
            ta = context.make_array(sig.args[7])(context, builder, tarr)
            aa = context.make_array(sig.args[10])(context, builder, aarr)
            i8, i32, i64 = _ir.IntType(8), _ir.IntType(32), _ir.IntType(64)
            c = lambda v: _ir.Constant(i64, v)  # noqa: E731
            vt = _vec(32, L)
            fn = _cg.get_or_insert_function(builder.module, _ir.FunctionType(vt, [vt, vt, vt]),
                                            name)
            zero = _ir.Constant(vt, None)
            wp = builder.gep(wa.data, [woff])
            tp = builder.bitcast(ta.data, i8.as_pointer())
            accp = [_cg.alloca_once_value(builder, zero) for _ in range(LANES_ROW_TILE)]
            op = _cg.alloca_once_value(builder, c(0))

            def rowbase(o):
                return builder.gep(wp, [builder.add(
                    builder.mul(builder.lshr(o, c(4)), rhi),
                    builder.mul(builder.and_(o, c(15)), rlo))])

            def tile(gt, g, T):
                o0 = builder.load(op)
                rbs = [rowbase(builder.add(o0, c(j))) for j in range(T)]
                for j in range(T):
                    builder.store(zero, accp[j])
                with _cg.for_range(builder, nc4) as cl:
                    xv = builder.load(builder.bitcast(
                        builder.gep(gt, [builder.mul(cl.index, c(4 * L))]), vt.as_pointer()),
                        align=1)
                    woff_c = builder.mul(cl.index, cstr)
                    for j in range(T):
                        wv = builder.load(builder.bitcast(builder.gep(rbs[j], [woff_c]),
                                                          i32.as_pointer()), align=1)
                        wb = builder.insert_element(_ir.Constant(vt, _ir.Undefined), wv,
                                                    _ir.Constant(i32, 0))
                        wb = builder.shuffle_vector(wb, _ir.Constant(vt, _ir.Undefined),
                                                    _ir.Constant(_vec(32, L), None))
                        builder.store(builder.call(fn, [builder.load(accp[j]), xv, wb]),
                                      accp[j])
                for j in range(T):
                    ai = builder.add(builder.mul(builder.add(o0, c(j)), astr),
                                     builder.mul(g, c(L)))
                    builder.store(builder.load(accp[j]),
                                  builder.bitcast(builder.gep(aa.data, [ai]), vt.as_pointer()),
                                  align=4)
                builder.store(builder.add(o0, c(T)), op)

            nrows = builder.sub(row1, row0)
            with _cg.for_range(builder, ngroups) as gl:
                gt = builder.gep(tp, [builder.mul(builder.mul(gl.index, nc4), c(4 * L))])
                builder.store(row0, op)
                T = LANES_ROW_TILE
                with _cg.for_range(builder, builder.udiv(nrows, c(T))):
                    tile(gt, gl.index, T)
                with _cg.for_range(builder, builder.urem(nrows, c(T))):
                    tile(gt, gl.index, 1)
            return context.get_dummy_value()

        return sig, codegen

    return gemm


_transpose16, _transpose8 = _make_transpose(16), _make_transpose(8)
_gemm_lanes16, _gemm_lanes8 = _make_gemm_lanes(16), _make_gemm_lanes(8)


@_inline_kernel
def lanes_of(nb):
    """Vector lanes (streams per group) of the lanes GEMM for ``nb`` streams: 16 (zmm) from 12
    streams on, else 8 (ymm)."""
    return 16 if nb >= 12 else 8


if HAS_VNNI:
    @_inline_kernel
    def transpose_lanes(x, xo, nb, cols, xt):
        """``xt`` (u8) ← stream-minor int8 input ``x[xo + i·nb + b]`` (i < cols, a multiple of 4)
        as [groups][cols/4][L][4] bytes ``x + 128``; lanes past ``nb`` hold other bytes of
        ``x`` (up to ``L − 1`` bytes past the input are read)."""
        L = lanes_of(nb)
        G = (nb + L - 1) // L
        if L == 16:
            _transpose16(x, np.uint64(xo), np.uint64(nb), np.uint64(cols // 4), np.uint64(G), xt)
        else:
            _transpose8(x, np.uint64(xo), np.uint64(nb), np.uint64(cols // 4), np.uint64(G), xt)

    @_inline_kernel
    def gemm_lanes(w, wo, rs_hi, rs_lo, cs, r0, r1, nb, xt, cols, accs, astride):
        """``accs[o·astride + b] = Σ_i u8(xt…) · W[o, i]`` for o in [r0, r1), b < G·L (lanes
        past ``nb``: garbage); row ``o``'s 4-byte weight group ``c`` at
        ``wo + (o // 16)·rs_hi + (o % 16)·rs_lo + c·cs`` (mode 2: 16·cols, 4, 64; row-major:
        16·cols, cols, 4).  ``astride`` ≥ G·L."""
        L = lanes_of(nb)
        G = (nb + L - 1) // L
        if L == 16:
            _gemm_lanes16(w, np.uint64(wo), np.uint64(rs_hi), np.uint64(rs_lo), np.uint64(cs),
                          np.uint64(r0), np.uint64(r1), xt, np.uint64(cols // 4), np.uint64(G),
                          accs, np.uint64(astride))
        else:
            _gemm_lanes8(w, np.uint64(wo), np.uint64(rs_hi), np.uint64(rs_lo), np.uint64(cs),
                         np.uint64(r0), np.uint64(r1), xt, np.uint64(cols // 4), np.uint64(G),
                         accs, np.uint64(astride))
else:
    @_inline_kernel
    def transpose_lanes(x, xo, nb, cols, xt):
        pass   # never called without VNNI (see gemm_lanes)

    @_inline_kernel
    def gemm_lanes(w, wo, rs_hi, rs_lo, cs, r0, r1, nb, xt, cols, accs, astride):
        pass   # never called: without VNNI every FC takes gemm_minor_plain


@_inline_kernel
def gemm_minor_plain(w, wo, x, xo, nb, cols, r0, r1, xshift, accs, astride):
    """Modes 0/1 in the stream-minor layout: ``accs[o·astride + b] = Σ_i W[o, i]·(x[xo + i·nb +
    b] + xshift)``, W row-major at ``wo``: per weight, one multiply-add over the ``nb``
    contiguous streams (LLVM vectorizes the stream loop; the portable path)."""
    uc = np.uint64(cols)
    un = np.uint64(nb)
    sh = np.int32(xshift)
    for o in range(np.uint64(r0), np.uint64(r1)):
        ua = o * np.uint64(astride)
        for b in range(un):
            accs[ua + b] = np.int32(0)
        uw = np.uint64(wo) + o * uc
        for i in range(uc):
            wv = np.int32(w[uw + i])
            ux = np.uint64(xo) + i * un
            for b in range(un):
                accs[ua + b] += wv * (np.int32(x[ux + b]) + sh)
