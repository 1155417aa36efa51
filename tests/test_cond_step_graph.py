"""The vocoder's int8 step graph (``cond`` input, per-layer QUANTIZE into the layer's input
quantization, conv1x1c columns in the filter/gate FCs) and its frame graph, driven from the
contract alone by ``converters.host.ContractHost`` in real TFLM and real LiteRT: bit-exact on
every output against the integer reference in ``tests/reference_graph_int8.py`` (which reads
only the file), teacher-forced across many frame boundaries, with and without a speaker, for
the conv-in, plain and no-upsampler cases and conv-in with F = 3; int8 follows float; bad
features are refused; convert takes r9y9's checkpoints, F = 3 included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters import calibrate
from converters.canonical import canonicalize
from converters.export import build_step_graph
from converters.frame_graph import frame_plan
from converters.host import ContractHost
from converters.quantize import activation_plan, dequantize
from reference_graph_int8 import drive
from wavenet_edge import FloatWaveNet, WaveNetConfig
from wavenet_edge.contract import read_contract
from wavenet_edge.errors import ConfigError
from wavenet_edge.tflite_file import read_tflite

NET = dict(dilations=(1, 2, 4, 8), residual_channels=8, dilation_channels=8, skip_channels=16,
           end_channels=16)
CASES = {
    # conv-in (r9y9's ConvInUpsampleNetwork), hop 8, no speaker, kernel 2
    "conv-in": dict(cin_channels=5, upsampler="conv-in", upsample_scales=(2, 4), cin_pad=1),
    # plain UpsampleNetwork with a speaker embedding and kernel 3 (QUANTIZE after the speaker)
    "plain-gc": dict(cin_channels=4, upsampler="plain", upsample_scales=(4,), cin_pad=1,
                     gc_cardinality=3, gc_channels=3, kernel_size=3),
    # conv-in with a speaker
    "conv-in-gc": dict(cin_channels=3, upsampler="conv-in", upsample_scales=(3,), cin_pad=2,
                       gc_cardinality=2, gc_channels=2),
    # features at sample rate (no frame graph)
    "none": dict(cin_channels=6),
    # r9y9's UpsampleNetwork mixing bands (F = 3): the band-window frame graph
    "conv-in-F3": dict(cin_channels=5, upsampler="conv-in", upsample_scales=(2, 4), cin_pad=1,
                       freq_axis_kernel_size=3),
}
STEPS = 240            # 30 frames of hop 8, 60 of hop 4, 80 of hop 3


def _model(case, seed=3):
    cfg = WaveNetConfig(**NET, **CASES[case])
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed)
    for k in m.weights:
        if k.startswith("upsample/") and k != "upsample/conv_in/w":
            m.weights[k] = rng.normal(size=m.weights[k].shape) * 0.4
        if "/cond_" in k:
            m.weights[k] = m.weights[k] * 2.0         # make the conditioning matter
    return m


def _features(cfg, n, seed):
    rng = np.random.default_rng(seed)
    frames = cfg.frames_for(n)
    # smooth, offset features like a normalised log-mel, with a silent stretch
    x = np.cumsum(rng.normal(0, 0.4, (frames, cfg.cin_channels)), axis=0) + 0.5
    x[frames // 3:frames // 3 + 3] = -2.0
    return x.astype(np.float32)


def _codes(n, seed):
    t = np.arange(n)
    y = 0.5 * np.sin(2 * np.pi * t / 37.0) + 0.1 * np.random.default_rng(seed).normal(size=n)
    return ((np.clip(y, -1, 1) + 1) * 127.5).astype(np.int64).clip(0, 255)


def _build(m, method="mse"):
    """Calibrate on three clips with their features and emit the step graph."""
    cfg = m.config
    canon = canonicalize(m)
    clips = [_codes(STEPS, s) for s in range(3)]
    conds = [_features(cfg, STEPS, 10 + s).astype(np.float64) for s in range(3)]
    spk = [s % cfg.gc_cardinality if cfg.has_gc else None for s in range(3)]
    stats = calibrate.collect_statistics(canon, clips, speakers=spk, conds=conds, progress=False)
    plan = activation_plan(cfg, calibrate.choose_ranges(stats, method))
    fp = frame_plan(canon, conds) if cfg.upsampler != "none" else None
    return build_step_graph(canon, plan, frame_plan=fp), plan


@pytest.fixture(scope="module")
def built():
    return {case: (_model(case),) + _build(_model(case)) for case in CASES}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("runtime", ["tflm", "litert"])
def test_conditioned_step_graph_bit_exact_with_the_integer_reference(built, case, runtime):
    m, data, _ = built[case]
    cfg = m.config
    codes = _codes(STEPS, 7)
    feats = _features(cfg, STEPS, 8)
    spk = 1 if cfg.has_gc else None
    host = ContractHost(data, runtime)
    got = host.run(codes, speaker=spk, cond=feats, outputs=host.output_names)
    want = drive(data, codes, runtime, speaker=spk, features=feats, names=host.output_names)
    for name in host.output_names:             # probs, logits and every delay-line write
        np.testing.assert_array_equal(got[name].reshape(STEPS, -1), want[name], err_msg=name)
    # the conditioning matters: other features, other logits
    host.reset()
    other = host.run(codes, speaker=spk, cond=feats[::-1].copy(), outputs=("logits",))
    assert np.mean(other["logits"] != got["logits"]) > 0.2


@pytest.mark.parametrize("case", list(CASES))
def test_int8_follows_float(built, case):
    m, data, plan = built[case]
    cfg = m.config
    codes = _codes(STEPS, 5)
    feats = _features(cfg, STEPS, 6)
    spk = 0 if cfg.has_gc else None
    q = ContractHost(data, "litert").run(codes, speaker=spk, cond=feats, outputs=("logits",))
    lq = dequantize(q["logits"], plan["logits"])
    lf = m.logits(codes, speaker=spk, cond=feats.astype(np.float64))
    rel = lf >= lf.max(axis=1, keepdims=True) - 20
    snr = 10 * np.log10((lf[rel] ** 2).sum() / ((lf[rel] - lq[rel]) ** 2).sum())
    # random weights, test features partly outside the calibrated range: 17-26 dB measured;
    # cond rows 4 samples late give 1-11 dB, cond held at its zero point 0-3 dB
    assert snr > 14, snr
    # and the float model itself depends on the features (so the SNR is about conditioning)
    lf2 = m.logits(codes, speaker=spk, cond=feats[::-1].astype(np.float64))
    assert np.abs(lf2 - lf).max() > 0.1


def test_contract_cond_input_record(built):
    m, data, plan = built["conv-in"]
    c = read_contract(read_tflite(data))
    ci = c.cond
    assert (ci.name, ci.channels, ci.hop, ci.cin_pad, ci.upsampler) == ("cond", 5, 8, 1, "conv-in")
    assert ci.beta == plan["cond"].beta > 0
    assert ci.frames is not None and ci.frames.frames_per_call == 3
    assert ci.frames.block_output == "cond_block_t"
    t = read_tflite(data)
    assert [t.tensors[i].name for i in t.inputs][:2] == ["sample", "cond"]
    # the frame graph's block and the step graph's cond share one quantization (bytes copied)
    blk = ci.frames.model.tensor("cond_block_t")
    assert float(blk.scale[0]) == plan["cond"].scale == float(t.tensor("cond").scale[0])
    # each layer's QUANTIZE targets that layer's input quantization
    for l in range(m.config.n_layers):
        a, b = t.tensor(f"layer{l:02d}/cond"), t.tensor(f"layer{l:02d}/input")
        assert a.scale[0] == b.scale[0] and a.zero_point[0] == b.zero_point[0]
    ops = [op.opcode for op in t.operators]
    assert ops.count("QUANTIZE") == m.config.n_layers
    none = read_contract(read_tflite(built["none"][1])).cond
    assert none.frames is None and none.hop == 1


def test_bad_features_are_one_line_errors(built):
    m, data, _ = built["conv-in"]
    cfg = m.config
    host = ContractHost(data, "litert")
    codes = _codes(64, 1)
    good = _features(cfg, 64, 2)
    cases = [
        (good[:, :4], "has 4 bands but the model takes 5|have 4 bands but the model takes 5"),
        (good.T.copy(), "transposed"),
        (np.where(np.arange(good.shape[0])[:, None] == 3, np.nan, good), "NaN"),
        (good[:-1], f"cond has {good.shape[0] - 1} frames but 64 samples need {good.shape[0]}"),
        (good.astype(str), "float array"),
    ]
    for bad, match in cases:
        with pytest.raises(ConfigError, match=match) as e:
            host.run(codes, cond=bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="set its features first"):
        ContractHost(data, "litert").step(3)
    host.reset()
    host.set_features(good)
    host.run(codes)
    with pytest.raises(ConfigError, match="conditioning exhausted"):
        host.step(1)
    with pytest.raises(ConfigError, match="from t = 0"):
        host.run(codes, cond=good)
    with pytest.raises(ConfigError, match="no local conditioning"):
        ContractHost(_unconditioned(), "litert").set_features(good)


def _unconditioned():
    from test_engine_helpers import model_bytes
    return model_bytes("k2")


def test_unconditioned_contract_has_no_cond_input():
    data = _unconditioned()
    assert read_contract(read_tflite(data)).cond is None
    meta = json.loads(read_tflite(data).metadata["wavenet_edge"])
    assert "cond_input" not in meta


# -- convert: r9y9's LC checkpoints and our own vocoder-tiny -------------------------------------
LC = Path(__file__).parent / "data" / "peers" / "wavenet_vocoder" / "lc"


def _smooth(rng, frames, C):
    return np.cumsum(rng.normal(0, 0.3, (frames, C)), axis=0) / 3.0


@pytest.mark.parametrize("name", ["plain_F1_gc", "sample_rate", "convin_F3"])
def test_convert_r9y9_lc_checkpoint_and_track_its_logits(name):
    from converters.checkpoints import load_checkpoint
    from converters.convert import convert
    d = LC / name
    m = load_checkpoint(d / "state_dict.pth", config=d / "hparams.json")
    cfg = m.config
    rng = np.random.default_rng(4)
    n = 1200 // cfg.hop * cfg.hop
    audio = [0.4 * np.sin(2 * np.pi * np.arange(n) * f / cfg.sample_rate)
             + 0.05 * rng.normal(size=n) for f in (180.0, 260.0, 410.0)]
    # the fixture's features are unit-scale random: calibrate on features of that kind
    feats = [rng.normal(size=(cfg.frames_for(n), cfg.cin_channels)) for _ in audio]
    res = convert(m, calibration=audio, features=feats, method="mse", evaluate_quality=False,
                  progress=False)
    codes = np.load(d / "inputs.npy")
    cond = np.load(d / "cond.npy")
    spk = int(np.load(d / "speaker.npy").reshape(-1)[0]) if cfg.has_gc else None
    want_f = np.load(d / "logits.npy")                         # r9y9's own forward
    for runtime in ("tflm", "litert"):
        got = ContractHost(res.tflite, runtime).run(codes, speaker=spk, cond=cond,
                                                    outputs=("logits", "probs"))
        ref = drive(res.tflite, codes, runtime, speaker=spk, features=cond)
        for k in ("logits", "probs"):
            np.testing.assert_array_equal(got[k], ref[k])
    lq = dequantize(got["logits"], res.plan["logits"])
    lf = want_f.reshape(lq.shape)
    rel = lf >= lf.max(axis=1, keepdims=True) - 20
    snr = 10 * np.log10((lf[rel] ** 2).sum() / ((lf[rel] - lq[rel]) ** 2).sum())
    assert snr > 15, snr


def test_convert_cli_vocoder_tiny_on_speech(tmp_path):
    """`wavenet-edge convert` of a vocoder-tiny checkpoint calibrates on the mel of the speech
    given and writes one .tflite whose contract carries the recipe; ContractHost runs it on the
    features of other audio (TFLM and LiteRT each equal the reference on the cond rows)."""
    import subprocess
    import sys
    from converters.features import vocoder_inputs
    from wavenet_edge.audio import load_wav
    from wavenet_edge.config import preset
    from wavenet_edge.mulaw import encode_classes
    cfg = preset("vocoder-tiny")
    FloatWaveNet.initialize(cfg, seed=1).save(tmp_path / "vt.npz")
    speech = sorted(str(p) for p in (Path(__file__).parent / "data" / "speech").glob("*.wav"))
    out = tmp_path / "vt.tflite"
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "convert", str(tmp_path / "vt.npz"),
                        "--calibration", *speech, "--method", "minmax", "--eval-steps", "512",
                        "--no-progress", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    ci = read_contract(read_tflite(data)).cond
    assert ci.mel == cfg.mel.to_dict() and ci.frames.frames_per_call == 2 * cfg.cin_pad + 1
    y, _ = load_wav(speech[0], sr=cfg.sample_rate)
    y, feats = vocoder_inputs(y[:3 * cfg.hop], sr=cfg.sample_rate, config=cfg)
    codes = encode_classes(y, convention=cfg.mulaw)[:3 * cfg.hop]
    a = ContractHost(data, "tflm")
    a.set_features(feats)
    b = ContractHost(data, "litert")
    b.set_features(feats)
    from reference_graph_int8 import cond_rows
    # each runtime rounds its FULLY_CONNECTED its own way: each equals its own reference
    np.testing.assert_array_equal(a._cond_rows, cond_rows(data, feats, "tflm"))
    np.testing.assert_array_equal(b._cond_rows, cond_rows(data, feats, "litert"))
    assert a.run(codes)["probs"].shape == (codes.size, 256)
