"""Jitted kernels of local conditioning (vocoders): the step graph's teacher-forced /
free-running loops with a ``cond`` row set before every step.

Both reuse the ring-buffer engine's one-step kernel (:func:`._engine_kernels.step`); the
conditioned step graph differs from a plain one only in one more graph input, ``cond`` (int8,
``C`` bytes at arena offset ``cond_off``), which the host fills before each step from the
sample-rate rows the frame graph produced.  The frame graph is a program like a step graph
(its delay lines advance once per call) whose extra input is the frame window, so
:func:`process_cond` runs its calls too (``cond_off`` = the frames input, the block copied out
as the output): one compiled kernel serves both, which matters for a cold numba cache.
"""

from __future__ import annotations

import numpy as np

from ._engine_kernels import copy_outputs, gather_minor, scatter_minor, step
from ._jit import kernel
from ._kernel_util import borrow_all, copy_bytes, inline_kernel
from .sampling import sample_one

__all__ = ["process_cond", "generate_cond"]


@inline_kernel
def _set_cond(arena, nb, cond, j, cond_off, C):
    """Step ``j``'s ``cond`` row of every stream into the arena (stream-minor for nb ≥ 2)."""
    for b in range(nb):
        if nb == 1:
            copy_bytes(arena, cond_off, cond[b, j], 0, C)
        else:
            scatter_minor(arena, cond_off * nb, nb, b, cond[b, j], 0, C)


@kernel
def process_cond(c, s, nb, t0, codes, cond, cond_off, out, out_offs, out_sizes):
    """Teacher-forced steps like :func:`._engine_kernels.process`, with ``cond`` int8
    (nb, n, C): row ``cond[b, j]`` is stream b's ``cond`` input at step ``t0 + j``."""
    c, s = borrow_all(c), borrow_all(s)
    codes, cond, out, out_offs, out_sizes = borrow_all((codes, cond, out, out_offs, out_sizes))
    n = codes.shape[1]
    C = cond.shape[2]
    cur = np.empty(nb, np.int32)
    for j in range(n):
        for b in range(nb):
            cur[b] = codes[b, j]
        _set_cond(s.arena, nb, cond, j, cond_off, C)
        step(c, s, nb, t0 + j, cur)
        copy_outputs(s.arena, nb, out, j, out_offs, out_sizes)


@kernel
def generate_cond(c, s, nb, t0, first, cond, cond_off, out, probs_off, logits_off, mode,
                  table, rng):
    """Free-running steps like :func:`._engine_kernels.generate`, with ``cond`` int8
    (nb, n, C) set before each step."""
    c, s = borrow_all(c), borrow_all(s)
    cond, out, table, rng = borrow_all((cond, out, table, rng))
    n = out.shape[1]
    C = cond.shape[2]
    cur = first.copy()
    weights = np.empty(256, np.int64)
    logits = np.empty(256, np.int8)
    for j in range(n):
        _set_cond(s.arena, nb, cond, j, cond_off, C)
        step(c, s, nb, t0 + j, cur)
        for b in range(nb):
            if nb == 1:
                code = sample_one(mode, s.arena, logits_off, table, rng, b, weights)
            else:
                gather_minor(logits, 0, nb, b, s.arena, logits_off * nb, 256)
                code = sample_one(mode, logits, 0, table, rng, b, weights)
            out[b, j] = code
            cur[b] = code
