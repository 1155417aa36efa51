"""MVE (Helium) layout of the C export's FC requantization parameters.

The MVE kernels requantize 4 output rows per step and need each row group's bias, multiplier and
shift as three 4-lane vectors.  Read from the three separate arrays (``wn_bias``, ``wn_mult``,
``wn_shift``) that takes three pointers per FULLY_CONNECTED, six in a gated unit, and the Cortex-M
register file spills them in the loop.  ``wn_rq`` holds the same values interleaved per group of
4 rows — ``[bias 4, multiplier 4, shift 4]`` — so one pointer with immediate offsets serves an FC:
row ``j`` of the FC whose parameters start at ``q`` lies at ``wn_rq[3*q + 12*(j//4) + j%4]``
(+4 multiplier, +8 shift); rows past the last full group are stored ``[bias, multiplier,
shift]`` at ``3*q + 3*j``.  Every value is a copy (``tests/test_c_export_mve.py``); the array is
only compiled into MVE builds (:data:`MVE_GUARD`), so other builds carry no extra flash
(``c_export.flash_bytes(d, "mve")`` counts it).
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.lowered import OpKind

__all__ = ["requant_groups", "MVE_GUARD", "flash_bytes"]

#: the preprocessor condition under which wavenet_model.c defines ``wn_rq``: an MVE build
#: (WN_KERNELS 3, or 0 = auto on a core with MVE integer instructions, as wavenet_engine.c decides)
MVE_GUARD = ("WN_KERNELS == 3 || (WN_KERNELS == 0 && defined(__ARM_FEATURE_MVE) "
             "&& (__ARM_FEATURE_MVE & 1))")


def requant_groups(ops, bias, mult, shift) -> np.ndarray:
    """int64 (3 * len(bias),): the interleaved ``wn_rq`` of the FULLY_CONNECTED rows of ``ops``
    (program records with fields kind, n, q); entries no FC uses stay 0.  Raises ValueError if
    two FCs claim overlapping rows in different groupings (they cannot share one layout)."""
    bias, mult, shift = (np.asarray(a, np.int64) for a in (bias, mult, shift))
    rq = np.zeros(3 * max(bias.size, 1), np.int64)
    owner = {}
    for o in ops:
        if int(o["kind"]) != int(OpKind.FC):
            continue
        q, n = int(o["q"]), int(o["n"])
        for j in range(n):
            prev = owner.setdefault(q + j, (q, n))
            if prev != (q, n):
                raise ValueError(f"FC rows at {q + j} shared by FCs ({prev} and {(q, n)})")
        full = n // 4 * 4
        for g in range(0, full, 4):
            base = 3 * (q + g)
            rq[base:base + 4] = bias[q + g:q + g + 4]
            rq[base + 4:base + 8] = mult[q + g:q + g + 4]
            rq[base + 8:base + 12] = shift[q + g:q + g + 4]
        for j in range(full, n):
            rq[3 * (q + j):3 * (q + j) + 3] = (bias[q + j], mult[q + j], shift[q + j])
    return rq


def flash_bytes(d) -> int:
    """Bytes of ``wn_rq`` for the exported program ``d``."""
    return 4 * int(requant_groups(d["ops"], d["bias"], d["mult"], d["shift"]).size)
