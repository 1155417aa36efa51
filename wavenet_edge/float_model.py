"""Float reference WaveNet (numpy): teacher-forced full-sequence forward and the queue step form.

Weights live in one flat ``dict[str, ndarray]`` with stable names (x @ W orientation, float64):

========================== ================ =====================================================
name                       shape            meaning
========================== ================ =====================================================
``initial/table``          (w, Q, R)        initial causal layer on the one-hot input; tap j acts
                                            on ``x[t - (w-1) + j]`` (w = initial_filter_width)
``initial/bias``           (R,)
``layers/{l}/filter/w``    (k, R, G)        dilated conv, tap j acts on ``h[t - (k-1-j)·d]``
``layers/{l}/filter/b``    (G,)
``layers/{l}/gate/w``      (k, R, G)
``layers/{l}/gate/b``      (G,)
``layers/{l}/gc_filter/w`` (C, G)           global conditioning (only with gc)
``layers/{l}/gc_gate/w``   (C, G)
``layers/{l}/residual/w``  (G, R)
``layers/{l}/residual/b``  (R,)
``layers/{l}/skip/w``      (G, S)
``layers/{l}/skip/b``      (S,)
``gc/embedding``           (n_speakers, C)  (only with gc)
``layers/{l}/cond_filter/w`` (cin, G)       local conditioning (only with cin_channels > 0)
``layers/{l}/cond_gate/w``   (cin, G)
``upsample/conv_in/w``     (K, cin, cin)    upsampler ``conv-in`` only (see :mod:`.upsample`)
``upsample/{i}/w``         (F, 2s+1)        one per upsample scale
``end1/w``, ``end1/b``     (S, E), (E,)
``end2/w``, ``end2/b``     (E, Q), (Q,)
========================== ================ =====================================================

The network, with zero activations before the first sample (``h_l[t<0] = 0``, silence)::

    h_0[t]   = Σ_j table[j][x[t-(w-1)+j]] + b0               (taps before t = 0 contribute 0)
    a_l[t]   = tanh(Σ_j h_l[t-(k-1-j)d] Wf_j + bf + e Wgf + c[t] Wcf)
               · σ(Σ_j h_l[…] Wg_j + bg + e Wgg + c[t] Wcg)
    h_l+1[t] = (h_l[t] + a_l[t] Wr + br) · residual_scale
    s[t]     = skip_scale · Σ_l (a_l[t] Ws + bs)
    logits   = relu(relu(s) W1 + b1) W2 + b2

Row t of ``logits`` predicts class ``x[t+1]`` from ``x[≤ t]`` (and the features).  ``c[t]`` are
the upsampled local-conditioning features (:func:`wavenet_edge.upsample.upsample` of the
``(frames, cin)`` input, or that input itself without an upsampler).  Biases are stored (as zeros) even
when ``config.use_biases`` is False, so every consumer can add them unconditionally.
"""

from __future__ import annotations


import numpy as np

from . import upsample as _up
from .config import WaveNetConfig
from .errors import CheckpointError, ConfigError

__all__ = ["FloatWaveNet", "weight_shapes", "FORMAT_TAG"]

FORMAT_TAG = "wavenet-edge-float/1"


def weight_shapes(cfg: WaveNetConfig) -> dict:
    """Expected name → shape of every weight of ``cfg`` (see module docstring)."""
    R, G, S, E, Q = (cfg.residual_channels, cfg.dilation_channels, cfg.skip_channels,
                     cfg.end_channels, cfg.quantization_channels)
    k, w = cfg.kernel_size, cfg.initial_filter_width
    shapes = {"initial/table": (w, Q, R), "initial/bias": (R,)}
    for l in range(cfg.n_layers):
        p = f"layers/{l}/"
        shapes.update({
            p + "filter/w": (k, R, G), p + "filter/b": (G,),
            p + "gate/w": (k, R, G), p + "gate/b": (G,),
            p + "residual/w": (G, R), p + "residual/b": (R,),
            p + "skip/w": (G, S), p + "skip/b": (S,),
        })
        if cfg.has_gc:
            shapes[p + "gc_filter/w"] = (cfg.gc_channels, G)
            shapes[p + "gc_gate/w"] = (cfg.gc_channels, G)
        if cfg.has_cond:
            shapes[p + "cond_filter/w"] = (cfg.cin_channels, G)
            shapes[p + "cond_gate/w"] = (cfg.cin_channels, G)
    if cfg.has_gc:
        shapes["gc/embedding"] = (cfg.gc_cardinality, cfg.gc_channels)
    if cfg.has_cond and cfg.upsampler == "conv-in":
        shapes["upsample/conv_in/w"] = (2 * cfg.cin_pad + 1, cfg.cin_channels, cfg.cin_channels)
    if cfg.has_cond:
        for i, sc in enumerate(cfg.upsample_scales):
            shapes[f"upsample/{i}/w"] = (cfg.freq_axis_kernel_size, 2 * sc + 1)
    shapes.update({"end1/w": (S, E), "end1/b": (E,), "end2/w": (E, Q), "end2/b": (Q,)})
    return shapes


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _delayed(h, s):
    """``h`` shifted down by ``s`` rows with zeros on top: row t holds ``h[t - s]``."""
    if s == 0:
        return h
    out = np.zeros_like(h)
    if s < h.shape[0]:
        out[s:] = h[:-s]
    return out


class FloatWaveNet:
    """A float64 WaveNet defined by ``config`` and ``weights`` (see module docstring)."""

    def __init__(self, config: WaveNetConfig, weights: dict, *, source: str | None = None):
        self.config = config
        self.source = source
        expected = weight_shapes(config)
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        where = source
        if missing:
            raise CheckpointError(f"missing weight(s): {', '.join(missing[:5])}"
                                  + (" …" if len(missing) > 5 else ""), path=where)
        if extra:
            raise CheckpointError(f"unexpected weight(s): {', '.join(extra[:5])}"
                                  + (" …" if len(extra) > 5 else ""), path=where)
        self.weights = {}
        for name, shape in expected.items():
            a = np.asarray(weights[name], dtype=np.float64)
            if a.shape != tuple(shape):
                raise CheckpointError(f"weight {name} has shape {a.shape}, expected {tuple(shape)}",
                                      path=where)
            if not np.all(np.isfinite(a)):
                raise CheckpointError(f"weight {name} contains NaN or Inf", path=where)
            self.weights[name] = a

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def initialize(cls, config: WaveNetConfig, *, seed: int = 0) -> "FloatWaveNet":
        """Random initialization (Glorot-like fan-in scaling, zero biases)."""
        rng = np.random.default_rng(seed)
        weights = {}
        for name, shape in weight_shapes(config).items():
            if name.endswith("/b") or name == "initial/bias":
                weights[name] = np.zeros(shape)
            elif name == "initial/table":
                weights[name] = rng.normal(0.0, 1.0 / np.sqrt(shape[0]), shape)
            elif name == "gc/embedding":
                weights[name] = rng.normal(0.0, 1.0, shape)
            elif name.startswith("upsample/") and name != "upsample/conv_in/w":
                # r9y9's init: a box filter (nearest repeat then a moving average)
                weights[name] = np.full(shape, 1.0 / np.prod(shape))
            else:
                fan_in = int(np.prod(shape[:-1]))
                weights[name] = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        return cls(config, weights)

    # -- persistence (our .npz checkpoint) ----------------------------------------------------
    def save(self, path) -> None:
        """Write ``path`` (.npz) atomically: weights plus the JSON config under ``__config__``."""
        from ._fileio import atomic_write
        arrays = {name: a for name, a in self.weights.items()}
        arrays["__config__"] = np.frombuffer(self.config.to_json().encode(), dtype=np.uint8)
        arrays["__format__"] = np.frombuffer(FORMAT_TAG.encode(), dtype=np.uint8)
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path) -> "FloatWaveNet":
        """Read a checkpoint written by :meth:`save`."""
        import zipfile
        try:
            with np.load(path, allow_pickle=False) as z:
                if "__config__" not in z.files:
                    raise CheckpointError("not a wavenet-edge checkpoint (no __config__ entry)",
                                          path=path)
                cfg_text = bytes(z["__config__"]).decode("utf-8")
                weights = {n: z[n] for n in z.files if not n.startswith("__")}
        except FileNotFoundError:
            raise CheckpointError("no such file", path=path) from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"corrupt or truncated .npz ({e})", path=path) from None
        try:
            cfg = WaveNetConfig.from_json(cfg_text)
        except ConfigError as e:
            raise CheckpointError(f"embedded config: {e}", path=path) from None
        return cls(cfg, weights, source=str(path))

    # -- forward ------------------------------------------------------------------------------
    def _check_codes(self, codes):
        codes = np.asarray(codes)
        if codes.ndim != 1:
            raise ConfigError(f"codes must be 1-D, got shape {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.config.quantization_channels):
            raise ConfigError("codes must be class indices in [0, 255]")
        return codes.astype(np.int64)

    def _speaker_vector(self, speaker):
        cfg = self.config
        if not cfg.has_gc:
            if speaker is not None:
                raise ConfigError("this model has no global conditioning; speaker must be None")
            return None
        if speaker is None:
            speaker = 0
        if not 0 <= int(speaker) < cfg.gc_cardinality:
            raise ConfigError(f"speaker must lie in [0, {cfg.gc_cardinality - 1}], got {speaker}")
        return self.weights["gc/embedding"][int(speaker)]

    def check_cond(self, cond, n: int) -> np.ndarray:
        """Validate local-conditioning features for ``n`` samples: float (frames, cin) with
        ``frames = n/hop + 2·cin_pad`` (upsampler) or n (none), finite.  Returns float64."""
        cfg = self.config
        if not cfg.has_cond:
            if cond is not None:
                raise ConfigError("this model has no local conditioning; cond must be None")
            return None
        if cond is None:
            raise ConfigError(f"this model is locally conditioned: cond (frames, "
                              f"{cfg.cin_channels}) is required")
        c = np.asarray(cond)
        if c.dtype.kind not in "fiu":
            raise ConfigError(f"cond must be a float array, got dtype {c.dtype}")
        if c.ndim != 2 or c.shape[1] != cfg.cin_channels:
            raise ConfigError(f"cond must have shape (frames, {cfg.cin_channels}), got {c.shape}")
        if cfg.upsampler != "none" and n % cfg.hop:
            raise ConfigError(f"{n} samples is not a multiple of the hop ({cfg.hop} samples per "
                              "frame)")
        want = cfg.frames_for(n)
        if c.shape[0] != want:
            how = (f"{n}/{cfg.hop} + 2·{cfg.cin_pad}" if cfg.upsampler != "none"
                   else "one per sample")
            raise ConfigError(f"cond has {c.shape[0]} frames but {n} samples need {want} "
                              f"({how})")
        c = c.astype(np.float64)
        if not np.all(np.isfinite(c)):
            raise ConfigError("cond contains NaN or Inf")
        return c

    def upsampled_cond(self, cond, n: int):
        """(n, cin) float64 sample-rate features of ``cond`` for ``n`` samples (None without
        local conditioning); see :mod:`wavenet_edge.upsample`."""
        c = self.check_cond(cond, n)
        if c is None or self.config.upsampler == "none":
            return c
        return _up.upsample(self.config, self.weights, c)

    def forward(self, codes, *, speaker=None, cond=None, cache: bool = False):
        """Teacher-forced forward.  ``codes``: (n,) class indices; ``cond``: (frames, cin) float
        features (locally conditioned models only; see :meth:`check_cond`).

        Returns logits (n, Q) float64, and with ``cache=True`` also a dict of intermediate
        activations (``h`` list of (n, R), ``zf``/``zg``/``a`` lists of (n, G), ``s`` (n, S),
        ``u1`` (n, E) pre-ReLU end1, ``c`` (n, cin) upsampled features or None) used by training
        and by ``explain``.
        """
        codes = self._check_codes(codes)
        cfg, W = self.config, self.weights
        n = codes.shape[0]
        e = self._speaker_vector(speaker)
        cu = self.upsampled_cond(cond, n)
        table = W["initial/table"]
        w = cfg.initial_filter_width
        h = np.tile(W["initial/bias"], (n, 1))
        for j in range(w):
            h += _delayed(table[j][codes], w - 1 - j)
        hs, zfs, zgs, as_ = [], [], [], []
        s = np.zeros((n, cfg.skip_channels))
        k = cfg.kernel_size
        for l, d in enumerate(cfg.dilations):
            p = f"layers/{l}/"
            zf = np.tile(W[p + "filter/b"], (n, 1))
            zg = np.tile(W[p + "gate/b"], (n, 1))
            for j in range(k):
                hd = _delayed(h, (k - 1 - j) * d)
                zf += hd @ W[p + "filter/w"][j]
                zg += hd @ W[p + "gate/w"][j]
            if e is not None:
                zf += e @ W[p + "gc_filter/w"]
                zg += e @ W[p + "gc_gate/w"]
            if cu is not None:
                zf += cu @ W[p + "cond_filter/w"]
                zg += cu @ W[p + "cond_gate/w"]
            a = np.tanh(zf) * _sigmoid(zg)
            s += a @ W[p + "skip/w"] + W[p + "skip/b"]
            hs.append(h)
            zfs.append(zf)
            zgs.append(zg)
            as_.append(a)
            h = (h + a @ W[p + "residual/w"] + W[p + "residual/b"]) * cfg.residual_scale
        s = s * cfg.skip_scale
        u1 = np.maximum(s, 0.0) @ W["end1/w"] + W["end1/b"]
        logits = np.maximum(u1, 0.0) @ W["end2/w"] + W["end2/b"]
        if cache:
            return logits, {"h": hs, "zf": zfs, "zg": zgs, "a": as_, "s": s, "u1": u1,
                            "codes": codes, "e": e, "c": cu}
        return logits

    def logits(self, codes, *, speaker=None, cond=None):
        """(n, Q) float64 pre-softmax logits; row t predicts ``codes[t+1]`` (teacher-forced).

        cond : (frames, cin) float features, time-major like the logits, for locally conditioned
            models: ``frames = n/hop + 2·cin_pad`` with an upsampler, n without.
        """
        return self.forward(codes, speaker=speaker, cond=cond)

    def bits_per_sample(self, codes, *, speaker=None, cond=None) -> float:
        """Teacher-forced cross-entropy of ``codes[1:]`` in bits/sample (``cond`` covers all of
        ``codes``)."""
        codes = self._check_codes(codes)
        if codes.shape[0] < 2:
            raise ConfigError("need at least two samples to score")
        if self.config.has_cond:
            lg = self.logits(codes, speaker=speaker, cond=cond)[:-1]
        else:
            lg = self.logits(codes[:-1], speaker=speaker)
        m = lg.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
        nll = lse - lg[np.arange(lg.shape[0]), codes[1:]]
        return float(nll.mean() / np.log(2.0))

    def stepper(self, *, speaker=None, cond=None, n=None) -> "FloatStepper":
        """The fast-generation (queue) form: O(layers) work per sample.  Locally conditioned
        models take the ``cond`` frames of ``n`` samples (upsampled once, as r9y9's
        ``incremental_forward`` does); stepping past sample n is an error."""
        return FloatStepper(self, speaker=speaker, cond=cond, n=n)


class FloatStepper:
    """Queue form of :class:`FloatWaveNet`: ``step(code) -> logits (Q,)``.

    Each layer keeps a ring buffer of its last ``(k-1)·d`` inputs; the initial layer keeps its
    last ``w-1`` codes.  Reproduces :meth:`FloatWaveNet.logits` row by row.
    """

    def __init__(self, model: FloatWaveNet, *, speaker=None, cond=None, n=None):
        self.model = model
        cfg = model.config
        self._e = model._speaker_vector(speaker)
        self._c = None
        self._t = 0
        if cfg.has_cond or cond is not None:
            if n is None and cond is not None:
                c = np.asarray(cond)
                n = (c.shape[0] - 2 * cfg.cin_pad) * cfg.hop if c.ndim == 2 else 0
            self._c = model.upsampled_cond(cond, int(n or 0))
        R = cfg.residual_channels
        self._queues = [np.zeros(((cfg.kernel_size - 1) * d, R)) for d in cfg.dilations]
        self._pos = [0] * cfg.n_layers
        self._codes = [-1] * (cfg.initial_filter_width - 1)  # -1: before the first sample
        # per-layer speaker terms are constant: precompute
        W = model.weights
        self._gcf = [None] * cfg.n_layers
        self._gcg = [None] * cfg.n_layers
        if self._e is not None:
            for l in range(cfg.n_layers):
                self._gcf[l] = self._e @ W[f"layers/{l}/gc_filter/w"]
                self._gcg[l] = self._e @ W[f"layers/{l}/gc_gate/w"]

    def step(self, code: int) -> np.ndarray:
        cfg, W = self.model.config, self.model.weights
        code = int(code)
        ct = None
        if self._c is not None:
            if self._t >= self._c.shape[0]:
                raise ConfigError(f"conditioning exhausted: the features cover "
                                  f"{self._c.shape[0]} samples")
            ct = self._c[self._t]
        self._t += 1
        w = cfg.initial_filter_width
        table = W["initial/table"]
        hist = self._codes + [code]
        h = W["initial/bias"].copy()
        for j, c in enumerate(hist):
            if c >= 0:
                h += table[j][c]
        if w > 1:
            self._codes = hist[1:]
        k = cfg.kernel_size
        s = np.zeros(cfg.skip_channels)
        for l, d in enumerate(cfg.dilations):
            p = f"layers/{l}/"
            q, pos = self._queues[l], self._pos[l]
            n = q.shape[0]
            zf = W[p + "filter/b"] + h @ W[p + "filter/w"][k - 1]
            zg = W[p + "gate/b"] + h @ W[p + "gate/w"][k - 1]
            for j in range(k - 1):
                past = q[(pos - (k - 1 - j) * d) % n]   # h[t - (k-1-j)·d]
                zf = zf + past @ W[p + "filter/w"][j]
                zg = zg + past @ W[p + "gate/w"][j]
            if self._e is not None:
                zf = zf + self._gcf[l]
                zg = zg + self._gcg[l]
            if ct is not None:
                zf = zf + ct @ W[p + "cond_filter/w"]
                zg = zg + ct @ W[p + "cond_gate/w"]
            q[pos] = h
            self._pos[l] = (pos + 1) % n
            a = np.tanh(zf) * _sigmoid(zg)
            s = s + a @ W[p + "skip/w"] + W[p + "skip/b"]
            h = (h + a @ W[p + "residual/w"] + W[p + "residual/b"]) * cfg.residual_scale
        s = s * cfg.skip_scale
        u1 = np.maximum(s, 0.0) @ W["end1/w"] + W["end1/b"]
        return np.maximum(u1, 0.0) @ W["end2/w"] + W["end2/b"]
