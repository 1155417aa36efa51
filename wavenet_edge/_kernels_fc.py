"""FULLY_CONNECTED kernels of the engine: int8 dot products and their requantization.

The lowered program folds the input zero point into each bias, so the inner loop is an
int8·int8 dot product into int32 (exact, no saturation).  Three paths (:func:`vnni_mode`), all
giving the same int32 accumulators: a plain loop LLVM vectorizes into widening multiply-adds;
and with AVX-512 VNNI, ``vpdpbusd`` (64 u8×s8 MACs per instruction, emitted through an LLVM
intrinsic) either per row or over 16 interleaved rows at once.  The engine's schedule
(:mod:`wavenet_edge.program`) lays the weights and biases out for the path each FC takes.
The requantization is :func:`wavenet_edge.int8.requantize_int8`.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as _ir
from numba import types as _nt
from numba.core import cgutils as _cg
from numba.extending import intrinsic as _intrinsic

from . import _gemm_kernels as _gemm
from ._cpu import HAS_VNNI
from ._kernel_util import inline_kernel
from .int8.requant import requantize_int8, requantize_single_shift
from .lowered.kinds import FC_MAX, FC_MIN, FC_ZP, OpKind

__all__ = ["HAS_VNNI", "VNNI_MIN_COLS", "vnni_mode", "interleave16", "dot_rows", "fc_one",
           "fc_batch", "fc2_one"]


#: HAS_VNNI (numba's target, :mod:`._cpu`): FCs with at least :data:`VNNI_MIN_COLS` inputs then use
#: ``vpdpbusd`` (64 int8 MACs per instruction).  The program compiler folds the matching bias
#: correction, so the choice is made once, here, for both.
VNNI_MIN_COLS = 64


@inline_kernel
def vnni_mode(rows, cols):
    """How an FC of ``rows`` outputs and ``cols`` inputs runs: 0 plain int8 loop; 1 ``vpdpbusd``
    dot product per row (long rows); 2 ``vpdpbusd`` over 16 rows at once with the weights
    interleaved as [rows/16][cols/4][16][4] (no horizontal sums: ≈ 10× faster on the small
    per-layer FCs).  Modes 1 and 2 feed the input as unsigned ``x + 128``."""
    if not HAS_VNNI:
        return 0
    if rows % 16 == 0 and cols % 4 == 0:
        return 2
    if cols >= VNNI_MIN_COLS:
        return 1
    return 0


def interleave16(w: np.ndarray) -> np.ndarray:
    """int8 [rows, cols] → the mode-2 layout [rows/16][cols/4][16][4], flattened."""
    rows, cols = w.shape
    return np.ascontiguousarray(
        w.reshape(rows // 16, 16, cols // 4, 4).transpose(0, 2, 1, 3)).ravel()


@_intrinsic
def _vpdpbusd_dot(typingctx, w, wo, x, xo, n):
    """``Σ_{i < n} u8(x[xo+i]) · s8(w[wo+i])`` for ``n`` a multiple of 64, with ``vpdpbusd``
    (int32 lanes, wrapping, no saturation) and a final horizontal add; unaligned loads."""
    sig = _nt.int32(w, _nt.uint64, x, _nt.uint64, _nt.uint64)

    def codegen(context, builder, sig, args):
        warr, woff, xarr, xoff, count = args
        wa = context.make_array(sig.args[0])(context, builder, warr)
        xa = context.make_array(sig.args[2])(context, builder, xarr)
        wp = builder.gep(wa.data, [woff])
        xp = builder.gep(xa.data, [xoff])
        v16 = _ir.VectorType(_ir.IntType(32), 16)
        fn = _cg.get_or_insert_function(builder.module, _ir.FunctionType(v16, [v16, v16, v16]),
                                        "llvm.x86.avx512.vpdpbusd.512")
        acc_ptr = _cg.alloca_once_value(builder, _ir.Constant(v16, None))
        chunks = builder.udiv(count, _ir.Constant(count.type, 64))
        with _cg.for_range(builder, chunks) as loop:
            off = builder.mul(loop.index, _ir.Constant(count.type, 64))
            a = builder.load(builder.bitcast(builder.gep(xp, [off]), v16.as_pointer()), align=1)
            b = builder.load(builder.bitcast(builder.gep(wp, [off]), v16.as_pointer()), align=1)
            builder.store(builder.call(fn, [builder.load(acc_ptr), a, b]), acc_ptr)
        red = _cg.get_or_insert_function(builder.module,
                                         _ir.FunctionType(_ir.IntType(32), [v16]),
                                         "llvm.vector.reduce.add.v16i32")
        return builder.call(red, [builder.load(acc_ptr)])

    return sig, codegen


@_intrinsic
def _vpdpbusd_gemv16(typingctx, w, wo, x, xo, cols, r0, r1, accs):
    """``accs[r] = Σ_i u8(x[i]) · s8(W[r, i])`` for r in [r0, r1) (multiples of 16), W in the
    interleaved layout of :func:`interleave16` at byte offset ``wo``: per block of 16 rows and
    per 4 inputs, one broadcast of x[4c:4c+4] and one ``vpdpbusd`` (16 lanes = 16 rows)."""
    sig = _nt.void(w, _nt.uint64, x, _nt.uint64, _nt.uint64, _nt.uint64, _nt.uint64, accs)

    def codegen(context, builder, sig, args):
        warr, woff, xarr, xoff, ncols, r0, r1, aarr = args
        wa = context.make_array(sig.args[0])(context, builder, warr)
        xa = context.make_array(sig.args[2])(context, builder, xarr)
        aa = context.make_array(sig.args[7])(context, builder, aarr)
        xdata = builder.gep(builder.bitcast(xa.data, _ir.IntType(8).as_pointer()), [xoff])
        i32, i64 = _ir.IntType(32), _ir.IntType(64)
        v16 = _ir.VectorType(i32, 16)
        fn = _cg.get_or_insert_function(builder.module, _ir.FunctionType(v16, [v16, v16, v16]),
                                        "llvm.x86.avx512.vpdpbusd.512")
        wbase = builder.gep(wa.data, [woff])
        nchunk = builder.udiv(ncols, _ir.Constant(i64, 4))
        b0 = builder.udiv(r0, _ir.Constant(i64, 16))
        nblk = builder.sub(builder.udiv(r1, _ir.Constant(i64, 16)), b0)
        zero = _ir.Constant(v16, None)
        # four independent accumulators over the chunks (chunk mod 4): vpdpbusd has a latency
        # of several cycles, so a single accumulator chain leaves the unit mostly idle; the
        # int32 lane sums are exact (no saturation), so the split changes nothing
        accp = [_cg.alloca_once_value(builder, zero) for _ in range(4)]
        nquad = builder.udiv(nchunk, _ir.Constant(i64, 4))

        def chunk(wblk, ci, ap):
            xp = builder.gep(xdata, [builder.mul(ci, _ir.Constant(i64, 4))])
            # four int8 inputs as u8 (x + 128): flip each byte's sign bit
            xv = builder.load(builder.bitcast(xp, i32.as_pointer()), align=1)
            xv = builder.xor(xv, _ir.Constant(i32, 0x80808080 - (1 << 32)))
            xb = builder.insert_element(_ir.Constant(v16, _ir.Undefined), xv,
                                        _ir.Constant(i32, 0))
            xb = builder.shuffle_vector(xb, _ir.Constant(v16, _ir.Undefined), zero)
            wp = builder.gep(wblk, [builder.mul(ci, _ir.Constant(i64, 64))])
            wv = builder.load(builder.bitcast(wp, v16.as_pointer()), align=1)
            builder.store(builder.call(fn, [builder.load(ap), xb, wv]), ap)

        with _cg.for_range(builder, nblk) as bl:
            blk = builder.add(b0, bl.index)
            for ap in accp:
                builder.store(zero, ap)
            wblk = builder.gep(wbase, [builder.mul(blk, builder.mul(ncols, _ir.Constant(i64, 16)))])
            with _cg.for_range(builder, nquad) as qd:
                c0 = builder.mul(qd.index, _ir.Constant(i64, 4))
                for j in range(4):
                    chunk(wblk, builder.add(c0, _ir.Constant(i64, j)), accp[j])
            with _cg.for_range(builder, builder.sub(nchunk, builder.mul(nquad, _ir.Constant(i64, 4)))) as rm:
                chunk(wblk, builder.add(builder.mul(nquad, _ir.Constant(i64, 4)), rm.index), accp[0])
            tot = builder.add(builder.add(builder.load(accp[0]), builder.load(accp[1])),
                              builder.add(builder.load(accp[2]), builder.load(accp[3])))
            ap = builder.gep(aa.data, [builder.mul(blk, _ir.Constant(i64, 16))])
            builder.store(tot, builder.bitcast(ap, v16.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


if HAS_VNNI:
    @inline_kernel
    def _gemv16(wblob, wo, xu, xo, cols, o0, o1, accs):
        _vpdpbusd_gemv16(wblob, np.uint64(wo), xu, np.uint64(xo), np.uint64(cols), np.uint64(o0),
                         np.uint64(o1), accs)

    @inline_kernel
    def _dot_u8s8(wblob, uw, xu, cols):
        n64 = np.uint64((cols // 64) * 64)
        acc = _vpdpbusd_dot(wblob, uw, xu, np.uint64(0), n64)
        for i in range(n64, np.uint64(cols)):
            acc += np.int32(wblob[uw + i]) * np.int32(xu[i])
        return acc
else:
    @inline_kernel
    def _gemv16(wblob, wo, xu, xo, cols, o0, o1, accs):  # never called without VNNI (vnni_mode)
        pass

    @inline_kernel
    def _dot_u8s8(wblob, uw, xu, cols):  # never called without VNNI (see vnni_mode)
        acc = np.int32(0)
        for i in range(np.uint64(cols)):
            acc += np.int32(wblob[uw + i]) * np.int32(xu[i])
        return acc


@inline_kernel
def dot_rows(arena, ux, wblob, wo, o0, o1, cols, accs, mode):
    """``accs[o] = Σ_i W[o, i] · x[i]`` for o in [o0, o1), int8·int8 → int32, W at ``wo``.

    ``mode`` (:func:`vnni_mode`): 1 and 2 copy the input once as unsigned ``x + 128`` (into the
    tail of ``accs``, viewed as bytes; the schedule folded ``128·Σw`` into the bias) and use
    ``vpdpbusd``: per row (1, ≈ 130 GMAC/s on long rows) or over blocks of 16 interleaved rows
    (2, no horizontal sums).  Mode 0 is a plain loop with unsigned indices — numba then emits
    no negative-index wraparound select and LLVM vectorizes it (≈ 50 GMAC/s).
    """
    uc = np.uint64(cols)
    if mode == 2:
        # the kernel reads x straight from the arena, four bytes at a time, flipping the sign
        # bits (x + 128 as unsigned)
        _gemv16(wblob, wo, arena, ux, cols, o0, o1, accs)
        return
    if mode > 0:
        xu = accs.view(np.uint8)[accs.shape[0] * 4 - cols:]
        for i in range(uc):
            xu[i] = np.uint8(np.int32(arena[ux + i]) + 128)
        for o in range(o0, o1):
            accs[o] = _dot_u8s8(wblob, np.uint64(wo + o * cols), xu, cols)
        return
    for o in range(o0, o1):
        uw = np.uint64(wo + o * cols)
        acc = np.int32(0)
        for i in range(uc):
            acc += np.int32(wblob[uw + i]) * np.int32(arena[ux + i])
        accs[o] = acc


@inline_kernel
def _requant_rows(arena, uy, o0, o1, accs, q, p, bblob, mult, shift, fmul, iparams, profile):
    """``arena[uy + o] = requantize_int8(accs[o] + bias[q + o])`` for o in [o0, o1) with the
    channel parameters at ``q + o`` and the FC's zero point and range at ``iparams[p:]``.
    Profiles tflm/litert: the one-shift form of the same rounding
    (:func:`wavenet_edge.int8.requant.requantize_single_shift`): branch-free, LLVM vectorizes
    it on 8 int64 lanes (measured 0.40 ns/row vs 0.62 for the two-step form).  int32 wrap as
    in C."""
    uq = np.uint64(q)
    zp = iparams[p + FC_ZP]
    lo = iparams[p + FC_MIN]
    hi = iparams[p + FC_MAX]
    if profile <= 1:
        for o in range(np.uint64(o0), np.uint64(o1)):
            c = uq + o
            v = requantize_single_shift(np.int32(accs[o] + bblob[c]), mult[c], shift[c],
                                        profile == 0) + zp
            arena[uy + o] = np.int8(min(max(v, lo), hi))
        return
    for o in range(np.uint64(o0), np.uint64(o1)):
        acc32 = np.int32(accs[o] + bblob[uq + o])
        arena[uy + o] = np.int8(requantize_int8(acc32, 0, 0, fmul[uq + o], zp, lo, hi, profile))


@inline_kernel
def _requant_minor(arena, yo, o0, o1, nb, accs, astride, q, p, bblob, mult, shift, fmul,
                   iparams, profile):
    """:func:`_requant_rows` for ``nb`` streams in the stream-minor layout: output row ``o`` of
    stream ``b`` to ``arena[yo + o·nb + b]`` from ``accs[o·astride + b]``; per row the channel
    parameters are scalars and the stream loop vectorizes."""
    uq = np.uint64(q)
    zp = iparams[p + FC_ZP]
    lo = iparams[p + FC_MIN]
    hi = iparams[p + FC_MAX]
    un = np.uint64(nb)
    for o in range(np.uint64(o0), np.uint64(o1)):
        c = uq + o
        bias = bblob[c]
        ya = np.uint64(yo) + o * un
        ua = o * np.uint64(astride)
        if profile <= 1:
            m = mult[c]
            sh = shift[c]
            for b in range(un):
                v = requantize_single_shift(np.int32(accs[ua + b] + bias), m, sh,
                                            profile == 0) + zp
                arena[ya + b] = np.int8(min(max(v, lo), hi))
        else:
            fm = fmul[c]
            for b in range(un):
                arena[ya + b] = np.int8(requantize_int8(np.int32(accs[ua + b] + bias), 0, 0, fm,
                                                        zp, lo, hi, profile))


@inline_kernel
def _fc_streams(arena, accs, nb, in0, out1, out2, rows1, rows, cols, wo, q, p1, p2, mode,
                wblob, bblob, mult, shift, fmul, iparams, profile):
    """``nb`` ≥ 2 streams of an FC (``rows1 == rows``) or of an FC pair (output rows
    ``[rows1, rows)`` to ``out2 + o``, parameters at ``p2``) in the stream-minor arena (byte
    ``x`` of stream ``b`` at ``x·nb + b``): the int32 sums of every stream
    (:mod:`wavenet_edge._gemm_kernels`: streams in vector lanes with VNNI, else per weight row
    each stream's dot product), per stream exactly :func:`dot_rows`' sums, at
    ``accs[o·astride + b]``; then the requantization of each row for all streams.  The tail of
    ``accs`` holds the transposed inputs (sized by
    :func:`wavenet_edge.program.new_state`)."""
    L = _gemm.lanes_of(nb)
    astride = (nb + L - 1) // L * L
    lanes = mode == 2 or (mode == 1 and cols % 4 == 0)
    if lanes:
        xt = accs.view(np.uint8)[accs.shape[0] * 4 - astride * cols:]
        _gemm.transpose_lanes(arena, in0 * nb, nb, cols, xt)
        if mode == 2:
            _gemm.gemm_lanes(wblob, wo, 16 * cols, 4, 64, 0, rows, nb, xt, cols, accs, astride)
        else:
            _gemm.gemm_lanes(wblob, wo, 16 * cols, cols, 4, 0, rows, nb, xt, cols, accs,
                             astride)
    else:
        xr = accs.view(np.int8)[accs.shape[0] * 4 - nb * cols:]
        _gemm.gemm_minor_plain(wblob, wo, arena, in0 * nb, nb, cols, 0, rows,
                               128 if mode == 1 else 0, accs, astride, xr)
    _requant_minor(arena, out1 * nb, 0, rows1, nb, accs, astride, q, p1, bblob, mult, shift,
                   fmul, iparams, profile)
    if rows1 < rows:
        # rows rows1 … rows-1 of the fused block are rows 0 … of the second output
        _requant_minor(arena, (out2 - rows1) * nb, rows1, rows, nb, accs, astride, q, p2, bblob,
                       mult, shift, fmul, iparams, profile)


# The per-op helpers below take the arrays they use, not the schedule's named tuple: numba
# reference-counts every array member of a tuple passed to an inlined function, through
# out-of-line NRT calls (no-ops on borrowed views, but ~40 calls per op: measured 2x slower).

@inline_kernel
def fc_one(arena, accs, r, wblob, bblob, mult, shift, fmul, iparams, profile):
    """FULLY_CONNECTED row ``r`` (record) of one stream:
    ``y[o] = requant(Σ_i W[o, i]·x[i] + bias[o])``."""
    rows = r.n
    cols = r.cols
    dot_rows(arena, np.uint64(r.in0), wblob, r.w, 0, rows, cols, accs, vnni_mode(rows, cols))
    _requant_rows(arena, np.uint64(r.out), 0, rows, accs, r.q, r.p, bblob, mult, shift, fmul,
                  iparams, profile)


@inline_kernel
def fc_batch(arena, accs, nb, r, wblob, bblob, mult, shift, fmul, iparams, profile):
    """:func:`fc_one` and :func:`fc2_one` (row kinds FC and FC2) for ``nb`` ≥ 2 streams in the
    stream-minor arena: every weight load serves several streams (:func:`_fc_streams`).  One
    call site for both kinds: the batched FC code is compiled once (cold-cache time)."""
    rows1 = r.n
    two = r.kind == OpKind.FC2
    rows = rows1 + (r.n2 if two else 0)
    _fc_streams(arena, accs, nb, r.in0, r.out, r.out2 if two else r.out, rows1, rows, r.cols,
                r.w, r.q, r.p, r.p2 if two else r.p, vnni_mode(rows, r.cols), wblob, bblob, mult,
                shift, fmul, iparams, profile)


@inline_kernel
def fc2_one(arena, accs, r, wblob, bblob, mult, shift, fmul, iparams, profile):
    """Two FULLY_CONNECTED ops on the same input (schedule kind FC2) of one stream: one
    dot-product pass over ``n + n2`` contiguous weight rows, then each op's own
    requantization (the first to ``out`` with ``p``, the second to ``out2`` with ``p2``)."""
    rows1 = r.n
    rows = r.n + r.n2
    cols = r.cols
    # the schedule merged only FCs of this same mode
    dot_rows(arena, np.uint64(r.in0), wblob, r.w, 0, rows, cols, accs, vnni_mode(rows, cols))
    _requant_rows(arena, np.uint64(r.out), 0, rows1, accs, r.q, r.p, bblob, mult, shift, fmul,
                  iparams, profile)
    # rows1 … rows1+n2-1 of the fused block are rows 0 … n2-1 of the second output
    _requant_rows(arena, np.uint64(r.out2 - rows1), rows1, rows, accs, r.q, r.p2, bblob, mult,
                  shift, fmul, iparams, profile)
