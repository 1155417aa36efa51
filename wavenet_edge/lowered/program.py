"""The lowered program: a ``.tflite`` step graph as int8 operator records and parameter arrays.

:func:`lower` is the one place a step graph is turned into arithmetic: validation
(:mod:`.validate`), memory planning (:mod:`.memory`) and one lowering function per operator
(:mod:`.ops`), every parameter computed with :mod:`wavenet_edge.int8` for one runtime profile.
The Numba engine schedules it (fusions, SIMD layouts: :mod:`wavenet_edge.program`) and the C
export writes it out as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..contract import parse_contract
from ..int8 import requant as _rq
from ..int8 import softmax_arm64 as _sm64
from .. import profiles as _profiles
from ..profiles import resolve_profile
from .kinds import OP_DTYPE, OpKind
from .memory import plan_arena, plan_delay_lines
from .ops import LOWERINGS, Blobs, Context
from .validate import qparams, size, validate_graph

__all__ = ["Program", "lower", "assemble", "PROFILES"]

PROFILES = _profiles.PROFILES


@dataclass(frozen=True, eq=False)
class Program:
    """One step of a WaveNet as int8 records (immutable; shared by every stream and back end).

    ops : OP_DTYPE (n_ops,) in execution order, one per graph operator (CONCATENATION and
        RESHAPE only where they must copy)
    wblob : int8, GATHER tables and FC weights (row-major [n, cols])
    bblob, mult, shift : int32, fmul : float64 — per FC output channel at ``q``: the bias with
        the input zero point folded in (:func:`wavenet_edge.int8.fold_input_offset`) and the
        requantization (:func:`wavenet_edge.int8.fc_params`)
    iparams : int64, fparams : float64 — per-op scalars at ``p`` / ``f``: FC ``FC_*`` slots,
        ADD/MUL the ``ip``/``fp`` vectors of :mod:`wavenet_edge.int8.elementwise` (its slot
        names), SOFTMAX ``SM_*`` slots
    tables : int8 (n_luts, 256) TANH/LOGISTIC tables indexed by ``q + 128``
    sm_exps : int32 (n_softmax, 256) :func:`wavenet_edge.int8.softmax_exp_table` (the aarch64
        LiteRT profiles, :attr:`softmax_uint16`: ``int8.softmax_arm64.softmax_uint16_table``);
        sm_tables : float32 (n_softmax, 256), sm_scales : float64 — the float profiles' table
    reads : READ_DTYPE, writes : WRITE_DTYPE — the delay lines (contract order)
    arena_size, ring_size : bytes per stream; probs_off, logits_off : arena offsets of outputs
    """

    ops: np.ndarray
    wblob: np.ndarray
    bblob: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    fmul: np.ndarray
    iparams: np.ndarray
    fparams: np.ndarray
    tables: np.ndarray
    sm_exps: np.ndarray
    sm_tables: np.ndarray
    sm_scales: np.ndarray
    reads: np.ndarray
    writes: np.ndarray
    write_names: tuple
    arena_size: int
    ring_size: int
    probs_off: int
    logits_off: int
    n_classes: int
    logits_scale: float
    logits_zero_point: int
    probs_scale: float
    probs_zero_point: int
    profile: str
    profile_id: int
    #: tensor name -> (arena offset, size in bytes) of every int8 activation in the arena
    tensor_offsets: dict = field(default_factory=dict)
    #: op counts by opcode name, as written in the file
    op_counts: dict = field(default_factory=dict)
    macs_per_sample: int = 0

    @property
    def softmax_uint16(self) -> bool:
        """SOFTMAX runs the aarch64 LiteRT uint16-table kernel on ``sm_exps``."""
        return _sm64.uses_uint16_softmax(self.profile)

    def rows(self, kind: OpKind) -> np.ndarray:
        """The records of one kind (a copy)."""
        return self.ops[self.ops["kind"] == int(kind)]


def _stack(parts, dtype, width=None):
    if width is not None:
        return (np.asarray(parts, dtype).reshape(-1, width) if parts
                else np.zeros((1, width), dtype))
    return (np.ascontiguousarray(np.concatenate([np.asarray(p, dtype).ravel() for p in parts]))
            if parts else np.zeros(1, dtype))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def lower(model, *, profile: str = "tflm", contract: dict | None = None) -> Program:
    """Lower a :class:`~wavenet_edge.tflite_file.TFLiteModel` for int8 ``profile`` (``"tflm"``,
    ``"litert"``, …, see :mod:`wavenet_edge.int8`).  Raises :class:`ModelFileError` naming the
    first unsupported or inconsistent operator or tensor, :class:`UnknownProfileError` for an
    unknown profile (aliases of :mod:`wavenet_edge.profiles` are accepted)."""
    profile = resolve_profile(profile)
    if contract is None:
        contract = parse_contract(model)
    inputs = validate_graph(model, contract)
    return assemble(model, contract, inputs, profile,
                    model.tensor(contract["outputs"]["probabilities"]),
                    model.tensor(contract["outputs"]["logits"]))


def assemble(model, contract, inputs, profile, probs, logits, n_classes=256) -> Program:
    """Memory plan, one lowering per operator and the delay lines of a validated graph
    (``inputs``: :class:`~.validate.GraphInputs`); ``probs``/``logits`` are the output tensors
    whose offsets and quantization the program records (a frame graph passes its block twice)."""
    path = model.name
    arena = plan_arena(model, inputs)
    ctx = Context(model, arena, inputs, contract, profile)
    b = Blobs()
    for op in model.operators:
        LOWERINGS[op.opcode](op, ctx, b)
    delay = plan_delay_lines(model, contract, arena.offsets)
    ps, pzp = qparams(probs, path)
    ls, lzp = qparams(logits, path)
    T = model.tensors
    arrays = dict(
        ops=np.array(b.rows, OP_DTYPE).reshape(-1),
        wblob=_stack(b.weights, np.int8), bblob=_stack(b.bias, np.int32),
        mult=_stack(b.mult, np.int32), shift=_stack(b.shift, np.int32),
        fmul=_stack(b.fmul, np.float64),
        iparams=np.asarray(b.iparams or [0], np.int64),
        fparams=np.asarray(b.fparams or [0.0], np.float64),
        tables=_stack(b.luts, np.int8, 256), sm_exps=_stack(b.sm_exps, np.int32, 256),
        sm_tables=_stack(b.sm_tables, np.float32, 256),
        sm_scales=np.asarray(b.sm_scales or [1.0], np.float64),
        reads=delay.reads, writes=delay.writes)
    return Program(
        **{k: _readonly(v) for k, v in arrays.items()},
        write_names=delay.write_names, arena_size=arena.size, ring_size=delay.ring_size,
        probs_off=arena.offsets[probs.index], logits_off=arena.offsets[logits.index],
        n_classes=n_classes, logits_scale=ls, logits_zero_point=lzp, probs_scale=ps,
        probs_zero_point=pzp, profile=profile, profile_id=_rq.profile_id(profile),
        tensor_offsets={T[i].name: (off, size(T[i])) for i, off in arena.offsets.items()},
        op_counts=dict(inputs.op_counts), macs_per_sample=b.macs)
