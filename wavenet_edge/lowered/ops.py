"""One lowering function per operator: a graph operator -> program rows and parameters.

Each function validates its operator and appends to a :class:`Blobs`; every number it stores
comes from :mod:`wavenet_edge.int8` (requantization, bias folding, activation tables, ADD/MUL
parameters, SOFTMAX exponentials), so no consumer of the program derives arithmetic itself.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError
from ..int8 import activations as _act
from ..int8 import elementwise as _ew
from ..int8 import quantize as _qz
from ..int8 import requant as _rq
from ..int8 import softmax as _sm
from ..int8 import softmax_arm64 as _sm64
from .kinds import GATHER_CODE, GATHER_SPEAKER, OP_DTYPE, OpKind
from .validate import qparams, size

__all__ = ["Blobs", "LOWERINGS"]


class Blobs:
    """Growing parameter arrays of a program under construction, and its rows."""

    def __init__(self):
        self.rows = []
        self.weights, self.wlen = [], 0
        self.bias, self.mult, self.shift, self.fmul, self.qlen = [], [], [], [], 0
        self.iparams, self.fparams = [], []
        self.luts, self.sm_exps, self.sm_tables, self.sm_scales = [], [], [], []
        self.macs = 0

    def row(self, kind, **fields):
        r = np.zeros((), OP_DTYPE)
        r["kind"] = int(kind)
        for k, v in fields.items():
            r[k] = int(v)
        self.rows.append(r)

    def add_weights(self, a) -> int:
        a = np.ascontiguousarray(a, np.int8).ravel()
        self.weights.append(a)
        self.wlen += a.size
        return self.wlen - a.size

    def add_channels(self, bias, mult, shift, fmul) -> int:
        self.bias.append(np.asarray(bias, np.int32))
        self.mult.append(np.asarray(mult, np.int32))
        self.shift.append(np.asarray(shift, np.int32))
        self.fmul.append(np.asarray(fmul, np.float64))
        self.qlen += len(bias)
        return self.qlen - len(bias)

    def add_iparams(self, vals) -> int:
        self.iparams.extend(int(v) for v in vals)
        return len(self.iparams) - len(vals)

    def add_fparams(self, vals) -> int:
        self.fparams.extend(float(v) for v in vals)
        return len(self.fparams) - len(vals)


class Context:
    """What every lowering function reads: the model, the arena offsets, the inputs, profile."""

    def __init__(self, model, arena, inputs, contract, profile):
        self.model, self.T, self.path = model, model.tensors, model.name
        self.offsets, self.copies = arena.offsets, arena.copies
        self.inputs, self.contract, self.profile = inputs, contract, profile

    def bad(self, msg):
        return ModelFileError(msg, path=self.path)

    def q(self, i):
        return qparams(self.T[i], self.path)

    def act(self, op):
        return op.options.get("fused_activation_function", "NONE")


def lower_concatenation(op, c: Context, b: Blobs):
    o = op.outputs[0]
    for i in op.inputs:
        if c.q(i) != c.q(o):
            raise c.bad(f"CONCATENATION {op.index}: input {c.T[i].name!r} is quantized "
                        f"differently from the output (requantizing concat not supported)")
    if op.index not in c.copies:
        return   # aliased: free
    # along ``axis`` with ``outer`` leading elements: each input contributes one chunk of
    # size/outer bytes to every row of the output (one COPY per input, or per input and row)
    shape = c.T[o].shape
    axis = op.options.get("axis", 0)
    axis = axis + len(shape) if axis < 0 else axis
    outer = int(np.prod(shape[:axis])) if 0 <= axis < len(shape) else 1
    row = size(c.T[o]) // max(outer, 1)
    off = 0
    for i in op.inputs:
        if c.T[i].data is not None:
            raise c.bad(f"CONCATENATION {op.index}: constant inputs are not supported")
        chunk = size(c.T[i]) // max(outer, 1)
        if outer == 1:
            b.row(OpKind.COPY, in0=c.offsets[i], out=c.offsets[o] + off, n=chunk)
        else:
            for k in range(outer):
                b.row(OpKind.COPY, in0=c.offsets[i] + k * chunk,
                      out=c.offsets[o] + k * row + off, n=chunk)
        off += chunk


def lower_reshape(op, c: Context, b: Blobs):
    if op.index not in c.copies:
        return
    i, o = op.inputs[0], op.outputs[0]
    if c.T[i].data is not None:
        raise c.bad(f"RESHAPE {op.index} of a constant is not supported")
    b.row(OpKind.COPY, in0=c.offsets[i], out=c.offsets[o], n=size(c.T[o]))


def lower_slice(op, c: Context, b: Blobs):
    """SLICE of an activation by constant begin/size (the frame graph's band windows, F > 1):
    COPY rows, one per contiguous run of the slice."""
    x, o = op.inputs[0], op.outputs[0]
    what = f"SLICE {op.index}"
    if x not in c.offsets or len(op.inputs) != 3:
        raise c.bad(f"{what}: input must be an activation with constant begin and size")
    cons = [c.T[i].data for i in op.inputs[1:]]
    if any(d is None for d in cons):
        raise c.bad(f"{what}: begin and size must be constant")
    if c.q(x) != c.q(o):
        raise c.bad(f"{what}: input and output quantization differ")
    shape = [int(v) for v in c.T[x].shape]
    begin = [int(v) for v in np.asarray(cons[0]).ravel()]
    ext = [int(v) for v in np.asarray(cons[1]).ravel()]
    if len(begin) != len(shape) or len(ext) != len(shape):
        raise c.bad(f"{what}: begin/size rank differs from the input's {len(shape)}")
    ext = [n - a if e == -1 else e for n, a, e in zip(shape, begin, ext)]
    if (any(a < 0 or e < 0 or a + e > n for n, a, e in zip(shape, begin, ext))
            or int(np.prod(ext)) != size(c.T[o])):
        raise c.bad(f"{what}: begin {begin} size {ext} do not fit input {shape} -> "
                    f"{list(c.T[o].shape)}")
    # the innermost dims the slice takes whole form one run with the dim before them
    d = len(shape) - 1
    while d > 0 and begin[d] == 0 and ext[d] == shape[d]:
        d -= 1
    inner = int(np.prod(shape[d + 1:]))
    run = ext[d] * inner if shape else 1
    strides = [int(np.prod(shape[k + 1:])) for k in range(len(shape))]
    out = c.offsets[o]
    for idx in np.ndindex(*ext[:d]):
        src = sum((a + i) * st for a, i, st in zip(begin, idx, strides)) + begin[d] * inner
        b.row(OpKind.COPY, in0=c.offsets[x] + src, out=out, n=run)
        out += run


def lower_gather(op, c: Context, b: Blobs):
    tbl, idx, o = op.inputs[0], op.inputs[1], op.outputs[0]
    if c.T[tbl].data is None or c.T[tbl].dtype != np.int8:
        raise c.bad(f"GATHER {op.index}: the table must be a constant int8 tensor")
    if idx not in (c.inputs.sample, c.inputs.speaker):
        raise c.bad(f"GATHER {op.index}: indices must be the sample or speaker input")
    if op.options.get("axis", 0) != 0 or op.options.get("batch_dims", 0) != 0:
        raise c.bad(f"GATHER {op.index}: only axis 0 is supported")
    if c.q(tbl) != c.q(o):
        raise c.bad(f"GATHER {op.index}: table and output quantization differ")
    data = np.asarray(c.T[tbl].data)
    nrow = data.shape[0]
    width = data.size // nrow
    if width != size(c.T[o]):
        raise c.bad(f"GATHER {op.index}: output size {size(c.T[o])} != table row size {width}")
    spk = c.contract.get("speaker_input")
    if idx == c.inputs.sample and nrow < 256:
        raise c.bad(f"GATHER {op.index}: sample table has {nrow} rows, need 256")
    if idx == c.inputs.speaker and spk and nrow < int(spk["cardinality"]):
        raise c.bad(f"GATHER {op.index}: speaker table has {nrow} rows, fewer than the speakers")
    b.row(OpKind.GATHER, out=c.offsets[o], n=width, cols=nrow, w=b.add_weights(data),
          aux=GATHER_CODE if idx == c.inputs.sample else GATHER_SPEAKER)


def lower_fully_connected(op, c: Context, b: Blobs):
    x, w, o = op.inputs[0], op.inputs[1], op.outputs[0]
    bi = op.inputs[2] if len(op.inputs) > 2 else -1
    what = f"FULLY_CONNECTED {op.index}"
    if x not in c.offsets:
        raise c.bad(f"{what}: input must be an activation")
    W = c.T[w]
    if W.data is None or W.dtype != np.int8 or len(W.shape) != 2:
        raise c.bad(f"{what}: weights must be a constant int8 matrix")
    if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
        raise c.bad(f"{what}: shuffled weights are not supported")
    nout, nin = W.shape
    # a batch of ``rows`` input rows (the frame graph's FIR: one per feature channel) shares
    # the weights and requantization: one record per row
    rows = size(c.T[x]) // nin if nin else 0
    if (rows < 1 or size(c.T[x]) != rows * nin or size(c.T[o]) != rows * nout
            or c.T[x].shape[-1] != nin):
        raise c.bad(f"{what}: shapes {c.T[x].shape} x {W.shape} -> {c.T[o].shape}")
    if rows > 1 and c.profile == "litert-arm64":
        raise c.bad(f"{what}: a batched FULLY_CONNECTED rounds like litert-ref in the aarch64 "
                    f"LiteRT build (not modelled); use the litert-ref or x86 profiles")
    if np.any(W.zero_point != 0):
        raise c.bad(f"{what}: weight zero points must be 0")
    wscale = np.asarray(W.scale, dtype=np.float32)
    if wscale.size not in (1, nout) or (wscale.size > 1 and W.quantized_dimension != 0):
        raise c.bad(f"{what}: weight scales must be per tensor or per output channel")
    (xs, xzp), (os_, ozp) = c.q(x), c.q(o)
    wdata = np.asarray(W.data, dtype=np.int8).reshape(nout, nin)
    if bi >= 0:
        if c.T[bi].data is None or c.T[bi].dtype != np.int32 or size(c.T[bi]) != nout:
            raise c.bad(f"{what}: bias must be a constant int32 vector of {nout}")
        bias = np.asarray(c.T[bi].data, dtype=np.int64).ravel()
    else:
        bias = np.zeros(nout, np.int64)
    fp = _rq.fc_params(xs, xzp, wscale, os_, ozp, c.act(op), c.profile, n_out=nout)
    q = b.add_channels(_rq.fold_input_offset(bias, wdata, xzp), fp.multiplier, fp.shift, fp.fmul)
    w_off, p = b.add_weights(wdata), b.add_iparams([ozp, fp.act_min, fp.act_max])
    for k in range(rows):
        b.row(OpKind.FC, in0=c.offsets[x] + k * nin, out=c.offsets[o] + k * nout, n=nout,
              cols=nin, w=w_off, q=q, p=p)
    b.macs += rows * nout * nin


def lower_elementwise(op, c: Context, b: Blobs):
    a, d, o = op.inputs[0], op.inputs[1], op.outputs[0]
    if a not in c.offsets or d not in c.offsets:
        raise c.bad(f"{op.opcode} {op.index}: both inputs must be activations")
    n = size(c.T[o])
    if size(c.T[a]) != n or size(c.T[d]) != n:
        raise c.bad(f"{op.opcode} {op.index}: broadcasting is not supported")
    (s1, z1), (s2, z2), (so, zo) = c.q(a), c.q(d), c.q(o)
    fn = _ew.add_params if op.opcode == "ADD" else _ew.mul_params
    ep = fn(s1, z1, s2, z2, so, zo, c.act(op), c.profile)
    b.row(OpKind.ADD if op.opcode == "ADD" else OpKind.MUL, in0=c.offsets[a], in1=c.offsets[d],
          out=c.offsets[o], n=n, p=b.add_iparams(ep.ip), f=b.add_fparams(ep.fp))


def lower_activation(op, c: Context, b: Blobs):
    a, o = op.inputs[0], op.outputs[0]
    if a not in c.offsets or size(c.T[a]) != size(c.T[o]):
        raise c.bad(f"{op.opcode} {op.index}: bad input")
    (sa, za), (so, zo) = c.q(a), c.q(o)
    fn = _act.tanh_table if op.opcode == "TANH" else _act.logistic_table
    tbl = np.asarray(fn(sa, za, c.profile, out_scale=so, out_zp=zo), dtype=np.int8)
    if tbl.shape != (256,):
        raise c.bad(f"{op.opcode} {op.index}: lookup table must have 256 entries")
    b.luts.append(tbl)
    b.row(OpKind.LUT, in0=c.offsets[a], out=c.offsets[o], n=size(c.T[o]), aux=len(b.luts) - 1)


def lower_softmax(op, c: Context, b: Blobs):
    a, o = op.inputs[0], op.outputs[0]
    if a not in c.offsets or size(c.T[a]) != size(c.T[o]):
        raise c.bad(f"SOFTMAX {op.index}: bad input")
    (sa, _), (so, zo) = c.q(a), c.q(o)
    sp = _sm.softmax_params(sa, float(op.options.get("beta", 1.0)), c.profile,
                            out_scale=so, out_zp=zo)
    b.sm_tables.append(np.asarray(sp.table, np.float32))
    # the aarch64 LiteRT builds normalize a uint16 exp table instead (program docstring)
    b.sm_exps.append(_sm64.softmax_uint16_table(sa, float(op.options.get("beta", 1.0)))
                     if _sm64.uses_uint16_softmax(c.profile)
                     else _sm.softmax_exp_table(sp.multiplier, sp.left_shift, sp.diff_min))
    b.sm_scales.append(sp.out_scale)
    b.row(OpKind.SOFTMAX, in0=c.offsets[a], out=c.offsets[o], n=size(c.T[o]),
          p=b.add_iparams([sp.multiplier, sp.left_shift, sp.diff_min]), aux=len(b.sm_exps) - 1)


def lower_quantize(op, c: Context, b: Blobs):
    """int8 → int8 QUANTIZE as table lookups: the value depends on the input only
    (:func:`wavenet_edge.int8.quantize_tables`); LiteRT rounds its blocks of 16 and its tail
    differently, so those are two LUT rows over the two index ranges."""
    a, o = op.inputs[0], op.outputs[0]
    if a not in c.offsets or size(c.T[a]) != size(c.T[o]) or c.T[a].dtype != np.int8:
        raise c.bad(f"QUANTIZE {op.index}: only int8 -> int8 requantization of an activation "
                    f"is supported")
    (sa, za), (so, zo) = c.q(a), c.q(o)
    n = size(c.T[o])
    blk, tail = _qz.quantize_tables(_qz.quantize_params(sa, za, so, zo, c.profile))
    blocked = n // 16 * 16
    parts = [(0, blocked, blk), (blocked, n, tail)]
    if np.array_equal(blk, tail):
        parts = [(0, n, tail)]
    for lo, hi, tbl in parts:
        if hi > lo:
            b.luts.append(tbl)
            b.row(OpKind.LUT, in0=c.offsets[a] + lo, out=c.offsets[o] + lo, n=hi - lo,
                  aux=len(b.luts) - 1)


#: graph opcode -> its lowering function
LOWERINGS = {
    "CONCATENATION": lower_concatenation, "RESHAPE": lower_reshape, "GATHER": lower_gather,
    "SLICE": lower_slice,
    "FULLY_CONNECTED": lower_fully_connected, "ADD": lower_elementwise, "MUL": lower_elementwise,
    "TANH": lower_activation, "LOGISTIC": lower_activation, "SOFTMAX": lower_softmax,
    "QUANTIZE": lower_quantize,
}
