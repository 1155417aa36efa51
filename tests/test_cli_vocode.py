"""``wavenet-edge vocode`` by subprocess: audio → features → int8 generation (the engine's codes
are those of Engine.generate with the same features and seed), --mel frames as a TTS front end
writes them, --plot, the default output name; bad input → one line, exit 2, no output file."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from converters.features import mel_features, pad_frames
from test_engine_cond import vocoder_bytes
from test_engine_helpers import speech
from wavenet_edge import load_wav, write_wav
from wavenet_edge.engine import Engine


def _pcm(y):
    """What write_wav stores for float audio: 16-bit PCM."""
    return np.clip(np.round(np.asarray(y, np.float64) * 32767.0), -32768, 32767)


def _run(args, cwd):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "wavenet_edge", "vocode", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vocode")
    (d / "voc.tflite").write_bytes(vocoder_bytes())
    y = speech("d", 128 * 6 + 50)
    write_wav(d / "speech.wav", y, 16000)
    eng = Engine(d / "voc.tflite")
    mel = mel_features(load_wav(d / "speech.wav", sr=16000)[0], sr=16000, config=eng.config)
    np.save(d / "tts.npy", mel[:6])
    return d


def test_vocode_audio_happy_path(files, tmp_path):
    r = _run([files / "voc.tflite", files / "speech.wav", "--seed", "4", "--temperature", "0.9",
              "--plot", tmp_path / "spec.png", "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "speech-vocoded.wav"          # default name from the input
    assert "real time" in r.stdout and "speech-vocoded.wav" in r.stdout
    y, sr = load_wav(out)
    assert sr == 16000 and y.shape == (6 * 128,)
    assert (tmp_path / "spec.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # what the CLI wrote is the engine's generation on the audio's features
    from converters.features import vocoder_inputs
    eng = Engine(files / "voc.tflite")
    _, cond = vocoder_inputs(load_wav(files / "speech.wav", sr=16000)[0], sr=16000,
                             config=eng.config)
    codes = eng.generate(6 * 128, cond=cond, seed=4, temperature=0.9)
    np.testing.assert_array_equal(np.round(y * 32768.0), _pcm(eng.decode(codes)))


def test_vocode_mel_npy(files, tmp_path):
    r = _run([files / "voc.tflite", "--mel", files / "tts.npy", "-o", tmp_path / "o.wav",
              "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    y, _ = load_wav(tmp_path / "o.wav")
    eng = Engine(files / "voc.tflite")
    mel = np.load(files / "tts.npy")
    codes = eng.generate(6 * 128, cond=pad_frames(mel, eng.config), seed=0)
    np.testing.assert_array_equal(np.round(y * 32768.0), _pcm(eng.decode(codes)))


@pytest.mark.parametrize("bad, message", [
    ("bands", "have 19 bands but the model takes 20"),
    ("nan", "NaN or Inf"),
    ("1d", "must be 2-D"),
    ("missing", "no such file"),
])
def test_vocode_bad_mel_is_one_line(files, tmp_path, bad, message):
    mel = np.load(files / "tts.npy")
    path = tmp_path / "bad.npy"
    if bad == "bands":
        np.save(path, mel[:, :19])
    elif bad == "nan":
        mel = mel.copy()
        mel[1, 1] = np.nan
        np.save(path, mel)
    elif bad == "1d":
        np.save(path, mel[:, 0])
    r = _run([files / "voc.tflite", "--mel", path, "--no-progress"], tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not list(tmp_path.glob("*.wav"))


def test_vocode_missing_audio_and_unconditioned_model(files, tmp_path):
    r = _run([files / "voc.tflite", tmp_path / "nothing.wav", "--no-progress"], tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "nothing.wav" in r.stderr and not list(tmp_path.glob("*.wav"))
    from test_engine_helpers import model_bytes
    (tmp_path / "plain.tflite").write_bytes(model_bytes("k2"))
    r = _run([tmp_path / "plain.tflite", files / "speech.wav", "--no-progress"], tmp_path)
    assert r.returncode == 2 and "not a vocoder" in r.stderr, r.stderr
    assert not list(tmp_path.glob("*.wav"))


def test_c_export_of_a_vocoder(files, tmp_path):
    """export-c writes the frame program and the cond row too (tests/test_c_export_cond.py
    checks the C against the engine)."""
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "export-c", str(files / "voc.tflite"),
                        "-o", str(tmp_path / "c")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "frame program" in r.stdout, r.stderr
    assert (tmp_path / "c" / "wavenet_cond.c").exists()
