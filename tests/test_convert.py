"""convert(): canonical form, calibration methods, quantization primitives, the front door,
report, CLI, and bad inputs."""

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from converters import calibrate
from converters.canonical import canonicalize
from converters.convert import convert
from converters.quantize import (activation_qparams, bias_scales, dequantize, quantize_activation,
                                 quantize_bias, quantize_weights)
from wavenet_edge.audio import load_wav, write_wav
from wavenet_edge.config import WaveNetConfig
from wavenet_edge.errors import CheckpointError, ConfigError, ConversionError
from wavenet_edge.float_model import FloatWaveNet
from wavenet_edge.mulaw import encode_classes
from wavenet_edge.tflite_file import read_tflite

SR = 16000


def _audio(n, seed, freqs=(220.0, 347.0)):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    y = sum(0.35 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)
    return np.clip(y + 0.01 * rng.standard_normal(n), -1, 1)


def _model(seed=0, **kw):
    cfg = WaveNetConfig(**{"dilations": (1, 2, 4, 8, 1, 2, 4, 8), "residual_channels": 8,
                           "dilation_channels": 8, "skip_channels": 16, "end_channels": 16, **kw})
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed + 7)
    for name, a in m.weights.items():
        if name.endswith("/b") or name == "initial/bias":
            m.weights[name] = rng.normal(0.0, 0.1, a.shape)
    return m


CAL = [_audio(4000, 1, (180.0, 530.0)), _audio(4000, 2, (260.0, 410.0))]
HELD = [_audio(1500, 3, (300.0, 470.0)), _audio(1500, 4, (233.0, 610.0))]


# -- canonical form -------------------------------------------------------------------------------

def test_canonical_form_folds_scales_exactly():
    model = _model(residual_scale=float(np.sqrt(0.5)), skip_scale=0.3, kernel_size=3,
                   initial_filter_width=2, gc_cardinality=2, gc_channels=3)
    canon = canonicalize(model)
    assert canon.config.residual_scale == 1.0 and canon.config.skip_scale == 1.0
    assert model.config.residual_scale != 1.0                 # input untouched
    codes = encode_classes(_audio(3000, 5))
    for spk in (0, 1):
        a, b = model.logits(codes, speaker=spk), canon.logits(codes, speaker=spk)
        assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()


def test_float_activations_reproduce_the_model():
    model = canonicalize(_model(kernel_size=3, initial_filter_width=3, gc_cardinality=2,
                                gc_channels=3))
    codes = encode_classes(_audio(1500, 6))
    acts = dict(calibrate.float_activations(model, codes, speaker=1))
    ref, cache = model.forward(codes, speaker=1, cache=True)
    assert np.abs(acts["logits"] - ref).max() <= 1e-12 * np.abs(ref).max()
    keys = set(calibrate.activation_tensors(model.config))
    assert keys == set(acts)
    with pytest.raises(ConfigError):
        list(calibrate.float_activations(_model(residual_scale=0.5), codes))


# -- calibration methods and quantization primitives --------------------------------------------

def _stats(x):
    s = calibrate.TensorStats(x.min(), x.max())
    s.update(x)
    return s


def test_range_methods():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.laplace(0.5, 1.0, 200_000), [40.0, -30.0]])   # heavy tail + outliers
    s = _stats(x)
    lo, hi = calibrate.choose_range(s, "minmax")
    assert (lo, hi) == (-30.0, 40.0)
    plo, phi = calibrate.choose_range(s, "percentile")
    assert -12 < plo < -5 and 5 < phi < 13
    mlo, mhi = calibrate.choose_range(s, "mse")
    assert lo < mlo < 0 < mhi < hi

    def err(lo, hi):
        qp = activation_qparams(lo, hi)
        return ((dequantize(quantize_activation(x, qp), qp) - x) ** 2).mean()
    # the MSE choice is (up to the histogram's resolution) the best of the three on its objective
    assert err(mlo, mhi) <= 1.05 * min(err(lo, hi), err(plo, phi))
    relu = _stats(np.abs(rng.normal(size=10_000)))
    assert calibrate.choose_range(relu, "mse")[0] == 0.0
    with pytest.raises(ConfigError):
        calibrate.choose_range(s, "magic")


@given(st.floats(-50, 0), st.floats(0, 50))
def test_activation_qparams_represent_zero_and_cover_range(lo, hi):
    qp = activation_qparams(lo, hi)
    assert -128 <= qp.zero_point <= 127 and qp.scale == float(np.float32(qp.scale)) > 0
    assert quantize_activation(0.0, qp) == qp.zero_point
    assert dequantize(quantize_activation(0.0, qp), qp) == 0.0
    rlo, rhi = qp.range
    step = qp.scale
    assert rlo <= lo + step and rhi >= hi - step


def test_weights_per_channel_and_bias_scales():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 12))
    w[2] = 0.0                                  # all-zero row must not divide by zero
    q, s = quantize_weights(w)
    assert q.dtype == np.int8 and s.dtype == np.float32
    assert np.all(q[2] == 0) and s[2] > 0
    assert np.all(np.abs(q[[0, 1, 3, 4]]).max(axis=1) == 127) and q.min() >= -127
    assert np.abs(q * s[:, None].astype(np.float64) - w).max() <= s.max() / 2 + 1e-9
    b = rng.normal(size=5)
    bq, bs = quantize_bias(b, 0.0123, s)
    assert bq.dtype == np.int32
    exact = np.float64(np.float32(0.0123)) * s.astype(np.float64)
    assert np.array_equal(bs, exact.astype(np.float32))
    assert np.array_equal(bs, bias_scales(0.0123, s))
    assert np.all(np.abs(bq * exact - b) <= exact / 2 + 1e-15)
    with pytest.raises(ConversionError):
        quantize_bias(np.array([1e6]), 1e-6, np.array([1e-6], np.float32))


# -- the front door -------------------------------------------------------------------------------

def test_convert_writes_file_report_and_chooses_by_measurement(tmp_path):
    model = _model(seed=3)
    out, rep = tmp_path / "m.tflite", tmp_path / "r.json"
    res = convert(model, calibration=CAL, heldout=HELD, out=out, report=rep, progress=False,
                  eval_steps=2000)
    assert out.read_bytes() == res.tflite
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
    r = json.loads(rep.read_text())
    assert r["method"] == res.method in ("minmax", "percentile", "mse")
    assert set(r["methods"]) == {"minmax", "percentile", "mse"}
    best = min(r["methods"], key=lambda m: r["methods"][m]["int8_bits"])
    assert r["methods"][res.method]["int8_bits"] == r["methods"][best]["int8_bits"]
    q = res.quality
    assert q["steps"] == 2 * (1000 - 1)
    assert abs(q["int8_bits"] - q["float_bits"]) < 0.1 and q["logit_snr_db"] > 20
    assert q["kl_bits"] >= 0 and 0.7 < q["top1_agreement"] <= 1
    f = r["model"]
    cfg = model.config
    assert f["parameters"] == cfg.parameter_count() and f["file_bytes"] == len(res.tflite)
    assert f["macs_per_sample"] == cfg.macs_per_sample()
    assert f["receptive_field"] == cfg.receptive_field == 31
    assert f["delay_line_bytes"] == cfg.delay_line_bytes()
    meta = json.loads(read_tflite(res.tflite).metadata["wavenet_edge"])
    assert meta["calibration"]["method"] == res.method
    table = res.table()
    assert "MACs per sample" in table and "chosen" in table


def test_convert_one_method_from_a_checkpoint_and_wav_files(tmp_path):
    model = _model(seed=4, residual_scale=0.7, skip_scale=0.5, gc_cardinality=2, gc_channels=3)
    ckpt = tmp_path / "m.npz"
    model.save(ckpt)
    wav = tmp_path / "cal.wav"
    write_wav(wav, np.concatenate(CAL), SR)
    res = convert(str(ckpt), calibration=[str(wav)], heldout=HELD, method="percentile",
                  progress=False, eval_steps=600)
    assert res.method == "percentile" and set(res.report["methods"]) == {"percentile"}
    assert res.path is None and res.report["calibration"]["audio"] == "cal.wav"
    assert res.quality["logit_snr_db"] > 20


def test_user_calibration_audio_holds_out_its_own_tail(tmp_path):
    # no --heldout: quality and the auto choice are measured on the last 10 % of the user's files,
    # which calibration does not see, never on the built-in sine set
    seen = []

    def recording(data, codes, speaker):
        seen.append(np.array(codes))
        return contract_host_runner("litert")(data, codes, speaker)

    from converters.report import contract_host_runner
    paths = []
    for i, y in enumerate(CAL):
        paths.append(tmp_path / f"voice{i}.wav")
        write_wav(paths[-1], y, SR)
    res = convert(_model(seed=11), calibration=[str(p) for p in paths], runner=recording,
                  progress=False, eval_steps=800)
    r = res.report
    assert r["heldout"] == "last 10% of voice0.wav, voice1.wav (calibration audio held out)"
    assert r["calibration"]["audio"] == "voice0.wav, voice1.wav (first 90% of each)"
    assert r["calibration"]["samples"] == 2 * 3600
    assert set(r["methods"]) == {"minmax", "percentile", "mse"} and len(seen) == 6
    tails = [encode_classes(np.clip(load_wav(p, sr=SR)[0], -1, 1))[3600:] for p in paths]
    for k, codes in enumerate(seen):
        assert np.array_equal(codes, tails[k % 2][:400])
    assert "held-out (quality)" in res.table() and "last 10% of voice0.wav" in res.table()
    # explicit held-out audio wins, and calibration keeps every sample
    res = convert(_model(seed=11), calibration=[str(p) for p in paths], heldout=HELD,
                  method="minmax", progress=False, eval_steps=400)
    assert res.report["heldout"] == "array[1500], array[1500]"
    assert res.report["calibration"]["samples"] == 8000
    # the built-in calibration set keeps the built-in held-out split
    res = convert(_model(seed=11), method="minmax", progress=False, eval_steps=400)
    assert res.report["heldout"].startswith("builtin:heldout")


def test_calibration_audio_too_short_to_hold_out(tmp_path):
    with pytest.raises(ConversionError, match="too short to hold out"):
        convert(_model(), calibration=[_audio(3000, 0)[:300] for _ in range(12)], progress=False)


def test_engine_runner_is_bit_exact_with_litert():
    from converters.report import contract_host_runner, engine_runner
    res = convert(_model(seed=8, kernel_size=3, gc_cardinality=2, gc_channels=3), calibration=CAL,
                  method="mse", evaluate_quality=False, progress=False)
    assert res.report["methods"] == {}
    codes = encode_classes(HELD[0])[:800]
    for spk in (0, 1):
        a = engine_runner("litert")(res.tflite, codes, spk)
        b = contract_host_runner("litert")(res.tflite, codes, spk)
        assert np.array_equal(a, b)


def test_runner_is_a_parameter():
    calls = []

    def zeros(data, codes, speaker):
        calls.append(len(codes))
        return np.zeros((len(codes), 256), np.int8)

    res = convert(_model(seed=5), calibration=CAL, heldout=HELD, method="minmax", runner=zeros,
                  progress=False, eval_steps=400)
    assert calls == [200, 200] and res.quality["runner"] == "zeros"


# -- bad inputs -----------------------------------------------------------------------------------

def test_bad_inputs(tmp_path):
    model = _model()
    with pytest.raises(ConversionError, match="too short"):
        convert(model, calibration=[_audio(1000, 0)], progress=False)
    with pytest.raises(ConversionError, match="does not exist"):
        convert(model, calibration=CAL, out=tmp_path / "nope" / "m.tflite", progress=False)
    assert not (tmp_path / "nope").exists()
    with pytest.raises(ConfigError):
        convert(model, calibration=CAL, method="best", progress=False)
    bad = dict(model.weights)
    bad["layers/3/gate/w"] = bad["layers/3/gate/w"].copy()
    bad["layers/3/gate/w"][0, 0, 0] = np.nan
    with pytest.raises(CheckpointError):
        FloatWaveNet(model.config, bad)
    cfg_bytes = np.frombuffer(model.config.to_json().encode(), np.uint8)
    np.savez(tmp_path / "nan.npz", __config__=cfg_bytes, **bad)
    with pytest.raises(CheckpointError):
        convert(str(tmp_path / "nan.npz"), calibration=CAL, progress=False)
    with pytest.raises(CheckpointError):
        convert(str(tmp_path / "missing.npz"), calibration=CAL, progress=False)


def test_cli_convert(tmp_path, capsys):
    from wavenet_edge.cli import main
    model = _model(seed=6)
    ckpt = tmp_path / "m.npz"
    model.save(ckpt)
    for i, y in enumerate(CAL):
        write_wav(tmp_path / f"cal{i}.wav", y, SR)
    write_wav(tmp_path / "held.wav", HELD[0], SR)
    out = tmp_path / "m.tflite"
    rc = main(["convert", str(ckpt), "-o", str(out), "--calibration", str(tmp_path / "cal0.wav"),
               str(tmp_path / "cal1.wav"), "--heldout", str(tmp_path / "held.wav"),
               "--method", "mse", "--eval-steps", "300", "--report", str(tmp_path / "r.json"),
               "--runner", "engine", "--no-progress"])
    assert rc == 0 and out.exists() and (tmp_path / "r.json").exists()
    text = capsys.readouterr().out
    assert "receptive field" in text and "mse" in text and "Engine[litert]" in text
    rc = main(["convert", str(ckpt), "-o", str(tmp_path / "x" / "m.tflite"), "--no-progress"])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err


def test_dead_relu_model_converts():
    # every skip output negative: skip/relu is constantly 0 — its range must not collapse
    model = _model(seed=9)
    for l in range(model.config.n_layers):
        model.weights[f"layers/{l}/skip/w"][:] = 0.0
        model.weights[f"layers/{l}/skip/b"][:] = -1.0
    res = convert(model, calibration=CAL, heldout=HELD, method="minmax", progress=False,
                  eval_steps=400)
    assert abs(res.quality["delta_bits"]) < 0.01
