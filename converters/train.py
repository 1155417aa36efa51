"""Training a :class:`~wavenet_edge.FloatWaveNet` on audio: numpy + numba, no framework.

Objective: cross-entropy of the next sample's mu-law class (the model's convention,
``encode_classes(y, convention=cfg.mulaw)``), averaged over all scored positions, optimised with
Adam on mini-batches of random windows.

Which positions are scored: a window holds ``window`` input samples; only the last
``T = window - receptive_field + 1`` positions are scored, those whose whole receptive field lies
inside the window.  That makes the loss exactly the teacher-forced loss of
:meth:`FloatWaveNet.forward` on those rows, whatever the window's position in the clip, and lets the
forward pass use *valid* convolutions (layer l runs on ``n_l = n_{l-1} - (k-1)·d_l`` rows, no
zero padding).  The zero-history start of a clip (the first receptive-field samples the deployed
model sees from silence) is therefore not trained on; held-out scores still include it, because
they use :meth:`FloatWaveNet.bits_per_sample` on whole clips.

Layout: a batch is B windows; activations are (B, n, C) float32 arrays and every 1×1 or dilated
convolution is a (B·n, ·) @ (·, ·) matmul (the k taps of a dilated conv are gathered side by side
along channels, so filter and gate are one matmul each; all L skip convs are one matmul on the
concatenated gated units, as in the int8 step graph).  Transcendentals and elementwise work stay
in numpy (vectorised float32); numba only gathers and scatters (:mod:`._train_kernels`).

Speed: a batch is cut into chunks of about CHUNK_ROWS input rows, computed by ``workers`` threads
with OpenBLAS pinned to one thread.  ``tiny`` (receptive field 511, 43,568 parameters), batch
8 × 512 scored positions: ~34 ms of CPU per step (~120k scored samples per CPU-second).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from wavenet_edge.config import WaveNetConfig, preset
from wavenet_edge.errors import AudioError, ConfigError
from wavenet_edge.float_model import FloatWaveNet
from wavenet_edge.mulaw import encode_classes

from ._train_kernels import (conv_input_grad, gather_taps, residual_forward,
                              scatter_add_rows)

__all__ = ["train", "loss_and_grads", "heldout_bits", "Adam", "LN2"]

LN2 = math.log(2.0)
COND_INPUT = "__cond_input__"
"""Key of d loss / d cond (the sample-rate features) in the gradients of :func:`loss_and_grads`."""


# ------------------------------------------------------------------------------------------------
# forward + backward (valid convolutions)
# ------------------------------------------------------------------------------------------------
def loss_and_grads(params: dict, cfg: WaveNetConfig, x, targets, speakers=None, *,
                   grads: bool = True, cond=None):
    """Mean next-sample cross-entropy (nats) of a batch of windows and its gradient.

    params : weights named as in :mod:`wavenet_edge.float_model`, all of one float dtype (float32
        for training, float64 for gradient checks); the computation runs in that dtype.
    x : (B, n0) int class indices, the input windows, ``n0 >= cfg.receptive_field``.
    targets : (B, T) int class indices with ``T = n0 - receptive_field + 1``: ``targets[b, i]`` is
        the class following input ``x[b, receptive_field - 1 + i]``.
    speakers : (B,) int speaker ids (gc models only; default all 0).
    cond : (B, n0, cin) sample-rate (upsampled) features of the window's samples, locally
        conditioned models only; the gradient with respect to it is returned as
        ``grads[COND_INPUT]`` (the upsampler's backward starts there, see :mod:`._cond_train`).

    Returns ``(loss, grads)``: loss float (nats/sample, mean over B·T), grads a dict of arrays with
    the same names/shapes/dtype as params (None when ``grads=False``).
    """
    W = params
    dt = W["end2/b"].dtype
    x = np.asarray(x)
    targets = np.asarray(targets)
    B, n0 = x.shape
    rf = cfg.receptive_field
    T = n0 - rf + 1
    if T < 1 or targets.shape != (B, T):
        raise ConfigError(f"windows of {n0} samples need targets of shape ({B}, {n0 - rf + 1})")
    R, G = cfg.residual_channels, cfg.dilation_channels
    k, w, L = cfg.kernel_size, cfg.initial_filter_width, cfg.n_layers
    rs, ss = dt.type(cfg.residual_scale), dt.type(cfg.skip_scale)

    # -- initial causal layer: h0[i] = Σ_j table[j][x[i + j]] + b0, valid rows only
    n = n0 - (w - 1)
    table = W["initial/table"]
    h = table[0][x[:, 0:n]]
    for j in range(1, w):
        h = h + table[j][x[:, j:j + n]]
    h = h + W["initial/bias"]

    e = None
    if cfg.has_gc:
        spk = np.zeros(B, np.int64) if speakers is None else np.asarray(speakers, np.int64)
        e = W["gc/embedding"][spk]                              # (B, C)

    if cfg.has_cond and (cond is None or cond.shape != (B, n0, cfg.cin_channels)):
        raise ConfigError(f"a locally conditioned model needs cond of shape "
                          f"({B}, {n0}, {cfg.cin_channels})")
    cache = []
    tails = np.empty((B, T, L * G), dtype=dt)                   # gated units of the scored rows
    for l, d in enumerate(cfg.dilations):
        p = f"layers/{l}/"
        m = n - (k - 1) * d
        X = np.empty((B, m, k * R), dtype=dt)
        gather_taps(h, d, k, X)                                                  # (B, m, kR)
        X2 = X.reshape(B * m, k * R)
        # numpy's vectorised float32 tanh is ~30x faster than a scalar loop: keep it in numpy
        th = (X2 @ W[p + "filter/w"].reshape(k * R, G)).reshape(B, m, G)
        zg = (X2 @ W[p + "gate/w"].reshape(k * R, G)).reshape(B, m, G)
        th += W[p + "filter/b"]
        zg += W[p + "gate/b"]
        if e is not None:
            th += (e @ W[p + "gc_filter/w"])[:, None]
            zg += (e @ W[p + "gc_gate/w"])[:, None]
        if cond is not None:                   # the layer's output rows are the window's last m
            cm = cond[:, n0 - m:].reshape(B * m, cfg.cin_channels)
            th += (cm @ W[p + "cond_filter/w"]).reshape(B, m, G)
            zg += (cm @ W[p + "cond_gate/w"]).reshape(B, m, G)
        np.tanh(th, out=th)
        zg *= 0.5
        sg = np.tanh(zg, out=zg)
        sg += 1.0
        sg *= 0.5
        a = th * sg
        tails[:, :, l * G:(l + 1) * G] = a[:, m - T:]
        h_next = (a.reshape(B * m, G) @ W[p + "residual/w"]).reshape(B, m, R)
        residual_forward(h_next, W[p + "residual/b"], h, (k - 1) * d, rs)
        cache.append((X, th, sg, a, m))
        h, n = h_next, m
    assert n == T

    Ws = np.concatenate([W[f"layers/{l}/skip/w"] for l in range(L)], axis=0)   # (L·G, S)
    bs = sum(W[f"layers/{l}/skip/b"] for l in range(L))
    A = tails.reshape(B * T, L * G)
    s = (A @ Ws + bs) * ss
    r1 = np.maximum(s, 0)
    u1 = r1 @ W["end1/w"] + W["end1/b"]
    r2 = np.maximum(u1, 0)
    logits = r2 @ W["end2/w"] + W["end2/b"]
    N = B * T
    rows = np.arange(N)
    tflat = targets.reshape(N)
    # softmax cross-entropy, vectorised (numpy's float32 exp beats a scalar jitted loop 3x)
    mx = logits.max(axis=1, keepdims=True)
    ex = logits - mx
    picked = ex[rows, tflat]
    np.exp(ex, out=ex)
    se = ex.sum(axis=1, keepdims=True)
    loss = float(np.sum(np.log(se[:, 0]) - picked, dtype=np.float64)) / N
    if not grads:
        return loss, None
    ex *= (dt.type(1.0 / N) / se)
    ex[rows, tflat] -= dt.type(1.0 / N)
    dlogits = ex

    def colsum(M):
        # BLAS gemv: several times faster than M.sum(0) on tall, narrow arrays
        return np.ones(M.shape[0], dtype=dt) @ M

    g = {}
    g["end2/w"] = r2.T @ dlogits
    g["end2/b"] = colsum(dlogits)
    du1 = dlogits @ W["end2/w"].T
    du1 *= (u1 > 0)
    g["end1/w"] = r1.T @ du1
    g["end1/b"] = colsum(du1)
    ds = du1 @ W["end1/w"].T
    ds *= (s > 0)
    ds *= ss                                                     # d(pre-scale skip sum)
    dWs = A.T @ ds
    dbs = colsum(ds)
    dA = (ds @ Ws.T).reshape(B, T, L * G)
    de = np.zeros_like(e) if e is not None else None
    dcond = np.zeros_like(cond) if cond is not None else None
    no_rows = np.zeros((B, 0, R), dtype=dt)

    dh = None                                                    # d loss / d h_{l+1}
    for l in range(L - 1, -1, -1):
        p = f"layers/{l}/"
        d = cfg.dilations[l]
        X, th, sg, a, m = cache[l]
        n_in = m + (k - 1) * d
        g[p + "skip/w"] = dWs[l * G:(l + 1) * G]
        g[p + "skip/b"] = dbs.copy()
        if dh is not None:
            dhs = dh
            if rs != 1:
                dhs = dh * rs                                    # (B, m, R)
            dhs2 = dhs.reshape(B * m, R)
            g[p + "residual/w"] = a.reshape(B * m, G).T @ dhs2
            g[p + "residual/b"] = colsum(dhs2)
            da = (dhs2 @ W[p + "residual/w"].T).reshape(B, m, G)
            da[:, m - T:] += dA[:, :, l * G:(l + 1) * G]
        else:
            # the last layer's residual output is never read
            g[p + "residual/w"] = np.zeros_like(W[p + "residual/w"])
            g[p + "residual/b"] = np.zeros_like(W[p + "residual/b"])
            dhs = no_rows
            da = np.zeros((B, m, G), dtype=dt)
            da[:, m - T:] = dA[:, :, l * G:(l + 1) * G]
        # d tanh = 1 - tanh², d σ = σ(1 - σ); computed in place on the cached activations,
        # which are not needed any more (7 vectorised passes beat one scalar jitted loop 3x)
        np.multiply(th, th, out=th)
        np.subtract(1, th, out=th)
        th *= sg
        dzf = np.multiply(th, da, out=th)                        # da·σ·(1 - tanh²)
        np.subtract(1, sg, out=sg)
        sg *= a
        dzg = np.multiply(sg, da, out=sg)                        # da·tanh·σ·(1 - σ)
        dzf2, dzg2 = dzf.reshape(B * m, G), dzg.reshape(B * m, G)
        X2 = X.reshape(B * m, k * R)
        g[p + "filter/w"] = (X2.T @ dzf2).reshape(k, R, G)
        g[p + "gate/w"] = (X2.T @ dzg2).reshape(k, R, G)
        g[p + "filter/b"] = colsum(dzf2)
        g[p + "gate/b"] = colsum(dzg2)
        if e is not None:
            ones_m = np.ones(m, dtype=dt)
            dzf_b, dzg_b = ones_m @ dzf, ones_m @ dzg            # (B, G): Σ over rows
            g[p + "gc_filter/w"] = e.T @ dzf_b
            g[p + "gc_gate/w"] = e.T @ dzg_b
            de += dzf_b @ W[p + "gc_filter/w"].T + dzg_b @ W[p + "gc_gate/w"].T
        if cond is not None:
            cm = cond[:, n0 - m:].reshape(B * m, cfg.cin_channels)
            g[p + "cond_filter/w"] = cm.T @ dzf2
            g[p + "cond_gate/w"] = cm.T @ dzg2
            dcond[:, n0 - m:] += (dzf2 @ W[p + "cond_filter/w"].T
                                  + dzg2 @ W[p + "cond_gate/w"].T).reshape(B, m, -1)
        dX = dzf2 @ W[p + "filter/w"].reshape(k * R, G).T
        dX += dzg2 @ W[p + "gate/w"].reshape(k * R, G).T
        dX = dX.reshape(B, m, k * R)
        dh_in = np.empty((B, n_in, R), dtype=dt)
        conv_input_grad(dX, dhs, d, k, dh_in)
        dh = dh_in

    # initial layer
    n = n0 - (w - 1)
    dh2 = dh.reshape(B * n, R)
    g["initial/bias"] = colsum(dh2)
    dtable = np.zeros_like(table)
    for j in range(w):
        idx = np.ascontiguousarray(x[:, j:j + n]).reshape(B * n)
        scatter_add_rows(idx, dh2, dtable[j])
    g["initial/table"] = dtable
    if e is not None:
        demb = np.zeros_like(W["gc/embedding"])
        np.add.at(demb, spk, de)
        g["gc/embedding"] = demb
    if dcond is not None:
        g[COND_INPUT] = dcond
    return loss, g


# ------------------------------------------------------------------------------------------------
# optimiser
# ------------------------------------------------------------------------------------------------
class Adam:
    """Adam (Kingma & Ba) on a dict of arrays, in place; names in ``frozen`` are never updated."""

    def __init__(self, params: dict, *, betas=(0.9, 0.999), eps=1e-8, frozen=()):
        self.b1, self.b2, self.eps = betas[0], betas[1], eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.frozen = set(frozen)
        self.t = 0

    def step(self, params: dict, grads: dict, lr: float) -> None:
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t
        c2 = 1.0 - self.b2 ** self.t
        step = lr * math.sqrt(c2) / c1
        for k, g in grads.items():
            if k in self.frozen:
                continue
            m, v = self.m[k], self.v[k]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            params[k] -= step * m / (np.sqrt(v) + self.eps)


# ------------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------------
def heldout_bits(model: FloatWaveNet, codes_list, speakers=None, conds=None) -> float:
    """Teacher-forced bits/sample of ``model`` over a list of class-index arrays, from zero history
    (the deployed model's view), weighted by length: Σ nll / Σ (n-1), in bits.  ``conds``: per
    clip its features (locally conditioned models)."""
    total, count = 0.0, 0
    for i, c in enumerate(codes_list):
        if len(c) < 2:
            continue
        spk = None
        if model.config.has_gc:
            spk = 0 if speakers is None else int(speakers[i])
        cond = None if conds is None else conds[i]
        total += model.bits_per_sample(c, speaker=spk, cond=cond) * (len(c) - 1)
        count += len(c) - 1
    if count == 0:
        raise AudioError("held-out audio has no clip of at least two samples")
    return total / count


# ------------------------------------------------------------------------------------------------
# threads
# ------------------------------------------------------------------------------------------------
def _openblas_libs():
    """(set_num_threads, get_num_threads) of every OpenBLAS loaded in this process (Linux)."""
    import ctypes
    found = []
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return found
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    found.append((setter, getter))
                    break
            else:
                continue
            break
    return found


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with OpenBLAS on one thread (restored afterwards; no-op if not found).

    The matmuls here are small ((B·n, 32) @ (32, 32)); OpenBLAS's spin-waiting threads gain
    little on them and collapse (10× slower measured) when the cores are shared, e.g. with our own
    worker threads.  Parallelism comes from splitting the batch over threads instead.
    """
    libs = _openblas_libs()
    old = [getter() for _, getter in libs]
    for setter, _ in libs:
        setter(1)
    try:
        yield
    finally:
        for (setter, _), n in zip(libs, old):
            setter(n)


CHUNK_ROWS = 2048
"""Input rows (windows × window length) per call of :func:`loss_and_grads`: a batch is cut into
chunks of at most this many rows (at least one window) so that a chunk's activations stay in cache.
"""


def _batch_loss_and_grads(params, cfg, xb, yb, sb, pool, chunk_rows=None, cb=None):
    """:func:`loss_and_grads` of the whole batch, computed in chunks of windows spread over the
    ``pool``'s threads (numpy and the jitted kernels release the GIL; None = in this thread).  The
    chunks' means are combined weighted by chunk size in a fixed order, so the result does not
    depend on thread timing.  ``cb``: (B, n0, cin) window features (locally conditioned models);
    their per-window gradients are stacked, not summed."""
    B, n0 = xb.shape
    per = max(1, (chunk_rows or CHUNK_ROWS) // n0)
    n_chunks = -(-B // per)
    if n_chunks == 1:
        return loss_and_grads(params, cfg, xb, yb, sb, cond=cb)
    bounds = np.linspace(0, B, n_chunks + 1).astype(int)
    parts = [(xb[a:b], yb[a:b], None if sb is None else sb[a:b])
             for a, b in zip(bounds[:-1], bounds[1:])]
    conds = [None if cb is None else cb[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    if pool is None:
        results = [loss_and_grads(params, cfg, *part, cond=c) for part, c in zip(parts, conds)]
    else:
        futs = [pool.submit(loss_and_grads, params, cfg, *part, cond=c)
                for part, c in zip(parts, conds)]
        results = [f.result() for f in futs]
    wts = [(b - a) / B for a, b in zip(bounds[:-1], bounds[1:])]
    loss = sum(w * r[0] for w, r in zip(wts, results))
    grads = {}
    if cb is not None:
        grads[COND_INPUT] = np.concatenate([r[1].pop(COND_INPUT) * r[1]["end2/b"].dtype.type(w)
                                            for w, r in zip(wts, results)], axis=0)
    for k in results[0][1]:
        first = results[0][1][k]
        acc = first * first.dtype.type(wts[0])
        for w, r in zip(wts[1:], results[1:]):
            acc += r[1][k] * acc.dtype.type(w)
        grads[k] = acc
    return loss, grads


# ------------------------------------------------------------------------------------------------
# the training loop
# ------------------------------------------------------------------------------------------------
class _WindowSampler:
    """Uniformly random windows over all clips: a clip is picked with probability proportional to
    its number of window positions, then a start inside it."""

    def __init__(self, codes, speakers, window, rf, rng):
        self.codes, self.speakers, self.window, self.rf, self.rng = codes, speakers, window, rf, rng
        starts = np.array([len(c) - window for c in codes], dtype=np.float64)
        self.p = starts / starts.sum()
        self.picks = {}                 # window b → (clip, first sample) of the last fill

    def fill(self, xb, yb, sb):
        """Write B windows: inputs xb (B, window), targets yb (B, window - rf + 1), speakers sb."""
        w, rf = self.window, self.rf
        for b in range(xb.shape[0]):
            i = int(self.rng.choice(len(self.codes), p=self.p))
            c = self.codes[i]
            s0 = int(self.rng.integers(0, len(c) - w))
            xb[b] = c[s0:s0 + w]
            yb[b] = c[s0 + rf:s0 + w + 1]      # target of input t is input t + 1
            sb[b] = self.speakers[i]
            self.picks[b] = (i, s0)


WARMUP_STEPS = 50


def _lr_at(lr: float, step: int, frac: float) -> float:
    """Linear warm-up over the first WARMUP_STEPS steps (a fresh Adam state makes the first steps
    ~lr per weight whatever the gradient), then cosine decay to lr/10 at ``frac`` = 1 of budget."""
    warm = min(1.0, (step + 1) / WARMUP_STEPS)
    return warm * lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0))))


def _clip_global_norm(grads: dict, max_norm: float) -> None:
    """Scale all gradients in place so that their joint L2 norm is at most ``max_norm``."""
    if not max_norm:
        return
    norm = math.sqrt(sum(float(np.vdot(v, v)) for v in grads.values()))
    if norm > max_norm:
        for v in grads.values():
            v *= v.dtype.type(max_norm / norm)


def _as_model(model_or_config, seed):
    if isinstance(model_or_config, FloatWaveNet):
        return FloatWaveNet(model_or_config.config, model_or_config.weights,
                            source=model_or_config.source)
    if isinstance(model_or_config, str):
        model_or_config = preset(model_or_config)
    if isinstance(model_or_config, WaveNetConfig):
        return FloatWaveNet.initialize(model_or_config, seed=seed)
    raise ConfigError("train() needs a FloatWaveNet, a WaveNetConfig or a preset name, got "
                      f"{type(model_or_config).__name__}")


def _encode_all(audio, cfg, what):
    if isinstance(audio, np.ndarray) and audio.ndim == 1:
        audio = [audio]
    out = []
    for i, y in enumerate(audio):
        y = np.asarray(y)
        if y.ndim != 1:
            raise AudioError(f"{what} clip {i} must be 1-D (mono), got shape {y.shape}")
        try:
            out.append(encode_classes(y, convention=cfg.mulaw).astype(np.int32))
        except AudioError as e:
            raise AudioError(f"{what} clip {i}: {e}") from None
    if not out:
        raise AudioError(f"no {what} audio given")
    return out


def _check_budget(steps, seconds):
    if steps is not None and (not isinstance(steps, (int, np.integer)) or isinstance(steps, bool)
                              or steps < 1):
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds)
                                    and seconds > 0):
        raise ConfigError(f"seconds must be a positive number, got {seconds!r}")
    if steps is None and seconds is None:
        seconds = 60.0
    return steps, seconds


class _Interrupts:
    """What a Ctrl-C does during :func:`train` (main thread, Python's default SIGINT handler).

    It raises KeyboardInterrupt at once, as Python does, except inside :meth:`held` blocks (an
    optimizer update, a checkpoint write: milliseconds), which finish first.  numba compiles
    through ctypes callbacks, where an exception is printed and dropped and the compilation then
    fails with some other error; so a Ctrl-C is also remembered, any later error becomes the
    KeyboardInterrupt again, :meth:`check` raises a lost one, and the dropped one is not printed.
    Elsewhere (another thread, a handler of the caller's) nothing is installed.
    """

    def __init__(self):
        self.seen = False        # a Ctrl-C arrived
        self.stopping = False    # the interrupt is being handled: finish writes, raise no more
        self._hold = 0

    def _on_sigint(self, signum, frame):
        self.seen = True
        if not self._hold:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        import signal
        import sys
        import threading
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            yield self
            return
        old_hook = sys.unraisablehook

        def hook(unraisable):
            if not issubclass(unraisable.exc_type, KeyboardInterrupt):
                old_hook(unraisable)

        signal.signal(signal.SIGINT, self._on_sigint)
        sys.unraisablehook = hook
        try:
            yield self
        except Exception:
            if self.seen:
                raise KeyboardInterrupt from None
            raise
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.unraisablehook = old_hook

    @contextlib.contextmanager
    def held(self):
        """Let the block finish before a Ctrl-C that arrives meanwhile is raised."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1
        self.check()

    def check(self):
        """Raise the KeyboardInterrupt of a Ctrl-C that was held back or got lost."""
        if self.seen and not self._hold and not self.stopping:
            raise KeyboardInterrupt


def _checkpoint_dir_ok(path):
    d = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(d):
        raise ConfigError(f"output directory {d} does not exist", path=path)


def _to_model(cfg, params, source=None):
    return FloatWaveNet(cfg, {k: v.astype(np.float64) for k, v in params.items()}, source=source)


def train(model_or_config, audio, *, steps: int | None = None, seconds: float | None = None,
          batch_size: int = 8, window: int | None = None, lr: float = 1e-2, seed: int = 0,
          checkpoint=None, checkpoint_every: int = 250, progress: bool = True, heldout=None,
          speakers=None, heldout_speakers=None, clip_norm: float = 1.0, workers: int | None = None,
          log_fn=None, features=None, heldout_features=None):
    """Train a WaveNet on ``audio`` by next-sample cross-entropy; returns ``(model, history)``.

    model_or_config : a :class:`FloatWaveNet` (fine-tuned, the input is not modified), a
        :class:`WaveNetConfig` or a preset name (initialized with ``seed``).
    audio : list of float (n,) arrays in [-1, 1] at the model's sample rate (one clip each).
    steps, seconds : budgets (optimiser steps, wall-clock seconds); training stops at whichever is
        reached first; neither given = 60 s.
    batch_size : windows per step.  window : input samples per window (default receptive field
        + 511, i.e. 512 scored positions per window); only positions whose receptive field lies in
        the window are scored (see the module docstring).
    lr : Adam step size, after a 50-step linear warm-up cosine-decayed to lr/10 over the budget;
        gradients are clipped to a global norm of ``clip_norm``.  Fine-tuning wants a smaller lr
        (e.g. 1e-3).
    seed : seeds initialization and window sampling (same seed and step budget → same model).
    checkpoint : path of a ``.npz`` written atomically every ``checkpoint_every`` steps and at the
        end (:meth:`FloatWaveNet.save`).
    heldout : optional list of float clips scored (bits/sample, zero history) before and after.
    speakers, heldout_speakers : per-clip speaker ids for gc models (default 0).
    workers : threads sharing each batch (default: min(2, CPUs)); BLAS runs single-threaded
        meanwhile (see :func:`single_threaded_blas`).  The result does not depend on it beyond
        float32 rounding of the gradient sum.
    log_fn : callable for one-line messages (default: nothing).
    features, heldout_features : locally conditioned models only: per clip its features as
        :meth:`FloatWaveNet.logits` takes them for the clip's first N·hop samples (N = n // hop),
        ``(N + 2·cin_pad, cin_channels)`` (e.g. a TTS front end's mels); default: computed from
        the audio by the model's mel recipe (:func:`converters.vocoder_inputs`).

    ``history`` holds ``steps``, ``seconds``, ``positions`` (scored samples seen), ``loss_bits``
    (per-step training loss, bits/sample), ``heldout_bits_before``/``_after`` and
    ``heldout_order0_bits`` (order-0 entropy of the held-out codes; None without heldout).
    """
    # BLAS on one thread for the whole run, held-out scoring included (see single_threaded_blas)
    with single_threaded_blas(), _Interrupts().installed() as interrupts:
        return _train(model_or_config, audio, interrupts=interrupts,
                      steps=steps, seconds=seconds, batch_size=batch_size, window=window, lr=lr,
                      seed=seed, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                      progress=progress, heldout=heldout, speakers=speakers,
                      heldout_speakers=heldout_speakers, clip_norm=clip_norm, workers=workers,
                      log_fn=log_fn, features=features, heldout_features=heldout_features)


def _train(model_or_config, audio, *, interrupts, steps, seconds, batch_size, window, lr, seed,
           checkpoint, checkpoint_every, progress, heldout, speakers, heldout_speakers, clip_norm,
           workers, log_fn, features=None, heldout_features=None):
    """The body of :func:`train` (same arguments, and the :class:`_Interrupts` in effect);
    validates the options."""
    from .signals import order0_entropy_bits

    say = log_fn or (lambda msg: None)
    steps, seconds = _check_budget(steps, seconds)
    model = _as_model(model_or_config, seed)
    cfg = model.config
    rf = cfg.receptive_field
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if window is None:
        window = rf + 511
    if not isinstance(window, (int, np.integer)) or window < rf:
        raise ConfigError(f"window must be an integer >= the receptive field ({rf}), "
                          f"got {window!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if checkpoint is not None:
        _checkpoint_dir_ok(checkpoint)

    frames = hframes = None
    if not cfg.has_cond and (features is not None or heldout_features is not None):
        raise ConfigError("features given but the model has no local conditioning")
    if heldout_features is not None and heldout is None:
        raise ConfigError("heldout_features given without heldout audio")
    if cfg.has_cond:     # a vocoder: features by the model's recipe, clips cut to whole frames
        from ._cond_train import encode_with_features
        codes, frames = encode_with_features(audio, cfg, "training", features)
    else:
        codes = _encode_all(audio, cfg, "training")
    spk = np.zeros(len(codes), np.int64) if speakers is None else np.asarray(speakers, np.int64)
    if spk.shape != (len(codes),):
        raise ConfigError(f"speakers must give one id per clip ({len(codes)}), got {spk.shape}")
    if cfg.has_gc and spk.size and (spk.min() < 0 or spk.max() >= cfg.gc_cardinality):
        raise ConfigError(f"speaker ids must lie in [0, {cfg.gc_cardinality - 1}]")

    longest = max(len(c) for c in codes)
    if longest < rf + 1:
        raise AudioError(f"training audio too short: the longest clip has {longest} samples, the "
                         f"receptive field needs at least {rf + 1}")
    if window > longest - 1:
        say(f"window shortened from {window} to {longest - 1} samples (longest clip)")
        window = longest - 1
    T = window - rf + 1
    usable = [i for i, c in enumerate(codes) if len(c) >= window + 1]
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")

    hcodes = None
    history = {"steps": 0, "seconds": 0.0, "positions": 0, "loss_bits": [],
               "heldout_bits_before": None, "heldout_bits_after": None,
               "heldout_order0_bits": None, "window": int(window), "batch_size": int(batch_size)}
    if heldout is not None:
        if cfg.has_cond:
            hcodes, hframes = encode_with_features(heldout, cfg, "held-out", heldout_features)
        else:
            hcodes = _encode_all(heldout, cfg, "held-out")
        history["heldout_order0_bits"] = order0_entropy_bits(hcodes)
        try:
            say(f"held-out: scoring {sum(len(c) for c in hcodes):,} samples before training")
            history["heldout_bits_before"] = heldout_bits(model, hcodes, heldout_speakers, hframes)
        except KeyboardInterrupt:
            interrupts.stopping = True
            say("interrupted before the first step: nothing written")
            raise

    params = {k: v.astype(np.float32) for k, v in model.weights.items()}
    frozen = () if cfg.use_biases else [k for k in params
                                        if k.endswith("/b") or k == "initial/bias"]
    opt = Adam(params, frozen=frozen)
    sampler = _WindowSampler([codes[i] for i in usable], spk[usable], window, rf,
                             np.random.default_rng(np.random.SeedSequence(int(seed),
                                                                          spawn_key=(1,))))

    ema = None
    step = 0
    xb = np.empty((batch_size, window), np.int64)
    yb = np.empty((batch_size, T), np.int64)
    sb = np.zeros(batch_size, np.int64)
    with contextlib.ExitStack() as stack:
        # the first step runs in this thread: numba compiles the kernels on first use (seconds,
        # uncached), and only the main thread can be reached by Ctrl-C while it does
        pool = None
        try:
            say(f"training: receptive field {rf} samples, {cfg.parameter_count():,} parameters, "
                f"{len(usable)} clips ({sum(len(codes[i]) for i in usable):,} samples), "
                f"windows of {window} samples ({T} scored) x {batch_size}, "
                + (f"{steps} steps" if steps is not None else "")
                + (" or " if steps is not None and seconds is not None else "")
                + (f"{seconds:g} s" if seconds is not None else ""))
            bar = None
            if progress:
                from tqdm.auto import tqdm
                if steps is not None:
                    bar = tqdm(total=steps, unit="step", desc="train", leave=True,
                               dynamic_ncols=True)
                else:
                    bar = tqdm(total=float(seconds), unit="s", desc="train", leave=True,
                               dynamic_ncols=True,
                               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s "
                                          "[{elapsed}<{remaining}{postfix}]")
                stack.callback(bar.close)
            t_start = time.perf_counter()
            while True:
                elapsed = time.perf_counter() - t_start
                frac = 0.0
                if steps is not None:
                    frac = max(frac, step / steps)
                if seconds is not None:
                    frac = max(frac, elapsed / seconds)
                if frac >= 1.0:
                    break
                interrupts.check()
                sampler.fill(xb, yb, sb)
                if cfg.has_cond:
                    from ._cond_train import cond_loss_and_grads
                    loss, g = cond_loss_and_grads(params, cfg, xb, yb,
                                                  sb if cfg.has_gc else None,
                                                  [frames[i] for i in usable],
                                                  [sampler.picks[b] for b in range(batch_size)],
                                                  pool)
                else:
                    loss, g = _batch_loss_and_grads(params, cfg, xb, yb,
                                                    sb if cfg.has_gc else None, pool)
                if not math.isfinite(loss):
                    raise ConfigError(f"training diverged at step {step + 1} (loss is not finite); "
                                      "lower the learning rate")
                _clip_global_norm(g, clip_norm)
                cur_lr = _lr_at(lr, step, frac)
                with interrupts.held():      # never a half-updated set of weights
                    opt.step(params, g, cur_lr)
                    step += 1
                if step == 1:
                    say(f"step 1 took {time.perf_counter() - t_start:.1f} s (on first use this "
                        "includes compiling the training kernels; cached on disk afterwards)")
                    if workers > 1:
                        pool = stack.enter_context(ThreadPoolExecutor(workers))
                bits = loss / LN2
                history["loss_bits"].append(bits)
                ema = bits if ema is None else 0.95 * ema + 0.05 * bits
                if bar is not None:
                    if steps is not None:
                        bar.update(1)
                    else:
                        bar.n = min(time.perf_counter() - t_start, float(seconds))
                    bar.set_postfix_str(f"step {step}, loss {ema * LN2:.3f} nats, "
                                        f"{ema:.3f} bits/sample", refresh=True)
                if checkpoint is not None and step % checkpoint_every == 0:
                    _to_model(cfg, params).save(checkpoint)
        except KeyboardInterrupt:
            # end now: chunks not yet started are dropped (running ones take milliseconds);
            # keep what was learnt: the checkpoint gets the current weights, then re-raise
            interrupts.stopping = True
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            if checkpoint is not None and step > 0:
                with interrupts.held():      # a second Ctrl-C waits for this write
                    _to_model(cfg, params).save(checkpoint)
                say(f"interrupted at step {step}: wrote {checkpoint}")
            else:
                say("interrupted before the first step: nothing written")
            raise

    try:
        # written before the held-out scoring, so that a Ctrl-C there keeps the trained model
        with interrupts.held():
            history["steps"] = step
            history["seconds"] = time.perf_counter() - t_start
            history["positions"] = step * batch_size * T
            out = _to_model(cfg, params, source=None)
            if checkpoint is not None:
                out.save(checkpoint)
        if hcodes is not None:
            say(f"held-out: scoring {sum(len(c) for c in hcodes):,} samples after training")
            history["heldout_bits_after"] = heldout_bits(out, hcodes, heldout_speakers, hframes)
    except KeyboardInterrupt:
        interrupts.stopping = True
        if checkpoint is not None:
            say(f"interrupted after step {step}: wrote {checkpoint}")
        raise
    return out, history
