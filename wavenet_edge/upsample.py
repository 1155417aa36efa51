"""The conditioning upsamplers of r9y9/wavenet_vocoder, float64 numpy, time-major.

Weights (names as in :mod:`wavenet_edge.float_model`)::

    upsample/conv_in/w   (K, C, C)   K = 2·cin_pad + 1, "conv-in" only: out[i] = Σ_j c[i + j] @ w[j]
                                     (valid: N frames → N - 2·cin_pad)
    upsample/{i}/w       (F, 2s+1)   scale i (s = upsample_scales[i]): one kernel shared by all
                                     channels, applied after a nearest repeat ×s in time

Scale i maps x (n, C) to y (n·s, C) with r = repeat(x, s) and
``y[t, c] = Σ_{a<F, b≤2s} w[a, b] · r[t + b - s, c + a - (F-1)/2]`` (zero outside the sequence
and outside the channel range: torch ``Conv2d(padding=((F-1)/2, s))``, a cross-correlation).
``plain`` then trims ``cin_pad·hop`` rows at each end; ``conv-in`` trims nothing (its conv-in
layer already consumed the padding frames).  The map is linear in the features.
"""

from __future__ import annotations

import numpy as np

__all__ = ["upsample", "stretch_conv", "conv_in", "lookahead_samples"]


def conv_in(c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid conv over frames: c (N, C), w (K, C, C') → (N - K + 1, C')."""
    K = w.shape[0]
    n = c.shape[0] - K + 1
    out = np.zeros((max(n, 0), w.shape[2]), dtype=np.result_type(c, w))
    for j in range(K):
        out += c[j:j + n] @ w[j]
    return out


def stretch_conv(x: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
    """One scale: nearest repeat ×s in time, then the shared (F, 2s+1) kernel; x (n, C) → (n·s, C)."""
    F, width = w.shape
    r = np.repeat(x, s, axis=0)
    T, C = r.shape
    fp = (F - 1) // 2
    pad = np.zeros((T + 2 * s, C + 2 * fp), dtype=np.result_type(x, w))
    pad[s:s + T, fp:fp + C] = r
    y = np.zeros((T, C), dtype=pad.dtype)
    for a in range(F):
        for b in range(width):
            if w[a, b] != 0.0:
                y += w[a, b] * pad[b:b + T, a:a + C]
    return y


def upsample(cfg, weights: dict, cond: np.ndarray) -> np.ndarray:
    """Frame-rate features cond (N, C) → sample-rate features (hop·(N - 2·cin_pad), C)."""
    x = cond
    if cfg.upsampler == "conv-in":
        x = conv_in(x, weights["upsample/conv_in/w"])
    for i, s in enumerate(cfg.upsample_scales):
        x = stretch_conv(x, weights[f"upsample/{i}/w"], s)
    if cfg.upsampler == "plain" and cfg.cin_pad:
        trim = cfg.cin_pad * cfg.hop
        x = x[trim:x.shape[0] - trim]
    return x


def lookahead_samples(cfg) -> int:
    """How far ahead (in samples, past the current sample's own frame) the upsampled features
    at a sample can reach into the next frames: Σ_i s_i·Π_{j>i} s_j over the upsampling convs
    (each reaches s samples of its own rate), plus the conv-in / plain context of cin_pad frames.
    r9y9's [4, 4, 4, 4]: 4·64 + 4·16 + 4·4 + 4 = 340 samples."""
    if cfg.upsampler == "none":
        return 0
    reach, scale_after = 0, cfg.hop
    for s in cfg.upsample_scales:
        scale_after //= s
        reach += s * scale_after
    return reach + cfg.cin_pad * cfg.hop


def stage_input(cfg, weights: dict, cond: np.ndarray) -> np.ndarray:
    """The frames the upsampling convs see: conv-in's output ("conv-in") or the frames
    themselves ("plain"); row f's own samples start at f·hop (conv-in) or (f - cin_pad)·hop
    (plain, before its trim)."""
    if cfg.upsampler == "conv-in":
        return conv_in(cond, weights["upsample/conv_in/w"])
    return cond


def frame_fir(cfg, weights: dict):
    """The upsampling convs as one FIR from stage frames to samples (F = 1 only).

    The chain is linear and, with F = 1, acts on every channel alike, so away from the
    sequence's ends ``y[f·hop + r] = Σ_j taps[r, j] · x[f - left + j]`` for every channel.
    Returns ``(taps (hop, width) float64, left)``: ``left`` frames of history and
    ``width - 1 - left`` frames of look-ahead.  At the ends the chain zero-pads every stage,
    which the FIR (zero frames beyond the ends) reproduces only ``reach`` samples inside.
    """
    if cfg.upsampler == "none":
        raise ValueError("no upsampler")
    if cfg.freq_axis_kernel_size != 1:
        raise ValueError("frame_fir needs freq_axis_kernel_size 1 (F > 1 mixes channels)")
    hop = cfg.hop
    r = lookahead_samples(cfg) - cfg.cin_pad * hop      # the convs' own reach
    half = -(-r // hop) + 1
    n = 2 * half + 1
    x = np.zeros((n, 1))
    x[half, 0] = 1.0
    y = x
    for i, s in enumerate(cfg.upsample_scales):
        y = stretch_conv(y, weights[f"upsample/{i}/w"], s)
    y = y[:, 0]
    # y[f·hop + r'] responds to the impulse at frame `half` with weight taps[r', half - f + left]
    cols = []
    for f in range(n):
        cols.append(y[f * hop:(f + 1) * hop])
    resp = np.stack(cols, axis=1)                 # resp[r', f] = weight of x[half] in y[f·hop+r']
    nz = np.nonzero(np.any(resp != 0.0, axis=0))[0]
    f_lo, f_hi = int(nz.min()), int(nz.max())
    # output frame f uses input frame half: offset j' = half - f ∈ [half - f_hi, half - f_lo]
    left = f_hi - half                            # frames of history (input frames before f)
    width = f_hi - f_lo + 1
    taps = np.zeros((hop, width))
    for f in range(f_lo, f_hi + 1):
        j = (half - f) + left                     # index of input frame (f - left + j) = half
        taps[:, j] = resp[:, f]
    return taps, left
