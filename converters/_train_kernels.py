"""Jitted kernels of the trainer: the few loops numpy does badly (scatter-adds, fused softmax-CE)."""

from __future__ import annotations

import numpy as np

from wavenet_edge._jit import kernel


@kernel
def scatter_add_rows(idx, g, out):
    """``out[idx[i]] += g[i]`` for every row i.  idx: (N,) int, g: (N, C), out: (Q, C), in place.

    The gradient of a table lookup; ``np.add.at`` does the same about a hundred times slower.
    """
    n, c = g.shape
    for i in range(n):
        r = idx[i]
        for j in range(c):
            out[r, j] += g[i, j]


@kernel
def softmax_xent(logits, targets, scale, dlogits):
    """Cross-entropy of ``targets`` under softmax(``logits``), and its gradient.

    logits: (N, Q) float, targets: (N,) int in [0, Q).  Writes ``dlogits = (softmax - onehot)·scale``
    (same shape and dtype as logits) and returns Σ_i nll_i in nats as float64.
    """
    n, q = logits.shape
    total = 0.0
    for i in range(n):
        m = logits[i, 0]
        for j in range(1, q):
            if logits[i, j] > m:
                m = logits[i, j]
        s = 0.0
        for j in range(q):
            e = np.exp(np.float64(logits[i, j] - m))
            dlogits[i, j] = e
            s += e
        total += np.log(s) - np.float64(logits[i, targets[i]] - m)
        inv = scale / s
        for j in range(q):
            dlogits[i, j] = dlogits[i, j] * inv
        dlogits[i, targets[i]] -= scale
    return total


@kernel
def gather_taps(h, d, k, X):
    """Dilated-conv input rows: ``X[b, t, j·R + r] = h[b, t + j·d, r]``.

    h: (B, n, R); X: (B, m, k·R) with m = n - (k-1)·d, written in place.
    """
    B, m, _ = X.shape
    R = h.shape[2]
    for b in range(B):
        for t in range(m):
            for j in range(k):
                for r in range(R):
                    X[b, t, j * R + r] = h[b, t + j * d, r]


@kernel
def gate_backward(da, th, sg, dZ, dZ_rows):
    """Backward of :func:`gate_forward`: dZ = [da·σ·(1-tanh²), da·tanh·σ·(1-σ)].

    da, th, sg: (B, m, G); dZ: (B, m, 2G) written; dZ_rows: (B, 2G) float64, ``Σ_t dZ[b, t]``
    (for the bias and speaker gradients), written.
    """
    B, m, G = da.shape
    for b in range(B):
        for c in range(2 * G):
            dZ_rows[b, c] = 0.0
        for t in range(m):
            for c in range(G):
                g = da[b, t, c]
                f = th[b, t, c]
                s = sg[b, t, c]
                zf = g * s * (1.0 - f * f)
                zg = g * f * s * (1.0 - s)
                dZ[b, t, c] = zf
                dZ[b, t, G + c] = zg
                dZ_rows[b, c] += zf
                dZ_rows[b, G + c] += zg


@kernel
def residual_forward(res, bias, h, off, scale):
    """In place: ``res[b, t] = (res[b, t] + bias + h[b, t + off]) · scale``; res: (B, m, R)."""
    B, m, R = res.shape
    for b in range(B):
        for t in range(m):
            for r in range(R):
                res[b, t, r] = (res[b, t, r] + bias[r] + h[b, t + off, r]) * scale


@kernel
def conv_input_grad(dX, dhs, d, k, dh):
    """Gradient w.r.t. a layer's input ``h`` (B, n, R), written to ``dh``.

    dX: (B, m, k·R) gradient of the gathered taps (see :func:`gather_taps`); dhs: (B, m, R)
    gradient arriving through the residual path (row t of the output reads ``h[t + (k-1)·d]``),
    or an array with shape[1] == 0 when nothing arrives that way.
    """
    B, n, R = dh.shape
    m = dX.shape[1]
    off = (k - 1) * d
    for b in range(B):
        for t in range(n):
            for r in range(R):
                dh[b, t, r] = 0.0
        if dhs.shape[1] > 0:
            for t in range(m):
                for r in range(R):
                    dh[b, t + off, r] = dhs[b, t, r]
        for j in range(k):
            for t in range(m):
                for r in range(R):
                    dh[b, t + j * d, r] += dX[b, t, j * R + r]


@kernel
def scale_inplace(x, s):
    """``x *= s`` over a flat view (x: contiguous 1-D)."""
    for i in range(x.shape[0]):
        x[i] *= s
