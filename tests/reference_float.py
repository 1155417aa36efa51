"""A naive float64 WaveNet written from the paper's equations, sample by sample, for tests only.

Independent of wavenet_edge.float_model: explicit loops over time, taps and channels.
"""

import math

import numpy as np


def naive_logits(cfg, W, codes, speaker=None):
    n = len(codes)
    R, G = cfg.residual_channels, cfg.dilation_channels
    k, w = cfg.kernel_size, cfg.initial_filter_width
    e = None if speaker is None else W["gc/embedding"][speaker]

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
