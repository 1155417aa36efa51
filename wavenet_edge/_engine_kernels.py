"""Jitted kernels of the ring-buffer engine: one step of the whole program for B streams.

The kernels take two named tuples (:mod:`wavenet_edge.program`): ``c``, the schedule's
immutable arrays (shared by every stream and thread), and ``s``, one set of ``nb`` streams'
state: ``s.arena`` int8 (nb·A,) and ``s.ring`` int8 (nb·RS,) *stream-minor* — byte ``x`` of
stream ``b`` at ``x·nb + b`` (for one stream the plain layout) — so that every element-wise
op, delay-line copy and FC requantization of ``nb`` streams is one pass over ``n·nb``
contiguous bytes; ``s.accs`` int32 scratch.  All
streams of a state advance together, so one step counter ``t`` (samples since reset) serves
them all.  Rows are ``EXEC_DTYPE`` records read by field name.

Operators: FULLY_CONNECTED in :mod:`._kernels_fc`, TANH/LOGISTIC, ADD/MUL and the fused gate
in :mod:`._kernels_elementwise`, SOFTMAX with :func:`wavenet_edge.int8.softmax_from_exps`
(fixed-point profiles) or ``softmax_int8`` (float profiles); all arithmetic is that of
:mod:`wavenet_edge.int8`, so each op's output is bit-identical to the interpreter the profile
mirrors.

Speed (one core, see ``benchmarks/bench_engine.py``): the outer kernels borrow their arrays
(:func:`borrow_all`: no atomic reference counting per op), each layer's tanh/sigmoid/MUL runs as
one fused GATE row, and the VNNI GEMV keeps four accumulators in flight; with these the fixed
cost per small op is tens of nanoseconds.  (Tried and dropped: fusing each residual FC with its
ADD into one row measured ≈ 15 % slower on ``small``.)  Loops use unsigned indices where it
matters: numba then omits its negative-index wraparound select, which otherwise blocks
vectorization.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._kernel_util import borrow, borrow_all, copy_bytes, copy_streams, inline_kernel, ring_slot
from ._kernels_elementwise import (HAS_VBMI, gate_luts_batch, gate_one, lut_batch, lut_op,
                                   lut_rows, pair_batch, pair_one)
from ._kernels_fc import (HAS_VNNI, VNNI_MIN_COLS, dot_rows, fc2_one, fc_batch,
                          fc_one, interleave16, vnni_mode)
from .int8.softmax import softmax_from_exps, softmax_int8
from .int8.softmax_arm64 import softmax_uint16_lut
from .lowered.kinds import GATHER_CODE, SM_DIFF_MIN, SM_LEFT_SHIFT, SM_MULTIPLIER, OpKind
from .sampling import sample_one

__all__ = ["process", "generate", "step", "softmax_fixed_lut", "HAS_VNNI", "HAS_VBMI",
           "VNNI_MIN_COLS", "vnni_mode", "interleave16"]

# names the tests and benchmarks reach through this module
_dot_rows = dot_rows
_slot = ring_slot
_lut_rows = lut_rows


@kernel
def softmax_fixed_lut(arena, xo, yo, n, exps):
    """:func:`wavenet_edge.int8.softmax_from_exps` of ``arena[xo:xo+n]`` into ``arena[yo:]``
    with its own scratch (what the engine's SOFTMAX row computes; it passes ``accs``)."""
    softmax_from_exps(arena, xo, arena, yo, n, exps, np.empty(n, np.int32))


@inline_kernel
def _delay_reads(arena, ring, nb, t, reads, writes):
    """Before step ``t``: copy each read's value (its write at ``t − delay``, or its zero point).
    Arena and ring are stream-minor (byte ``x`` of stream ``b`` at ``x·nb + b``; for one stream
    the plain layout), so one copy moves every stream's value."""
    for k in range(reads.shape[0]):
        rd = reads[k]
        if t >= rd.delay:
            wr = writes[rd.write]
            src = wr.ring + ring_slot(t - rd.delay, wr.length) * rd.width
            copy_bytes(arena, rd.dst * nb, ring, src * nb, rd.width * nb)
            continue
        z = np.int8(rd.zero_point)
        base = np.uint64(rd.dst * nb)
        for i in range(np.uint64(rd.width * nb)):
            arena[base + i] = z


@inline_kernel
def _delay_writes(arena, ring, nb, t, writes):
    """After step ``t``: store each distinct write into its ring slot ``t mod length``."""
    for k in range(writes.shape[0]):
        wr = writes[k]
        dst = wr.ring + ring_slot(t, wr.length) * wr.width
        copy_bytes(ring, dst * nb, arena, wr.src * nb, wr.width * nb)


@inline_kernel
def _softmax_op(arena, accs, A, nb, r, iparams, sm_exps, sm_tables, sm_scales, profile, u16):
    n = r.n
    for b in range(nb):
        x0 = b * A + r.in0
        y0 = b * A + r.out
        if u16 == 1:  # aarch64 LiteRT (litert-arm64, xnnpack-arm64)
            softmax_uint16_lut(arena, x0, arena, y0, n, sm_exps[r.aux])
            continue
        if profile == 0 or profile == 2:
            # accs is free between FCs and holds at least n int32 (engine)
            softmax_from_exps(arena, x0, arena, y0, n, sm_exps[r.aux], accs)
            continue
        p = r.p
        softmax_int8(arena[x0:x0 + n], iparams[p + SM_MULTIPLIER], iparams[p + SM_LEFT_SHIFT],
                     iparams[p + SM_DIFF_MIN], sm_tables[r.aux], sm_scales[r.aux], profile,
                     arena[y0:y0 + n])


@inline_kernel
def _other_op(arena, accs, speakers, A, nb, r, codes, wblob, tables, iparams, sm_exps,
              sm_tables, sm_scales, profile, u16):
    """Rows of the kinds without a separate one-stream path, for ``nb`` streams (a kind added
    here runs in both :func:`run_ops` loops)."""
    kind = r.kind
    if kind == OpKind.GATHER:
        for b in range(nb):
            idx = codes[b] if r.aux == GATHER_CODE else speakers[b]
            copy_bytes(arena, b * A + r.out, wblob, r.w + idx * r.n, r.n)
    elif kind == OpKind.LUT:
        lut_op(arena, A, nb, r, tables)
    elif kind == OpKind.SOFTMAX:
        _softmax_op(arena, accs, A, nb, r, iparams, sm_exps, sm_tables, sm_scales, profile, u16)
    elif kind == OpKind.COPY:
        copy_streams(arena, r.out, A, arena, r.in0, A, nb, r.n)


@inline_kernel
def gather_minor(dst, d0, nb, b, src, s0, n):
    """``dst[d0 + i] = src[s0 + i·nb + b]`` for i < n: stream ``b``'s ``n`` bytes at
    ``s0`` out of a stream-minor array."""
    ud, us, un, ub = np.uint64(d0), np.uint64(s0), np.uint64(nb), np.uint64(b)
    for i in range(np.uint64(n)):
        dst[ud + i] = src[us + i * un + ub]


@inline_kernel
def scatter_minor(dst, d0, nb, b, src, s0, n):
    """``dst[d0 + i·nb + b] = src[s0 + i]`` for i < n (inverse of :func:`gather_minor`)."""
    ud, us, un, ub = np.uint64(d0), np.uint64(s0), np.uint64(nb), np.uint64(b)
    for i in range(np.uint64(n)):
        dst[ud + i * un + ub] = src[us + i]


@inline_kernel
def _softmax_batch(arena, accs, nb, r, iparams, sm_exps, sm_tables, sm_scales, profile, u16):
    """SOFTMAX of ``nb`` ≥ 2 stream-minor streams: each stream's logits gathered into
    contiguous scratch bytes (the tail of ``accs``), the one-stream kernel, scattered back."""
    n = r.n
    sb = accs.view(np.int8)
    xs = accs.shape[0] * 4 - 2 * n
    ys = xs + n
    for b in range(nb):
        gather_minor(sb, xs, nb, b, arena, r.in0 * nb, n)
        if u16 == 1:  # aarch64 LiteRT (litert-arm64, xnnpack-arm64)
            softmax_uint16_lut(sb, xs, sb, ys, n, sm_exps[r.aux])
        elif profile == 0 or profile == 2:
            softmax_from_exps(sb, xs, sb, ys, n, sm_exps[r.aux], accs)
        else:
            p = r.p
            softmax_int8(sb[xs:xs + n], iparams[p + SM_MULTIPLIER], iparams[p + SM_LEFT_SHIFT],
                         iparams[p + SM_DIFF_MIN], sm_tables[r.aux], sm_scales[r.aux], profile,
                         sb[ys:ys + n])
        scatter_minor(arena, r.out * nb, nb, b, sb, ys, n)


@inline_kernel
def _other_batch(arena, accs, speakers, nb, r, codes, wblob, tables, iparams, sm_exps,
                 sm_tables, sm_scales, profile, u16):
    """:func:`_other_op` for ``nb`` ≥ 2 streams in the stream-minor arena."""
    kind = r.kind
    if kind == OpKind.GATHER:
        for b in range(nb):
            idx = codes[b] if r.aux == GATHER_CODE else speakers[b]
            scatter_minor(arena, r.out * nb, nb, b, wblob, r.w + idx * r.n, r.n)
    elif kind == OpKind.LUT:
        lut_batch(arena, nb, r, tables)
    elif kind == OpKind.SOFTMAX:
        _softmax_batch(arena, accs, nb, r, iparams, sm_exps, sm_tables, sm_scales, profile, u16)
    elif kind == OpKind.COPY:
        copy_bytes(arena, r.out * nb, arena, r.in0 * nb, r.n * nb)


@inline_kernel
def run_ops(c, s, nb, codes):
    """Execute every row of the schedule once for ``nb`` streams.

    ``codes`` int32 (nb,): the class index of this step per stream (speakers in ``s``).  The
    tuples are unpacked once here: the per-op helpers take arrays (see ``_kernels_fc``).  One
    stream and several streams are two loops with their own FC/GATE/ADD/MUL helpers (each
    helper is compiled once: no per-op test of ``nb`` and, for one stream, compact code;
    measured small B=1 ≈ 1.2× faster than one loop for every ``nb``)."""
    ops, wblob, bblob, mult, shift, fmul = c.ops, c.wblob, c.bblob, c.mult, c.shift, c.fmul
    tables, iparams, fparams, pair_tables = c.tables, c.iparams, c.fparams, c.pair_tables
    profile = c.profile
    A = c.arena_size
    sm_exps, sm_tables, sm_scales, u16 = c.sm_exps, c.sm_tables, c.sm_scales, c.softmax_uint16
    arena, accs, speakers = s.arena, s.accs, s.speakers
    if nb == 1:
        flat = tables.reshape(-1)
        for k in range(ops.shape[0]):
            r = ops[k]
            kind = r.kind
            if kind == OpKind.FC:
                fc_one(arena, accs, r, wblob, bblob, mult, shift, fmul, iparams, profile)
            elif kind == OpKind.FC2:
                fc2_one(arena, accs, r, wblob, bblob, mult, shift, fmul, iparams, profile)
            elif kind == OpKind.GATE:
                gate_one(arena, r, flat, iparams, fparams, pair_tables, profile)
            elif kind == OpKind.ADD or kind == OpKind.MUL:
                pair_one(arena, r, iparams, fparams, pair_tables, profile)
            else:
                _other_op(arena, accs, speakers, A, 1, r, codes, wblob, tables, iparams,
                          sm_exps, sm_tables, sm_scales, profile, u16)
        return
    for k in range(ops.shape[0]):
        r = ops[k]
        kind = r.kind
        if kind == OpKind.FC or kind == OpKind.FC2:
            fc_batch(arena, accs, nb, r, wblob, bblob, mult, shift, fmul, iparams, profile)
        elif kind == OpKind.GATE or kind == OpKind.ADD or kind == OpKind.MUL:
            # one call site of the pair for ADD/MUL rows and the gates (compile time)
            x0, x1, is_mul = r.in0, r.in1, kind == OpKind.MUL
            if kind == OpKind.GATE:
                gate_luts_batch(arena, nb, r, tables)
                x0, x1, is_mul = r.ya, r.yb, r.pair == OpKind.MUL
            pair_batch(arena, nb, x0, x1, r.out, r.n, r.blocked, r.t_blk, r.t_tail,
                       iparams[r.p:], fparams[r.f:], is_mul, pair_tables, profile)
        else:
            _other_batch(arena, accs, speakers, nb, r, codes, wblob, tables, iparams, sm_exps,
                         sm_tables, sm_scales, profile, u16)


@kernel
def step(c, s, nb, t, codes):
    """One full step (delay reads, every op, delay writes) for ``nb`` streams at time ``t``.

    The arrays are borrowed here, in the function that runs the ops, not only by the callers:
    numba passes them in with their meminfo, so every reference count of the inlined helpers
    stayed an out-of-line ``NRT_incref``/``NRT_decref`` call (measured ≈ 50 ns per schedule row
    on small, more than most ops); with the meminfo a known null LLVM folds them all away."""
    c, s = borrow_all(c), borrow_all(s)
    codes = borrow(codes)
    _delay_reads(s.arena, s.ring, nb, t, c.reads, c.writes)
    run_ops(c, s, nb, codes)
    _delay_writes(s.arena, s.ring, nb, t, c.writes)


@inline_kernel
def copy_outputs(arena, nb, out, j, out_offs, out_sizes):
    """After step ``j``: the arena ranges ``[out_offs[k], out_offs[k] + out_sizes[k])`` of each
    stream, concatenated, into ``out[b, j, :]`` (stream-minor arena for ``nb`` ≥ 2)."""
    for b in range(nb):
        col = 0
        row = out[b, j]
        for k in range(out_offs.shape[0]):
            if nb == 1:
                copy_bytes(row, col, arena, out_offs[k], out_sizes[k])
            else:
                gather_minor(row, col, nb, b, arena, out_offs[k] * nb, out_sizes[k])
            col += out_sizes[k]


@kernel
def process(c, s, nb, t0, codes, out, out_offs, out_sizes):
    """Teacher-forced steps ``t0 … t0+n−1``: ``codes`` int32 (nb, n).  After each step the arena
    ranges ``[out_offs[k], out_offs[k] + out_sizes[k])`` are copied, concatenated, into
    ``out[b, j, :]`` (int8 (nb, n, Σ sizes)): probs, logits or any set of tensors."""
    # borrowed views: no atomic reference counting inside the step (see borrow)
    c, s = borrow_all(c), borrow_all(s)
    codes, out, out_offs, out_sizes = borrow_all((codes, out, out_offs, out_sizes))
    n = codes.shape[1]
    cur = np.empty(nb, np.int32)
    for j in range(n):
        for b in range(nb):
            cur[b] = codes[b, j]
        step(c, s, nb, t0 + j, cur)
        copy_outputs(s.arena, nb, out, j, out_offs, out_sizes)


@kernel
def generate(c, s, nb, t0, first, out, probs_off, logits_off, mode, table, rng):
    """Free-running steps: feed ``first`` (int32 (nb,)), sample each step's logits with
    :func:`wavenet_edge.sampling.sample_one` into ``out`` (int32 (nb, n)) and feed it back
    (``probs_off`` is unused: the sampler reads only the logits)."""
    c, s = borrow_all(c), borrow_all(s)
    out, table, rng = borrow_all((out, table, rng))
    n = out.shape[1]
    cur = first.copy()
    weights = np.empty(256, np.int64)
    logits = np.empty(256, np.int8)
    for j in range(n):
        step(c, s, nb, t0 + j, cur)
        for b in range(nb):
            if nb == 1:
                code = sample_one(mode, s.arena, logits_off, table, rng, b, weights)
            else:
                gather_minor(logits, 0, nb, b, s.arena, logits_off * nb, 256)
                code = sample_one(mode, logits, 0, table, rng, b, weights)
            out[b, j] = code
            cur[b] = code
