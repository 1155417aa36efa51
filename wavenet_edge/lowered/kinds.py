"""Op kinds and the record layouts of a lowered program.

Every consumer (the Numba engine, the C export, the emulator's profiler) names an operator by
:class:`OpKind` and reads its parameters by field name.  The numbering is the C export's
``wn_op`` kind enum (``wavenet_model.h``), so a record goes to C unchanged.

Records are numpy structured dtypes: numba reads their fields by name in nopython mode at the
cost of a plain load, and numpy writes them to C as they are.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = ["OpKind", "OP_DTYPE", "READ_DTYPE", "WRITE_DTYPE", "FC_ZP", "FC_MIN", "FC_MAX",
           "SM_MULTIPLIER", "SM_LEFT_SHIFT", "SM_DIFF_MIN", "GATHER_CODE", "GATHER_SPEAKER"]


class OpKind(IntEnum):
    """What one program row computes (``OP_DTYPE`` field ``kind``)."""

    GATHER = 1    # out[:n] = weights[w + idx·n : +n]; idx = code (aux GATHER_CODE) or speaker
    FC = 2        # out[o] = clamp(requant(bias[q+o] + Σ_i W[o, i]·in0[i]) + zp), o < n, i < cols
    ADD = 3       # out[i] = add_int8(in0[i], in1[i], iparams[p:], fparams[f:])
    MUL = 4       # out[i] = mul_int8(...), parameters as ADD
    LUT = 5       # out[i] = luts[aux, in0[i] + 128]  (TANH, LOGISTIC)
    SOFTMAX = 6   # n classes; iparams[p:] (SM_*); exp table sm_exps[aux], float sm_tables[aux]
    COPY = 7      # out[:n] = in0[:n] (a concatenation or reshape that cannot alias)
    # kinds the engine's schedule adds by fusing lowered rows (never in a lowered program)
    FC2 = 8       # two FCs on one input with adjacent weights: one dot-product pass
    GATE = 9      # LUT, LUT, then their ADD/MUL, element by element


#: one lowered operator.  Offsets: ``in0``/``in1``/``out`` arena bytes; ``w`` into the weight
#: blob; ``q`` into the per-output-channel arrays (bias, mult, shift, fmul); ``p`` into
#: ``iparams``; ``f`` into ``fparams``; ``aux`` a table index or GATHER_* selector.
OP_DTYPE = np.dtype([(name, np.int64) for name in
                     ("kind", "in0", "in1", "out", "n", "cols", "w", "q", "p", "f", "aux")])

#: one delay-line read: before step t, arena[dst:dst+width] = write ``write``'s value at
#: t − delay (its zero point while t < delay)
READ_DTYPE = np.dtype([(name, np.int64) for name in
                       ("dst", "delay", "width", "zero_point", "write")])

#: one distinct delay-line write: after step t, arena[src:src+width] goes to ring slot
#: ``t mod length`` at ring byte offset ``ring``
WRITE_DTYPE = np.dtype([(name, np.int64) for name in ("src", "ring", "length", "width")])

# iparams slots of an FC (at its ``p``): output zero point and activation range
FC_ZP, FC_MIN, FC_MAX = 0, 1, 2
# iparams slots of a SOFTMAX (at its ``p``)
SM_MULTIPLIER, SM_LEFT_SHIFT, SM_DIFF_MIN = 0, 1, 2
# GATHER ``aux``: which graph input indexes the table
GATHER_CODE, GATHER_SPEAKER = 0, 1
