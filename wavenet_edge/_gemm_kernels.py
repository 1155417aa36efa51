"""Batched FULLY_CONNECTED accumulators: one weight load serves several streams (a small GEMM).

The engine keeps ``nb`` ≥ 2 streams *stream-minor* (byte ``x`` of stream ``b`` at ``x·nb + b``,
:mod:`wavenet_edge._engine_kernels`), so an FC's input is [cols][nb] and its accumulators go to
``accs[o·astride + b]``.  The sums are exactly those of the single-stream GEMV
(``_kernels_fc.dot_rows``): int32 lanes that wrap like C's, and since wrapping addition is
associative modulo 2³², summing in another order gives the same bits.  Two paths:

* VNNI (AVX-512 VNNI; modes 1 and 2 of ``_kernels_fc.vnni_mode``, whose biases fold
  ``128·Σw``): streams in the vector lanes.  :func:`transpose_lanes` copies the input once per
  FC into [groups][cols/4][L][4] unsigned bytes ``x + 128`` (L = 16 or 8 lanes); per output row
  and 4 inputs the four weights are broadcast to every lane and one ``vpdpbusd`` makes 4 MACs for
  each of L streams (:func:`gemm_lanes`; ≈ one ``vpdpbusd`` per cycle, the unit's peak here).
  Row-major weights and the mode-2 interleaved layout [rows/16][cols/4][16][4]
  (``_kernels_fc.interleave16``) both hold a row's 4-byte groups contiguously.
* plain (modes 0/1, the portable path ``NUMBA_CPU_NAME=generic``): the input copied stream by
  stream, then per weight row every stream's dot product (:func:`gemm_minor_plain`).

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

# The stream-minor layout (the engine's B >= 2 arena: byte x of stream b at x·nb + b).
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
            vl, v4l = _vec(8, L), _vec(8, 4 * L)
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
def gemm_minor_plain(w, wo, x, xo, nb, cols, r0, r1, xshift, accs, astride, xr):
    """Modes 0/1 in the stream-minor layout: ``accs[o·astride + b] = Σ_i W[o, i]·(x[xo + i·nb +
    b] + xshift)``, W row-major at ``wo``.  The input is first copied stream by stream into
    ``xr`` (int8, ``nb·cols``), then each weight row, while in L1, serves every stream's dot
    product — a reduction LLVM vectorizes on any target (``pmaddwd`` even on baseline x86-64;
    an outer product over the streams measured ≈ 10× slower there: no 32-bit vector multiply)."""
    uc = np.uint64(cols)
    un = np.uint64(nb)
    ux = np.uint64(xo)
    for i in range(uc):
        for b in range(un):
            xr[b * uc + i] = x[ux + i * un + b]
    sh = np.int32(xshift)
    for o in range(np.uint64(r0), np.uint64(r1)):
        uw = np.uint64(wo) + o * uc
        ua = o * np.uint64(astride)
        for b in range(un):
            xb = b * uc
            acc = np.int32(0)
            for i in range(uc):
                acc += np.int32(w[uw + i]) * (np.int32(xr[xb + i]) + sh)
            accs[ua + b] = acc
