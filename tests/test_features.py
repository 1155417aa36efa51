"""converters.mel_features against librosa's own output (golden files made by
tests/data/features/make_librosa_golden.py), alignment, and one-line errors."""

import dataclasses
import json
import os

import numpy as np
import pytest

from converters import mel_features, vocoder_inputs
from converters.features import check_features
from wavenet_edge import AudioError, ConfigError, MelRecipe, WaveNetConfig, preset

DATA = os.path.join(os.path.dirname(__file__), "data", "features")


def _config(meta):
    rec = MelRecipe(n_mels=meta["n_mels"], n_fft=meta["n_fft"], hop_length=meta["hop"],
                    win_length=meta["win"], fmin=meta["fmin"], fmax=meta["fmax"],
                    power=meta["power"], pad_mode=meta["pad_mode"])
    return WaveNetConfig(sample_rate=meta["sr"], cin_channels=meta["n_mels"], mel=rec)


@pytest.mark.parametrize("name", ["vocoder_tiny", "r9y9_mulaw256", "power_constant_nofmax"])
def test_log_mel_equals_librosa(name):
    with open(os.path.join(DATA, name + ".json")) as f:
        meta = json.load(f)
    y = np.load(os.path.join(DATA, name + "_input.npy"))
    want = np.load(os.path.join(DATA, name + "_logmel.npy"))
    got = mel_features(y, sr=meta["sr"], config=_config(meta))
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_vocoder_tiny_recipe_is_the_golden_one():
    cfg = preset("vocoder-tiny")
    with open(os.path.join(DATA, "vocoder_tiny.json")) as f:
        meta = json.load(f)
    raw = dataclasses.replace(cfg.mel, normalization="none", mean=(), std=())
    assert _config(meta).mel == raw and meta["sr"] == cfg.sample_rate


def test_alignment_frames_and_edge_padding():
    cfg = preset("vocoder-tiny")           # hop 128, cin_pad 1
    y = np.random.default_rng(0).uniform(-0.5, 0.5, 128 * 10 + 77).astype(np.float32)
    S = mel_features(y, sr=16000, config=cfg)
    assert S.shape == (1 + y.size // 128, 20)
    y2, c = vocoder_inputs(y, sr=16000, config=cfg)
    assert y2.shape == (1280,) and c.shape == (10 + 2, 20)
    np.testing.assert_array_equal(c[1:-1], S[:10])
    np.testing.assert_array_equal(c[0], S[0])
    np.testing.assert_array_equal(c[-1], S[9])
    assert cfg.frames_for(y2.size) == c.shape[0]


def test_meanvar_normalisation():
    voc = preset("vocoder-tiny")
    base = voc.replace(mel=dataclasses.replace(voc.mel, normalization="none", mean=(), std=()))
    y = np.random.default_rng(1).uniform(-0.5, 0.5, 4000)
    raw = mel_features(y, sr=16000, config=base)
    mean, std = tuple(np.linspace(-3, -1, 20)), tuple(np.linspace(0.5, 2, 20))
    rec = MelRecipe(**{**base.mel.to_dict(), "normalization": "meanvar", "mean": mean, "std": std})
    got = mel_features(y, sr=16000, config=base.replace(mel=rec))
    np.testing.assert_allclose(got, (raw - np.array(mean)) / np.array(std), rtol=1e-5, atol=1e-5)
    got = mel_features(y, sr=16000, config=voc)               # the preset's own statistics
    np.testing.assert_allclose(got, (raw - np.array(voc.mel.mean)) / np.array(voc.mel.std),
                               rtol=1e-5, atol=1e-5)


def test_feature_errors_are_one_line():
    cfg = preset("vocoder-tiny")
    with pytest.raises(AudioError, match="22050 Hz but .* 16000 Hz"):
        mel_features(np.zeros(4000), sr=22050, config=cfg)
    with pytest.raises(AudioError, match="NaN"):
        mel_features(np.array([0.0, np.nan] * 1000), sr=16000, config=cfg)
    with pytest.raises(AudioError, match="mono"):
        mel_features(np.zeros((2, 4000)), sr=16000, config=cfg)
    with pytest.raises(ConfigError, match="no mel recipe"):
        mel_features(np.zeros(4000), sr=16000, config=preset("tiny"))
    with pytest.raises(ConfigError, match="have 80 bands but the model takes 20"):
        check_features(np.zeros((10, 80)), cfg)
    with pytest.raises(ConfigError, match="transposed"):
        check_features(np.zeros((20, 7)), cfg)
    with pytest.raises(ConfigError, match="NaN"):
        check_features(np.full((5, 20), np.nan), cfg)
