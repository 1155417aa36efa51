"""Calibration: per-tensor statistics of every activation of the step graph, and range choice.

The canonical float model (:mod:`converters.canonical`) is run teacher-forced on calibration audio;
every activation tensor of the int8 graph (``docs/step-graph.md``) gets an exact min/max and a
histogram.  Keys are the graph's tensor names (``layer03/filter``), except two pooled keys whose
tensors share one quantization: ``gated`` (all ``layer{l}/gated``) and ``initial/contrib`` (all
``initial/contrib{j}``, only when ``initial_filter_width > 1``).

Range methods (:func:`choose_range`), all returning ``(lo, hi)`` with ``lo ≤ 0 ≤ hi`` in real
units:

``minmax``      the observed extremes;
``percentile``  the ``(100 - p)``-th and ``p``-th percentiles (two-sided clipping of outliers);
``mse``         the clipping range minimising the int8 quantization MSE on the histogram
                (rounding noise Δ²/12 inside the range plus squared clipping error outside).

Whatever the method, the ``logits`` range is then refined softmax-aware (``softmax_aware=True``):
a subsample of logits rows is kept and the range minimising the mean KL divergence between the
float and the int8-rounded softmax is chosen (the far-negative tail of a row does not matter to
its softmax, resolution near the row maximum does).
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.errors import ConfigError, ConversionError
from wavenet_edge.float_model import FloatWaveNet, _delayed, _sigmoid

__all__ = [
    "METHODS",
    "TensorStats",
    "activation_tensors",
    "float_activations",
    "collect_statistics",
    "choose_range",
    "choose_ranges",
    "min_calibration_samples",
]

METHODS = ("minmax", "percentile", "mse")
N_BINS = 2048
PERCENTILE = 99.99
LOGIT_ROWS = 2048      # logits rows kept for the softmax-aware logits range


def min_calibration_samples(config) -> int:
    """Fewest calibration samples accepted: the receptive field plus 2048 samples."""
    return int(config.receptive_field) + 2048


def activation_tensors(config) -> list:
    """Statistics keys for ``config`` in graph order (see module docstring)."""
    keys = ["cond"] if config.has_cond else []
    if config.initial_filter_width > 1:
        keys.append("initial/contrib")
    for l in range(config.n_layers):
        p = f"layer{l:02d}/"
        keys += [p + "input", p + "filter", p + "gate"]
        if l < config.n_layers - 1:
            keys.append(p + "residual")
    keys += ["gated", "skip/relu", "end/hidden", "logits"]
    return keys


def float_activations(model: FloatWaveNet, codes, *, speaker=None, cond=None,
                      dtype=np.float64):
    """Teacher-forced forward of a canonical model, yielding ``(key, array)`` as it goes.

    ``codes``: (n,) class indices; ``cond``: the model-ready features (frames, cin) of a
    locally conditioned model (first item then ``("cond", (n, cin))``, the sample-rate
    features every layer reads).  Arrays are (n, channels) of ``dtype`` (float32 halves the
    cost of calibration; float64 reproduces ``model.logits`` to ≤ 1e-12 relative).  Memory stays
    O(n · width): each layer's tensors are yielded and dropped before the next layer is computed.
    The last item is ``("logits", (n, 256))``.
    """
    cfg = model.config
    if cfg.residual_scale != 1.0 or cfg.skip_scale != 1.0:
        raise ConfigError("float_activations needs the canonical model (see converters.canonical)")
    W = {name: a.astype(dtype, copy=False) for name, a in model.weights.items()}
    codes = model._check_codes(codes)
    e = model._speaker_vector(speaker)
    n = codes.shape[0]
    cu = model.upsampled_cond(cond, n)
    if cu is not None:
        cu = np.asarray(cu, dtype)
        yield "cond", cu
        wc = {l: np.concatenate([W[f"layers/{l}/cond_filter/w"], W[f"layers/{l}/cond_gate/w"]],
                                axis=1) for l in range(cfg.n_layers)}
    w = cfg.initial_filter_width
    R, G = cfg.residual_channels, cfg.dilation_channels
    table = W["initial/table"]
    h = np.tile(W["initial/bias"], (n, 1))
    if w > 1:
        yield "initial/contrib", np.concatenate([table[j][codes] for j in range(w)], axis=0)
    for j in range(w):
        h += _delayed(table[j][codes], w - 1 - j)
    s = np.zeros((n, cfg.skip_channels), dtype)
    k, L = cfg.kernel_size, cfg.n_layers
    taps = np.zeros((n, k * R), dtype)
    for l, d in enumerate(cfg.dilations):
        p = f"layers/{l}/"
        q = f"layer{l:02d}/"
        yield q + "input", h
        # one (n, k·R) @ (k·R, 2G) product for filter and gate together
        for j in range(k):
            taps[:, j * R:(j + 1) * R] = _delayed(h, (k - 1 - j) * d)
        wfg = np.concatenate([W[p + "filter/w"].reshape(k * R, G),
                              W[p + "gate/w"].reshape(k * R, G)], axis=1)
        z = taps @ wfg
        z += np.concatenate([W[p + "filter/b"], W[p + "gate/b"]])
        if e is not None:
            z += np.concatenate([e @ W[p + "gc_filter/w"], e @ W[p + "gc_gate/w"]]).astype(dtype)
        if cu is not None:
            z += cu @ wc[l]
        zf, zg = z[:, :G], z[:, G:]
        yield q + "filter", zf
        yield q + "gate", zg
        a = np.tanh(zf) * _sigmoid(zg)
        del z, zf, zg
        yield "gated", a
        s += a @ W[p + "skip/w"] + W[p + "skip/b"]
        if l < L - 1:
            res = a @ W[p + "residual/w"] + W[p + "residual/b"]
            yield q + "residual", res
            h = h + res
    s = np.maximum(s, 0.0)
    yield "skip/relu", s
    u = np.maximum(s @ W["end1/w"] + W["end1/b"], 0.0)
    yield "end/hidden", u
    yield "logits", u @ W["end2/w"] + W["end2/b"]


class TensorStats:
    """Exact min/max, count, and a histogram over ``[min(lo, 0), max(hi, 0)]`` of one tensor."""

    def __init__(self, lo: float, hi: float, n_bins: int = N_BINS):
        self.lo = min(float(lo), 0.0)
        self.hi = max(float(hi), 0.0)
        if self.hi <= self.lo:          # an all-zero tensor: any non-empty range will do
            self.hi = self.lo + 1e-8
        self.min = np.inf
        self.max = -np.inf
        self.count = 0
        self.hist = np.zeros(n_bins, dtype=np.int64)
        self.edges = np.linspace(self.lo, self.hi, n_bins + 1)
        self.rows = None      # logits only: a subsample of whole rows (m, 256) float32
        self._softmax_best = None

    def update(self, x):
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            return
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        self.count += x.size
        # uniform bins: numpy's fast path (no search); the top edge is inclusive as for edges
        h, _ = np.histogram(x, bins=self.hist.shape[0], range=(self.lo, self.hi))
        self.hist += h

    @property
    def centers(self):
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    def to_dict(self) -> dict:
        return {"min": self.min, "max": self.max, "count": self.count}


def collect_statistics(model: FloatWaveNet, clips, *, speakers=None, conds=None,
                       progress=True) -> dict:
    """Statistics of every activation key over ``clips`` (list of (n,) class-index arrays).

    ``speakers``: per clip speaker id (global conditioning) or None; ``conds``: per clip the
    model-ready features (frames, cin) of a locally conditioned model.  Two passes: exact ranges,
    then histograms over those ranges.  Returns ``{key: TensorStats}``.
    """
    from tqdm.auto import tqdm

    from .train import single_threaded_blas

    if speakers is None:
        speakers = [None] * len(clips)
    if conds is None:
        conds = [None] * len(clips)
    lo, hi = {}, {}
    total = 2 * len(clips)
    # small matmuls: OpenBLAS threads gain little and collapse when the cores are shared
    with single_threaded_blas(), tqdm(total=total, desc="calibrating", unit="clip",
                                      disable=not progress, leave=False) as bar:
        for codes, spk, cnd in zip(clips, speakers, conds):
            for key, x in float_activations(model, codes, speaker=spk, cond=cnd,
                                            dtype=np.float32):
                lo[key] = min(lo.get(key, np.inf), float(x.min()))
                hi[key] = max(hi.get(key, -np.inf), float(x.max()))
            bar.update()
        stats = {key: TensorStats(lo[key], hi[key]) for key in lo}
        stride = max(1, -(-sum(len(c) for c in clips) // LOGIT_ROWS))
        rows = []
        for codes, spk, cnd in zip(clips, speakers, conds):
            for key, x in float_activations(model, codes, speaker=spk, cond=cnd,
                                            dtype=np.float32):
                stats[key].update(x)
                if key == "logits":
                    rows.append(x[::stride].copy())
            bar.update()
        stats["logits"].rows = np.concatenate(rows)
    for key, st in stats.items():
        if not (np.isfinite(st.min) and np.isfinite(st.max)):
            raise ConversionError(f"activation {key} is not finite on the calibration audio")
    return stats


# -- range choice ----------------------------------------------------------------------------------

def _percentile_range(st: TensorStats, p: float):
    # lower edge of the bin where the CDF first reaches (100-p)%, upper edge where it reaches p%
    cdf = np.cumsum(st.hist) / max(st.count, 1)
    i_lo = int(np.searchsorted(cdf, (100.0 - p) / 100.0, side="left"))
    i_hi = int(np.searchsorted(cdf, p / 100.0, side="left"))
    lo = float(st.edges[min(i_lo, len(st.hist) - 1)])
    hi = float(st.edges[min(i_hi, len(st.hist) - 1) + 1])
    return max(lo, st.min), min(hi, st.max)


def _int8_mse(st: TensorStats, lo: np.ndarray, hi: np.ndarray):
    """Expected squared error of int8 quantization of the histogram for each candidate range."""
    v = st.centers[None, :]
    c = st.hist[None, :].astype(np.float64)
    lo = lo[:, None]
    hi = hi[:, None]
    step = (hi - lo) / 255.0
    below = v < lo
    above = v > hi
    inside = ~(below | above)
    err = np.where(below, (v - lo) ** 2, 0.0) + np.where(above, (v - hi) ** 2, 0.0)
    err = err + np.where(inside, step ** 2 / 12.0, 0.0)
    return (err * c).sum(axis=1)


def _mse_range(st: TensorStats):
    lo, hi = min(st.min, 0.0), max(st.max, 0.0)
    fr = np.linspace(0.02, 1.0, 99)
    best_lo, best_hi = lo, hi
    for _ in range(3):      # coordinate descent: the two ends interact only through the step
        if hi > 0:
            cand = hi * fr
            e = _int8_mse(st, np.full_like(cand, best_lo), cand)
            best_hi = float(cand[int(np.argmin(e))])
        if lo < 0:
            cand = lo * fr
            e = _int8_mse(st, cand, np.full_like(cand, best_hi))
            best_lo = float(cand[int(np.argmin(e))])
    return best_lo, best_hi


def _log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))


def _softmax_range(st: TensorStats, lo0: float, hi0: float):
    """Logits range minimising the mean KL(float softmax ‖ int8 softmax) over the kept rows.

    What matters in logits is the softmax, which ignores a row's far-below-maximum entries:
    clipping the long negative tail buys resolution near the top, where the probability mass is.
    The grid search (coordinate descent over fractions of the observed min and max) is done once
    per statistics object and cached; the method's own ``(lo0, hi0)`` is kept if it is better.
    """
    from .quantize import activation_qparams

    z = st.rows.astype(np.float64)
    ref = _log_softmax(z)
    p = np.exp(ref)

    def kl(lo, hi):
        qp = activation_qparams(lo, hi)
        q = np.clip(np.round(z / qp.scale) + qp.zero_point, -128, 127)
        return float((p * (ref - _log_softmax(qp.scale * (q - qp.zero_point)))).sum(axis=1).mean())

    if getattr(st, "_softmax_best", None) is None:
        lo_all, hi_all = min(st.min, 0.0), max(st.max, 0.0)
        best = (kl(lo_all, hi_all), lo_all, hi_all)
        for _ in range(2):
            if lo_all < 0:
                for f in np.linspace(0.04, 1.0, 25):
                    best = min(best, (kl(lo_all * f, best[2]), lo_all * f, best[2]))
            if hi_all > 0:
                for g in np.linspace(0.8, 1.0, 11):
                    best = min(best, (kl(best[1], hi_all * g), best[1], hi_all * g))
        st._softmax_best = best
    best = min(st._softmax_best, (kl(lo0, hi0), lo0, hi0))
    return best[1], best[2]


def choose_range(st: TensorStats, method: str, *, percentile: float = PERCENTILE,
                 softmax_aware: bool = True):
    """``(lo, hi)`` (real units, ``lo ≤ 0 ≤ hi``, ``hi > lo``) for one tensor by ``method``.

    For the logits (``st.rows`` kept by :func:`collect_statistics`) with ``softmax_aware``, the
    method's range is then refined to minimise the softmax KL divergence (:func:`_softmax_range`).
    """
    if method == "minmax":
        lo, hi = st.min, st.max
    elif method == "percentile":
        lo, hi = _percentile_range(st, percentile)
    elif method == "mse":
        lo, hi = _mse_range(st)
    else:
        raise ConfigError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    if softmax_aware and st.rows is not None and st.rows.size:
        lo, hi = _softmax_range(st, lo, hi)
    return lo, hi


def choose_ranges(stats: dict, method: str, **kw) -> dict:
    """``{key: (lo, hi)}`` for every key of ``stats``."""
    return {key: choose_range(st, method, **kw) for key, st in stats.items()}
