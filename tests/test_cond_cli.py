"""``score MODEL AUDIO`` and ``verify MODEL --audio AUDIO`` of a vocoder, by subprocess: both
condition on the features of that audio (the model's mel recipe).  score's number is the
teacher-forced cross-entropy of TFLM's own logits (ContractHost, same features), to the last
digit printed; verify reports the engine bit-exact with TFLM and LiteRT in both phases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from converters.convert import convert
from converters.features import vocoder_inputs
from converters.host import ContractHost
from converters.quantize import dequantize
from wavenet_edge import FloatWaveNet, WaveNetConfig
from wavenet_edge.audio import load_wav, write_wav
from wavenet_edge.mel_recipe import MelRecipe
from wavenet_edge.mulaw import encode_classes

SPEECH = Path(__file__).parent / "data" / "speech"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "wavenet_edge", *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory):
    cfg = WaveNetConfig(dilations=(1, 2, 4, 8, 16), residual_channels=8, dilation_channels=8,
                        skip_channels=16, end_channels=16, cin_channels=8, upsampler="conv-in",
                        upsample_scales=(4, 8), cin_pad=1,
                        mel=MelRecipe(n_mels=8, n_fft=256, hop_length=32, win_length=256,
                                      fmin=50.0, fmax=7600.0))
    m = FloatWaveNet.initialize(cfg, seed=5)
    for k in m.weights:
        if "/cond_" in k:
            m.weights[k] = m.weights[k] * 3.0
    wavs = sorted(SPEECH.glob("*.wav"))
    res = convert(m, calibration=[str(w) for w in wavs], method="minmax",
                  evaluate_quality=False, progress=False)
    p = tmp_path_factory.mktemp("vocoder") / "voc.tflite"
    p.write_bytes(res.tflite)
    return p, res, wavs


def test_score_conditions_on_the_audio(vocoder, tmp_path):
    path, res, wavs = vocoder
    cfg = res.model.config
    y, _ = load_wav(wavs[0], sr=cfg.sample_rate)
    y = y[:40 * cfg.hop + 17]
    clip = tmp_path / "clip.wav"
    write_wav(clip, y, cfg.sample_rate)
    r = _cli("score", path, clip)
    assert r.returncode == 0, r.stderr
    got = float(r.stdout.split()[1])
    # the same through TFLM from the contract: the features of that (16-bit) audio
    y, _ = load_wav(clip, sr=cfg.sample_rate)
    y, feats = vocoder_inputs(y, sr=cfg.sample_rate, config=cfg)
    codes = encode_classes(np.clip(y, -1, 1), convention=cfg.mulaw)
    lg = dequantize(ContractHost(path.read_bytes(), "tflm").run(
        codes, cond=feats, outputs=("logits",))["logits"], res.plan["logits"])[:-1]
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    want = float((lse - lg[np.arange(lg.shape[0]), codes[1:]]).mean() / np.log(2))
    assert f"{got:.4f}" == f"{want:.4f}"
    assert f"({codes.size:,} samples)" in r.stdout         # whole frames: 40 of 32 samples
    # conditioning on other features changes the score (it is used)
    lg2 = dequantize(ContractHost(path.read_bytes(), "tflm").run(
        codes, cond=feats[::-1].copy(), outputs=("logits",))["logits"], res.plan["logits"])
    assert np.mean(lg2[:-1] != lg) > 0.2


def test_verify_audio_is_bit_exact_in_both_phases(vocoder):
    path, res, wavs = vocoder
    r = _cli("verify", path, "--audio", wavs[1], "--steps", 200, "--free-steps", 100,
             "--against", "tflm,litert")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tflm: bit-exact (teacher-forced 224/224, free-running 128/128" in r.stdout
    assert "litert: bit-exact" in r.stdout and "conditioned on its features" in r.stdout
