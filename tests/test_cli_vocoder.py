"""``wavenet-edge train --preset vocoder-tiny`` by subprocess on committed speech (espeak-ng /
flite, tests/data/speech): features by the preset's recipe, a loadable conditioned checkpoint,
held-out bits before/after; bad vocoder input gives one line and no output file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from wavenet_edge import FloatWaveNet, write_wav

SPEECH = sorted((Path(__file__).parent / "data" / "speech").glob("*.wav"))


def _run(args, cwd):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "wavenet_edge", "train", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_train_vocoder_tiny_on_speech(tmp_path):
    assert len(SPEECH) == 2
    r = _run([*SPEECH, "--preset", "vocoder-tiny", "--steps", "4", "--batch-size", "2",
              "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    m = FloatWaveNet.load(tmp_path / "wavenet-vocoder-tiny.npz")
    assert m.config.has_cond and m.config.mel.n_mels == 20
    assert "held-out after training" in r.stdout
    before = float(r.stdout.split("held-out before training:")[1].split()[0])
    after = float(r.stdout.split("held-out after training:")[1].split()[0])
    # learning itself is pinned by test_train_cond (a few steps may not lower it yet)
    assert 4.0 < before < 12.0 and 4.0 < after < 12.0


def test_vocoder_audio_too_short_is_one_line(tmp_path):
    short = tmp_path / "short.wav"
    write_wav(short, np.zeros(100, np.float32), 16000)
    r = _run([short, "--preset", "vocoder-tiny", "--steps", "2", "--no-progress"], tmp_path)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "wavenet-vocoder-tiny.npz").exists()
