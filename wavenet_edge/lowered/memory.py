"""Memory plan of a lowered program: one int8 arena per stream, delay-line rings.

CONCATENATION is free: its inputs are laid out contiguously inside its output (recursively, for
concatenation trees), so no bytes move; RESHAPE aliases its input.  Where a layout constraint
cannot be met (a tensor concatenated twice, a constant input) the op becomes a COPY.  Each root
tensor starts on a 64-byte boundary (cache lines; the engine's vector loads).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFileError
from .kinds import READ_DTYPE, WRITE_DTYPE
from .validate import qparams, size

__all__ = ["ArenaPlan", "plan_arena", "DelayPlan", "plan_delay_lines"]


@dataclass(frozen=True)
class ArenaPlan:
    """``offsets``: tensor index -> arena byte offset of every activation; ``copies``: indices
    of the CONCATENATION/RESHAPE operators that must copy; ``size``: arena bytes."""

    offsets: dict
    copies: frozenset
    size: int


def _flat_concat(op, model) -> bool:
    """True when concatenating along ``axis`` is a plain byte concatenation (all leading dims 1)."""
    out = model.tensors[op.outputs[0]]
    rank = len(out.shape)
    axis = op.options.get("axis", 0)
    if axis < 0:
        axis += rank
    return 0 <= axis < rank and int(np.prod(out.shape[:axis])) == 1


def _aliases(model, inputs):
    """tensor -> (parent tensor, byte offset inside it), and the operators that must copy."""
    T = model.tensors
    path = model.name
    parent = {}
    copies = set()
    for op in model.operators:
        o = op.outputs[0]
        if op.opcode == "CONCATENATION":
            ins = list(op.inputs)
            ok = (_flat_concat(op, model) and len(set(ins)) == len(ins)
                  and all(inputs.is_activation(model, i) and i not in parent
                          and T[i].dtype == np.int8 for i in ins))
            if not ok:
                copies.add(op.index)
                continue
            off = 0
            for i in ins:
                parent[i] = (o, off)
                off += size(T[i])
            if off != size(T[o]):
                raise ModelFileError(f"CONCATENATION {op.index}: input sizes do not add up to "
                                     f"the output", path=path)
        elif op.opcode == "RESHAPE":
            i = op.inputs[0]
            if size(T[i]) != size(T[o]):
                raise ModelFileError(f"RESHAPE {op.index}: element count changes", path=path)
            if o not in parent and inputs.is_activation(model, i):
                parent[o] = (i, 0)
            elif i not in parent and inputs.is_activation(model, i):
                parent[i] = (o, 0)
            else:
                copies.add(op.index)
    return parent, copies


def plan_arena(model, inputs) -> ArenaPlan:
    """Arena offsets of every activation tensor (``inputs``: :class:`GraphInputs`)."""
    T = model.tensors
    path = model.name
    parent, copies = _aliases(model, inputs)

    def root_of(t):
        off = 0
        for _ in range(len(T) + 1):
            if t not in parent:
                return t, off
            t, o = parent[t]
            off += o
        raise ModelFileError("cyclic tensor aliasing (RESHAPE/CONCATENATION loop)", path=path)

    roots, offsets, end = {}, {}, 0
    for i in range(len(T)):
        if not inputs.is_activation(model, i):
            continue
        if T[i].dtype != np.int8:
            raise ModelFileError(f"activation tensor {T[i].name!r} must be int8, is {T[i].dtype}",
                                 path=path)
        r, off = root_of(i)
        if r not in roots:
            roots[r] = end
            end = (end + size(T[r]) + 63) // 64 * 64
        offsets[i] = roots[r] + off
    for op in model.operators:
        for i in op.inputs:
            if inputs.is_activation(model, i) and i not in offsets:
                raise ModelFileError(f"operator {op.index} reads {T[i].name!r}, which nothing "
                                     f"produces", path=path)
    return ArenaPlan(offsets, frozenset(copies), max(end, 64))


@dataclass(frozen=True)
class DelayPlan:
    """``reads`` READ_DTYPE (contract order), ``writes`` WRITE_DTYPE (distinct writes in order
    of first use), ``write_names``, ``ring_size`` bytes (per stream)."""

    reads: np.ndarray
    writes: np.ndarray
    write_names: tuple
    ring_size: int


def plan_delay_lines(model, contract, offsets) -> DelayPlan:
    """One ring per distinct write, as long as the largest delay read from it."""
    path = model.name
    dls = contract["delay_lines"]
    names, longest = [], {}
    for dl in dls:
        w = dl["write"]
        if w not in longest:
            names.append(w)
            longest[w] = 0
        longest[w] = max(longest[w], int(dl["delay"]))
    writes = np.zeros(len(names), WRITE_DTYPE)
    ring = 0
    for k, w in enumerate(names):
        t = model.tensor(w)
        if t.index not in offsets:
            raise ModelFileError(f"delay-line write {w!r} is not produced by any operator",
                                 path=path)
        writes[k] = (offsets[t.index], ring, longest[w], size(t))
        ring += longest[w] * size(t)
    reads = np.zeros(len(dls), READ_DTYPE)
    for k, dl in enumerate(dls):
        r = model.tensor(dl["read"])
        reads[k] = (offsets[r.index], int(dl["delay"]), size(r), qparams(r, path)[1],
                    names.index(dl["write"]))
    return DelayPlan(reads, writes, tuple(names), max(ring, 1))
