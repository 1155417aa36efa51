"""Conditioning features from audio (numpy only): the model's mel recipe, and the audio/frame
alignment that training, ``score`` and ``vocode`` share.

The recipe is :class:`wavenet_edge.mel_recipe.MelRecipe` (librosa conventions, as r9y9's
``audio.logmelspectrogram``).  Alignment (r9y9's preprocessing): frame f (centred STFT) belongs
to samples ``[f·hop, (f+1)·hop)``; a clip of n samples keeps ``N = n // hop`` frames and its
first ``N·hop`` samples, and the model then takes ``N + 2·cin_pad`` frames: the ``cin_pad``
context frames beyond each end of the clip are copies of the edge frames (r9y9 instead drops
``cin_pad`` frames of audio at each end at synthesis; replicating keeps every sample).
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.config import WaveNetConfig
from wavenet_edge.errors import AudioError, ConfigError
from wavenet_edge.mel_recipe import MelRecipe

__all__ = ["mel_features", "mel_filterbank", "vocoder_inputs", "check_features", "check_feature_array",
           "pad_frames"]


def _hz_to_mel(f):
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = f / f_sp
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz)
                    / logstep, mel)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(*, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """(n_mels, 1 + n_fft//2) float64 triangular filters, Slaney area normalisation."""
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def _window(kind: str, n: int) -> np.ndarray:
    """Periodic window (scipy ``get_window(kind, n, fftbins=True)``)."""
    if kind == "rect":
        return np.ones(n)
    a = 0.5 if kind == "hann" else 0.54
    return a - (1.0 - a) * np.cos(2.0 * np.pi * np.arange(n) / n)


def _recipe(config) -> tuple:
    if isinstance(config, WaveNetConfig):
        if config.mel is None:
            raise ConfigError("the model's config has no mel recipe (config.mel); give the "
                              "features yourself (cond=)")
        return config.mel, config.sample_rate
    raise ConfigError(f"config must be a WaveNetConfig with a mel recipe, got "
                      f"{type(config).__name__}")


def mel_features(y, *, sr: int, config, out=None) -> np.ndarray:
    """Log-mel features of ``y`` by the model's recipe: (1 + n // hop, n_mels) float32.

    y : (n,) float audio in [-1, 1] at ``sr`` Hz, which must be the model's sample rate
    config : the model's :class:`WaveNetConfig` (its ``mel`` recipe)
    out : optional (frames, n_mels) float32 array to write into
    """
    rec, model_sr = _recipe(config)
    if int(sr) != model_sr:
        raise AudioError(f"audio at {sr} Hz but the model's features are defined at "
                         f"{model_sr} Hz; resample first")
    y = np.asarray(y)
    if y.ndim != 1:
        raise AudioError(f"audio must be 1-D (mono), got shape {y.shape}")
    if y.size == 0:
        raise AudioError("audio is empty")
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise AudioError("audio contains NaN or Inf")
    S = _log_mel(y, rec, model_sr)
    if out is not None:
        if out.shape != S.shape or out.dtype != np.float32:
            raise ConfigError(f"out must be float32 of shape {S.shape}, got {out.dtype} {out.shape}")
        out[...] = S
        return out
    return S.astype(np.float32)


def _log_mel(y: np.ndarray, rec: MelRecipe, sr: int) -> np.ndarray:
    n_fft, hop = rec.n_fft, rec.hop_length
    if rec.center:
        p = n_fft // 2
        if rec.pad_mode == "reflect" and y.size <= p:
            raise AudioError(f"audio of {y.size} samples is too short for reflect padding of "
                             f"{p} samples (n_fft {n_fft})")
        y = np.pad(y, p, mode=rec.pad_mode)
    if y.size < n_fft:
        raise AudioError(f"audio of {y.size} samples is shorter than one FFT ({n_fft})")
    n_frames = 1 + (y.size - n_fft) // hop
    win = np.zeros(n_fft)
    lpad = (n_fft - rec.win_length) // 2
    win[lpad:lpad + rec.win_length] = _window(rec.window, rec.win_length)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(y[idx] * win, axis=1))
    if rec.power == 2:
        spec = spec * spec
    fb = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=rec.n_mels, fmin=rec.fmin, fmax=rec.fmax)
    S = spec @ fb.T
    if rec.compression == "log10":
        S = np.log10(np.maximum(S, rec.floor))
    elif rec.compression == "ln":
        S = np.log(np.maximum(S, rec.floor))
    if rec.normalization == "meanvar":
        S = (S - np.asarray(rec.mean)) / np.asarray(rec.std)
    return S


def check_features(mel, config, *, what: str = "features") -> np.ndarray:
    """A user's (frames, n_mels) feature array (e.g. from a TTS front end) checked against the
    model: 2-D, float, ``cin_channels`` bands, finite.  Returns float32."""
    return check_feature_array(mel, config.cin_channels, what=what).astype(np.float32)


def check_feature_array(mel, channels: int, *, what: str = "features") -> np.ndarray:
    """The checks of :func:`check_features` against a band count; returns the array as given
    (its dtype kept, so a caller that quantizes rounds from the caller's precision)."""
    m = np.asarray(mel)
    C = int(channels)
    if m.dtype.kind not in "fiu":
        raise ConfigError(f"{what} must be a float array, got dtype {m.dtype}")
    if m.ndim != 2:
        raise ConfigError(f"{what} must be 2-D (frames, {C}), got shape {m.shape}")
    if m.shape[1] != C:
        hint = " (transposed? expected frames × bands)" if m.shape[0] == C else ""
        raise ConfigError(f"{what} have {m.shape[1]} bands but the model takes {C}{hint}")
    if not np.all(np.isfinite(m)):
        raise ConfigError(f"{what} contain NaN or Inf")
    return m


def pad_frames(mel: np.ndarray, config) -> np.ndarray:
    """(N, C) frames of N·hop samples → the model's (N + 2·cin_pad, C), edges replicated."""
    p = config.cin_pad
    if p == 0:
        return mel
    return np.concatenate([np.repeat(mel[:1], p, 0), mel, np.repeat(mel[-1:], p, 0)], axis=0)


def vocoder_inputs(y, *, sr: int, config) -> tuple:
    """``(y_used, cond)`` for a locally conditioned model: the first ``N·hop`` samples of ``y``
    (N = n // hop frames; all of y without an upsampler) and the features the model takes for
    them, (N + 2·cin_pad, cin) float32 (see the module docstring for the alignment)."""
    S = mel_features(y, sr=sr, config=config)
    if config.upsampler == "none":
        # features at sample rate: each sample takes its frame's vector
        y = np.asarray(y)
        return y, np.repeat(S, config.mel.hop_length, axis=0)[:y.shape[0]]
    hop = config.hop
    N = np.asarray(y).shape[0] // hop
    if N < 1:
        raise AudioError(f"audio of {np.asarray(y).shape[0]} samples is shorter than one "
                         f"frame ({hop} samples)")
    return np.asarray(y)[:N * hop], pad_frames(S[:N], config)
