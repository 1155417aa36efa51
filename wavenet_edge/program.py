"""The engine's schedule of a lowered program: how the Numba kernels run it fast.

:func:`wavenet_edge.lowered.lower` computes every int8 parameter of a step graph once; this
module only *rearranges* that program for the CPU, with functions of :mod:`wavenet_edge.int8`
where values change form:

* FCs that take the AVX-512 VNNI paths (``_kernels_fc.vnni_mode`` > 0) feed the input as
  unsigned ``x + 128``: ``128·Σ_i w[o, i]`` is folded into their biases as well
  (:func:`wavenet_edge.int8.fold_input_offset`); in mode 2 their weights are stored interleaved
  ([rows/16][cols/4][16][4], ``interleave16``) instead of row-major.
* Two consecutive FCs reading the same input with adjacent weights (each layer's filter and
  gate) become one FC2 row: one dot-product pass, each op's own requantization.
* Each layer's LUT, LUT, ADD/MUL triple becomes one GATE row when its five tensors are disjoint
  in the arena (element by element it reads and writes what the three rows do).
* ADD/MUL are also tabulated over all 65536 input pairs (``pair_tables``, evaluated with
  ``add_int8``/``mul_int8`` themselves; LiteRT's blocks of 16 and its tail round differently,
  hence ``t_blk``/``t_tail``): with several streams the tables stay in cache across them.

:class:`Consts` (immutable, shared by every stream and thread) and :class:`State` (one set of
streams) are the named tuples the kernels take.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import kernel
from ._kernels_fc import interleave16, vnni_mode
from .contract import parse_contract
from .int8 import requant as _rq
from .int8.elementwise import add_int8, mul_int8
from .lowered import (OP_DTYPE, PROFILES, SUPPORTED_OPS, OpKind, Program, lower)

__all__ = ["Program", "compile_program", "parse_contract", "PROFILES", "SUPPORTED_OPS",
           "OpKind", "EXEC_DTYPE", "Consts", "State", "schedule", "new_state"]

#: a schedule row: the lowered fields, plus FC2 (``n2`` rows to ``out2``, parameters ``p2``),
#: GATE (LUT outputs ``ya``/``yb`` of tables ``lut_a``/``lut_b``, then ``pair`` = ADD or MUL
#: with ``p``/``f``) and ADD/MUL/GATE pair tables (``blocked`` elements in full blocks of 16
#: read ``t_blk``, the rest ``t_tail``)
EXEC_DTYPE = np.dtype(list(OP_DTYPE.descr) + [
    (name, np.int64) for name in ("n2", "out2", "p2", "ya", "yb", "lut_a", "lut_b", "pair",
                                  "blocked", "t_blk", "t_tail")])


def compile_program(model, *, profile: str = "tflm", contract: dict | None = None) -> Program:
    """The lowered program of ``model`` (:func:`wavenet_edge.lowered.lower`)."""
    return lower(model, profile=profile, contract=contract)


class Consts(NamedTuple):
    """What the kernels read and never write (64-byte aligned copies; see the module doc)."""

    ops: np.ndarray          # EXEC_DTYPE
    wblob: np.ndarray        # int8
    bblob: np.ndarray        # int32, at q
    mult: np.ndarray         # int32, at q
    shift: np.ndarray        # int32, at q
    fmul: np.ndarray         # float64, at q
    tables: np.ndarray       # int8 (n, 256)
    iparams: np.ndarray      # int64, at p
    fparams: np.ndarray      # float64, at f
    pair_tables: np.ndarray  # int8, at t_blk / t_tail
    sm_exps: np.ndarray      # int32 (n, 256)
    sm_tables: np.ndarray    # float32 (n, 256)
    sm_scales: np.ndarray    # float64 (n,)
    reads: np.ndarray        # READ_DTYPE
    writes: np.ndarray       # WRITE_DTYPE
    profile: np.int64
    softmax_uint16: np.int64  # 1: SOFTMAX is the aarch64 uint16-table kernel on sm_exps
    arena_size: np.int64
    ring_size: np.int64


class State(NamedTuple):
    """One set of ``B`` streams: ``arena`` int8 (B·arena_size,), ``ring`` int8 (B·ring_size,),
    both stream-minor when B ≥ 2 (byte ``x`` of stream ``b`` at ``x·B + b``; :func:`new_state`),
    ``accs`` int32 scratch (FC accumulators, the VNNI input copy, the SOFTMAX exponentials),
    ``speakers`` int32 (B,)."""

    arena: np.ndarray
    ring: np.ndarray
    accs: np.ndarray
    speakers: np.ndarray


def aligned(a: np.ndarray, align: int = 64) -> np.ndarray:
    """A C-contiguous copy of ``a`` starting on an ``align``-byte boundary.  The kernels load
    64-byte vectors at 64-byte multiples of the weight blob and the arena: with numpy's 16-byte
    alignment every such load straddles two cache lines (measured: ≈ 8 % of a small step)."""
    raw = np.empty(a.nbytes + align, np.uint8)
    s = (-raw.ctypes.data) % align
    out = raw[s:s + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@kernel
def _pair_grid(is_add, ip, fp, profile, simd, out):
    for a in range(256):
        for b in range(256):
            if is_add:
                v = add_int8(np.int8(a - 128), np.int8(b - 128), ip, fp, profile, simd)
            else:
                v = mul_int8(np.int8(a - 128), np.int8(b - 128), ip, fp, profile, simd)
            out[a * 256 + b] = v


def _pair_table(is_add, ip, fp, profile, simd) -> np.ndarray:
    """int8[65536]: the ADD (or MUL) of every input pair, index ``(a + 128)·256 + (b + 128)``."""
    out = np.empty(65536, np.int8)
    _pair_grid(bool(is_add), np.ascontiguousarray(ip, np.int64),
               np.ascontiguousarray(fp, np.float64), int(profile), bool(simd), out)
    return out


def _vnni_layout(p: Program, rows):
    """Weights and biases of each FC in the layout of its dot-product path."""
    wblob = p.wblob.copy()
    bblob = p.bblob.copy()
    for r in rows:
        if r["kind"] != OpKind.FC:
            continue
        n, cols, w, q = r["n"], r["cols"], r["w"], r["q"]
        mode = int(vnni_mode(n, cols))
        if mode == 0:
            continue
        W = p.wblob[w:w + n * cols].reshape(n, cols)
        bblob[q:q + n] = _rq.fold_input_offset(p.bblob[q:q + n], W, 128)
        if mode == 2:
            wblob[w:w + n * cols] = interleave16(W)
    return wblob, bblob


def _pair_tables(p: Program, rows):
    """Fill ``blocked``/``t_blk``/``t_tail`` of every ADD/MUL; the tables, concatenated."""
    tables = []
    two = p.profile_id in (_rq.LITERT, _rq.XNNPACK)   # blocks of 16 round differently
    for r in rows:
        if r["kind"] not in (OpKind.ADD, OpKind.MUL):
            continue
        ip = p.iparams[r["p"]:]
        fp = p.fparams[r["f"]:]
        is_add = r["kind"] == OpKind.ADD
        r["blocked"] = r["n"] // 16 * 16
        r["t_blk"] = 65536 * len(tables)
        tables.append(_pair_table(is_add, ip, fp, p.profile_id, two))
        r["t_tail"] = r["t_blk"]
        if two and r["blocked"] < r["n"]:
            r["t_tail"] = 65536 * len(tables)
            tables.append(_pair_table(is_add, ip, fp, p.profile_id, False))
    return np.concatenate(tables) if tables else np.zeros(1, np.int8)


def _fuse_fc_pairs(rows):
    out, k = [], 0
    while k < len(rows):
        a = rows[k]
        b = rows[k + 1] if k + 1 < len(rows) else None
        if (b is not None and a["kind"] == OpKind.FC and b["kind"] == OpKind.FC
                and a["in0"] == b["in0"] and a["cols"] == b["cols"] and b["in0"] != a["out"]
                and b["w"] == a["w"] + a["n"] * a["cols"] and b["q"] == a["q"] + a["n"]
                # the fused dot product must run in the mode each op was laid out for
                and int(vnni_mode(a["n"], a["cols"])) == int(vnni_mode(b["n"], b["cols"]))
                == int(vnni_mode(a["n"] + b["n"], a["cols"]))):
            out.append(dict(a, kind=int(OpKind.FC2), n2=b["n"], out2=b["out"], p2=b["p"]))
            k += 2
            continue
        out.append(a)
        k += 1
    return out


def _fuse_gates(rows):
    out, k = [], 0
    while k < len(rows):
        if k + 2 < len(rows):
            a, b, pr = rows[k], rows[k + 1], rows[k + 2]
            n = a["n"]
            if (a["kind"] == OpKind.LUT and b["kind"] == OpKind.LUT
                    and pr["kind"] in (OpKind.ADD, OpKind.MUL) and b["n"] == n and pr["n"] == n
                    and {pr["in0"], pr["in1"]} == {a["out"], b["out"]} and a["out"] != b["out"]):
                if pr["in0"] == b["out"]:
                    a, b = b, a   # the pair's first operand comes from the second LUT
                starts = sorted({a["in0"], b["in0"], a["out"], b["out"], pr["out"]})
                disjoint = (len(starts) == (4 if a["in0"] == b["in0"] else 5)
                            and all(hi - lo >= n for lo, hi in zip(starts, starts[1:])))
                if disjoint:
                    out.append(dict(pr, kind=int(OpKind.GATE), in0=a["in0"], in1=b["in0"],
                                    ya=a["out"], yb=b["out"], lut_a=a["aux"], lut_b=b["aux"],
                                    pair=pr["kind"]))
                    k += 3
                    continue
        out.append(rows[k])
        k += 1
    return out


def schedule(p: Program, *, fuse: bool = True) -> Consts:
    """The engine's :class:`Consts` for lowered program ``p``.  ``fuse=False`` keeps one row
    per lowered operator except the FC2 pairs (a reference for the GATE fusion)."""
    rows = [{name: int(r[name]) for name in OP_DTYPE.names} for r in p.ops]
    for r in rows:
        r.update({name: 0 for name in EXEC_DTYPE.names if name not in r})
    wblob, bblob = _vnni_layout(p, rows)
    pair_tables = _pair_tables(p, rows)
    rows = _fuse_fc_pairs(rows)
    if fuse:
        rows = _fuse_gates(rows)
    ops = np.zeros(len(rows), EXEC_DTYPE)
    for k, r in enumerate(rows):
        ops[k] = tuple(r[name] for name in EXEC_DTYPE.names)
    return Consts(
        ops=aligned(ops), wblob=aligned(wblob), bblob=aligned(bblob), mult=aligned(p.mult),
        shift=aligned(p.shift), fmul=aligned(p.fmul), tables=aligned(p.tables),
        iparams=aligned(p.iparams), fparams=aligned(p.fparams), pair_tables=aligned(pair_tables),
        sm_exps=aligned(p.sm_exps), sm_tables=aligned(p.sm_tables),
        sm_scales=aligned(p.sm_scales), reads=aligned(p.reads), writes=aligned(p.writes),
        profile=np.int64(p.profile_id), softmax_uint16=np.int64(p.softmax_uint16),
        arena_size=np.int64(p.arena_size),
        ring_size=np.int64(p.ring_size))


def new_state(c: Consts, batch: int) -> State:
    """Fresh (silent) state for ``batch`` streams of schedule ``c``."""
    ops = c.ops
    fcs = (ops["kind"] == OpKind.FC) | (ops["kind"] == OpKind.FC2)
    rows = ops["n"] + np.where(ops["kind"] == OpKind.FC2, ops["n2"], 0)
    # int32 row accumulators of every stream (also the SOFTMAX scratch: one int32 per class);
    # the tail holds the streams' FC inputs as unsigned bytes (VNNI path)
    max_rows = int(max(rows[fcs | (ops["kind"] == OpKind.SOFTMAX)].max(initial=1), 1))
    max_cols = int(ops["cols"][fcs].max(initial=0))
    if batch == 1:
        return State(arena=aligned(np.zeros(int(c.arena_size), np.int8)),
                     ring=aligned(np.zeros(int(c.ring_size), np.int8)),
                     accs=aligned(np.zeros(max_rows + (max_cols + 3) // 4 + 1, np.int32)),
                     speakers=np.zeros(1, np.int32))
    # batch >= 2: arena and ring stream-minor (byte x of stream b at x·batch + b); the FC
    # accumulators [rows][streams rounded up to the GEMM's lanes], the transposed inputs and
    # the SOFTMAX/sampler bytes in the tail; the arena's last 64 bytes let the input transpose
    # read whole vectors past the last stream
    lanes = batch + 16
    return State(arena=aligned(np.zeros(batch * int(c.arena_size) + 64, np.int8)),
                 ring=aligned(np.zeros(batch * int(c.ring_size), np.int8)),
                 accs=aligned(np.zeros(lanes * max_rows + (lanes * max_cols + 3) // 4
                                       + max_rows + 16, np.int32)),
                 speakers=np.zeros(batch, np.int32))
