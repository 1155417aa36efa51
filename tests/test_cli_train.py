"""``wavenet-edge train`` by subprocess: success paths write loadable checkpoints; user errors give
one line on stderr, a non-zero exit, no traceback and no output file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from wavenet_edge import FloatWaveNet, write_wav

# a small config so that a few steps take well under a second
SMALL = {"dilations": [1, 2, 4, 8, 16], "residual_channels": 8, "dilation_channels": 8,
         "skip_channels": 8, "end_channels": 16}


def _run(args, cwd):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "wavenet_edge", "train", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def small_config(tmp_path):
    p = tmp_path / "small.json"
    p.write_text(json.dumps(SMALL))
    return p


def test_builtin_success_default_name(tmp_path, small_config):
    r = _run(["--config", small_config, "--steps", "3", "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "wavenet-small.npz"
    model = FloatWaveNet.load(out)
    assert model.config.dilations == (1, 2, 4, 8, 16)
    assert "held-out order-0 entropy" in r.stdout
    assert "held-out before training" in r.stdout and "held-out after training" in r.stdout
    assert "wrote" in r.stdout and "Traceback" not in r.stderr


def test_init_continues_a_checkpoint(tmp_path, small_config):
    r = _run(["--config", small_config, "--steps", "2", "--no-progress", "-o", "a.npz"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run(["--init", "a.npz", "--steps", "2", "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    a, b = FloatWaveNet.load(tmp_path / "a.npz"), FloatWaveNet.load(tmp_path / "a-continued.npz")
    assert a.config == b.config
    assert not np.array_equal(a.weights["end2/w"], b.weights["end2/w"])


def test_user_wav_resampled_preset_and_output(tmp_path):
    sr = 8000
    t = np.arange(sr) / sr
    y = 0.4 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 331 * t + 1.0)
    write_wav(tmp_path / "tone.wav", np.stack([y, y]), sr)      # stereo, 8 kHz
    out = tmp_path / "models" / "m.npz"
    out.parent.mkdir()
    r = _run([tmp_path / "tone.wav", "--preset", "tiny", "--steps", "2", "--batch-size", "2",
              "--no-progress", "-o", out], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "8000 Hz -> 16000 Hz" in r.stderr
    assert FloatWaveNet.load(out).config.residual_channels == 16
    assert "held-out after training" in r.stdout


def _assert_clean_failure(r, tmp_path, *needles):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("wavenet-edge train: error:")
    for n in needles:
        assert n in lines[0]
    assert not list(tmp_path.glob("*.npz")), "an output file was left behind"
    assert not list(tmp_path.glob(".tmp-*")), "a temporary file was left behind"


def test_missing_file(tmp_path):
    r = _run(["nope.wav", "--steps", "1", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "nope.wav", "no such file")


def test_bad_wav(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really a wav file")
    r = _run(["bad.wav", "--steps", "1", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "bad.wav")


def test_bad_config_json(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    r = _run(["--config", "c.json", "--steps", "1", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "c.json", "JSON")


def test_out_of_range_config(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({**SMALL, "kernel_size": 1}))
    r = _run(["--config", "c.json", "--steps", "1", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "c.json", "kernel_size")


def test_missing_output_dir(tmp_path, small_config):
    r = _run(["--config", small_config, "--steps", "1", "-o", tmp_path / "no" / "x.npz"],
             tmp_path)
    _assert_clean_failure(r, tmp_path, "does not exist")


def test_bad_budget(tmp_path, small_config):
    r = _run(["--config", small_config, "--steps", "0", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "steps")


def test_ctrl_c_saves_the_checkpoint(tmp_path, small_config):
    import signal
    import time

    out = tmp_path / "x.npz"
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    # --checkpoint-every 1: the file appears once the first step is done, then we interrupt
    proc = subprocess.Popen([sys.executable, "-m", "wavenet_edge", "train", "--config",
                             str(small_config), "--seconds", "120", "--checkpoint-every", "1",
                             "--no-progress", "-o", str(out)],
                            cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 100
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted at step" in err, err
    assert err.strip().splitlines()[-1] == "wavenet-edge train: interrupted"
    FloatWaveNet.load(out)
    assert not list(tmp_path.glob(".tmp-*"))
