"""The int8 frame graph of a vocoder (docs/step-graph.md, "Local conditioning"): conv-in and the
upsampler, run once per feature frame, as its own flatbuffer (its own subgraph 0, so that TFLM's
``MicroInterpreter`` runs it directly).

One invocation takes the newest frame window and returns the ``hop`` sample-rate feature rows of
an earlier frame (the FIR looks ``ahead`` stage frames into the future)::

    frames        int8 [1, K·cin]   graph input: padded feature frames g … g+2p flattened (conv-in,
                                    K = 2p+1) or frame g (plain, K = 1), quantized by ``features``
    stage         [1, cin]          FULLY_CONNECTED(frames, conv-in weights) (conv-in only)
    stage_col     [cin, 1]          RESHAPE of stage (or of frames, plain): a byte copy
    stage_col@j   [cin, 1]          graph inputs, delay lines of delay j = width-1 … 1
    stage_window  [cin, width]      CONCATENATION axis 1: stage_col@(width-1) … stage_col@1, stage_col
    cond_block_t  [cin, hop]        FULLY_CONNECTED(stage_window, FIR [hop, width]): graph output,
                                    channel-major; column r = the sample-rate features of sample
                                    (g - ahead)·hop + r (g = the stage frame this call added)

F = 1: the FIR is :func:`wavenet_edge.upsample.frame_fir` (the scales' stretch/conv chain
multiplied out in float, quantized once per phase).  F > 1 (bands mixed, zero-padded at the band
edges in every stage): :func:`wavenet_edge.upsample.band_fir`, the same composition per output
band over its 2R + 1 neighbouring bands (R = Σ (F−1)/2 over the scales); ``cond_block_t`` is then
CONCATENATION axis 0 of one FC per band group instead of the one FIR::

    stage_window_flat [1, cin·width]        RESHAPE of stage_window (aliased)
    band{c}/window    [1, (hi−lo)·width]    SLICE of it: bands lo … hi−1 (edge band c)
    band{c}/block     [1, hop]              FULLY_CONNECTED(band{c}/window, its own taps)
    interior/shift{k} [cin−2R, width]       SLICE of stage_window rows k … k+cin−2R−1, k ≤ 2R
    interior/stack    [cin−2R, (2R+1)·width] CONCATENATION axis 1 of the shifts (a tree past 10)
    interior/block    [cin−2R, hop]         FULLY_CONNECTED(interior/stack, the shared taps)
    cond_block_t      [cin, hop]            CONCATENATION axis 0: band0 … band{R−1}, interior,
                                            the last R bands (aliased: no copy)

Beyond the ends the host feeds zero-point
frames (real 0), so the result is the FIR with zero frames: r9y9's chain except on the first and
last samples its inner stages pad (84 for [4, 4, 4, 4]; none after a plain cin_pad ≥ 1 trim).
The frame graph's own contract (metadata ``wavenet_edge_frames``) names the tensors, the delay
lines, hop, K, width and ``ahead``.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np

from wavenet_edge.errors import ConversionError
from wavenet_edge.float_model import FloatWaveNet
from wavenet_edge.graph_spec import concat_tree
from wavenet_edge.upsample import BandFIR, band_fir, band_fir_blocks, frame_fir, stage_input

from .quantize import QParams, activation_qparams, quantize_activation, quantize_bias, \
    quantize_weights
from .tflite_writer import GraphBuilder

__all__ = ["FramePlan", "frame_plan", "build_frame_graph", "fir_blocks", "float_blocks",
           "run_frame_graph", "METADATA_NAME"]

METADATA_NAME = "wavenet_edge_frames"


class FramePlan(NamedTuple):
    """Activation quantization of the frame graph: the input features, the stage frames (conv-in
    output, or the features themselves), and the sample-rate block."""

    features: QParams
    stage: QParams
    block: QParams


def _check(model: FloatWaveNet):
    cfg = model.config
    if not cfg.has_cond or cfg.upsampler == "none":
        raise ConversionError("the frame graph needs a model with an upsampler")
    return cfg


def _fir(model: FloatWaveNet):
    cfg = _check(model)
    if cfg.freq_axis_kernel_size != 1:
        raise ConversionError(f"freq_axis_kernel_size {cfg.freq_axis_kernel_size}: the frame "
                              "FIR form is F = 1 only (F > 1: band_fir)")
    return frame_fir(cfg, model.weights)


def _geometry(model: FloatWaveNet):
    """(hop, width, left) of the model's frame FIR, any F."""
    cfg = _check(model)
    if cfg.freq_axis_kernel_size == 1:
        taps, left = frame_fir(cfg, model.weights)
        return taps.shape[0], taps.shape[1], left
    bf = band_fir(cfg, model.weights)
    return bf.hop, bf.width, bf.left


def _form(model: FloatWaveNet):
    """The composed upsampler: ``(taps, left)`` of :func:`frame_fir` (F = 1) or a
    :class:`~wavenet_edge.upsample.BandFIR` (F > 1)."""
    cfg = _check(model)
    return _fir(model) if cfg.freq_axis_kernel_size == 1 else band_fir(cfg, model.weights)


def float_blocks(model: FloatWaveNet, x, form=None) -> np.ndarray:
    """The frame graph's float meaning on stage frames ``x`` (n, C), zero frames beyond the
    ends: (n, hop, C) (F = 1: :func:`fir_blocks`; F > 1: :func:`band_fir_blocks`).  ``form``:
    :func:`_form`'s result, computed here when None."""
    form = _form(model) if form is None else form
    if isinstance(form, BandFIR):
        return band_fir_blocks(form, np.asarray(x, np.float64))
    return fir_blocks(*form, x)


def fir_blocks(taps, left: int, x) -> np.ndarray:
    """Float FIR on stage frames ``x`` (n, C), zero frames beyond the ends: (n, hop, C) with
    ``out[f] = taps @ x[f - left : f - left + width]``."""
    width = taps.shape[1]
    n, C = x.shape
    xp = np.concatenate([np.zeros((width, C)), x, np.zeros((width, C))])
    return np.stack([taps @ xp[f - left + width:f - left + 2 * width] for f in range(n)])


def frame_plan(model: FloatWaveNet, feature_clips) -> FramePlan:
    """Min/max ranges over the model-ready features of calibration clips (each (frames, cin))."""
    form = _form(model)
    lo = hi = slo = shi = blo = bhi = 0.0
    for c in feature_clips:
        c = np.asarray(c, dtype=np.float64)
        x = stage_input(model.config, model.weights, c)
        blk = float_blocks(model, x, form)
        lo, hi = min(lo, c.min()), max(hi, c.max())
        slo, shi = min(slo, x.min()), max(shi, x.max())
        blo, bhi = min(blo, blk.min()), max(bhi, blk.max())
    return FramePlan(activation_qparams(lo, hi), activation_qparams(slo, shi),
                     activation_qparams(blo, bhi))


def _fc(b, prefix, w_out_in, in_qp: QParams, x, out):
    q, ws = quantize_weights(w_out_in)
    tw = b.add_tensor(prefix + "/weights", list(q.shape), np.int8, data=q, scale=ws,
                      zero_point=np.zeros(len(ws), np.int64), quantized_dimension=0)
    bq, bs = quantize_bias(np.zeros(q.shape[0]), in_qp.scale, ws)
    tb = b.add_tensor(prefix + "/bias", [len(bq)], np.int32, data=bq, scale=bs,
                      zero_point=np.zeros(len(bs), np.int64), quantized_dimension=0)
    b.add_operator("FULLY_CONNECTED", [x, tw, tb], [out], fused_activation_function="NONE")


def _slice(b, act, qp, src, begin, size, name):
    bt = b.add_tensor(name + "/begin", [len(begin)], np.int32, data=np.array(begin, np.int32))
    st = b.add_tensor(name + "/size", [len(size)], np.int32, data=np.array(size, np.int32))
    out = act(name, list(size), qp)
    b.add_operator("SLICE", [src, bt, st], [out])
    return out


def _band_firs(b, bf, beta, act, sqp: QParams, bqp: QParams, window, block):
    """F > 1 (module docstring): the interior bands' one FC on their stacked band windows, an
    FC per edge band on its own band window, joined along the band axis into ``block``."""
    C, W, R, hop = len(bf.lo), bf.width, bf.reach, bf.hop
    a, z = bf.interior
    flat_shape = b.add_tensor("stage_window_flat/shape", [2], np.int32,
                              data=np.array([1, C * W], np.int32))
    flat = act("stage_window_flat", [1, C * W], sqp)
    b.add_operator("RESHAPE", [window, flat_shape], [flat])
    parts = {}
    for c in bf.edge_bands:
        lo, hi = int(bf.lo[c]), int(bf.hi[c])
        win = _slice(b, act, sqp, flat, [0, lo * W], [1, (hi - lo) * W], f"band{c}/window")
        out = act(f"band{c}/block", [1, hop], bqp)
        _fc(b, f"band{c}/fir", bf.taps[c] / beta, sqp, win, out)
        parts[c] = out
    if z > a:
        n = z - a
        # interior band a + i reads window rows i … i + 2R: the 2R + 1 row-shifted windows
        # side by side, row i = [window[i], window[i+1], …, window[i+2R]]
        shifts = [_slice(b, act, sqp, window, [k, 0], [n, W], f"interior/shift{k}")
                  for k in range(2 * R + 1)]
        cols = {t: W for t in shifts}
        count = [0]

        def merge_cols(chunk, final):
            count[0] += 1
            w = sum(cols[t] for t in chunk)
            t = act("interior/stack" if final else f"interior/stack{count[0]}", [n, w], sqp)
            cols[t] = w
            b.add_operator("CONCATENATION", list(chunk), [t], axis=1,
                           fused_activation_function="NONE")
            return t

        stack = concat_tree(shifts, merge_cols)
        out = act("interior/block", [n, hop], bqp)
        _fc(b, "interior/fir", bf.taps[a] / beta, sqp, stack, out)
        parts[a] = out
    rows = {t: (1 if c in bf.edge_bands else z - a) for c, t in parts.items()}
    order = [parts[c] for c in sorted(parts)]
    count = [0]

    def merge_rows(chunk, final):
        count[0] += 1
        nr = sum(rows[t] for t in chunk)
        t = block if final else act(f"block_part{count[0]}", [nr, hop], bqp)
        rows[t] = nr
        b.add_operator("CONCATENATION", list(chunk), [t], axis=0,
                       fused_activation_function="NONE")
        return t

    concat_tree(order, merge_rows)


def build_frame_graph(model: FloatWaveNet, plan: FramePlan, *, beta: float = 1.0) -> bytes:
    """The frame graph's flatbuffer (see the module docstring).  ``beta``: the block holds
    ``c_up / beta`` (the step graph's ``cond``, :func:`converters.quantize.cond_beta`); the
    FIR taps are divided by it, so ``plan.block`` quantizes ``c_up / beta``."""
    cfg = _check(model)
    F = cfg.freq_axis_kernel_size
    bf = band_fir(cfg, model.weights) if F > 1 else None
    if bf is None:
        taps, left = _fir(model)
        taps = taps / float(beta)
        hop, width = taps.shape
    else:
        hop, width, left = bf.hop, bf.width, bf.left
    C, p = cfg.cin_channels, cfg.cin_pad
    K = 2 * p + 1 if cfg.upsampler == "conv-in" else 1
    b = GraphBuilder()

    def act(name, shape, qp):
        return b.add_tensor(name, shape, np.int8, scale=[qp.scale], zero_point=[qp.zero_point])

    frames = act("frames", [1, K * C], plan.features)
    if cfg.upsampler == "conv-in":
        stage = act("stage", [1, C], plan.stage)
        w = model.weights["upsample/conv_in/w"]                # (K, C_in, C_out)
        _fc(b, "conv_in", w.transpose(2, 0, 1).reshape(C, K * C), plan.features, frames, stage)
        src, sqp = stage, plan.stage
    else:
        src, sqp = frames, plan.features
    shape_t = b.add_tensor("stage_col/shape", [2], np.int32, data=np.array([C, 1], np.int32))
    col = act("stage_col", [C, 1], sqp)
    b.add_operator("RESHAPE", [src, shape_t], [col])
    reads = [act(f"stage_col@{j}", [C, 1], sqp) for j in range(width - 1, 0, -1)]
    window = act("stage_window", [C, width], sqp)
    if width > 1:
        b.add_operator("CONCATENATION", reads + [col], [window], axis=1,
                       fused_activation_function="NONE")
    block = act("cond_block_t", [C, hop], plan.block)
    if bf is None:
        _fc(b, "fir", taps, sqp, window if width > 1 else col, block)
    else:
        _band_firs(b, bf, float(beta), act, sqp, plan.block, window if width > 1 else col,
                   block)
    b.set_inputs([frames] + reads)
    b.set_outputs([block, col])
    contract = {
        "format_version": 1, "graph": "frames", "frames_input": "frames",
        "frames_per_call": K, "channels": C, "hop": hop, "width": width, "left": left,
        "ahead": width - 1 - left,
        # call g's block holds the samples of frame g - block_delay (plain keeps its cin_pad
        # frames on the stage axis, so its blocks come cin_pad calls later)
        "block_delay": width - 1 - left + (p if cfg.upsampler == "plain" else 0),
        "block_output": "cond_block_t", "block_layout": "channels x hop",
        "features": {"scale": plan.features.scale, "zero_point": plan.features.zero_point},
        "delay_lines": [{"read": f"stage_col@{j}", "write": "stage_col", "delay": j}
                        for j in range(width - 1, 0, -1)],
    }
    if bf is not None:
        contract["band_reach"] = bf.reach      # informative: the F > 1 band-window FIR
    b.add_metadata(METADATA_NAME, json.dumps(contract).encode())
    return b.build("wavenet-edge int8 frame graph (vocoder conditioning)")


def run_frame_graph(runner, model: FloatWaveNet, plan: FramePlan, cond) -> np.ndarray:
    """Drive a frame-graph runner (:func:`converters.interpreters.make_runner`) over the padded
    features ``cond`` (N + 2·cin_pad, cin) float: returns int8 (N·hop, cin), the sample-rate
    features, by the contract's host semantics (zero-point frames beyond the ends)."""
    cfg = model.config
    hop, width, left = _geometry(model)
    ahead = width - 1 - left
    C, p = cfg.cin_channels, cfg.cin_pad
    K = 2 * p + 1 if cfg.upsampler == "conv-in" else 1
    fq = quantize_activation(np.asarray(cond, np.float64), plan.features)
    n_stage = fq.shape[0] - (K - 1)                  # stage frames the clip has
    zp_f = np.int8(plan.features.zero_point)
    sqp = plan.stage if cfg.upsampler == "conv-in" else plan.features
    ring = [np.full((C, 1), sqp.zero_point, np.int8) for _ in range(width - 1)]  # oldest first
    # plain keeps the cin_pad frames: its samples start cin_pad frames into the stage axis
    first = 0 if cfg.upsampler == "conv-in" else p
    n_out = (fq.shape[0] - 2 * p)
    out = np.empty((n_out * hop, C), np.int8)
    for g in range(n_stage + ahead):
        if g < n_stage:
            win = fq[g:g + K].reshape(1, K * C)
        else:
            win = np.full((1, K * C), zp_f, np.int8)
        runner.set_input("frames", win)
        for j in range(width - 1, 0, -1):
            runner.set_input(f"stage_col@{j}", ring[width - 1 - j])
        runner.invoke()
        blk = runner.get_output("cond_block_t")
        col = runner.get_output("stage_col").copy()
        ring = ring[1:] + [col] if width > 1 else ring
        f = g - ahead - first
        if 0 <= f < n_out:
            out[f * hop:(f + 1) * hop] = blk.T
    return out
