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
def test_quickstart_runs_every_stage(tmp_path):
    out = tmp_path / "qs"
    r = _cli("quickstart", "-o", out, "--steps", "3", "--verify-steps", "100",
             "--generate-seconds", "0.1", "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    for stage in range(1, 8):
        assert f"[{stage}/7]" in r.stdout
    s = json.loads((out / "summary.json").read_text())
    import os
    for key in ("checkpoint", "tflite", "audio", "audio_png", "layers_png", "simulate_report"):
        assert os.path.exists(s["files"][key]), key
    for rt in ("tflm", "litert"):
        v = s["verify"][rt]
        assert v["teacher_forced"]["identical"] == v["teacher_forced"]["steps"] == 100
        assert v["free_running"]["identical"] == 100
    assert s["engine_samples_per_second"] > 0
    assert (out / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
