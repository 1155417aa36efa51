"""Operation counts of ONE invocation of a step graph (= one generated sample), read from the graph.

Counted per operator, from tensor shapes only (no coefficients here, so a later cost model — e.g.
QEMU-measured cycles per kernel — can reuse the counts):

* FULLY_CONNECTED: ``macs`` = out × in of its weight matrix; ``requants`` = out (one int32 → int8
  requantization per output); ``weight_bytes`` = weight + bias bytes read per step.
* ADD / MUL: ``elements`` of the output (each needs its rescales; see the cost model).
* TANH / LOGISTIC: ``elements`` ("transcendental" table/fixed-point ops).
* SOFTMAX: ``elements``.
* CONCATENATION / GATHER / RESHAPE and others that move data: ``copy_bytes`` of the output, one copy
  call per input (GATHER: one row).
* Delay-line traffic (from ``Model.metadata["wavenet_edge"]``): the host copies every ``read``
  tensor in (channels bytes each) and pushes every distinct ``write`` (channels bytes each) per step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from wavenet_edge.contract import read_contract
from wavenet_edge.errors import ModelFileError
from wavenet_edge.graph_spec import concat_tree

__all__ = ["OpCount", "StepCounts", "count_ops", "count_frame_ops", "contract_metadata",
           "CATEGORIES"]

#: cost category of each operator
CATEGORIES = {
    "FULLY_CONNECTED": "fully_connected",
    "ADD": "add", "MUL": "mul",
    "TANH": "transcendental", "LOGISTIC": "transcendental",
    "SOFTMAX": "softmax",
    "CONCATENATION": "copy", "GATHER": "copy", "RESHAPE": "copy",
    # a vocoder's per-layer QUANTIZE of the cond row: one requantization per element (TFLM
    # Requantize), priced like a MUL element (the C engine runs it as a table lookup)
    "QUANTIZE": "mul",
}


@dataclass(frozen=True)
class OpCount:
    """Work of one operator per step (counts, no cycles)."""

    index: int
    opcode: str
    output: str
    category: str
    macs: int = 0
    requants: int = 0
    elements: int = 0
    copy_bytes: int = 0
    copy_calls: int = 0
    weight_bytes: int = 0


@dataclass
class StepCounts:
    """All operators of one step plus the delay-line traffic; totals as properties."""

    ops: list
    delay_read_bytes: int
    delay_write_bytes: int
    delay_reads: int
    delay_writes: int
    constant_bytes: int
    extra: dict = field(default_factory=dict)

    def total(self, key: str) -> int:
        return int(sum(getattr(o, key) for o in self.ops))

    @property
    def macs(self) -> int:
        return self.total("macs")

    @property
    def n_ops(self) -> int:
        return len(self.ops)

    def by_category(self) -> dict:
        out = {}
        for o in self.ops:
            c = out.setdefault(o.category, Counter())
            c["ops"] += 1
            for k in ("macs", "requants", "elements", "copy_bytes", "copy_calls", "weight_bytes"):
                c[k] += getattr(o, k)
        return {k: dict(v) for k, v in out.items()}

    def opcode_histogram(self) -> dict:
        return dict(Counter(o.opcode for o in self.ops))

    def to_dict(self) -> dict:
        return {"n_ops": self.n_ops, "macs": self.macs, "requants": self.total("requants"),
                "weight_bytes_per_step": self.total("weight_bytes"),
                "constant_bytes": self.constant_bytes,
                "delay_line_read_bytes_per_step": self.delay_read_bytes,
                "delay_line_write_bytes_per_step": self.delay_write_bytes,
                "delay_line_reads": self.delay_reads, "delay_line_writes": self.delay_writes,
                "by_category": self.by_category(), "opcodes": self.opcode_histogram(),
                "ops": [asdict(o) for o in self.ops], **self.extra}


def contract_metadata(model) -> dict:
    """The ``wavenet_edge`` metadata (delay-line contract) of a parsed model, as a dict, checked
    against the graph by :func:`wavenet_edge.contract.read_contract`."""
    return read_contract(model).metadata


def _nelem(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def count_ops(model) -> StepCounts:
    """Counts of one step of ``model`` (a :class:`wavenet_edge.tflite_file.TFLiteModel`)."""
    T = model.tensors
    ops = _op_counts(model)
    contract = read_contract(model)
    reads = sum(_nelem(model.tensor(dl.read).shape) * model.tensor(dl.read).dtype.itemsize
                for dl in contract.delay_lines)
    writes = sum(_nelem(model.tensor(w).shape) * model.tensor(w).dtype.itemsize
                 for w in contract.writes)
    n_reads = len(contract.delay_lines)
    const = sum(t.data.nbytes for t in T if t.data is not None)
    return StepCounts(ops=ops, delay_read_bytes=reads, delay_write_bytes=writes,
                      delay_reads=n_reads, delay_writes=len(contract.writes), constant_bytes=int(const))


def count_frame_ops(frame_model) -> StepCounts:
    """Counts of ONE call of a vocoder's frame graph (the flatbuffer in the step graph's
    ``wavenet_edge_frames`` metadata, :mod:`wavenet_edge.lowered.frames`; one call per ``hop``
    samples), its frame delay lines included."""
    from wavenet_edge.lowered.frames import read_frame_contract
    c = read_frame_contract(frame_model)

    def nbytes(name):
        t = frame_model.tensor(name)
        return _nelem(t.shape) * t.dtype.itemsize
    dls = c["delay_lines"]
    writes = list(dict.fromkeys(dl["write"] for dl in dls))
    const = sum(t.data.nbytes for t in frame_model.tensors if t.data is not None)
    return StepCounts(ops=_op_counts(frame_model),
                      delay_read_bytes=sum(nbytes(dl["read"]) for dl in dls),
                      delay_write_bytes=sum(nbytes(w) for w in writes), delay_reads=len(dls),
                      delay_writes=len(writes), constant_bytes=int(const))


def _op_counts(model) -> list:
    T = model.tensors
    ops = []
    for op in model.operators:
        outs = [T[i] for i in op.outputs if i >= 0]
        ins = [T[i] for i in op.inputs if i >= 0]
        out = outs[0] if outs else None
        n_out = _nelem(out.shape) if out is not None else 0
        itemsize = out.dtype.itemsize if out is not None else 1
        cat = CATEGORIES.get(op.opcode, "copy")
        kw = {}
        if op.opcode == "FULLY_CONNECTED":
            w = T[op.inputs[1]]
            if len(w.shape) != 2:
                raise ModelFileError(f"FULLY_CONNECTED {op.index}: weights are not 2-D",
                                     path=model.name)
            n_rows, n_in = int(w.shape[0]), int(w.shape[1])
            batch = max(1, n_out // max(1, n_rows))
            wb = _nelem(w.shape) * w.dtype.itemsize
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                b = T[op.inputs[2]]
                wb += _nelem(b.shape) * b.dtype.itemsize
            kw = dict(macs=batch * n_rows * n_in, requants=n_out, weight_bytes=wb)
        elif cat in ("add", "mul", "transcendental", "softmax"):
            kw = dict(elements=n_out, requants=n_out if cat in ("add", "mul") else 0)
        else:
            calls = 1 if op.opcode == "GATHER" else max(1, len(ins))
            kw = dict(copy_bytes=n_out * itemsize, copy_calls=calls)
            if op.opcode == "GATHER":
                kw["weight_bytes"] = n_out * itemsize
        ops.append(OpCount(index=op.index, opcode=op.opcode, output=out.name if out else "",
                           category=cat, **kw))
    return ops


# -- the same counts from a config alone (the graph is determined by it, docs/step-graph.md) -------
def _concat_tree(widths) -> list:
    """Widths of the CONCATENATION operators the spec emits over ``widths``
    (:func:`wavenet_edge.graph_spec.concat_tree`), as ``(n_inputs, out_width)`` in creation order,
    the final one last."""
    ops = []

    def merge(chunk, final):
        ops.append((len(chunk), sum(chunk)))
        return sum(chunk)

    concat_tree(widths, merge)
    return ops


def counts_from_config(cfg) -> StepCounts:
    """:class:`StepCounts` of the step graph the spec defines for ``cfg`` (a WaveNetConfig),
    without building it; ``extra`` holds ``n_tensors`` and ``constant_bytes`` breakdown.  Equal to
    :func:`count_ops` of a converted graph (tested), so candidate configs can be costed cheaply."""
    R, G, S, E, Q = (cfg.residual_channels, cfg.dilation_channels, cfg.skip_channels,
                     cfg.end_channels, cfg.quantization_channels)
    L, k, w = cfg.n_layers, cfg.kernel_size, cfg.initial_filter_width
    C = cfg.gc_channels if cfg.has_gc else 0
    ops = []
    n_tensors = 1 + (1 if cfg.has_gc else 0)           # sample, speaker
    n_reads = (w - 1) + L * (k - 1)
    n_tensors += n_reads
    const = 0

    def add(opcode, out, cat, **kw):
        ops.append(OpCount(index=len(ops), opcode=opcode, output=out, category=cat, **kw))

    def fc(out, n_out, n_in):
        nonlocal const, n_tensors
        wb = n_out * n_in + 4 * n_out
        const += wb
        n_tensors += 3
        add("FULLY_CONNECTED", out, "fully_connected", macs=n_out * n_in, requants=n_out,
            weight_bytes=wb)

    def concat(prefix, widths, final):
        nonlocal n_tensors
        tree = _concat_tree(widths)
        for i, (n_in, width) in enumerate(tree):
            name = final if i == len(tree) - 1 else f"{prefix}concat{i}"
            add("CONCATENATION", name, "copy", copy_bytes=width, copy_calls=n_in)
        n_tensors += len(tree)

    if w == 1:
        const += Q * R
        n_tensors += 2
        add("GATHER", "layer00/input", "copy", copy_bytes=R, copy_calls=1, weight_bytes=R)
    else:
        for j in range(w):
            const += Q * R
            n_tensors += 2
            add("GATHER", f"initial/contrib{j}", "copy", copy_bytes=R, copy_calls=1,
                weight_bytes=R)
        concat("initial/", [R] * w, "initial/taps")
        fc("layer00/input", R, w * R)
    for l in range(L):
        p = f"layer{l:02d}/"
        if cfg.has_gc:
            const += cfg.gc_cardinality * C
            n_tensors += 2
            add("GATHER", p + "speaker", "copy", copy_bytes=C, copy_calls=1, weight_bytes=C)
        concat(p, [R] * k + ([C] if C else []), p + "taps")
        fc(p + "filter", G, k * R + C)
        fc(p + "gate", G, k * R + C)
        add("TANH", p + "filter_tanh", "transcendental", elements=G)
        add("LOGISTIC", p + "gate_sigmoid", "transcendental", elements=G)
        add("MUL", p + "gated", "mul", elements=G, requants=G)
        n_tensors += 3
        if l < L - 1:
            fc(p + "residual", R, G)
            add("ADD", f"layer{l + 1:02d}/input", "add", elements=R, requants=R)
            n_tensors += 1
    if L > 1:
        concat("skip/", [G] * L, "skip/gated_all")
    fc("skip/relu", S, L * G)
    fc("end/hidden", E, S)
    fc("logits", Q, E)
    add("SOFTMAX", "probs", "softmax", elements=Q)
    n_tensors += 1
    writes = (w - 1) + L
    return StepCounts(ops=ops, delay_read_bytes=n_reads * R, delay_write_bytes=writes * R,
                      delay_reads=n_reads, delay_writes=writes, constant_bytes=const,
                      extra={"n_tensors": n_tensors})
