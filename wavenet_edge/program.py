"""Compile a parsed wavenet-edge ``.tflite`` step graph into a flat "program" for the jitted engine.

The engine is a tiny generic interpreter for our operator subset: it executes the operators of
the file *as written*, one after another, with the int8 arithmetic of :mod:`wavenet_edge.int8`,
so bit-exactness with the reference interpreters follows op by op.  This module does everything
that is done once per file: validation of the metadata contract (``docs/step-graph.md``) and of
every operator, memory planning, and parameter precomputation.

Memory plan (per stream, int8): one *arena* of ``arena_size`` bytes holds every activation tensor.
CONCATENATION is free: its inputs are laid out contiguously inside its output (recursively, for
concatenation trees), so no bytes move; RESHAPE aliases its input.  Where a layout constraint
cannot be met (a tensor concatenated twice, a constant input) the op falls back to a copy.

Program arrays (all numpy, contiguous):

``ops`` int64 (n_ops, 12)
    one row per executed op: ``[opcode, in0, in1, out, n, cols, w_off, b_off, q_off, p_off, aux, 0]``
    with arena byte offsets ``in0``/``in1``/``out``; see ``OP_*`` below for the meaning per opcode.
``wblob`` int8
    all FULLY_CONNECTED weights (row-major [rows, cols], contiguous rows) and GATHER tables.
``bblob`` int32
    FC biases with the input zero point folded in: ``b[o] − in_zp·Σ_i w[o, i]`` (exact in int32),
    so the inner loop is a plain int8·int8 dot product.  Where the engine uses the AVX-512 VNNI
    dot product (``_engine_kernels.vnni_mode`` > 0) the input enters as unsigned ``x + 128`` and
    ``128·Σ_i w[o, i]`` is folded in as well; in mode 2 the FC's weights are stored interleaved
    ([rows/16][cols/4][16][4], ``_engine_kernels.interleave16``) instead of row-major.
``mult``, ``shift`` int32
    per-output-channel requantization multipliers/shifts of every FC (per-tensor ones repeated).
``tables`` int8 (n_tables, 256)
    TANH / LOGISTIC as 256-entry lookup tables indexed by ``q + 128``; each entry is the profile's
    exact integer function of that one input value, so the table *is* the kernel.
``iparams`` int64
    per-op scalar parameters (FC zero point and activation range; SOFTMAX multiplier, shift,
    diff_min).
``pair_tables`` int8
    ADD and MUL as 65536-entry tables over the input pair, evaluated at load time with
    :func:`wavenet_edge.int8.add_int8` / ``mul_int8`` on every pair (exact by construction;
    64 KiB per op).  The engine no longer reads them: it calls ``add_int8``/``mul_int8`` with
    each op's ``ip`` (in ``iparams``) and ``fp`` (in ``fmul``), which is faster because the
    tables evicted the FC weights from L2; they remain an exact reference of each op.
``fmul`` float64
    per-channel real multipliers of every FC (read by the float profiles litert-ref/xnnpack).
``sm_tables`` float32 (n, 256), ``sm_scales``, ``sm_exps`` int64 (n, 256)
    per SOFTMAX op: the float exp table and output scale (float profiles), and the fixed-point
    exponential of every input difference (tflm, litert-ref).

Two consecutive FCs reading the same input with adjacent weights (each layer's filter and gate)
are fused into one ``OP_FC2`` row: one dot-product pass, each op's own requantization.

Delay lines (contract order): ``dl_read`` arena offset of each read, ``dl_delay``, ``dl_width``
(bytes), ``dl_zp`` (read zero point, the value before anything was written), ``dl_ring`` (offset
of its write's ring in the per-stream ring buffer), ``dl_len`` (ring length in slots = the
largest delay among the reads of that write).  Distinct writes: ``wr_src`` arena offset,
``wr_ring``, ``wr_len``, ``wr_width``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._engine_kernels import interleave16, vnni_mode
from ._jit import kernel
from .contract import parse_contract
from .errors import ConfigError, ModelFileError
from .int8 import activations as _act
from .int8 import elementwise as _ew
from .int8 import requant as _rq
from .int8 import softmax as _sm
from .int8 import softmax_arm64 as _sm64
from .int8.elementwise import add_int8, mul_int8
from .int8.fixedpoint import exp_on_negative_values, mbqm_greater_than_one

__all__ = ["Program", "compile_program", "parse_contract", "PROFILES", "SUPPORTED_OPS",
           "OP_GATHER", "OP_FC", "OP_PAIR", "OP_LUT", "OP_SOFTMAX", "OP_COPY"]

OP_GATHER = 1    # out[:n] = wblob[w_off + idx*n : +n], idx = code (aux=0) or speaker (aux=1);
                 # cols = rows of the table
OP_FC = 2        # out[o] = clamp(requant(bblob[b_off+o] + Σ w·in, mult/shift[q_off+o]) + zp); n = rows
OP_PAIR = 3      # ADD/MUL: out[i] = pair_tables[T + (in0[i]+128)·256 + in1[i]+128],
                 # T = w_off if i < cols else b_off; equivalently (what the engine runs)
                 # add_int8 / mul_int8 (aux = 0 / 1) with ip at iparams[p_off], fp at
                 # fmul[q_off], simd = i < cols
OP_LUT = 5       # out[i] = tables[aux, in[i] + 128]
OP_SOFTMAX = 6   # n classes, params at p_off
OP_COPY = 7      # out[:n] = in0[:n]
OP_FC2 = 8       # two consecutive FCs on the same input (filter and gate) as one dot product over
                 # n + ops[k, 11] rows whose weights, biases and multipliers are contiguous; rows
                 # < n go to ``out`` with params at p_off, the others to ``in1`` with params at aux
OP_GATE = 9      # a layer's gate: two LUTs then their ADD/MUL (three consecutive rows, fused by
                 # _merge_gates): ``[9, in_a, in_b, out, n, blocked, p_off, 2·q_off + is_mul, y_a,
                 # y_b, table_a, table_b, T_blk, T_tail]`` (exec_ops rows have 14 columns); y_a[i]
                 # = tables[table_a, in_a[i] + 128] (same for b), out[i] = the PAIR op's
                 # add_int8/mul_int8 of (y_a[i], y_b[i]) (one stream) or its pair table (several
                 # streams: the tables then stay in cache across streams).  Every
                 # tensor is still written; one pass per element instead of three loops

SUPPORTED_OPS = ("FULLY_CONNECTED", "ADD", "MUL", "TANH", "LOGISTIC", "SOFTMAX", "CONCATENATION",
                 "GATHER", "RESHAPE")

PROFILES = tuple(_rq.PROFILES) + tuple(_rq.ARM64_PROFILES)


@dataclass
class Program:
    """Flat arrays the jitted kernels execute (see module docstring)."""

    ops: np.ndarray
    wblob: np.ndarray
    bblob: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    fmul: np.ndarray
    tables: np.ndarray
    iparams: np.ndarray
    pair_tables: np.ndarray
    sm_tables: np.ndarray
    sm_scales: np.ndarray
    sm_exps: np.ndarray
    arena_size: int
    dl_read: np.ndarray
    dl_delay: np.ndarray
    dl_width: np.ndarray
    dl_zp: np.ndarray
    dl_ring: np.ndarray
    dl_len: np.ndarray
    wr_src: np.ndarray
    wr_ring: np.ndarray
    wr_len: np.ndarray
    wr_width: np.ndarray
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
    def exec_ops(self) -> np.ndarray:
        """The rows the engine executes: :attr:`ops` with each layer's LUT, LUT, MUL triple
        fused into one OP_GATE row (:func:`_merge_gates`).  :attr:`ops` itself keeps one row
        per graph operator (except OP_FC2) for other consumers (the C export)."""
        if self._exec_ops is None:
            self._exec_ops = _merge_gates(self.ops)
        return self._exec_ops

    _exec_ops: np.ndarray | None = field(default=None, repr=False, compare=False)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _size(t) -> int:
    return int(np.prod(t.shape)) if len(t.shape) else 1


def _qparams(t, path):
    if not t.is_quantized or t.per_channel:
        raise ModelFileError(f"tensor {t.name!r} must be quantized per tensor", path=path)
    return float(t.scale[0]), int(t.zero_point[0])


def _flat_concat(op, model) -> bool:
    """True when concatenating along ``axis`` is a plain byte concatenation (all leading dims 1)."""
    out = model.tensors[op.outputs[0]]
    rank = len(out.shape)
    axis = op.options.get("axis", 0)
    if axis < 0:
        axis += rank
    return 0 <= axis < rank and int(np.prod(out.shape[:axis])) == 1


def compile_program(model, *, profile: str = "tflm", contract: dict | None = None) -> Program:
    """Compile a :class:`~wavenet_edge.tflite_file.TFLiteModel` into a :class:`Program`.

    ``profile`` selects the int8 arithmetic (``"tflm"``, ``"litert"``, … see
    :mod:`wavenet_edge.int8`).  Raises :class:`ModelFileError` naming the first unsupported or
    inconsistent operator or tensor.
    """
    path = model.name
    if profile not in PROFILES:
        raise ConfigError(f"unknown int8 profile {profile!r}; known: {', '.join(PROFILES)}")
    if contract is None:
        contract = parse_contract(model)
    T = model.tensors

    def bad(msg):
        return ModelFileError(msg, path=path)

    sample_idx = model.tensor(contract["sample_input"]["name"]).index
    spk = contract.get("speaker_input")
    speaker_idx = model.tensor(spk["name"]).index if spk else -1
    dl_reads = {model.tensor(dl["read"]).index for dl in contract["delay_lines"]}
    for i in model.inputs:
        if i not in dl_reads and i not in (sample_idx, speaker_idx):
            raise bad(f"graph input {T[i].name!r} is neither the sample, the speaker nor a delay-line read")

    # ---- validate operators; find producers --------------------------------------------------
    producer = {}
    op_counts = {}
    for op in model.operators:
        if op.opcode not in SUPPORTED_OPS:
            raise bad(f"operator {op.index} ({op.opcode}) is not supported by the engine "
                      f"(supported: {', '.join(SUPPORTED_OPS)})")
        op_counts[op.opcode] = op_counts.get(op.opcode, 0) + 1
        if len(op.outputs) != 1:
            raise bad(f"operator {op.index} ({op.opcode}) must have one output")
        o = op.outputs[0]
        if o in producer:
            raise bad(f"tensor {T[o].name!r} is produced twice")
        producer[o] = op
        if T[o].dtype != np.int8:
            raise bad(f"operator {op.index} ({op.opcode}) output {T[o].name!r} is not int8")
        act = op.options.get("fused_activation_function", "NONE")
        if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
            raise bad(f"operator {op.index} ({op.opcode}) has unsupported fused activation {act}")
        if op.opcode == "CONCATENATION" and act != "NONE":
            raise bad(f"operator {op.index} (CONCATENATION) with a fused activation is not supported")

    def is_activation(i):
        return i >= 0 and T[i].data is None and i not in (sample_idx, speaker_idx)

    # ---- memory plan: alias concatenation inputs and reshapes into their consumers ------------
    parent = {}      # tensor -> (parent tensor, byte offset inside parent)
    copies = set()   # op indices that must copy (layout constraint not satisfiable)
    for op in model.operators:
        o = op.outputs[0]
        if op.opcode == "CONCATENATION":
            ins = list(op.inputs)
            ok = (_flat_concat(op, model) and len(set(ins)) == len(ins)
                  and all(is_activation(i) and i not in parent and T[i].dtype == np.int8 for i in ins))
            if ok:
                off = 0
                for i in ins:
                    parent[i] = (o, off)
                    off += _size(T[i])
                if off != _size(T[o]):
                    raise bad(f"CONCATENATION {op.index}: input sizes do not add up to the output")
            else:
                copies.add(op.index)
        elif op.opcode == "RESHAPE":
            i = op.inputs[0]
            if _size(T[i]) != _size(T[o]):
                raise bad(f"RESHAPE {op.index}: element count changes")
            if o not in parent and is_activation(i):
                parent[o] = (i, 0)
            elif i not in parent and is_activation(i):
                parent[i] = (o, 0)
            else:
                copies.add(op.index)

    def root_of(t):
        off = 0
        seen = 0
        while t in parent:
            t, o = parent[t]
            off += o
            seen += 1
            if seen > len(T):
                raise bad("cyclic tensor aliasing (RESHAPE/CONCATENATION loop)")
        return t, off

    roots = {}
    arena_size = 0
    offsets = {}
    activations = [i for i in range(len(T)) if is_activation(i)]
    for i in activations:
        if T[i].dtype != np.int8:
            raise bad(f"activation tensor {T[i].name!r} must be int8, is {T[i].dtype}")
        r, off = root_of(i)
        if r not in roots:
            roots[r] = arena_size
            arena_size += _size(T[r])
            arena_size = (arena_size + 63) // 64 * 64   # keep every root cache-line aligned
        offsets[i] = roots[r] + off
    for op in model.operators:
        for i in op.inputs:
            if i >= 0 and T[i].data is None and i not in offsets and i not in (sample_idx, speaker_idx):
                raise bad(f"operator {op.index} reads {T[i].name!r}, which nothing produces")

    # ---- operators -> program rows -------------------------------------------------------------
    rows, wparts, bparts, mparts, sparts, tables, ip = [], [], [], [], [], [], []
    fparts, sm_tables, sm_scales, sm_exps = [], [], [], []
    wlen = blen = qlen = 0
    macs = 0

    def add_w(a):
        nonlocal wlen
        a = np.ascontiguousarray(a, dtype=np.int8).ravel()
        wparts.append(a)
        wlen += a.size
        return wlen - a.size

    def add_p(vals):
        ip.extend(int(v) for v in vals)
        return len(ip) - len(vals)

    pair_tables = []

    def add_pair(tbl):
        pair_tables.append(tbl)
        return (len(pair_tables) - 1) * 65536

    for op in model.operators:
        o = op.outputs[0]
        out = T[o]
        row = [0] * 12
        if op.opcode == "CONCATENATION":
            oscale, ozp = _qparams(out, path)
            for i in op.inputs:
                if _qparams(T[i], path) != (oscale, ozp):
                    raise bad(f"CONCATENATION {op.index}: input {T[i].name!r} is quantized "
                              f"differently from the output (requantizing concat not supported)")
            if op.index in copies:
                off = 0
                for i in op.inputs:
                    if T[i].data is not None:
                        raise bad(f"CONCATENATION {op.index}: constant inputs are not supported")
                    rows.append([OP_COPY, offsets[i], 0, offsets[o] + off, _size(T[i])] + [0] * 7)
                    off += _size(T[i])
            continue
        if op.opcode == "RESHAPE":
            if op.index in copies:
                i = op.inputs[0]
                if T[i].data is not None:
                    raise bad(f"RESHAPE {op.index} of a constant is not supported")
                rows.append([OP_COPY, offsets[i], 0, offsets[o], _size(out)] + [0] * 7)
            continue
        if op.opcode == "GATHER":
            tbl, idx = op.inputs[0], op.inputs[1]
            if T[tbl].data is None or T[tbl].dtype != np.int8:
                raise bad(f"GATHER {op.index}: the table must be a constant int8 tensor")
            if idx not in (sample_idx, speaker_idx):
                raise bad(f"GATHER {op.index}: indices must be the sample or speaker input")
            if op.options.get("axis", 0) != 0 or op.options.get("batch_dims", 0) != 0:
                raise bad(f"GATHER {op.index}: only axis 0 is supported")
            if _qparams(T[tbl], path) != _qparams(out, path):
                raise bad(f"GATHER {op.index}: table and output quantization differ")
            data = np.asarray(T[tbl].data)
            nrow = data.shape[0]
            width = data.size // nrow
            if width != _size(out):
                raise bad(f"GATHER {op.index}: output size {_size(out)} != table row size {width}")
            if idx == sample_idx and nrow < 256:
                raise bad(f"GATHER {op.index}: sample table has {nrow} rows, need 256")
            if idx == speaker_idx and spk and nrow < int(spk["cardinality"]):
                raise bad(f"GATHER {op.index}: speaker table has {nrow} rows, fewer than the speakers")
            row = [OP_GATHER, 0, 0, offsets[o], width, nrow, add_w(data), 0, 0, 0,
                   0 if idx == sample_idx else 1, 0]
        elif op.opcode == "FULLY_CONNECTED":
            x, w = op.inputs[0], op.inputs[1]
            b = op.inputs[2] if len(op.inputs) > 2 else -1
            if x not in offsets:
                raise bad(f"FULLY_CONNECTED {op.index}: input must be an activation")
            W = T[w]
            if W.data is None or W.dtype != np.int8 or len(W.shape) != 2:
                raise bad(f"FULLY_CONNECTED {op.index}: weights must be a constant int8 matrix")
            if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
                raise bad(f"FULLY_CONNECTED {op.index}: shuffled weights are not supported")
            nout, nin = W.shape
            if _size(T[x]) != nin or _size(out) != nout:
                raise bad(f"FULLY_CONNECTED {op.index}: shapes {T[x].shape} x {W.shape} -> {out.shape} "
                          f"(batch must be 1)")
            if np.any(W.zero_point != 0):
                raise bad(f"FULLY_CONNECTED {op.index}: weight zero points must be 0")
            wscale = np.asarray(W.scale, dtype=np.float32)
            if wscale.size not in (1, nout) or (wscale.size > 1 and W.quantized_dimension != 0):
                raise bad(f"FULLY_CONNECTED {op.index}: weight scales must be per tensor or per "
                          f"output channel")
            xs, xzp = _qparams(T[x], path)
            os_, ozp = _qparams(out, path)
            wdata = np.asarray(W.data, dtype=np.int8).reshape(nout, nin)
            if b >= 0:
                if T[b].data is None or T[b].dtype != np.int32 or _size(T[b]) != nout:
                    raise bad(f"FULLY_CONNECTED {op.index}: bias must be a constant int32 vector of {nout}")
                bias = np.asarray(T[b].data, dtype=np.int64).ravel()
            else:
                bias = np.zeros(nout, np.int64)
            # fold the input zero point: Σ w (x − zp) + b = Σ w x + (b − zp Σ w), exact in int32
            # with the VNNI dot product the input is fed as unsigned x + 128: fold 128·Σw too
            mode = int(vnni_mode(nout, nin))
            shift_in = xzp + (128 if mode > 0 else 0)
            folded = bias - shift_in * wdata.astype(np.int64).sum(axis=1)
            folded = ((folded + 2**31) % 2**32 - 2**31).astype(np.int32)  # int32 wrap, as C does
            fp = _rq.fc_params(xs, xzp, wscale, os_, ozp,
                               op.options.get("fused_activation_function", "NONE"), profile,
                               n_out=nout)
            wstored = interleave16(wdata) if mode == 2 else wdata
            row = [OP_FC, offsets[x], 0, offsets[o], nout, nin, add_w(wstored), blen, qlen,
                   add_p([ozp, fp.act_min, fp.act_max]), 0, 0]
            m, s = fp.multiplier, fp.shift
            fparts.append(np.asarray(fp.fmul, np.float64))
            bparts.append(folded)
            blen += nout
            mparts.append(np.asarray(m, np.int32))
            sparts.append(np.asarray(s, np.int32))
            qlen += nout
            macs += nout * nin
        elif op.opcode in ("ADD", "MUL"):
            a, c = op.inputs[0], op.inputs[1]
            if a not in offsets or c not in offsets:
                raise bad(f"{op.opcode} {op.index}: both inputs must be activations")
            n = _size(out)
            if _size(T[a]) != n or _size(T[c]) != n:
                raise bad(f"{op.opcode} {op.index}: broadcasting is not supported")
            qa, qc, qo = _qparams(T[a], path), _qparams(T[c], path), _qparams(out, path)
            fn = _ew.add_params if op.opcode == "ADD" else _ew.mul_params
            ep = fn(qa[0], qa[1], qc[0], qc[1], qo[0], qo[1],
                    op.options.get("fused_activation_function", "NONE"), profile)
            # The op is a function of the two int8 inputs only, so it is evaluated once here on
            # all 65536 pairs with the int8 module's own kernel (exact by construction) and looked
            # up per step.  LiteRT rounds full SIMD blocks of 16 and the tail differently: two
            # tables then ("blocked" for i < 16·floor(n/16), "tail" for the rest).
            is_add = op.opcode == "ADD"
            two = _rq.profile_id(profile) in (_rq.LITERT, _rq.XNNPACK)
            blocked = (n // 16) * 16
            t_blk = add_pair(_pair_table(is_add, ep.ip, ep.fp, ep.profile, True if two else False))
            t_tail = add_pair(_pair_table(is_add, ep.ip, ep.fp, ep.profile, False)) \
                if (two and blocked < n) else t_blk
            # the op's own parameters too: the engine evaluates add_int8 / mul_int8 directly
            # (fp after the FC multipliers in fmul, with zero mult/shift padding)
            fp_off = qlen
            fparts.append(np.asarray(ep.fp, np.float64))
            mparts.append(np.zeros(len(ep.fp), np.int32))
            sparts.append(np.zeros(len(ep.fp), np.int32))
            qlen += len(ep.fp)
            row = [OP_PAIR, offsets[a], offsets[c], offsets[o], n, blocked, t_blk, t_tail,
                   fp_off, add_p(ep.ip), 0 if is_add else 1, 0]
        elif op.opcode in ("TANH", "LOGISTIC"):
            a = op.inputs[0]
            if a not in offsets or _size(T[a]) != _size(out):
                raise bad(f"{op.opcode} {op.index}: bad input")
            qa, qo = _qparams(T[a], path), _qparams(out, path)
            fn = _act.tanh_table if op.opcode == "TANH" else _act.logistic_table
            tbl = np.asarray(fn(qa[0], qa[1], profile, out_scale=qo[0], out_zp=qo[1]), dtype=np.int8)
            if tbl.shape != (256,):
                raise bad(f"{op.opcode} {op.index}: lookup table must have 256 entries")
            tables.append(tbl)
            row = [OP_LUT, offsets[a], 0, offsets[o], _size(out), 0, 0, 0, 0, 0, len(tables) - 1, 0]
        elif op.opcode == "SOFTMAX":
            a = op.inputs[0]
            if a not in offsets or _size(T[a]) != _size(out):
                raise bad(f"SOFTMAX {op.index}: bad input")
            qa, qo = _qparams(T[a], path), _qparams(out, path)
            sp = _sm.softmax_params(qa[0], float(op.options.get("beta", 1.0)), profile,
                                    out_scale=qo[0], out_zp=qo[1])
            sm_tables.append(np.asarray(sp.table, np.float32))
            # aarch64 LiteRT profiles: the uint16 exp table takes the exponentials' slot and
            # the row's last column says so (_engine_kernels: softmax_uint16_lut)
            lut16 = _sm64.uses_uint16_softmax(profile)
            sm_exps.append(_sm64.softmax_uint16_table(qa[0], float(op.options.get("beta", 1.0)))
                           if lut16 else _softmax_exps(sp.multiplier, sp.left_shift, sp.diff_min))
            sm_scales.append(sp.out_scale)
            params = [sp.multiplier, sp.left_shift, sp.diff_min]
            row = [OP_SOFTMAX, offsets[a], 0, offsets[o], _size(out), 0, 0, 0, 0, add_p(params),
                   len(sm_tables) - 1, int(lut16)]
        rows.append(row)

    # ---- delay lines ---------------------------------------------------------------------------
    dls = contract["delay_lines"]
    write_names = []
    maxdelay = {}
    for dl in dls:
        w = dl["write"]
        if w not in maxdelay:
            write_names.append(w)
            maxdelay[w] = 0
        maxdelay[w] = max(maxdelay[w], int(dl["delay"]))
    ring_off = {}
    ring_size = 0
    for w in write_names:
        t = model.tensor(w)
        if t.index not in offsets:
            raise bad(f"delay-line write {w!r} is not produced by any operator")
        ring_off[w] = ring_size
        ring_size += maxdelay[w] * _size(t)
    dl_read = np.array([offsets[model.tensor(dl["read"]).index] for dl in dls], np.int64)
    dl_delay = np.array([int(dl["delay"]) for dl in dls], np.int64)
    dl_width = np.array([_size(model.tensor(dl["read"])) for dl in dls], np.int64)
    dl_zp = np.array([_qparams(model.tensor(dl["read"]), path)[1] for dl in dls], np.int64)
    dl_ring = np.array([ring_off[dl["write"]] for dl in dls], np.int64)
    dl_len = np.array([maxdelay[dl["write"]] for dl in dls], np.int64)
    wr_src = np.array([offsets[model.tensor(w).index] for w in write_names], np.int64)
    wr_ring = np.array([ring_off[w] for w in write_names], np.int64)
    wr_len = np.array([maxdelay[w] for w in write_names], np.int64)
    wr_width = np.array([_size(model.tensor(w)) for w in write_names], np.int64)

    probs = model.tensor(contract["outputs"]["probabilities"])
    logits = model.tensor(contract["outputs"]["logits"])
    ps, pzp = _qparams(probs, path)
    ls, lzp = _qparams(logits, path)

    def cat(parts, dtype):
        return np.ascontiguousarray(np.concatenate(parts).astype(dtype)) if parts else np.zeros(1, dtype)

    return Program(
        ops=_merge_fc_pairs(np.asarray(rows, np.int64).reshape(-1, 12)),
        wblob=cat(wparts, np.int8), bblob=cat(bparts, np.int32),
        mult=cat(mparts, np.int32), shift=cat(sparts, np.int32), fmul=cat(fparts, np.float64),
        sm_tables=np.asarray(sm_tables, np.float32).reshape(-1, 256) if sm_tables
        else np.zeros((1, 256), np.float32),
        sm_scales=np.asarray(sm_scales if sm_scales else [1.0], np.float64),
        sm_exps=np.asarray(sm_exps, np.int64).reshape(-1, 256) if sm_exps
        else np.zeros((1, 256), np.int64),
        tables=np.asarray(tables, np.int8).reshape(-1, 256) if tables else np.zeros((1, 256), np.int8),
        iparams=np.asarray(ip if ip else [0], np.int64),
        pair_tables=np.concatenate(pair_tables) if pair_tables else np.zeros(1, np.int8),
        arena_size=max(arena_size, 64),
        dl_read=dl_read, dl_delay=dl_delay, dl_width=dl_width, dl_zp=dl_zp, dl_ring=dl_ring,
        dl_len=dl_len, wr_src=wr_src, wr_ring=wr_ring, wr_len=wr_len, wr_width=wr_width,
        ring_size=max(ring_size, 1),
        probs_off=offsets[probs.index], logits_off=offsets[logits.index], n_classes=256,
        logits_scale=ls, logits_zero_point=lzp, probs_scale=ps, probs_zero_point=pzp,
        profile=profile, profile_id=_rq.profile_id(profile),
        tensor_offsets={T[i].name: (offsets[i], _size(T[i])) for i in activations},
        op_counts=op_counts, macs_per_sample=macs,
    )



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
    _pair_grid(bool(is_add), np.ascontiguousarray(ip, np.int64), np.ascontiguousarray(fp, np.float64),
               int(profile), bool(simd), out)
    return out


@kernel
def _softmax_exps_kernel(multiplier, left_shift, diff_min, out):
    for k in range(256):
        d = -k
        if d >= diff_min:
            out[k] = exp_on_negative_values(mbqm_greater_than_one(d, multiplier, left_shift), 5)
        else:
            out[k] = -1


def _softmax_exps(multiplier, left_shift, diff_min) -> np.ndarray:
    """int64[256]: the fixed-point SOFTMAX exponential of every input difference ``d = −k``
    (``-1``: excluded, ``d < diff_min``); see ``_engine_kernels.softmax_fixed_lut``."""
    out = np.empty(256, np.int64)
    _softmax_exps_kernel(int(multiplier), int(left_shift), int(diff_min), out)
    return out


def _merge_fc_pairs(ops: np.ndarray) -> np.ndarray:
    """Fuse FC rows k, k+1 that read the same input and whose weights, biases and multipliers
    follow each other in the blobs (the filter and gate FCs of each layer) into one OP_FC2 row.
    The arithmetic per output row is unchanged; one dot-product pass serves both."""
    out = []
    k = 0
    while k < ops.shape[0]:
        a = ops[k]
        if k + 1 < ops.shape[0]:
            b = ops[k + 1]
            if (a[0] == OP_FC and b[0] == OP_FC and a[1] == b[1] and a[5] == b[5]
                    and b[6] == a[6] + a[4] * a[5] and b[7] == a[7] + a[4] and b[8] == a[8] + a[4]
                    and b[1] != a[3]
                    # the fused dot product must run in the mode each op was laid out for
                    and vnni_mode(a[4], a[5]) == vnni_mode(b[4], b[5])
                    == vnni_mode(a[4] + b[4], a[5])):
                out.append([OP_FC2, a[1], b[3], a[3], a[4], a[5], a[6], a[7], a[8], a[9], b[9], b[4]])
                k += 2
                continue
        out.append(list(a))
        k += 1
    return np.asarray(out, np.int64).reshape(-1, 12)


def _merge_gates(ops: np.ndarray) -> np.ndarray:
    """Fuse rows k, k+1, k+2 = LUT (a → y_a), LUT (b → y_b), PAIR (y_a, y_b) (or (y_b, y_a)) into
    one OP_GATE row when the five tensors occupy pairwise disjoint arena ranges (so doing the
    three ops element by element reads and writes exactly what doing them one after another
    does).  Each element's arithmetic is the same table lookups as the unfused ops."""
    out = []
    k = 0
    while k < ops.shape[0]:
        if k + 2 < ops.shape[0]:
            a, b, p = ops[k], ops[k + 1], ops[k + 2]
            n = a[4]
            if (a[0] == OP_LUT and b[0] == OP_LUT and p[0] == OP_PAIR and b[4] == n and p[4] == n
                    and {int(p[1]), int(p[2])} == {int(a[3]), int(b[3])} and a[3] != b[3]):
                if p[1] == b[3]:
                    a, b = b, a   # the PAIR's first operand comes from the second LUT
                starts = [int(a[1]), int(b[1]), int(a[3]), int(b[3]), int(p[3])]
                ranges = sorted(set(starts))
                disjoint = (len(ranges) == 4 if a[1] == b[1] else len(ranges) == 5) and all(
                    hi - lo >= n for lo, hi in zip(ranges, ranges[1:]))
                if disjoint:
                    out.append([OP_GATE, a[1], b[1], p[3], n, p[5], p[9], p[8] * 2 + p[10],
                                a[3], b[3], a[10], b[10], p[6], p[7]])
                    k += 3
                    continue
        out.append(list(ops[k]) + [0, 0])
        k += 1
    return np.asarray(out, np.int64).reshape(-1, 14)
