"""The vocoder's int8 frame graph (conv-in + upsampler FIR, its own subgraph 0) in the real
interpreters: TFLM and LiteRT each reproduce an integer reference written here with their own
FULLY_CONNECTED rounding (wavenet_edge.int8 profiles), bit for bit; dequantized, it follows the
float upsampler to ~2 LSB, except on the edge samples docs/step-graph.md states.  F > 1 (bands
mixed): the band-window FIR (wavenet_edge.upsample.band_fir) equals r9y9's chain to ~1e-12
except on the same time edges, its edge bands need their own taps, and its graph (SLICE band
windows, one FC per band group) is bit-exact in both interpreters too."""

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
from wavenet_edge.upsample import band_fir, band_fir_blocks, frame_fir, stage_input, upsample

CASES = {"conv-in": dict(upsampler="conv-in", upsample_scales=(4, 4), cin_pad=1),
         "plain": dict(upsampler="plain", upsample_scales=(2, 4), cin_pad=1),
         "conv-in-pad0": dict(upsampler="conv-in", upsample_scales=(3,), cin_pad=0),
         # F = 3: reach R = 2 bands, so bands 0, 1 and 4, 5 are edge bands, 2 and 3 interior
         "conv-in-F3": dict(upsampler="conv-in", upsample_scales=(2, 4), cin_pad=1,
                            freq_axis_kernel_size=3),
         "plain-F3": dict(upsampler="plain", upsample_scales=(2, 2), cin_pad=0,
                          freq_axis_kernel_size=3)}


def _model(case, seed=2, C=6):
    cfg = WaveNetConfig(cin_channels=C, **CASES[case]) if case in CASES else case
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed)
    for k in m.weights:
        if k.startswith("upsample/") and k != "upsample/conv_in/w":
            m.weights[k] = rng.normal(size=m.weights[k].shape) * 0.3
    C = cfg.cin_channels
    clips = [rng.normal(-2, 1, (14 + 2 * cfg.cin_pad, C)) for _ in range(3)]
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
    """The frame graph's arithmetic written out: (N·hop, cin) int8.  F > 1: per band c one FC
    on bands lo[c] … hi[c]−1 of the window (band-major), the interior's taps quantized once."""
    cfg = m.config
    C = cfg.cin_channels
    if cfg.freq_axis_kernel_size == 1:
        taps, left = frame_fir(cfg, m.weights)
        hop, width = taps.shape
        bf = None
    else:
        bf = band_fir(cfg, m.weights)
        hop, width, left = bf.hop, bf.width, bf.left
    p = cfg.cin_pad
    fq = quantize_activation(cond, plan.features)
    if cfg.upsampler == "conv-in":
        K = 2 * p + 1
        w = m.weights["upsample/conv_in/w"].transpose(2, 0, 1).reshape(C, K * C)
        win = np.stack([fq[g:g + K].reshape(-1) for g in range(fq.shape[0] - K + 1)])
        stage, sqp, first = _fc_int8(win, plan.features, w, plan.stage, profile), plan.stage, 0
    else:
        stage, sqp, first = fq, plan.features, p
    zp = np.full((width, C), sqp.zero_point, np.int8)
    sp = np.concatenate([zp, stage, zp])
    n_out = cond.shape[0] - 2 * p
    out = np.empty((n_out * hop, C), np.int8)
    for f in range(n_out):
        s = f + first                                   # the stage frame the block belongs to
        window = sp[s - left + width:s - left + 2 * width]          # (width, C)
        if bf is None:
            out[f * hop:(f + 1) * hop] = _fc_int8(window.T, sqp, taps, plan.block, profile).T
            continue
        for c in range(C):
            row = window.T[bf.lo[c]:bf.hi[c]].reshape(1, -1)
            out[f * hop:(f + 1) * hop, c] = _fc_int8(row, sqp, bf.taps[c], plan.block,
                                                     profile)[0]
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
    # F > 1 sums (2R+1)·width quantized stage values per output instead of width: 2.6 LSB seen
    tol = 2.5 if cfg.freq_axis_kernel_size == 1 else 3.5
    assert err[edge:len(err) - edge].max() <= tol * plan.block.scale


def test_frame_graph_contract_and_refusals():
    m, clips = _model("conv-in")
    fb = build_frame_graph(m, frame_plan(m, clips))
    meta = read_tflite(fb).metadata["wavenet_edge_frames"]
    c = json.loads(bytes(meta).rstrip(b"\0"))
    assert (c["hop"], c["frames_per_call"], c["width"], c["left"], c["ahead"]) == (16, 3, 5, 2, 2)
    assert [d["delay"] for d in c["delay_lines"]] == [4, 3, 2, 1]
    assert "band_reach" not in c and "SLICE" not in {op.opcode for op in read_tflite(fb).operators}
    m0 = FloatWaveNet.initialize(WaveNetConfig())
    with pytest.raises(ConversionError, match="needs a model with an upsampler"):
        frame_plan(m0, [np.zeros((4, 4))])


def test_frame_graph_F3_structure():
    """Two edge bands at each end with their own FC on their own band window, one FC for the
    interior bands on their 2R + 1 = 5 stacked band windows, joined into the block."""
    m, clips = _model("conv-in-F3")
    t = read_tflite(build_frame_graph(m, frame_plan(m, clips)))
    c = json.loads(bytes(t.metadata["wavenet_edge_frames"]).rstrip(b"\0"))
    assert c["band_reach"] == 2 and (c["width"], c["left"]) == (5, 2)
    fcs = {t.tensors[op.outputs[0]].name: list(t.tensors[op.inputs[1]].shape)
           for op in t.operators if op.opcode == "FULLY_CONNECTED"}
    assert fcs == {"stage": [6, 18], "band0/block": [8, 15], "band1/block": [8, 20],
                   "interior/block": [8, 25], "band4/block": [8, 20], "band5/block": [8, 15]}
    assert sum(op.opcode == "SLICE" for op in t.operators) == 4 + 5


def test_frame_graph_F3_concatenation_trees():
    """Five F = 3 scales: R = 5, so 11 interior shifts and 11 block parts, past TFLM's 10-input
    CONCATENATION: both become trees; TFLM, LiteRT, the engine and the reference agree."""
    from wavenet_edge.lowered.frames import lower_frames
    from wavenet_edge.program import schedule
    from test_engine_frames import _one_call
    cfg = WaveNetConfig(cin_channels=13, upsampler="conv-in", upsample_scales=(2,) * 5,
                        cin_pad=1, freq_axis_kernel_size=3)
    m, clips = _model(cfg)
    plan = frame_plan(m, clips)
    fb = build_frame_graph(m, plan)
    cats = [len(op.inputs) for op in read_tflite(fb).operators if op.opcode == "CONCATENATION"]
    assert max(cats) <= 10 and len(cats) == 1 + 2 + 2
    for rt in ("tflm", "litert"):
        want = reference_blocks(m, plan, clips[0], rt)
        np.testing.assert_array_equal(run_frame_graph(make_runner(fb, rt), m, plan, clips[0]),
                                      want)
        fp = lower_frames(fb, profile=rt, cin_pad=1, upsampler="conv-in")
        np.testing.assert_array_equal(_one_call(fp, schedule(fp.program), cfg, clips[0]), want)


def _r9y9_like(kind, pad, F=3, C=12):
    cfg = WaveNetConfig(cin_channels=C, upsampler=kind, upsample_scales=(4, 4, 4, 4),
                        cin_pad=pad, freq_axis_kernel_size=F)
    m = FloatWaveNet.initialize(cfg, seed=1)
    rng = np.random.default_rng(0)
    for k in m.weights:
        if k.startswith("upsample/") and k != "upsample/conv_in/w":
            m.weights[k] = rng.normal(size=m.weights[k].shape)
    return m, rng.normal(size=(10 + 2 * pad, C))


@pytest.mark.parametrize("kind, pad, edge", [("conv-in", 2, 84), ("plain", 2, 0), ("plain", 0, 84)])
def test_band_fir_equals_the_chain_except_at_the_stated_edges(kind, pad, edge):
    """r9y9's [4, 4, 4, 4] with F = 3 (12 bands): the band-window FIR reproduces the chain on
    every band to ~1e-12 (measured 1.1e-12 on unit weights), and differs only on the first and
    last 84 samples (the chain's zero padding of its inner stages at the time ends, exactly
    where F = 1 differs); the plain upsampler's cin_pad = 2 trim removes them."""
    m, cond = _r9y9_like(kind, pad)
    cfg = m.config
    bf = band_fir(cfg, m.weights)
    assert (bf.width, bf.left, bf.reach, bf.interior) == (5, 2, 4, (4, 8))
    y = upsample(cfg, m.weights, cond)
    got = band_fir_blocks(bf, stage_input(cfg, m.weights, cond)).reshape(-1, 12)
    shift = 0 if kind == "conv-in" else pad * cfg.hop
    d = np.abs(got[shift:shift + y.shape[0]] - y).max(axis=1)
    assert d[edge:len(d) - edge].max() < 1e-10
    if edge:
        assert d[edge - 1] > 1e-3 and d[len(d) - edge] > 1e-3


def test_band_fir_edge_bands_need_their_own_taps():
    """The chain is not band-shift invariant at the band edges: the interior kernel applied to
    zero bands beyond the edges is wrong by O(1) on the first and last 3 bands, and
    F = 1 gives frame_fir's taps on every band."""
    m, cond = _r9y9_like("conv-in", 2)
    cfg = m.config
    bf = band_fir(cfg, m.weights)
    x = stage_input(cfg, m.weights, cond)
    want = band_fir_blocks(bf, x)
    # the interior kernel everywhere, on zero-padded bands
    xp = np.concatenate([np.zeros((x.shape[0], 4)), x, np.zeros((x.shape[0], 4))], axis=1)
    naive = bf._replace(lo=np.arange(12), hi=np.arange(12) + 9, taps=(bf.taps[4],) * 12)
    d = np.abs(band_fir_blocks(naive, xp) - want).max(axis=(0, 1))
    # only intermediate stages' padding matters: bands within R − (F−1)/2 = 3 of an edge; band
    # 3 (8) misses input band −1 (12) only, which is zero in both forms
    assert (d[[0, 1, 2, 9, 10, 11]] > 1e-2).all() and d[3:9].max() < 1e-10
    m1, _ = _r9y9_like("conv-in", 2, F=1, C=3)
    taps, left = frame_fir(m1.config, m1.weights)
    b1 = band_fir(m1.config, m1.weights)
    assert b1.left == left and b1.reach == 0
    assert all(np.array_equal(t, taps) for t in b1.taps)
