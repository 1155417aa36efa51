"""``wavenet-edge info / generate / score`` as a user runs them (subprocesses), errors included."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from test_engine_helpers import model_bytes, speech
from wavenet_edge import load_wav, write_wav
from wavenet_edge.engine import Engine


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "wavenet_edge", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    model = d / "k2.tflite"
    model.write_bytes(model_bytes("k2"))
    gc = d / "gc.tflite"
    gc.write_bytes(model_bytes("gc"))
    wav = d / "speech.wav"
    write_wav(wav, speech("a", 8000), 16000)
    return d, model, gc, wav


def _one_line_error(r):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def _in_process_error(argv):
    import contextlib
    import io

    from wavenet_edge.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    assert code != 0
    lines = [l for l in err.getvalue().splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err.getvalue(), err.getvalue()
    return lines[0]


def test_info(files):
    _, model, gc, _ = files
    r = _cli("info", model)
    assert r.returncode == 0, r.stderr
    for word in ("layers", "receptive", "delay lines", "layer04/input@16", "MACs/sample",
                 "quantization", "logits"):
        assert word in r.stdout
    r = _cli("info", gc)
    assert "3 speakers" in r.stdout


def test_generate_and_score(files):
    d, model, gc, wav = files
    r = _cli("generate", model, "--seconds", "0.25", "--seed", "3", "--no-progress", cwd=d)
    assert r.returncode == 0, r.stderr
    out = d / "k2-generated.wav"          # default name derived from the model
    assert "real time" in r.stdout
    y, sr = load_wav(out)
    assert sr == 16000 and y.shape == (4000,)
    # the file holds exactly the engine's codes for that seed
    codes = Engine.from_file(model).generate(4000, seed=3)
    ref = Engine.from_file(model).decode(codes)
    np.testing.assert_allclose(y, ref, atol=1.5 / 32768)
    r = _cli("generate", gc, "--seconds", "0.1", "--speaker", "2", "--prime", wav,
             "--temperature", "0.9", "-o", d / "gc.wav", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert load_wav(d / "gc.wav")[0].shape == (1600,)
    r = _cli("score", model, wav, out)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all("bits/sample" in l for l in lines)
    expect = Engine.from_file(model).score(load_wav(wav)[0])
    assert f"{expect:.4f}" in lines[0]


def test_errors_are_one_line_without_partial_output(files):
    d, model, gc, wav = files
    trunc = d / "trunc.tflite"
    trunc.write_bytes(model.read_bytes()[:5000])
    corrupt = d / "corrupt.tflite"
    b = bytearray(model.read_bytes())
    b[4:8] = b"XXXX"
    corrupt.write_bytes(bytes(b))
    bad_wav = d / "bad.wav"
    bad_wav.write_bytes(b"RIFF....WAVEjunk")
    out = d / "never.wav"
    cases = [
        ("generate", trunc, "--seconds", "0.1", "-o", out),
        ("generate", corrupt, "--seconds", "0.1", "-o", out),
        ("generate", d / "missing.tflite", "--seconds", "0.1", "-o", out),
        ("generate", model, "--seconds", "0.1", "--prime", bad_wav, "-o", out),
        ("generate", model, "--seconds", "-1", "-o", out),
        ("generate", gc, "--seconds", "0.1", "--speaker", "7", "-o", out),
        ("generate", model, "--seconds", "0.1", "-o", d / "no" / "dir.wav"),
        ("score", model, bad_wav),
        ("score", model, d / "missing.wav"),
        ("info", trunc),
    ]
    # a few as real subprocesses, the rest through the same entry point in-process (fast)
    for i, args in enumerate(cases):
        if i % 3 == 0:
            line = _one_line_error(_cli(*args))
        else:
            line = _in_process_error(list(map(str, args)))
        assert line.startswith(f"wavenet-edge {args[0]}: error:"), line
    assert not out.exists()
    assert not any(p.name.startswith(".tmp-") for p in d.iterdir())
