"""What each dilated layer hears: measured and analytic frequency responses.

The classic intuition: a dilation-d layer with kernel taps ``W_j`` is a filter
``H_l(ω) = Σ_j W_j e^{-jω(k-1-j)d}`` whose two-tap magnitude ``|w1 + w0 e^{-jωd}|`` peaks near
``fs/(2d)`` (or at DC, depending on the signs), so the stack would split the input into octaves.
:func:`layer_frequency_response` measures instead of asserting: it drives the float model with
sinusoids swept over frequency and takes the RMS of every layer's gated output.
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.errors import ConfigError
from wavenet_edge.float_model import FloatWaveNet
from wavenet_edge.mulaw import encode_classes

__all__ = ["layer_frequency_response", "analytic_response", "octave_agreement"]


def analytic_response(model: FloatWaveNet, freqs, *, sr: int) -> np.ndarray:
    """(L, F) Frobenius norm of each layer's filter-branch transfer matrix ``‖H_l(f)‖_F``.

    ``freqs`` in Hz; only the dilated (filter) convolution is analysed, as in the textbook picture.
    """
    cfg = model.config
    w = 2 * np.pi * np.asarray(freqs, dtype=np.float64) / sr
    k = cfg.kernel_size
    out = np.zeros((cfg.n_layers, w.shape[0]))
    for l, d in enumerate(cfg.dilations):
        W = model.weights[f"layers/{l}/filter/w"]  # (k, R, G)
        H = np.zeros((w.shape[0],) + W.shape[1:], dtype=complex)
        for j in range(k):
            H += W[j][None] * np.exp(-1j * w * (k - 1 - j) * d)[:, None, None]
        out[l] = np.sqrt((np.abs(H) ** 2).sum(axis=(1, 2)))
    return out


def layer_frequency_response(model: FloatWaveNet, *, sr: int | None = None, freqs=None,
                             n_freqs: int = 48, amplitude: float = 0.5, n_samples: int = 2048,
                             speaker=None, progress: bool = False) -> dict:
    """Drive ``model`` with sinusoids and measure each layer's gated-output RMS.

    Returns a dict with ``freqs`` (F,) Hz (log-spaced from ``sr/1024`` to just below Nyquist by
    default), ``measured`` (L, F) RMS over time (after the receptive field) and channels of the
    mean-removed gated output ``a_l``, ``analytic`` (L, F) from :func:`analytic_response`,
    ``dilations`` (L,), ``peak_hz`` (L,) measured peak, ``octave_hz`` (L,) = ``sr / (2 d)``.
    """
    cfg = model.config
    sr = int(sr or cfg.sample_rate)
    if not 0 < amplitude <= 1:
        raise ConfigError(f"amplitude must lie in (0, 1], got {amplitude}")
    if freqs is None:
        freqs = np.geomspace(sr / 1024.0, sr * 0.49, n_freqs)
    freqs = np.asarray(freqs, dtype=np.float64)
    if np.any(freqs <= 0) or np.any(freqs >= sr / 2):
        raise ConfigError("frequencies must lie in (0, sr/2)")
    rf = cfg.receptive_field
    n = rf + int(n_samples)
    t = np.arange(n) / sr
    measured = np.zeros((cfg.n_layers, freqs.shape[0]))
    it = range(freqs.shape[0])
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="explain", unit="freq")
    for i in it:
        y = amplitude * np.sin(2 * np.pi * freqs[i] * t + 0.3)
        codes = encode_classes(y, convention=cfg.mulaw)
        _, cache = model.forward(codes, speaker=speaker, cache=True)
        for l, a in enumerate(cache["a"]):
            seg = a[rf:]
            measured[l, i] = np.sqrt(np.mean((seg - seg.mean(axis=0)) ** 2))
    d = np.asarray(cfg.dilations)
    return {
        "freqs": freqs,
        "measured": measured,
        "analytic": analytic_response(model, freqs, sr=sr),
        "dilations": d,
        "peak_hz": freqs[np.argmax(measured, axis=1)],
        "analytic_peak_hz": freqs[np.argmax(analytic_response(model, freqs, sr=sr), axis=1)],
        "octave_hz": sr / (2.0 * d),
        "sr": sr,
    }


def octave_agreement(result: dict) -> dict:
    """How well the measured peaks follow ``fs/(2d)``.

    Returns Spearman rank correlation between ``log d`` and ``-log peak`` (1 = peaks fall by an
    octave per doubling of dilation), the median |log2(peak / (fs/2d))| in octaves, and the same
    for the analytic filter peaks.
    """
    def spearman(a, b):
        ra = np.argsort(np.argsort(a)).astype(float)
        rb = np.argsort(np.argsort(b)).astype(float)
        if ra.std() == 0 or rb.std() == 0:
            return float("nan")
        return float(np.corrcoef(ra, rb)[0, 1])

    d = result["dilations"].astype(float)
    out = {}
    for key in ("peak_hz", "analytic_peak_hz"):
        p = result[key]
        out[key.replace("_hz", "")] = {
            "spearman_logd_vs_neg_logpeak": spearman(np.log(d), -np.log(p)),
            "median_octaves_off": float(np.median(np.abs(np.log2(p / result["octave_hz"])))),
        }
    return out
