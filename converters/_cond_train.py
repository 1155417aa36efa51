"""Training a locally conditioned WaveNet: the upsampler on training windows, forward and backward.

A training window covers samples ``[t0, t0 + n0)`` of one clip.  Its sample-rate features are
computed from a slice of the clip's frames wide enough that every sample of the window is
*exactly* what the whole-clip upsampler gives (:func:`wavenet_edge.upsample.upsample`): the
upsampling convs are zero-padded at the slice's ends, and an output sample is unaffected by that
padding once it lies ``reach = Σ_i s_i·Π_{j>i} s_j`` samples inside them; at the clip's own ends
the slice's padding is the clip's padding.  The backward pass is the adjoint of each linear step
(nearest repeat → sum over the repeated rows; the shared (F, 2s+1) kernel → correlation of the
output gradient with the padded input).  The features themselves are data: no gradient for them.
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.upsample import conv_in, stretch_conv

from .train import COND_INPUT, _batch_loss_and_grads

__all__ = ["window_features", "features_backward", "cond_loss_and_grads"]


def _reach(cfg) -> int:
    reach, after = 0, cfg.hop
    for s in cfg.upsample_scales:
        after //= s
        reach += s * after
    return reach


def window_features(cfg, W, frames, t0: int, n: int, dtype=np.float32):
    """``(c_up[t0:t0+n] (n, cin), cache)`` for a clip whose model-ready frames are ``frames``
    ((N + 2·cin_pad, cin), or (samples, cin) without an upsampler)."""
    if cfg.upsampler == "none":
        return np.asarray(frames[t0:t0 + n], dtype=dtype), None
    hop, p, nf = cfg.hop, cfg.cin_pad, frames.shape[0]
    r = _reach(cfg)
    # stage frames (after conv-in, or the padded frames themselves for plain) start at sample
    # f·hop (conv-in) or (f - p)·hop (plain, before its trim)
    shift = 0 if cfg.upsampler == "conv-in" else p
    lo = max(0, (t0 - r) // hop + shift)
    hi = min(nf, -(-(t0 + n + r) // hop) + 2 * p - shift)
    x0 = np.asarray(frames[lo:hi], dtype=dtype)
    x = x0
    if cfg.upsampler == "conv-in":
        x = conv_in(x0, W["upsample/conv_in/w"].astype(dtype, copy=False))
    off = (lo - shift) * hop                    # sample index of the stage output's first row
    ins = []
    for i, s in enumerate(cfg.upsample_scales):
        ins.append(x)
        x = stretch_conv(x, W[f"upsample/{i}/w"].astype(dtype, copy=False), s)
    a = t0 - off
    if a < 0 or a + n > x.shape[0]:
        raise AssertionError("window features outside the computed slice")  # pragma: no cover
    return x[a:a + n], (x0, ins, a, x.shape[0])


def _stretch_conv_backward(x, w, s, dy):
    """Gradients of :func:`stretch_conv` (x (n, C) → y (n·s, C)): (dx, dw)."""
    F, width = w.shape
    n, C = x.shape
    T = n * s
    fp = (F - 1) // 2
    pad = np.zeros((T + 2 * s, C + 2 * fp), dtype=dy.dtype)
    pad[s:s + T, fp:fp + C] = np.repeat(x, s, axis=0)
    dw = np.empty_like(w, dtype=dy.dtype)
    dpad = np.zeros_like(pad)
    for a in range(F):
        for b in range(width):
            dw[a, b] = np.vdot(dy, pad[b:b + T, a:a + C])
            dpad[b:b + T, a:a + C] += w[a, b] * dy
    dr = dpad[s:s + T, fp:fp + C]
    return dr.reshape(n, s, C).sum(axis=1), dw


def features_backward(cfg, W, cache, dcu, grads: dict) -> None:
    """Accumulate the upsampler's weight gradients of one window into ``grads`` (in place)."""
    if cache is None:
        return
    x0, ins, a, total = cache
    d = np.zeros((total, dcu.shape[1]), dtype=dcu.dtype)
    d[a:a + dcu.shape[0]] = dcu
    for i in range(len(cfg.upsample_scales) - 1, -1, -1):
        name = f"upsample/{i}/w"
        w = W[name].astype(dcu.dtype, copy=False)
        d, dw = _stretch_conv_backward(ins[i], w, cfg.upsample_scales[i], d)
        grads[name] += dw
    if cfg.upsampler == "conv-in":
        name = "upsample/conv_in/w"
        K = W[name].shape[0]
        m = d.shape[0]
        for j in range(K):
            grads[name][j] += x0[j:j + m].T @ d


def cond_loss_and_grads(params, cfg, xb, yb, sb, frames, picks, pool=None, *, chunk_rows=None):
    """:func:`converters.train.loss_and_grads` of a batch of windows of a locally conditioned
    model, the upsampler included.  ``frames``: per clip its model-ready features; ``picks``:
    per window ``(clip index, first sample t0)``.  Returns ``(loss, grads)`` over all params."""
    dt = params["end2/b"].dtype
    B, n0 = xb.shape
    cb = np.empty((B, n0, cfg.cin_channels), dtype=dt)
    caches = []
    for b, (i, t0) in enumerate(picks):
        cb[b], cache = window_features(cfg, params, frames[i], t0, n0, dtype=dt)
        caches.append(cache)
    loss, g = _batch_loss_and_grads(params, cfg, xb, yb, sb, pool, chunk_rows, cb=cb)
    dcb = g.pop(COND_INPUT)
    for name in params:
        if name.startswith("upsample/"):
            g[name] = np.zeros_like(params[name])
    for b in range(B):
        features_backward(cfg, params, caches[b], dcb[b], g)
    return loss, g


def encode_with_features(audio, cfg, what: str, features=None):
    """``(codes, frames)`` per clip: the clip's classes (first N·hop samples) and its model-ready
    features by the model's recipe (:func:`converters.features.vocoder_inputs`), or the caller's
    ``features`` (per clip (N + 2·cin_pad, cin), as :meth:`FloatWaveNet.logits` takes them for
    those N·hop samples; one frame per sample without an upsampler)."""
    from wavenet_edge.errors import AudioError, ConfigError
    from wavenet_edge.mulaw import encode_classes

    from .features import vocoder_inputs
    if isinstance(audio, np.ndarray) and audio.ndim == 1:
        audio = [audio]
    if features is not None:
        if isinstance(features, np.ndarray) and features.ndim == 2:
            features = [features]
        features = list(features)
        if len(features) != len(audio):
            raise ConfigError(f"{what} features: {len(features)} arrays for {len(audio)} clips")
    codes, frames = [], []
    for i, y in enumerate(audio):
        try:
            if features is None:
                y2, c = vocoder_inputs(np.asarray(y), sr=cfg.sample_rate, config=cfg)
            else:
                y2, c = _given_features(np.asarray(y), features[i], cfg, f"{what} features {i}")
            codes.append(encode_classes(y2, convention=cfg.mulaw).astype(np.int32))
        except AudioError as e:
            raise AudioError(f"{what} clip {i}: {e}") from None
        frames.append(c)
    if not codes:
        raise AudioError(f"no {what} audio given")
    return codes, frames


def _given_features(y, c, cfg, what):
    from wavenet_edge.errors import AudioError, ConfigError

    from .features import check_features
    if y.ndim != 1:
        raise AudioError(f"must be 1-D (mono), got shape {y.shape}")
    c = check_features(c, cfg, what=what)
    n = y.shape[0] - y.shape[0] % cfg.hop if cfg.upsampler != "none" else y.shape[0]
    if n < 1:
        raise AudioError(f"audio of {y.shape[0]} samples is shorter than one frame "
                         f"({cfg.hop} samples)")
    if c.shape[0] != cfg.frames_for(n):
        how = (f"{n}/{cfg.hop} + 2·{cfg.cin_pad}" if cfg.upsampler != "none"
               else "one per sample")
        raise ConfigError(f"{what} have {c.shape[0]} frames but the clip's {n} samples need "
                          f"{cfg.frames_for(n)} ({how})")
    return y[:n], c
