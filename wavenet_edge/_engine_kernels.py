"""Jitted kernels of the ring-buffer engine: one step of the whole program for B streams.

Layout (see :mod:`wavenet_edge.program`): ``arena`` is int8 (B·A,), stream ``b``'s activations at
``b·A + offset``; ``ring`` is int8 (B·RS,), stream ``b``'s delay-line history at ``b·RS + offset``.
All streams advance together, so one step counter ``t`` (samples since reset) serves them all.

FULLY_CONNECTED: the input zero point is folded into the bias, so the inner loop is an int8·int8
dot product into int32 (exact, no saturation).  Three paths (:func:`vnni_mode`), all giving the
same int32 accumulators: a plain loop LLVM vectorizes into widening multiply-adds; and with
AVX-512 VNNI, ``vpdpbusd`` (64 u8×s8 MACs per instruction, emitted through an LLVM intrinsic)
either per row or over 16 interleaved rows at once.  The requantization and every other op use
the reference arithmetic of :mod:`wavenet_edge.int8` (TANH/LOGISTIC through tables that the
program compiler filled with it; ADD/MUL calling ``add_int8``/``mul_int8`` with the profile as a
literal per branch), so each op's output is bit-identical to the interpreter the profile mirrors.

Speed (one core, see ``benchmarks/bench_engine.py``): the outer kernels borrow their arrays
(:func:`_borrow`: no atomic reference counting per op), each layer's tanh/sigmoid/MUL runs as
one fused OP_GATE row (``Program.exec_ops``), and the VNNI GEMV keeps four accumulators in
flight; with these the fixed cost per small op is tens of nanoseconds.  With AVX-512 VBMI the
gate's TANH/LOGISTIC tables are read 32 inputs at a time (``vpermi2b``), and the SOFTMAX keeps
its per-element exponentials in scratch so its output pass vectorizes.  (Tried and dropped:
fusing each residual FC with its ADD into one row measured ≈ 15 % slower on ``small``.)  Loops use unsigned indices where it matters: numba then omits
its negative-index wraparound select, which otherwise blocks vectorization.
"""

from __future__ import annotations

import numpy as np

from llvmlite import ir as _ir
from numba import types as _nt
from numba.core import cgutils as _cg
from numba.extending import intrinsic as _intrinsic

from ._cpu import HAS_VBMI, HAS_VNNI
from ._jit import jit, kernel
from .int8.requant import requantize_int8
from .int8.fixedpoint import clz32, one_over_one_plus_x_for_x_in_0_1, rdbpot, srdhm, wrap32
from .int8.softmax import softmax_int8
from .int8.softmax_arm64 import softmax_uint16_lut
from .int8.elementwise import add_int8, mul_int8
from .sampling import sample_one

# Per-op helpers are inlined at the numba IR level: a numba call with array arguments costs
# tens of nanoseconds (argument marshalling and reference counting), as much as a small FC.
_inline_kernel = jit(inline="always")

OP_GATHER, OP_FC, OP_PAIR, OP_LUT, OP_SOFTMAX, OP_COPY, OP_FC2, OP_GATE = 1, 2, 3, 5, 6, 7, 8, 9


@_intrinsic
def _borrow(typingctx, arr):
    """The same array without its memory-info pointer (a borrowed view, like ``numba.carray``).

    Numba reference-counts every array it copies or passes to an inlined helper; each count
    is an atomic add, which on x86 also drains the store buffer — tens of cycles, and the
    engine's ops write their outputs just before.  Views without a meminfo make those counts
    no-ops.  Only for arrays whose owner outlives the call (the kernel arguments)."""
    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, args[0])
        dst = context.make_array(sig.return_type)(context, builder)
        for name in ("data", "nitems", "itemsize", "shape", "strides"):
            setattr(dst, name, getattr(src, name))
        dst.meminfo = _cg.get_null_value(dst.meminfo.type)
        dst.parent = _cg.get_null_value(dst.parent.type)
        return dst._getvalue()

    return arr(arr), codegen


@kernel
def softmax_fixed_lut(arena, xo, yo, n, exps):
    """The fixed-point int8 SOFTMAX of :func:`wavenet_edge.int8.softmax_int8` (profiles tflm,
    litert-ref) with its per-element exponentials looked up instead of recomputed.

    ``exps`` int64 (256,): ``exps[k]`` = ``exp_on_negative_values(SRDHM((−k) << left_shift, M),
    5)`` (Q0.31) for the input difference ``d = x − max = −k``, or −1 where ``d < diff_min``
    (the element is excluded and outputs −128); built at load time by
    :func:`wavenet_edge.program._softmax_exps` from the int8 module's primitives.  The rest (the
    Q12.19 sum, ``GetReciprocal``, the final rounding) is the same arithmetic step by step;
    ``tests/test_engine.py`` checks it against ``softmax_int8`` on random rows.
    """
    return softmax_fixed_lut_buf(arena, xo, yo, n, exps, np.empty(n, np.int32))


@kernel
def softmax_fixed_lut_buf(arena, xo, yo, n, exps, buf):
    """:func:`softmax_fixed_lut` with scratch ``buf`` (int32, at least ``n``): the summing pass
    keeps each element's exponential there (Q0.31 or −1, fits int32), so the output pass reads
    it contiguously instead of looking it up again — that pass then vectorizes (≈ 2.4× faster
    on 256 classes)."""
    # unsigned indices and branch-free bodies: numba then emits no wraparound selects and the
    # loops vectorize.  The Q12.19 sum is accumulated in int64 and wrapped to int32 once: int32
    # wrapping addition is modular, so this equals wrapping after every addition.
    ux = np.uint64(xo)
    uy = np.uint64(yo)
    un = np.uint64(n)
    mx = np.int64(-128)
    for c in range(un):
        v = np.int64(arena[ux + c])
        mx = v if v > mx else mx
    total = np.int64(0)
    for c in range(un):
        e = exps[np.uint64(mx - np.int64(arena[ux + c]))]
        buf[c] = np.int32(e)
        total += rdbpot(e, 12) if e >= 0 else np.int64(0)
    total = wrap32(total)
    headroom_plus_one = clz32(total)
    num_bits_over_unit = 12 - headroom_plus_one
    shifted_sum_minus_one = wrap32(((total << np.int64(headroom_plus_one)) & np.int64(4294967295))
                                   - np.int64(2147483648))
    shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
    exponent = num_bits_over_unit + 31 - 8
    for c in range(un):
        e = np.int64(buf[c])
        v = rdbpot(srdhm(shifted_scale, e), exponent) - 128
        v = np.int64(127) if v > 127 else v
        v = np.int64(-128) if v < -128 else v
        arena[uy + c] = np.int8(v if e >= 0 else np.int64(-128))


@_inline_kernel
def _copy(dst, d0, src, s0, n):
    """``dst[d0:d0+n] = src[s0:s0+n]`` with unsigned indices (vectorized, no wraparound select)."""
    ud = np.uint64(d0)
    us = np.uint64(s0)
    for i in range(np.uint64(n)):
        dst[ud + i] = src[us + i]


@_inline_kernel
def _slot(s, length):
    """``s mod length`` for ``s >= 0``: a mask when the length is a power of two (every ring of
    a kernel-size-2 WaveNet), else an unsigned division (no sign fix-up)."""
    us = np.uint64(s)
    ul = np.uint64(length)
    if ul & (ul - np.uint64(1)) == 0:
        return np.int64(us & (ul - np.uint64(1)))
    return np.int64(us % ul)


@_inline_kernel
def _delay_reads(arena, A, ring, RS, nb, t, dl_read, dl_delay, dl_width, dl_zp, dl_ring, dl_len):
    """Before step ``t``: copy each read's value (its write at ``t − delay``, or its zero point)."""
    for k in range(dl_read.shape[0]):
        d = dl_delay[k]
        w = dl_width[k]
        dst = dl_read[k]
        if t < d:
            z = np.int8(dl_zp[k])
            for b in range(nb):
                base = np.uint64(b * A + dst)
                for i in range(np.uint64(w)):
                    arena[base + i] = z
        else:
            src = dl_ring[k] + _slot(t - d, dl_len[k]) * w
            for b in range(nb):
                _copy(arena, b * A + dst, ring, b * RS + src, w)


@_inline_kernel
def _delay_writes(arena, A, ring, RS, nb, t, wr_src, wr_ring, wr_len, wr_width):
    """After step ``t``: store each distinct write into its ring slot ``t mod length``."""
    for k in range(wr_src.shape[0]):
        w = wr_width[k]
        dst = wr_ring[k] + _slot(t, wr_len[k]) * w
        for b in range(nb):
            _copy(ring, b * RS + dst, arena, b * A + wr_src[k], w)


#: HAS_VNNI (from :mod:`wavenet_edge._cpu`: numba's target, not the host CPUID): FCs with at
#: least :data:`VNNI_MIN_COLS` inputs then use ``vpdpbusd`` (64 int8 MACs per instruction).  The
#: program compiler folds the matching bias correction, so the choice is made once, for both.
VNNI_MIN_COLS = 64


@_inline_kernel
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
    @_inline_kernel
    def _gemv16(wblob, wo, xu, xo, cols, o0, o1, accs):
        _vpdpbusd_gemv16(wblob, np.uint64(wo), xu, np.uint64(xo), np.uint64(cols), np.uint64(o0),
                         np.uint64(o1), accs)

    @_inline_kernel
    def _dot_u8s8(wblob, uw, xu, cols):
        n64 = np.uint64((cols // 64) * 64)
        acc = _vpdpbusd_dot(wblob, uw, xu, np.uint64(0), n64)
        for i in range(n64, np.uint64(cols)):
            acc += np.int32(wblob[uw + i]) * np.int32(xu[i])
        return acc
else:
    @_inline_kernel
    def _gemv16(wblob, wo, xu, xo, cols, o0, o1, accs):  # never called without VNNI (vnni_mode)
        pass

    @_inline_kernel
    def _dot_u8s8(wblob, uw, xu, cols):  # never called without VNNI (see vnni_mode)
        acc = np.int32(0)
        for i in range(np.uint64(cols)):
            acc += np.int32(wblob[uw + i]) * np.int32(xu[i])
        return acc


#: HAS_VBMI (numba's target, :mod:`wavenet_edge._cpu`): 256-entry int8 tables (TANH/LOGISTIC)
#: are looked up 32 inputs at a time with two ``vpermi2b`` (each selects from 128 table bytes)
#: and a blend on the sign.


@_intrinsic
def _vpermi2b_lut32(typingctx, tab, to, src, so, dst, do, nchunks):
    """``dst[do + i] = tab[to + src[so + i] + 128]`` for i < 32·nchunks (int8 → int8 through a
    256-byte table at ``tab[to:to + 256]``); unaligned loads and stores, no other bytes touched."""
    sig = _nt.void(tab, _nt.uint64, src, _nt.uint64, dst, _nt.uint64, _nt.uint64)

    def codegen(context, builder, sig, args):
        tarr, toff, sarr, soff, darr, doff, count = args
        ta = context.make_array(sig.args[0])(context, builder, tarr)
        sa = context.make_array(sig.args[2])(context, builder, sarr)
        da = context.make_array(sig.args[4])(context, builder, darr)
        i8, i32, i64 = _ir.IntType(8), _ir.IntType(32), _ir.IntType(64)
        v64, v32 = _ir.VectorType(i8, 64), _ir.VectorType(i8, 32)
        p8 = i8.as_pointer()
        tp = builder.gep(builder.bitcast(ta.data, p8), [toff])
        sp = builder.gep(builder.bitcast(sa.data, p8), [soff])
        dp = builder.gep(builder.bitcast(da.data, p8), [doff])
        fn = _cg.get_or_insert_function(builder.module, _ir.FunctionType(v64, [v64, v64, v64]),
                                        "llvm.x86.avx512.vpermi2var.qi.512")
        t = [builder.load(builder.bitcast(builder.gep(tp, [_ir.Constant(i64, 64 * j)]),
                                          v64.as_pointer()), align=1) for j in range(4)]
        widen = _ir.Constant(_ir.VectorType(i32, 64), [j % 32 for j in range(64)])
        narrow = _ir.Constant(_ir.VectorType(i32, 32), list(range(32)))
        flip = _ir.Constant(v64, [0x80] * 64)
        zero = _ir.Constant(v64, [0] * 64)
        with _cg.for_range(builder, count) as loop:
            off = builder.mul(loop.index, _ir.Constant(i64, 32))
            xv = builder.load(builder.bitcast(builder.gep(sp, [off]), v32.as_pointer()), align=1)
            x = builder.shuffle_vector(xv, xv, widen)
            idx = builder.xor(x, flip)                  # q + 128 as an unsigned byte
            lo = builder.call(fn, [t[0], idx, t[1]])    # entries 0 … 127 (bit 6 picks t[1])
            hi = builder.call(fn, [t[2], idx, t[3]])    # entries 128 … 255
            r = builder.select(builder.icmp_signed("<", x, zero), lo, hi)
            builder.store(builder.shuffle_vector(r, r, narrow),
                          builder.bitcast(builder.gep(dp, [off]), v32.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


@_inline_kernel
def _lut_rows(arena, ux, uy, flat, tbase, n):
    """``arena[uy + i] = flat[tbase + arena[ux + i] + 128]`` for i < n (a 256-entry int8 table
    at ``flat[tbase:]``): 32 at a time with ``vpermi2b`` where available, the rest scalar."""
    un = np.uint64(n)
    done = np.uint64(0)
    if HAS_VBMI:
        done = un // np.uint64(32) * np.uint64(32)
        _vpermi2b_lut32(flat, np.uint64(tbase), arena, ux, arena, uy, un // np.uint64(32))
    t = np.int64(tbase) + 128
    for i in range(done, un):
        arena[uy + i] = flat[np.uint64(t + np.int64(arena[ux + i]))]


@_inline_kernel
def _dot_rows(arena, ux, wblob, wo, o0, o1, cols, accs, mode):
    """``accs[o] = Σ_i W[o, i] · x[i]`` for o in [o0, o1), int8·int8 → int32, W at ``wo``.

    ``mode`` (:func:`vnni_mode`): 1 and 2 copy the input once as unsigned ``x + 128`` (into the
    tail of ``accs``, viewed as bytes; the program folded ``128·Σw`` into the bias) and use
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


@_inline_kernel
def _requant_rows(arena, uy, o0, o1, accs, bblob, bo, mult, shift, fmul, qo, zp, lo, hi, profile):
    """``arena[uy + o] = requantize_int8(accs[o] + bias'[o])`` for o in [o0, o1) (no loop-carried
    dependency: vectorizes).  The bias has the input zero point folded in; int32 wrap as in C."""
    ub = np.uint64(bo)
    uq = np.uint64(qo)
    if profile == 0:
        # the same call with the profile a literal: LLVM folds the profile dispatch away and
        # the loop vectorizes (the generic loop below branches per row)
        for o in range(np.uint64(o0), np.uint64(o1)):
            acc32 = np.int32(accs[o] + bblob[ub + o])
            arena[uy + o] = np.int8(requantize_int8(acc32, mult[uq + o], shift[uq + o], 0.0,
                                                    zp, lo, hi, 0))
        return
    for o in range(np.uint64(o0), np.uint64(o1)):
        acc32 = np.int32(accs[o] + bblob[ub + o])
        arena[uy + o] = np.int8(requantize_int8(acc32, mult[uq + o], shift[uq + o], fmul[uq + o],
                                                zp, lo, hi, profile))


@_inline_kernel
def _fc(arena, A, nb, xo, yo, rows, cols, wblob, wo, bblob, bo, mult, shift, fmul, qo,
        zp, lo, hi, profile, accs):
    """FULLY_CONNECTED of ``nb`` streams: ``y[o] = requant(Σ_i W[o, i]·x[i] + bias'[o])``.

    With several streams and a large matrix, rows go in blocks of ≈ 16 KB of weights that stay
    in L1 while every stream uses them (weights stream from memory once per step).
    """
    mode = vnni_mode(rows, cols)
    if nb == 1 or rows * cols <= 16384:
        for b in range(nb):
            _dot_rows(arena, np.uint64(b * A + xo), wblob, wo, 0, rows, cols, accs, mode)
            _requant_rows(arena, np.uint64(b * A + yo), 0, rows, accs, bblob, bo, mult, shift,
                          fmul, qo, zp, lo, hi, profile)
        return
    rb = max(1, 16384 // cols)
    if mode == 2:
        rb = max(16, rb // 16 * 16)   # interleaved weights come in blocks of 16 rows
    for o0 in range(0, rows, rb):
        o1 = min(rows, o0 + rb)
        for b in range(nb):
            _dot_rows(arena, np.uint64(b * A + xo), wblob, wo, o0, o1, cols, accs, mode)
            _requant_rows(arena, np.uint64(b * A + yo), o0, o1, accs, bblob, bo, mult, shift,
                          fmul, qo, zp, lo, hi, profile)


@_inline_kernel
def _fc2(arena, A, nb, xo, yo1, yo2, rows1, rows2, cols, wblob, wo, bblob, bo, mult, shift, fmul,
         qo, iparams, p1, p2, profile, accs):
    """Two FULLY_CONNECTED ops on the same input (see ``program.OP_FC2``): one dot-product pass
    over ``rows1 + rows2`` contiguous weight rows, then each op's own requantization."""
    mode = vnni_mode(rows1 + rows2, cols)   # the program merged only ops of this same mode
    for b in range(nb):
        _dot_rows(arena, np.uint64(b * A + xo), wblob, wo, 0, rows1 + rows2, cols, accs, mode)
        _requant_rows(arena, np.uint64(b * A + yo1), 0, rows1, accs, bblob, bo, mult, shift,
                      fmul, qo, iparams[p1], iparams[p1 + 1], iparams[p1 + 2], profile)
        # rows1 … rows1+rows2-1 of the fused block are rows 0 … rows2-1 of the second output
        _requant_rows(arena, np.uint64(b * A + yo2 - rows1), rows1, rows1 + rows2, accs, bblob,
                      bo, mult, shift, fmul, qo, iparams[p2], iparams[p2 + 1], iparams[p2 + 2],
                      profile)


@_inline_kernel
def _pair_loop(arena, ux, uy, uz, n, blocked, ip, fp, profile, is_mul):
    ub = np.uint64(blocked)
    if is_mul:
        for i in range(np.uint64(n)):
            arena[uz + i] = np.int8(mul_int8(arena[ux + i], arena[uy + i], ip, fp, profile,
                                             i < ub))
    else:
        for i in range(np.uint64(n)):
            arena[uz + i] = np.int8(add_int8(arena[ux + i], arena[uy + i], ip, fp, profile,
                                             i < ub))


@_inline_kernel
def _pair_rows(arena, ux, uy, uz, n, blocked, ip, fp, profile, is_mul):
    """ADD or MUL of ``n`` int8 pairs with the int8 module's own kernels (``simd`` = element
    in a full block of 16, ``i < blocked``).  The profile is passed as a literal in each branch
    so LLVM inlines and folds the per-profile dispatch (≈ 1 ns per element instead of ≈ 25);
    the program's 64 KiB pair tables, looked up instead, missed the caches."""
    if profile == 0:
        _pair_loop(arena, ux, uy, uz, n, blocked, ip, fp, 0, is_mul)
    else:   # the engine calls this for profiles 0 and 1 only (compile time)
        _pair_loop(arena, ux, uy, uz, n, blocked, ip, fp, 1, is_mul)


@_inline_kernel
def run_ops(ops, wblob, bblob, mult, shift, fmul, tables, iparams, pair_tables,
            sm_tables, sm_scales, sm_exps, profile,
            arena, A, nb, codes, speakers, accs):
    """Execute every op of the program once for ``nb`` streams.

    ``codes`` int32 (nb,): the class index of this step per stream; ``speakers`` int32 (nb,).
    """
    for k in range(ops.shape[0]):
        code = ops[k, 0]
        i0 = ops[k, 1]
        i1 = ops[k, 2]
        out = ops[k, 3]
        n = ops[k, 4]
        if code == OP_FC:
            p = ops[k, 9]
            _fc(arena, A, nb, i0, out, n, ops[k, 5], wblob, ops[k, 6], bblob, ops[k, 7],
                mult, shift, fmul, ops[k, 8], iparams[p], iparams[p + 1], iparams[p + 2], profile,
                accs)
        elif code == OP_FC2:
            _fc2(arena, A, nb, i0, out, i1, n, ops[k, 11], ops[k, 5], wblob, ops[k, 6], bblob,
                 ops[k, 7], mult, shift, fmul, ops[k, 8], iparams, ops[k, 9], ops[k, 10], profile,
                 accs)
        elif code == OP_GATHER:
            w0 = ops[k, 6]
            for b in range(nb):
                idx = codes[b] if ops[k, 10] == 0 else speakers[b]
                _copy(arena, b * A + out, wblob, w0 + idx * n, n)
        elif code == OP_GATE:
            ip = iparams[ops[k, 6]:]
            fp = fmul[ops[k, 7] >> 1:]
            is_mul = (ops[k, 7] & 1) == 1
            flat = tables.reshape(-1)
            ta = np.int64(ops[k, 10] * 256 + 128)
            tb = np.int64(ops[k, 11] * 256 + 128)
            for b in range(nb):
                ua = np.uint64(b * A + i0)
                ub = np.uint64(b * A + i1)
                uya = np.uint64(b * A + ops[k, 8])
                uyb = np.uint64(b * A + ops[k, 9])
                if nb == 1 and profile <= 1:
                    _lut_rows(arena, ua, uya, flat, ops[k, 10] * 256, n)
                    _lut_rows(arena, ub, uyb, flat, ops[k, 11] * 256, n)
                    _pair_rows(arena, uya, uyb, np.uint64(b * A + out), n, ops[k, 5], ip, fp,
                               profile, is_mul)
                    continue
                # several streams (or the float profiles): the op's pair tables (cache-resident
                # across the streams)
                uz = np.uint64(b * A + out)
                blocked = np.uint64(ops[k, 5])
                for i in range(np.uint64(n)):
                    va = flat[np.uint64(ta + np.int64(arena[ua + i]))]
                    vb = flat[np.uint64(tb + np.int64(arena[ub + i]))]
                    arena[uya + i] = va
                    arena[uyb + i] = vb
                    t = ops[k, 12] if i < blocked else ops[k, 13]
                    j = t + (np.int64(va) + 128) * 256 + np.int64(vb) + 128
                    arena[uz + i] = pair_tables[np.uint64(j)]
        elif code == OP_LUT:
            tb = np.uint64(ops[k, 10] * 256 + 128)
            flat = tables.reshape(-1)
            for b in range(nb):
                ux = np.uint64(b * A + i0)
                uy = np.uint64(b * A + out)
                for i in range(np.uint64(n)):
                    # table index (q + 128) as unsigned arithmetic: q is int8, tb ≥ 128
                    arena[uy + i] = flat[np.uint64(np.int64(tb) + np.int64(arena[ux + i]))]
        elif code == OP_PAIR:
            fp = fmul[ops[k, 8]:]
            ip = iparams[ops[k, 9]:]
            is_mul = ops[k, 10] == 1
            if nb == 1 and profile <= 1:
                _pair_rows(arena, np.uint64(i0), np.uint64(i1), np.uint64(out), n, ops[k, 5],
                           ip, fp, profile, is_mul)
                continue
            # several streams (or the float profiles, to bound compile time): the pair tables,
            # which stay in cache across the streams
            blocked = np.uint64(ops[k, 5])
            for b in range(nb):
                ux = np.uint64(b * A + i0)
                uy = np.uint64(b * A + i1)
                uz = np.uint64(b * A + out)
                for i in range(np.uint64(n)):
                    t = ops[k, 6] if i < blocked else ops[k, 7]
                    j = t + (np.int64(arena[ux + i]) + 128) * 256 + np.int64(arena[uy + i]) + 128
                    arena[uz + i] = pair_tables[np.uint64(j)]
        elif code == OP_SOFTMAX:
            p = ops[k, 9]
            st = ops[k, 10]
            for b in range(nb):
                base = b * A
                if ops[k, 11] == 1:  # aarch64 LiteRT (litert-arm64, xnnpack-arm64)
                    softmax_uint16_lut(arena, base + i0, arena, base + out, n, sm_exps[st])
                    continue
                if profile == 0 or profile == 2:
                    # accs is free between FCs and holds at least n int32 (engine)
                    softmax_fixed_lut_buf(arena, base + i0, base + out, n, sm_exps[st],
                                          accs)
                    continue
                softmax_int8(arena[base + i0:base + i0 + n], iparams[p], iparams[p + 1],
                             iparams[p + 2], sm_tables[st], sm_scales[st], profile,
                             arena[base + out:base + out + n])
        elif code == OP_COPY:
            for b in range(nb):
                _copy(arena, b * A + out, arena, b * A + i0, n)


@kernel
def step(ops, wblob, bblob, mult, shift, fmul, tables, iparams, pair_tables,
            sm_tables, sm_scales, sm_exps, profile,
         dl_read, dl_delay, dl_width, dl_zp, dl_ring, dl_len, wr_src, wr_ring, wr_len, wr_width,
         arena, A, ring, RS, nb, t, codes, speakers, accs):
    """One full step (delay reads, every op, delay writes) for ``nb`` streams at time ``t``."""
    _delay_reads(arena, A, ring, RS, nb, t, dl_read, dl_delay, dl_width, dl_zp, dl_ring, dl_len)
    run_ops(ops, wblob, bblob, mult, shift, fmul, tables, iparams, pair_tables, sm_tables, sm_scales, sm_exps,
            profile, arena, A, nb, codes, speakers, accs)
    _delay_writes(arena, A, ring, RS, nb, t, wr_src, wr_ring, wr_len, wr_width)


@kernel
def process(ops, wblob, bblob, mult, shift, fmul, tables, iparams, pair_tables,
            sm_tables, sm_scales, sm_exps, profile,
            dl_read, dl_delay, dl_width, dl_zp, dl_ring, dl_len, wr_src, wr_ring, wr_len, wr_width,
            arena, A, ring, RS, nb, t0, codes, speakers, out, out_offs, out_sizes, accs):
    """Teacher-forced steps ``t0 … t0+n−1``: ``codes`` int32 (nb, n).  After each step the arena
    ranges ``[out_offs[k], out_offs[k] + out_sizes[k])`` are copied, concatenated, into
    ``out[b, j, :]`` (int8 (nb, n, Σ sizes)): probs, logits or any set of tensors."""
    # borrowed views: no atomic reference counting inside the step (see _borrow)
    ops = _borrow(ops)
    wblob = _borrow(wblob)
    bblob = _borrow(bblob)
    mult = _borrow(mult)
    shift = _borrow(shift)
    fmul = _borrow(fmul)
    tables = _borrow(tables)
    iparams = _borrow(iparams)
    pair_tables = _borrow(pair_tables)
    sm_tables = _borrow(sm_tables)
    sm_scales = _borrow(sm_scales)
    sm_exps = _borrow(sm_exps)
    dl_read = _borrow(dl_read)
    dl_delay = _borrow(dl_delay)
    dl_width = _borrow(dl_width)
    dl_zp = _borrow(dl_zp)
    dl_ring = _borrow(dl_ring)
    dl_len = _borrow(dl_len)
    wr_src = _borrow(wr_src)
    wr_ring = _borrow(wr_ring)
    wr_len = _borrow(wr_len)
    wr_width = _borrow(wr_width)
    arena = _borrow(arena)
    ring = _borrow(ring)
    speakers = _borrow(speakers)
    accs = _borrow(accs)
    codes = _borrow(codes)
    out = _borrow(out)
    out_offs = _borrow(out_offs)
    out_sizes = _borrow(out_sizes)
    n = codes.shape[1]
    cur = np.empty(nb, np.int32)
    for j in range(n):
        for b in range(nb):
            cur[b] = codes[b, j]
        step(ops, wblob, bblob, mult, shift, fmul, tables, iparams, pair_tables,
            sm_tables, sm_scales, sm_exps, profile,
             dl_read, dl_delay, dl_width, dl_zp, dl_ring, dl_len, wr_src, wr_ring, wr_len, wr_width,
             arena, A, ring, RS, nb, t0 + j, cur, speakers, accs)
        for b in range(nb):
            c = 0
            row = out[b, j]
            for k in range(out_offs.shape[0]):
                _copy(row, c, arena, b * A + out_offs[k], out_sizes[k])
                c += out_sizes[k]


@kernel
def generate(ops, wblob, bblob, mult, shift, fmul, tables, iparams, pair_tables,
            sm_tables, sm_scales, sm_exps, profile,
             dl_read, dl_delay, dl_width, dl_zp, dl_ring, dl_len, wr_src, wr_ring, wr_len, wr_width,
             arena, A, ring, RS, nb, t0, first, speakers, out, probs_off, logits_off,
             mode, table, rng, accs):
    """Free-running steps: feed ``first`` (int32 (nb,)), sample each output with
    :func:`wavenet_edge.sampling.sample_one` into ``out`` (int32 (nb, n)) and feed it back."""
    # borrowed views: no atomic reference counting inside the step (see _borrow)
    ops = _borrow(ops)
    wblob = _borrow(wblob)
    bblob = _borrow(bblob)
    mult = _borrow(mult)
    shift = _borrow(shift)
    fmul = _borrow(fmul)
    tables = _borrow(tables)
    iparams = _borrow(iparams)
    pair_tables = _borrow(pair_tables)
    sm_tables = _borrow(sm_tables)
    sm_scales = _borrow(sm_scales)
    sm_exps = _borrow(sm_exps)
    dl_read = _borrow(dl_read)
    dl_delay = _borrow(dl_delay)
    dl_width = _borrow(dl_width)
    dl_zp = _borrow(dl_zp)
    dl_ring = _borrow(dl_ring)
    dl_len = _borrow(dl_len)
    wr_src = _borrow(wr_src)
    wr_ring = _borrow(wr_ring)
    wr_len = _borrow(wr_len)
    wr_width = _borrow(wr_width)
    arena = _borrow(arena)
    ring = _borrow(ring)
    speakers = _borrow(speakers)
    accs = _borrow(accs)
    out = _borrow(out)
    table = _borrow(table)
    rng = _borrow(rng)
    n = out.shape[1]
    cur = first.copy()
    weights = np.empty(256, np.int64)
    for j in range(n):
        step(ops, wblob, bblob, mult, shift, fmul, tables, iparams, pair_tables,
            sm_tables, sm_scales, sm_exps, profile,
             dl_read, dl_delay, dl_width, dl_zp, dl_ring, dl_len, wr_src, wr_ring, wr_len, wr_width,
             arena, A, ring, RS, nb, t0 + j, cur, speakers, accs)
        for b in range(nb):
            c = sample_one(mode, arena, b * A + probs_off, arena, b * A + logits_off, table, rng, b,
                           weights)
            out[b, j] = c
            cur[b] = c
