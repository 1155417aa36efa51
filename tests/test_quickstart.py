"""`wavenet-edge quickstart` and `explain`, end to end by subprocess with tiny budgets."""

import json
import subprocess
import sys

import numpy as np
import pytest

from wavenet_edge import FloatWaveNet, WaveNetConfig


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "wavenet_edge", *map(str, args)],
                          capture_output=True, text=True, **kw)


@pytest.mark.slow
def test_quickstart_runs_every_stage(quickstart_run):
    # the README's first command with small budgets (tests/readme_commands.py), run once per session
    r, cwd = quickstart_run
    assert r.returncode == 0, r.stderr[-2000:]
    for stage in range(1, 9):
        assert f"[{stage}/8]" in r.stdout
    out = cwd / "quickstart_out"
    s = json.loads((out / "summary.json").read_text())
    import os
    for key in ("checkpoint", "tflite", "audio", "audio_png", "layers_png", "simulate_report",
                "continuation_png", "continuation_audio", "original_audio"):
        assert os.path.exists(cwd / s["files"][key]), key
    for rt in ("tflm", "litert"):
        v = s["verify"][rt]
        assert v["teacher_forced"]["identical"] == v["teacher_forced"]["steps"] == 50
        assert v["free_running"]["identical"] == 50
    assert s["engine_samples_per_second"] > 0
    # the summary names the targets that run the model in real time with the exported C
    assert isinstance(s["real_time_targets_c_export"], list)
    assert "real time with the exported C" in r.stdout
    sim = json.loads((cwd / s["files"]["simulate_report"]).read_text())
    assert s["real_time_targets_c_export"] == [
        t["target"]["name"] for t in sim["targets"]
        if t["c_export"] and t["c_export"]["real_time"] and t["c_export"]["fits"]]
    # each target is named in at most one shrink paragraph (targets sharing a plan share it)
    heads = [ln for ln in r.stdout.splitlines() if ln.endswith("what to shrink (estimates):")]
    names = [n for ln in heads for n in ln.split(":")[0].split(", ")]
    assert len(names) == len(set(names))
    assert (out / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    c = s["continuation"]
    d = {float(t): v for t, v in c["spectral_distance"].items()}
    assert c["best_temperature"] == min(d, key=d.get) and 1.0 in d and min(d) < 1.0
    assert c["baselines"]["silence"] == 1.0 and c["verdict"] in r.stdout
    # the continuation WAV is the prime (the original's first half) followed by the generated rest
    from wavenet_edge import load_wav
    y, _ = load_wav(out / "continuation.wav")
    x, _ = load_wav(out / "original.wav")
    assert y.shape == x.shape and np.array_equal(y[:c["prime_samples"]], x[:c["prime_samples"]])
    assert not np.array_equal(y[c["prime_samples"]:], x[c["prime_samples"]:])


def test_continuation_measure_and_baselines():
    from converters.continuation import continue_clips, spectral_convergence
    from converters.convert import convert

    sr = 16000
    t = np.arange(sr // 2) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    assert spectral_convergence(tone, tone) == 0.0
    assert spectral_convergence(np.zeros_like(tone), tone) == pytest.approx(1.0)
    # phase does not matter, pitch does
    assert spectral_convergence(0.5 * np.sin(2 * np.pi * 440 * t + 2.0), tone) < 0.05
    assert spectral_convergence(0.5 * np.sin(2 * np.pi * 660 * t), tone) > 1.0
    cfg = WaveNetConfig(dilations=(1, 2, 4, 8), residual_channels=4, dilation_channels=4,
                        skip_channels=8, end_channels=8)
    from wavenet_edge.engine import Engine
    res = convert(FloatWaveNet.initialize(cfg, seed=0), method="minmax", progress=False,
                  evaluate_quality=False)
    eng = Engine.from_bytes(res.tflite)
    clips = [tone, 0.4 * np.sin(2 * np.pi * 300 * t)]
    c = continue_clips(eng, clips, prime=3000, temperatures=(1.0, 0.5), seeds=2)
    assert set(c.distance) == {1.0, 0.5} and c.best == min(c.distance, key=c.distance.get)
    assert c.audio[1.0][0].shape == (len(t) - 3000,)
    # seed 0 at T = 1 is what the engine generates after the same prime
    eng.reset()
    from wavenet_edge.mulaw import encode_classes
    g = eng.decode(eng.generate(len(t) - 3000, seed=0, prime=encode_classes(tone)[:3000]))
    assert np.array_equal(g, c.audio[1.0][0])
    assert c.baselines["other clip"] == pytest.approx(
        np.mean([spectral_convergence(clips[1][3000:], clips[0][3000:]),
                 spectral_convergence(clips[0][3000:], clips[1][3000:])]))


def test_quickstart_bad_option_is_one_line(tmp_path):
    r = _cli("quickstart", "-o", tmp_path / "x", "--seconds", "-1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--seconds" in r.stderr


def _model(tmp_path):
    cfg = WaveNetConfig(dilations=(1, 2, 4, 8), residual_channels=4, dilation_channels=4,
                        skip_channels=8, end_channels=8)
    p = tmp_path / "m.npz"
    FloatWaveNet.initialize(cfg, seed=0).save(p)
    return p


def test_explain_writes_png_and_table(tmp_path):
    p = _model(tmp_path)
    r = _cli("explain", p, "--freqs", "8", "--json")
    assert r.returncode == 0, r.stderr
    png = tmp_path / "m-layers.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    data = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][0])
    assert np.array(data["measured"]).shape == (4, 8)
    assert "rank correlation" in r.stdout


def test_explain_missing_model(tmp_path):
    r = _cli("explain", tmp_path / "nope.npz")
    assert r.returncode == 2 and "nope.npz" in r.stderr and "Traceback" not in r.stderr


def test_two_tap_analytic_response_matches_textbook():
    # one channel, kernel [w0, w1] = [1, 1], dilation d: |1 + e^{-jωd}| = 2|cos(ωd/2)|, zero at fs/(2d)
    from converters.explain import analytic_response
    cfg = WaveNetConfig(dilations=(4,), residual_channels=1, dilation_channels=1,
                        skip_channels=1, end_channels=1)
    m = FloatWaveNet.initialize(cfg, seed=0)
    m.weights["layers/0/filter/w"][:] = 1.0
    f = np.array([100.0, 1000.0, 2000.0, 3000.0])
    got = analytic_response(m, f, sr=16000)[0]
    np.testing.assert_allclose(got, 2 * np.abs(np.cos(np.pi * f * 4 / 16000)), atol=1e-12)
    assert got[2] < 1e-12  # null at fs/(2d) = 2 kHz for a [1, 1] kernel
