"""The lowered int8 program: one description of a step graph for every back end.

:func:`lower` turns a parsed ``.tflite`` into a :class:`Program` of :class:`OpKind` records with
named fields (:data:`OP_DTYPE`) and parameter arrays computed once with
:mod:`wavenet_edge.int8`.  The Numba engine and the C export both consume it.
"""

from .kinds import (FC_MAX, FC_MIN, FC_ZP, GATHER_CODE, GATHER_SPEAKER, OP_DTYPE, READ_DTYPE,
                    SM_DIFF_MIN, SM_LEFT_SHIFT, SM_MULTIPLIER, WRITE_DTYPE, OpKind)
from .program import PROFILES, Program, lower
from .validate import SUPPORTED_OPS

__all__ = ["OpKind", "OP_DTYPE", "READ_DTYPE", "WRITE_DTYPE", "Program", "lower", "PROFILES",
           "SUPPORTED_OPS", "FC_ZP", "FC_MIN", "FC_MAX", "SM_MULTIPLIER", "SM_LEFT_SHIFT",
           "SM_DIFF_MIN", "GATHER_CODE", "GATHER_SPEAKER"]
