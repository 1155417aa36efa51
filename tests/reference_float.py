"""A naive float64 WaveNet written from the paper's equations, sample by sample, for tests only.

Independent of wavenet_edge.float_model: explicit loops over time, taps and channels.
"""

import math

import numpy as np


def naive_upsample(cfg, W, cond):
    """r9y9's upsamplers element by element: (frames, C) → (samples, C)."""
    x = np.asarray(cond, dtype=np.float64)
    C = x.shape[1]
    if cfg.upsampler == "conv-in":
        K = 2 * cfg.cin_pad + 1
        Wi = W["upsample/conv_in/w"]
        y = np.zeros((x.shape[0] - K + 1, C))
        for i in range(y.shape[0]):
            for o in range(C):
                y[i, o] = sum(x[i + j, ci] * Wi[j, ci, o] for j in range(K) for ci in range(C))
        x = y
    for si, s in enumerate(cfg.upsample_scales):
        w = W[f"upsample/{si}/w"]
        F = w.shape[0]
        fp = (F - 1) // 2
        n = x.shape[0]
        y = np.zeros((n * s, C))
        for t in range(n * s):
            for c in range(C):
                acc = 0.0
                for a in range(F):
                    for b in range(2 * s + 1):
                        tt, cc = t + b - s, c + a - fp
                        if 0 <= tt < n * s and 0 <= cc < C:
                            acc += w[a, b] * x[tt // s, cc]     # nearest repeat: row tt // s
                y[t, c] = acc
        x = y
    if cfg.upsampler == "plain" and cfg.cin_pad:
        hop = int(np.prod(cfg.upsample_scales))
        x = x[cfg.cin_pad * hop: x.shape[0] - cfg.cin_pad * hop]
    return x


def naive_logits(cfg, W, codes, speaker=None, cond=None):
    n = len(codes)
    R, G = cfg.residual_channels, cfg.dilation_channels
    k, w = cfg.kernel_size, cfg.initial_filter_width
    e = None if speaker is None else W["gc/embedding"][speaker]
    cu = None
    if cond is not None:
        cu = naive_upsample(cfg, W, cond) if cfg.upsampler != "none" else np.asarray(cond, float)
        assert cu.shape[0] == n

    def sig(v):
        return 1.0 / (1.0 + math.exp(-v))

    h = np.zeros((n, R))
    for t in range(n):
        h[t] = W["initial/bias"]
        for j in range(w):
            src = t - (w - 1) + j
            if src >= 0:
                h[t] += W["initial/table"][j][codes[src]]
    skip = np.zeros((n, cfg.skip_channels))
    for l, d in enumerate(cfg.dilations):
        p = f"layers/{l}/"
        new_h = np.zeros_like(h)
        for t in range(n):
            zf = W[p + "filter/b"].copy()
            zg = W[p + "gate/b"].copy()
            for j in range(k):
                src = t - (k - 1 - j) * d
                if src >= 0:
                    zf += h[src] @ W[p + "filter/w"][j]
                    zg += h[src] @ W[p + "gate/w"][j]
            if e is not None:
                zf += e @ W[p + "gc_filter/w"]
                zg += e @ W[p + "gc_gate/w"]
            if cu is not None:
                for c in range(cfg.cin_channels):
                    zf += cu[t, c] * W[p + "cond_filter/w"][c]
                    zg += cu[t, c] * W[p + "cond_gate/w"][c]
            a = np.array([math.tanh(zf[c]) * sig(zg[c]) for c in range(G)])
            skip[t] += a @ W[p + "skip/w"] + W[p + "skip/b"]
            new_h[t] = (h[t] + a @ W[p + "residual/w"] + W[p + "residual/b"]) * cfg.residual_scale
        h = new_h
    out = np.zeros((n, cfg.quantization_channels))
    for t in range(n):
        s = np.maximum(skip[t] * cfg.skip_scale, 0.0)
        u = np.maximum(s @ W["end1/w"] + W["end1/b"], 0.0)
        out[t] = u @ W["end2/w"] + W["end2/b"]
    return out
