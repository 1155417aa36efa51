"""Data layouts of the C engine's Arm DSP kernels (``WN_KERNELS == 2``, Cortex-M4/M7/M33).

The DSP kernels multiply int16 pairs (SMLAD: two 16x16 MACs per instruction).  Sign-extending
int8 weights at run time (SXTB16) costs more instructions than the MACs themselves, so the export
writes every FULLY_CONNECTED's weights pre-extended, as int32 words holding two int16, in the
order the kernel reads them:

* rows in groups of four, the row count padded to a multiple of 4 with zero rows;
* columns in chunks of 4 (padded with zero columns); chunk j of a row group is 8 words, two per
  row: ``[w[4j], w[4j+2]], [w[4j+1], w[4j+3]]`` — the pairs SXTB16 makes of 4 input bytes
  (bytes 0 and 2, then 1 and 3, ror 8), so one input word, sign-extended once per FC into an
  int16 scratch, is shared by the 4 rows (one LDRD of the input, two LDM of the weights and 8
  SMLAD per chunk).

Requantization (the lowered program's per-channel multiplier/shift, int8/fixedpoint's
MultiplyByQuantizedMultiplier with gemmlowp's double rounding) is computed by the kernels in an
equivalent cheaper form where the export can prove it exact (``FAST``): with ``x = acc + bias``,
``|x| < 2**29`` for every int8 input, a right shift ``e >= 0`` (no left shift) and
``|zp| * 2**(e+1) < 2**29``,

    SRDHM(x, m) = SMMULR(2 x, m)                 (SMMULR: (a*b + 2**31) >> 32)
    RDBPOT(h, e) + zp = (2 h + (h >> 31) + 2**e + zp * 2**(e+1)) >> (e + 1)

The first: ``(2xm + 2**31) >> 32 = (xm + 2**30) >> 31``.  The second: RoundingDivideByPOT is
``floor((h + 2**(e-1) - [h < 0]) / 2**e)`` (its threshold moved into the addend; for e = 0 it is
h); doubling numerator and divisor gives ``2h + 2**e - 2[h < 0]``, an even number for e >= 1, so
adding 1 (``-[h<0]`` instead of ``-2[h<0]``) cannot cross a multiple of ``2**(e+1)``; for e = 0
the form is ``floor((2h + 1 - [h<0]) / 2) = h``; and ``zp * 2**(e+1)`` commutes with the floor.
So ``FAST`` FCs get their weights and bias doubled (int8 * 2 fits int16) and a record
``[m, 2**e + zp * 2**(e+1), e + 1]`` per row; the others keep them as they are and the kernel
uses the scalar MultiplyByQuantizedMultiplier.  The parameters themselves are the program's; this
module only rearranges them and decides, from bounds, which form is exact.  ADD and MUL get the
same treatment (:func:`elementwise_records`).
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.int8 import elementwise as ew
from wavenet_edge.lowered import FC_MAX, FC_MIN, FC_ZP, OpKind

__all__ = ["FAST", "FULL", "dsp_layout", "fc_weights", "elementwise_records", "flash_bytes",
           "LIMIT"]

#: record flags: the cheaper exact requantization applies / the clamp is the whole int8 range
FAST, FULL = 1, 2
#: |x| bound of the fast forms (a test lowers it to force the scalar path)
LIMIT = 1 << 29
RQ_WORDS = 16         # per row group: bias0..3, (m, c, e) x 4


def _pack(lo, hi):
    """int32 words of two int16 (lo in bits 0-15), as int64 values in the int32 range."""
    w = (np.asarray(lo, np.int64) & 0xFFFF) | (np.asarray(hi, np.int64) << 16)
    return np.where(w >= 1 << 31, w - (1 << 32), w)


def fc_weights(w, scale: int = 1) -> np.ndarray:
    """DSP layout (module docstring) of an int8 weight matrix ``w`` (rows, cols) times ``scale``:
    int64 array of int32 words, ``rows4 * ceil(cols / 4) * 2`` of them."""
    rows, cols = w.shape
    r4, c4 = -(-rows // 4) * 4, -(-cols // 4) * 4
    a = np.zeros((r4, c4), np.int64)
    a[:rows, :cols] = np.asarray(w, np.int64) * scale
    a = a.reshape(r4 // 4, 4, c4 // 4, 4)               # group, row in group, chunk, byte
    even = _pack(a[..., 0], a[..., 2])                   # (group, row, chunk)
    odd = _pack(a[..., 1], a[..., 3])
    words = np.stack([even, odd], axis=-1)               # (group, row, chunk, 2)
    return words.transpose(0, 2, 1, 3).reshape(-1)       # group, chunk, row, even/odd


def _rounding_addend(e, zp):
    """``2**e + zp * 2**(e+1)``: the addend of the rounding form (module docstring)."""
    return (1 << int(e)) + int(zp) * (1 << (int(e) + 1))


def _fc_records(w, bias, mult, shift, zp, lo, hi):
    """(flags, rq words) of one FC: per group of 4 rows [b0..b3, (m, c, e + 1) x 4]."""
    rows = w.shape[0]
    bias = np.asarray(bias, np.int64)
    shift = np.asarray(shift, np.int64)
    bound = 128 * np.abs(np.asarray(w, np.int64)).sum(axis=1) + np.abs(bias)
    e = -shift
    fast = bool((bound < LIMIT).all() and (e >= 0).all() and (e <= 24).all()
                and abs(int(zp)) << (int(e.max(initial=0)) + 1) < (1 << 29))
    flags = (FAST if fast else 0) | (FULL if (lo, hi) == (-128, 127) else 0)
    k = 2 if fast else 1
    r4 = -(-rows // 4) * 4
    rec = np.zeros((r4, 4), np.int64)                    # bias, m, c, e per row
    rec[:rows, 0] = bias * k
    if fast:
        rec[:rows, 1] = mult
        rec[:rows, 2] = [_rounding_addend(v, zp) for v in e]
        rec[:rows, 3] = e + 1
    rec[rows:, 3] = 1
    grp = rec.reshape(r4 // 4, 4, 4)
    words = np.concatenate([grp[:, :, 0], grp[:, :, 1:].reshape(r4 // 4, 12)], axis=1)
    return flags, words.reshape(-1)


def _max_abs_diff(z):
    return max(abs(-128 - int(z)), abs(127 - int(z)))


def elementwise_records(kind, ip):
    """(flags, words) of one ADD or MUL (program parameter vector ``ip``, profile tflm).

    MUL: ``[z1, z2, left + 1, m, c, e + 1, lo, hi]``: ``h = SMMULR((x1-z1)(x2-z2) << (left+1),
    m)``, then the rounding form with ``c = 2**e + zo * 2**(e+1)``.
    ADD: ``[mo, co, eo + 1, lo, hi, T1[256], T2[256]]``: ``T_i[x + 128] = 2 v_i(x)``, each
    input's rescaled term (:func:`wavenet_edge.int8.elementwise.add_input_term`, a function of
    the int8 value alone), doubled; the output from ``h = SMMULR(T1[x1] + T2[x2], mo)`` (= SRDHM(
    v1 + v2, mo)) with ``co = 2**eo + zo * 2**(eo+1)``.  2 KiB of flash per ADD, no SRAM."""
    ip = [int(v) for v in ip]
    if kind == OpKind.MUL:
        z1, z2, m, s, zo, lo, hi = (ip[ew.M_Z1], ip[ew.M_Z2], ip[ew.M_M], ip[ew.M_S],
                                    ip[ew.M_ZO], ip[ew.M_MIN], ip[ew.M_MAX])
        left, e = max(s, 0), max(-s, 0)
        prod = _max_abs_diff(z1) * _max_abs_diff(z2)
        fast = e <= 24 and (prod << (left + 1)) < LIMIT and abs(zo) << (e + 1) < 1 << 29
        c = _rounding_addend(e, zo) if fast else 0
        words = [z1, z2, left + 1, m, c, e + 1, lo, hi]
    else:
        z1, z2, left = ip[ew.A_Z1], ip[ew.A_Z2], ip[ew.A_LEFT]
        ms = (ip[ew.A_M1], ip[ew.A_M2], ip[ew.A_MO])
        es = (-ip[ew.A_S1], -ip[ew.A_S2], -ip[ew.A_SO])
        zo, lo, hi = ip[ew.A_ZO], ip[ew.A_MIN], ip[ew.A_MAX]
        xs = np.arange(-128, 128)
        terms = [np.array([int(ew.add_input_term(int(x) - z, left, m, -e)) for x in xs])
                 for z, m, e in zip((z1, z2), ms[:2], es[:2])]
        fast = (0 <= es[2] <= 24 and abs(zo) << (es[2] + 1) < 1 << 29
                and 2 * max(int(np.abs(t).max()) for t in terms) < LIMIT // 2)
        if fast:
            words = [ms[2], _rounding_addend(es[2], zo), es[2] + 1, lo, hi,
                     *(2 * terms[0]).tolist(), *(2 * terms[1]).tolist()]
        else:
            words = [0, 0, 0, lo, hi]
    flags = (FAST if fast else 0) | (FULL if (lo, hi) == (-128, 127) else 0)
    return flags, words


def dsp_layout(program) -> dict:
    """The DSP arrays of a lowered program: ``w16`` (int32 words of every FC, op order), ``rq``
    (requantization records), ``ew`` (ADD/MUL records) and ``recs``: per operator
    ``(w16 offset, rq offset, ew offset, tab offset, flags)`` (-1: none); ``tab``: the GATHER
    tables (int8, the only part of the int8 weight blob a DSP build keeps)."""
    p = program
    w16, rq, ewr, tab, recs = [], [], [], [], []
    nw = nr = ne = nt = 0
    max_cols = 256         # at least the FC benchmark's (wn_fc_dsp)
    for r in p.ops:
        k, n, cols = int(r["kind"]), int(r["n"]), int(r["cols"])
        if k == OpKind.FC:
            w = np.asarray(p.wblob[int(r["w"]):int(r["w"]) + n * cols], np.int64).reshape(n, cols)
            q, o = int(r["q"]), int(r["p"])
            ip = p.iparams
            flags, words = _fc_records(w, p.bblob[q:q + n], p.mult[q:q + n], p.shift[q:q + n],
                                       int(ip[o + FC_ZP]), int(ip[o + FC_MIN]),
                                       int(ip[o + FC_MAX]))
            ww = fc_weights(w, 2 if flags & FAST else 1)
            recs.append((nw, nr, -1, flags))
            w16.append(ww)
            rq.append(words)
            nw += ww.size
            nr += words.size
            max_cols = max(max_cols, cols)
        elif k in (OpKind.ADD, OpKind.MUL):
            o = int(r["p"])
            flags, words = elementwise_records(k, p.iparams[o:o + 16])
            recs.append((-1, -1, ne, flags))
            ewr.append(np.asarray(words, np.int64))
            ne += len(words)
        elif k == OpKind.GATHER:
            t = np.asarray(p.wblob[int(r["w"]):int(r["w"]) + n * cols], np.int64)
            recs.append((-1, -1, -1, nt, 0))
            tab.append(t)
            nt += t.size
            continue
        else:
            recs.append((-1, -1, -1, -1, 0))
            continue
        recs[-1] = recs[-1][:3] + (-1,) + recs[-1][3:]
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(1, np.int64))
    return dict(w16=cat(w16), rq=cat(rq), ew=cat(ewr), tab=cat(tab), recs=recs,
                max_cols=max_cols)


def flash_bytes(layout) -> int:
    """Bytes of the DSP arrays as wavenet_model.c declares them (they replace the int8 weight
    blob in a DSP build); ``wn_dsp``: 5 words per operator."""
    return int(4 * (layout["w16"].size + layout["rq"].size + layout["ew"].size)
               + layout["tab"].size + 20 * len(layout["recs"]))
