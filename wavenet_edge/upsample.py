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

from typing import NamedTuple

import numpy as np

__all__ = ["upsample", "stretch_conv", "conv_in", "lookahead_samples", "BandFIR", "band_fir",
           "band_fir_blocks"]


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


class BandFIR(NamedTuple):
    """The upsampling convs as one FIR from stage frames to samples, any F (:func:`band_fir`).

    Away from the sequence's ends, for output band c::

        y[f·hop + r, c] = Σ_{lo[c] ≤ b < hi[c], j < width} taps[c][r, (b − lo[c])·width + j]
                                                           · x[f − left + j, b]

    hop, width, left : as :func:`frame_fir` (``left`` frames of history, ``width − 1 − left``
        of look-ahead)
    reach : R, bands the chain reaches on each side (Σ over the scales of (F − 1)/2)
    lo, hi : int64 (C,), the input bands of each output band: [max(0, c − R), min(C, c + R + 1))
    taps : per output band, float64 (hop, (hi − lo)·width), band-major columns
    interior : (first, stop), the bands ``R ≤ c < C − R`` that see no band edge in any stage:
        their taps are one shared kernel (band-shift invariant); empty when C ≤ 2R
    """

    hop: int
    width: int
    left: int
    reach: int
    lo: np.ndarray
    hi: np.ndarray
    taps: tuple
    interior: tuple

    @property
    def edge_bands(self) -> tuple:
        """Bands with taps of their own (outside ``interior``), in band order."""
        a, z = self.interior
        return tuple(c for c in range(len(self.lo)) if not a <= c < z)


def band_fir(cfg, weights: dict) -> BandFIR:
    """The upsampling convs composed exactly into per-band FIR taps (any F; F = 1 gives
    :func:`frame_fir`'s taps for every band).

    Every stage zero-pads at the band edges, so the composed map is band-shift invariant only
    for bands whose reach never crosses an edge; the first and last R bands get taps of their
    own, computed by the same chain run on band impulses (the padding is part of it).  Time
    geometry and time edges are :func:`frame_fir`'s (the band mixing does not change them)."""
    if cfg.upsampler == "none":
        raise ValueError("no upsampler")
    hop, C = cfg.hop, cfg.cin_channels
    R = (cfg.freq_axis_kernel_size - 1) // 2 * len(cfg.upsample_scales)
    r = lookahead_samples(cfg) - cfg.cin_pad * hop
    half = -(-r // hop) + 1
    n = 2 * half + 1
    interior = (R, C - R) if C > 2 * R else (0, 0)
    # impulses on the bands the edge bands and one interior band (the first) read
    need = sorted(set(range(min(C, 2 * R + 1))) | set(range(max(0, C - 2 * R), C)))
    resp = {}
    for b in need:
        x = np.zeros((n, C))
        x[half, b] = 1.0
        for i, s in enumerate(cfg.upsample_scales):
            x = stretch_conv(x, weights[f"upsample/{i}/w"], s)
        resp[b] = x.reshape(n, hop, C)             # resp[b][f, r, c]: x[half, b] -> y[f·hop+r, c]
    live = np.nonzero(np.any(np.stack([np.any(v != 0.0, axis=(1, 2)) for v in resp.values()]),
                             axis=0))[0]
    f_lo, f_hi = int(live.min()), int(live.max())
    left, width = f_hi - half, f_hi - f_lo + 1
    lo = np.array([max(0, c - R) for c in range(C)], np.int64)
    hi = np.array([min(C, c + R + 1) for c in range(C)], np.int64)

    def taps_of(c):
        t = np.zeros((hop, (hi[c] - lo[c]) * width))
        for b in range(lo[c], hi[c]):
            for f in range(f_lo, f_hi + 1):
                t[:, (b - lo[c]) * width + (half - f) + left] = resp[b][f, :, c]
        return t

    shared = taps_of(interior[0]) if interior[1] > interior[0] else None
    taps = tuple(shared if interior[0] <= c < interior[1] else taps_of(c) for c in range(C))
    return BandFIR(hop, width, left, R, lo, hi, taps, interior)


def band_fir_blocks(fir: BandFIR, x: np.ndarray) -> np.ndarray:
    """Float :class:`BandFIR` on stage frames ``x`` (n, C), zero frames beyond the ends:
    (n, hop, len(fir.lo)), block f holding samples f·hop … f·hop + hop − 1."""
    W, L = fir.width, fir.left
    n, C = x.shape
    xp = np.concatenate([np.zeros((W, C)), x, np.zeros((W, C))])
    # win[f, b, j] = x[f - left + j, b]
    win = np.stack([xp[f - L + W:f - L + 2 * W].T for f in range(n)])
    out = np.empty((n, fir.hop, len(fir.lo)))
    for c in range(len(fir.lo)):
        out[:, :, c] = win[:, fir.lo[c]:fir.hi[c]].reshape(n, -1) @ fir.taps[c].T
    return out
