"""An integer reference of a wavenet-edge ``.tflite`` (step graph or frame graph), numpy only.

It reads nothing but the parsed file (:func:`wavenet_edge.tflite_file.read_tflite`): operators
in file order, each tensor's own scales and zero points, the constant buffers.  Every op is
computed with the one definition of the int8 arithmetic (``wavenet_edge.int8``, each function
checked op by op against the real interpreters in ``test_int8_oracle.py`` and
``test_int8_quantize_oracle.py``), for one runtime profile.  It shares no code with the converter,
the engine or ``converters.host``: a test of those against the interpreters and this reference
catches a wrong graph as well as a wrong host.

:func:`drive` is the contract's host semantics written out again (delay lines, frame graph,
``cond`` rows) for teacher-forced runs.
"""

from __future__ import annotations

import json

import numpy as np

from wavenet_edge import int8 as I
from wavenet_edge.tflite_file import read_tflite

__all__ = ["GraphReference", "drive"]


class GraphReference:
    """``step(inputs) -> {tensor name: int8/int32 array}`` of every tensor computed."""

    def __init__(self, model, profile: str):
        self.m = model if hasattr(model, "operators") else read_tflite(model)
        self.profile = profile
        self.pid = I.profile_id(profile)
        self._prep = [self._prepare(op) for op in self.m.operators]

    def _t(self, i):
        return self.m.tensors[i]

    def _prepare(self, op):
        T = [self._t(i) for i in op.inputs]
        o = self._t(op.outputs[0])
        p = self.profile
        if op.opcode == "FULLY_CONNECTED":
            x, w, b = T
            return I.fc_params(x.scale[0], x.zero_point[0], w.scale, o.scale[0], o.zero_point[0],
                               op.options.get("fused_activation_function", "NONE"), p,
                               n_out=w.shape[0])
        if op.opcode == "ADD":
            return I.add_params(T[0].scale[0], T[0].zero_point[0], T[1].scale[0],
                                T[1].zero_point[0], o.scale[0], o.zero_point[0], "NONE", p)
        if op.opcode == "MUL":
            return I.mul_params(T[0].scale[0], T[0].zero_point[0], T[1].scale[0],
                                T[1].zero_point[0], o.scale[0], o.zero_point[0], "NONE", p)
        if op.opcode == "TANH":
            return I.tanh_table(T[0].scale[0], T[0].zero_point[0], p)
        if op.opcode == "LOGISTIC":
            return I.logistic_table(T[0].scale[0], T[0].zero_point[0], p)
        if op.opcode == "SOFTMAX":
            return I.softmax_params(T[0].scale[0], op.options.get("beta", 1.0), p)
        if op.opcode == "QUANTIZE":
            return I.quantize_params(T[0].scale[0], T[0].zero_point[0], o.scale[0],
                                     o.zero_point[0], p)
        return None

    def step(self, inputs: dict) -> dict:
        v = {}
        for t in self.m.tensors:
            if t.data is not None:
                v[t.index] = np.asarray(t.data)
        for name, a in inputs.items():
            t = self.m.tensor(name)
            v[t.index] = np.asarray(a, t.dtype).reshape(t.shape)
        for op, prm in zip(self.m.operators, self._prep):
            x = [v[i] for i in op.inputs]
            o = self._t(op.outputs[0])
            v[o.index] = self._run(op, prm, x, o).reshape(o.shape)
        return {t.name: v[t.index] for t in self.m.tensors if t.index in v}

    def _run(self, op, prm, x, o):
        k = op.opcode
        if k == "GATHER":
            return x[0][int(np.asarray(x[1]).reshape(-1)[0])]
        if k == "CONCATENATION":
            return np.concatenate(x, axis=op.options.get("axis", 0))
        if k == "RESHAPE":
            return x[0].copy()
        if k == "SLICE":
            begin, size = (np.asarray(y).reshape(-1) for y in x[1:])
            return x[0][tuple(slice(int(a), x[0].shape[d] if int(n) == -1 else int(a) + int(n))
                              for d, (a, n) in enumerate(zip(begin, size)))].copy()
        if k == "FULLY_CONNECTED":
            a, w, b = x
            rows = a.reshape(-1, w.shape[1]).astype(np.int64) - prm.in_zp
            acc = rows @ w.astype(np.int64).T + b.astype(np.int64)
            out = np.empty(acc.shape, np.int8)
            for r in range(acc.shape[0]):
                for c in range(acc.shape[1]):
                    out[r, c] = I.requantize_int8(int(acc[r, c]), prm.multiplier[c], prm.shift[c],
                                                  prm.fmul[c], prm.out_zp, prm.act_min,
                                                  prm.act_max, prm.profile)
            return out
        if k in ("TANH", "LOGISTIC"):
            return prm[x[0].astype(np.int64).reshape(-1) + 128].astype(np.int8)
        if k in ("ADD", "MUL"):
            a, b = (np.ascontiguousarray(y.reshape(-1)) for y in x)
            out = np.empty(a.shape, np.int8)
            (I.add_int8_vec if k == "ADD" else I.mul_int8_vec)(a, b, prm.ip, prm.fp, prm.profile,
                                                               out)
            return out
        if k == "SOFTMAX":
            out = np.empty(x[0].size, np.int8)
            I.softmax_int8(np.ascontiguousarray(x[0].reshape(-1)), prm.multiplier,
                           prm.left_shift, prm.diff_min, prm.table, prm.out_scale, prm.profile,
                           out)
            return out
        if k == "QUANTIZE":
            out = np.empty(x[0].size, np.int8)
            I.quantize_int8_vec(np.ascontiguousarray(x[0].reshape(-1)), prm.ip, prm.profile, out)
            return out
        raise NotImplementedError(k)


def _json(model, key):
    return json.loads(bytes(model.metadata[key]).rstrip(b"\0"))


def _zero(t):
    return np.full(t.shape, t.zero_point[0] if t.zero_point.size else 0, t.dtype)


def cond_rows(data, features, profile) -> np.ndarray:
    """The int8 ``cond`` row of every sample (n, cin) for float model-ready ``features``: the
    feature quantization and the frame graph as docs/step-graph.md states them."""
    m = read_tflite(data)
    ci = _json(m, "wavenet_edge")["cond_input"]
    fq = ci["features"]
    q = np.clip(np.round(np.asarray(features, np.float64) / fq["scale"]) + fq["zero_point"],
                -128, 127).astype(np.int8)
    if ci["frame_graph"] is None:
        return q
    fm = read_tflite(bytes(m.metadata[ci["frame_graph"]]))
    fc = _json(fm, ci["frame_graph"])
    ref = GraphReference(fm, profile)
    C, hop, K, D = ci["channels"], ci["hop"], fc["frames_per_call"], fc["block_delay"]
    n_out = q.shape[0] - 2 * ci["cin_pad"]
    history = {dl["write"]: [] for dl in fc["delay_lines"]}      # every write, call by call
    rows = np.empty((n_out * hop, C), np.int8)
    for g in range(n_out + D):
        if g + K <= q.shape[0]:
            frames = q[g:g + K].reshape(1, -1)
        else:
            frames = np.full((1, K * C), fq["zero_point"], np.int8)
        ins = {fc["frames_input"]: frames}
        for dl in fc["delay_lines"]:
            h = history[dl["write"]]
            ins[dl["read"]] = (h[g - dl["delay"]] if g >= dl["delay"]
                               else _zero(fm.tensor(dl["read"])))
        out = ref.step(ins)
        for w in history:
            history[w].append(out[w])
        if g >= D:
            rows[(g - D) * hop:(g - D + 1) * hop] = out[fc["block_output"]].reshape(C, hop).T
    return rows


def drive(data, codes, profile, *, speaker=None, features=None, names=("probs", "logits")):
    """Teacher-forced run of a step graph in the reference: ``{name: (n, ...)}``."""
    m = read_tflite(data)
    meta = _json(m, "wavenet_edge")
    ref = GraphReference(m, profile)
    rows = None if features is None else cond_rows(data, features, profile)
    lines = meta["delay_lines"]
    history = {dl["write"]: [] for dl in lines}
    res = {n: [] for n in names}
    for t, c in enumerate(np.asarray(codes).reshape(-1)):
        ins = {meta["sample_input"]["name"]: np.array([c], np.int32)}
        if meta.get("speaker_input"):
            ins[meta["speaker_input"]["name"]] = np.array([speaker], np.int32)
        if meta.get("cond_input"):
            ins[meta["cond_input"]["name"]] = rows[t].reshape(1, -1)
        for dl in lines:
            h = history[dl["write"]]
            ins[dl["read"]] = (h[t - dl["delay"]] if t >= dl["delay"]
                               else _zero(m.tensor(dl["read"])))
        out = ref.step(ins)
        for w in history:
            history[w].append(out[w])
        for n in names:
            res[n].append(out[n].reshape(-1))
    return {n: np.stack(v) for n, v in res.items()}
