"""Element-wise kernels of the engine: TANH/LOGISTIC tables, ADD/MUL, the fused gate.

TANH/LOGISTIC are 256-entry tables the lowered program filled with the profile's exact integer
function (:mod:`wavenet_edge.int8.activations`), so the table *is* the kernel; with AVX-512
VBMI they are read 32 inputs at a time (``vpermi2b``).  ADD/MUL call
:func:`wavenet_edge.int8.add_int8` / ``mul_int8`` themselves (one stream, profiles tflm and
litert: the profile a literal per branch so LLVM folds its dispatch) or look the pair up in the
schedule's 65536-entry tables of those same functions (several streams, where the tables stay
in cache across the streams; the float profiles, to bound compile time).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as _ir
from numba import types as _nt
from numba.core import cgutils as _cg
from numba.extending import intrinsic as _intrinsic

from ._cpu import HAS_VBMI
from ._kernel_util import inline_kernel
from .int8.elementwise import (A_M1, A_M2, A_MAX, A_MIN, A_MO, A_S1, A_S2, A_SO, A_Z1, A_Z2,
                               A_ZO, A_LEFT, M_M, M_MAX, M_MIN, M_S, M_Z1, M_Z2, M_ZO,
                               add_int8, add_int8_shift, add_int8_shift_blk, mul_int8,
                               mul_int8_shift, shift_params_fit)
from .lowered.kinds import OpKind

__all__ = ["HAS_VBMI", "lut_rows", "lut_op", "lut_batch", "pair_one", "pair_batch", "gate_one",
           "gate_luts_batch"]


#: HAS_VBMI (numba's target, :mod:`._cpu`): 256-entry int8 tables (TANH/LOGISTIC) are looked up 32 inputs at a
#: time with two ``vpermi2b`` (each selects from 128 table bytes) and a blend on the sign.


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


@inline_kernel
def lut_rows(arena, ux, uy, flat, tbase, n):
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


@inline_kernel
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


@inline_kernel
def _add_shift_loop(arena, ux, uy, uz, i0, i1, ip, blk):
    """ADD of elements [i0, i1) with :func:`wavenet_edge.int8.elementwise.add_int8_shift`
    (``blk``: litert's block form ``add_int8_shift_blk``); the parameters are read once, so
    the loop body is branch-free int64 arithmetic LLVM vectorizes (8 lanes)."""
    z1, z2, zo, lo, hi = ip[A_Z1], ip[A_Z2], ip[A_ZO], ip[A_MIN], ip[A_MAX]
    # int32 multipliers: LLVM then multiplies sign-extended halves (vpmuldq, one µop)
    m1, m2, mo, ro = np.int32(ip[A_M1]), np.int32(ip[A_M2]), np.int32(ip[A_MO]), -ip[A_SO]
    if blk:
        t1 = ip[A_LEFT] + ip[A_S1]
        t2 = ip[A_LEFT] + ip[A_S2]
        for i in range(np.uint64(i0), np.uint64(i1)):
            arena[uz + i] = np.int8(add_int8_shift_blk(arena[ux + i], arena[uy + i], z1, z2, m1,
                                                       t1, m2, t2, mo, ro, zo, lo, hi))
        return
    r1, r2 = -ip[A_S1], -ip[A_S2]
    for i in range(np.uint64(i0), np.uint64(i1)):
        arena[uz + i] = np.int8(add_int8_shift(arena[ux + i], arena[uy + i], z1, z2, m1, r1, m2,
                                               r2, mo, ro, zo, lo, hi))


@inline_kernel
def _mul_shift_loop(arena, ux, uy, uz, i0, i1, ip, blk):
    """MUL of elements [i0, i1) with :func:`wavenet_edge.int8.elementwise.mul_int8_shift`."""
    z1, z2, zo, lo, hi = ip[M_Z1], ip[M_Z2], ip[M_ZO], ip[M_MIN], ip[M_MAX]
    m, sh = np.int32(ip[M_M]), ip[M_S]
    left = max(sh, 0)
    right = max(-sh, 0)
    for i in range(np.uint64(i0), np.uint64(i1)):
        arena[uz + i] = np.int8(mul_int8_shift(arena[ux + i], arena[uy + i], z1, z2, m, left,
                                               right, zo, lo, hi, blk))


@inline_kernel
def _pair_rows(arena, ux, uy, uz, n, blocked, ip, fp, profile, is_mul):
    """ADD or MUL of ``n`` int8 pairs, profiles tflm (0) and litert (1) (``blocked``: elements
    in full blocks of 16, where litert rounds differently).  Where the op's shifts fit
    (:func:`~wavenet_edge.int8.elementwise.shift_params_fit`, every real model), as one-shift
    rescales in two vectorized loops (blocks, tail): ≈ 0.3 ns per element; otherwise with the
    int8 module's per-element kernels, the profile a literal per branch so LLVM folds their
    dispatch (≈ 1 ns per element; the program's 64 KiB pair tables, looked up instead,
    missed the caches)."""
    if shift_params_fit(ip, is_mul, profile):
        split = blocked if profile == 1 else 0
        if is_mul:
            _mul_shift_loop(arena, ux, uy, uz, 0, split, ip, True)
            _mul_shift_loop(arena, ux, uy, uz, split, n, ip, False)
        else:
            _add_shift_loop(arena, ux, uy, uz, 0, split, ip, True)
            _add_shift_loop(arena, ux, uy, uz, split, n, ip, False)
        return
    if profile == 0:
        _pair_loop(arena, ux, uy, uz, n, blocked, ip, fp, 0, is_mul)
    else:   # the engine calls this for profiles 0 and 1 only (compile time)
        _pair_loop(arena, ux, uy, uz, n, blocked, ip, fp, 1, is_mul)


# The per-op helpers take the arrays they use, not the schedule's named tuple (see
# _kernels_fc: tuple members passed to inlined functions cost out-of-line refcount calls).

@inline_kernel
def lut_op(arena, A, nb, r, tables):
    """LUT row ``r``: ``out[i] = tables[aux, in0[i] + 128]`` for ``nb`` streams."""
    tb = np.uint64(r.aux * 256 + 128)
    flat = tables.reshape(-1)
    n = r.n
    for b in range(nb):
        ux = np.uint64(b * A + r.in0)
        uy = np.uint64(b * A + r.out)
        for i in range(np.uint64(n)):
            # table index (q + 128) as unsigned arithmetic: q is int8, tb ≥ 128
            arena[uy + i] = flat[np.uint64(np.int64(tb) + np.int64(arena[ux + i]))]


@inline_kernel
def lut_batch(arena, nb, r, tables):
    """LUT row ``r``: ``out[i] = tables[aux, in0[i] + 128]`` for ``nb`` streams (stream-minor:
    one pass over ``n·nb`` contiguous values)."""
    lut_rows(arena, np.uint64(r.in0 * nb), np.uint64(r.out * nb), tables.reshape(-1),
             r.aux * 256, r.n * nb)


@inline_kernel
def _pair_lookup(arena, ux, uy, uz, n, blocked, t_blk, t_tail, pair_tables):
    """One stream's ADD/MUL through the schedule's pair tables (``t_blk`` for the elements in
    full blocks of 16, ``t_tail`` for the rest)."""
    ub = np.uint64(blocked)
    for i in range(np.uint64(n)):
        t = t_blk if i < ub else t_tail
        j = t + (np.int64(arena[ux + i]) + 128) * 256 + np.int64(arena[uy + i]) + 128
        arena[uz + i] = pair_tables[np.uint64(j)]


@inline_kernel
def pair_one(arena, r, iparams, fparams, pair_tables, profile):
    """ADD or MUL row ``r`` of one stream (see the module docstring for the two paths)."""
    if profile <= 1:
        _pair_rows(arena, np.uint64(r.in0), np.uint64(r.in1), np.uint64(r.out), r.n,
                   r.blocked, iparams[r.p:], fparams[r.f:], profile, r.kind == OpKind.MUL)
        return
    _pair_lookup(arena, np.uint64(r.in0), np.uint64(r.in1), np.uint64(r.out), r.n, r.blocked,
                 r.t_blk, r.t_tail, pair_tables)


@inline_kernel
def pair_batch(arena, nb, x0, x1, out, n, blocked, t_blk, t_tail, ip, fp, is_mul, pair_tables,
               profile):
    """ADD or MUL (parameters ``ip``/``fp``, pair tables ``t_blk``/``t_tail``) of ``nb`` streams
    in the stream-minor arena (byte ``x`` of stream ``b`` at ``x·nb + b``): one pass over the
    ``n·nb`` contiguous pairs at ``x0``, ``x1`` into ``out`` (element ``j`` is channel
    ``j // nb``, so LiteRT's block/tail split falls at ``blocked·nb``).  Profiles tflm and
    litert compute (:func:`_pair_rows`, the one-stream kernels' vectorized loops), the others
    look the pair tables up.  The ADD/MUL rows and the gates' pairs share this one call site
    in the engine's batch loop (compiled once)."""
    ux, uy, uz = np.uint64(x0 * nb), np.uint64(x1 * nb), np.uint64(out * nb)
    if profile <= 1:
        _pair_rows(arena, ux, uy, uz, n * nb, blocked * nb, ip, fp, profile, is_mul)
        return
    _pair_lookup(arena, ux, uy, uz, n * nb, blocked * nb, t_blk, t_tail, pair_tables)


@inline_kernel
def _gate_tables(arena, ua, ub, uya, uyb, uz, n, flat, r, pair_tables):
    """One stream's gate through the LUTs and the pair table, one pass per element."""
    ta = np.int64(r.lut_a * 256 + 128)
    tb = np.int64(r.lut_b * 256 + 128)
    blocked = np.uint64(r.blocked)
    t_blk, t_tail = r.t_blk, r.t_tail
    for i in range(np.uint64(n)):
        va = flat[np.uint64(ta + np.int64(arena[ua + i]))]
        vb = flat[np.uint64(tb + np.int64(arena[ub + i]))]
        arena[uya + i] = va
        arena[uyb + i] = vb
        t = t_blk if i < blocked else t_tail
        j = t + (np.int64(va) + 128) * 256 + np.int64(vb) + 128
        arena[uz + i] = pair_tables[np.uint64(j)]


@inline_kernel
def gate_one(arena, r, flat, iparams, fparams, pair_tables, profile):
    """GATE row ``r`` of one stream: ``ya = tables[lut_a, in0 + 128]``,
    ``yb = tables[lut_b, in1 + 128]``, then their ADD/MUL (``pair``) into ``out``, each tensor
    written as the three rows would.  ``flat``: the LUT tables as one row (the caller reshapes
    once per step: numba's reshape is an out-of-line call, ≈ 12 ns)."""
    n = r.n
    ua, ub = np.uint64(r.in0), np.uint64(r.in1)
    uya, uyb, uz = np.uint64(r.ya), np.uint64(r.yb), np.uint64(r.out)
    if profile <= 1:
        lut_rows(arena, ua, uya, flat, r.lut_a * 256, n)
        lut_rows(arena, ub, uyb, flat, r.lut_b * 256, n)
        _pair_rows(arena, uya, uyb, uz, n, r.blocked, iparams[r.p:], fparams[r.f:], profile,
                   r.pair == OpKind.MUL)
        return
    _gate_tables(arena, ua, ub, uya, uyb, uz, n, flat, r, pair_tables)


@inline_kernel
def gate_luts_batch(arena, nb, r, tables):
    """The two table lookups of GATE row ``r`` (:func:`gate_one`) for ``nb`` streams in the
    stream-minor arena, each one pass over ``n·nb`` contiguous values (32 at a time with VBMI);
    the engine then runs the gate's pair with :func:`pair_batch`."""
    flat = tables.reshape(-1)
    m = r.n * nb
    lut_rows(arena, np.uint64(r.in0 * nb), np.uint64(r.ya * nb), flat, r.lut_a * 256, m)
    lut_rows(arena, np.uint64(r.in1 * nb), np.uint64(r.yb * nb), flat, r.lut_b * 256, m)
