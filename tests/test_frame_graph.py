"""The vocoder's int8 frame graph (conv-in + upsampler FIR, its own subgraph 0) in the real
interpreters: TFLM and LiteRT each reproduce an integer reference written here with their own
FULLY_CONNECTED rounding (wavenet_edge.int8 profiles), bit for bit; dequantized, it follows the
float upsampler to ~2 LSB, except on the edge samples docs/step-graph.md states."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters.frame_graph import build_frame_graph, frame_plan, run_frame_graph
from converters.interpreters import make_runner
from converters.quantize import quantize_activation, quantize_bias, quantize_weights
from wavenet_edge import FloatWaveNet, WaveNetConfig
from wavenet_edge.errors import ConversionError
from wavenet_edge.int8 import fc_params, requantize_int8
from wavenet_edge.tflite_file import read_tflite
from wavenet_edge.upsample import frame_fir, upsample

CASES = {"conv-in": dict(upsampler="conv-in", upsample_scales=(4, 4), cin_pad=1),
         "plain": dict(upsampler="plain", upsample_scales=(2, 4), cin_pad=1),
         "conv-in-pad0": dict(upsampler="conv-in", upsample_scales=(3,), cin_pad=0)}


def _model(case, seed=2):
    cfg = WaveNetConfig(cin_channels=6, **CASES[case])
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed)
    for k in m.weights:
        if k.startswith("upsample/") and k != "upsample/conv_in/w":
            m.weights[k] = rng.normal(size=m.weights[k].shape) * 0.3
    clips = [rng.normal(-2, 1, (14 + 2 * cfg.cin_pad, 6)) for _ in range(3)]
    return m, clips


def _fc_int8(x_q, in_qp, w, out_qp, profile):
    """One FULLY_CONNECTED, integers only: rows of x_q (int8) times the quantized w (out, in)."""
    q, ws = quantize_weights(w)
    bq, _ = quantize_bias(np.zeros(q.shape[0]), in_qp.scale, ws)
    prm = fc_params(in_qp.scale, in_qp.zero_point, ws, out_qp.scale, out_qp.zero_point,
                    profile=profile)
    acc = (x_q.astype(np.int64) - in_qp.zero_point) @ q.T.astype(np.int64) + bq
    out = np.empty(acc.shape, np.int8)
    for i in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            out[i, c] = requantize_int8(int(acc[i, c]), prm.multiplier[c], prm.shift[c],
                                        prm.fmul[c], prm.out_zp, prm.act_min, prm.act_max,
                                        prm.profile)
    return out


def reference_blocks(m, plan, cond, profile):
    """The frame graph's arithmetic written out: (N·hop, cin) int8."""
    cfg = m.config
    taps, left = frame_fir(cfg, m.weights)
    hop, width = taps.shape
    p = cfg.cin_pad
    fq = quantize_activation(cond, plan.features)
    if cfg.upsampler == "conv-in":
        K = 2 * p + 1
        w = m.weights["upsample/conv_in/w"].transpose(2, 0, 1).reshape(6, K * 6)
        win = np.stack([fq[g:g + K].reshape(-1) for g in range(fq.shape[0] - K + 1)])
        stage, sqp, first = _fc_int8(win, plan.features, w, plan.stage, profile), plan.stage, 0
    else:
        stage, sqp, first = fq, plan.features, p
    zp = np.full((width, 6), sqp.zero_point, np.int8)
    sp = np.concatenate([zp, stage, zp])
    n_out = cond.shape[0] - 2 * p
    out = np.empty((n_out * hop, 6), np.int8)
    for f in range(n_out):
        s = f + first                                   # the stage frame the block belongs to
        window = sp[s - left + width:s - left + 2 * width]          # (width, C)
        out[f * hop:(f + 1) * hop] = _fc_int8(window.T, sqp, taps, plan.block, profile).T
    return out


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("runtime, profile", [("tflm", "tflm"), ("litert", "litert")])
def test_frame_graph_bit_exact_with_its_integer_reference(case, runtime, profile):
    m, clips = _model(case)
    plan = frame_plan(m, clips)
    fb = build_frame_graph(m, plan)
    got = run_frame_graph(make_runner(fb, runtime), m, plan, clips[1])
    np.testing.assert_array_equal(got, reference_blocks(m, plan, clips[1], profile))


@pytest.mark.parametrize("case", list(CASES))
def test_frame_graph_follows_the_float_upsampler(case):
    m, clips = _model(case)
    cfg = m.config
    plan = frame_plan(m, clips)
    got = run_frame_graph(make_runner(build_frame_graph(m, plan), "litert"), m, plan, clips[0])
    y = upsample(cfg, m.weights, clips[0])
    err = np.abs(plan.block.scale * (got.astype(float) - plan.block.zero_point) - y).max(axis=1)
    # the chain zero-pads its inner stages at the ends; the FIR sees zero frames instead
    inner = sum(s * int(np.prod(cfg.upsample_scales[i + 1:]))
                for i, s in enumerate(cfg.upsample_scales) if i >= 1)
    edge = 0 if cfg.upsampler == "plain" and cfg.cin_pad * cfg.hop >= inner else inner
    assert err[edge:len(err) - edge].max() <= 2.5 * plan.block.scale


def test_frame_graph_contract_and_refusals():
    m, clips = _model("conv-in")
    fb = build_frame_graph(m, frame_plan(m, clips))
    meta = read_tflite(fb).metadata["wavenet_edge_frames"]
    c = json.loads(bytes(meta).rstrip(b"\0"))
    assert (c["hop"], c["frames_per_call"], c["width"], c["left"], c["ahead"]) == (16, 3, 5, 2, 2)
    assert [d["delay"] for d in c["delay_lines"]] == [4, 3, 2, 1]
    m3 = FloatWaveNet.initialize(WaveNetConfig(cin_channels=4, upsampler="plain",
                                               upsample_scales=(2,), freq_axis_kernel_size=3))
    with pytest.raises(ConversionError, match="freq_axis_kernel_size 3"):
        frame_plan(m3, [np.zeros((4, 4))])
