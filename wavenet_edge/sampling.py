"""Integer sampler: the same file and seed give the same codes on a PC and on a microcontroller.

Everything here is integer arithmetic on uint32/uint64 (the temperature table is computed once on
the host and is *data*: the C export embeds it), so the algorithm can be mirrored exactly in C.

Random numbers — PCG32 (O'Neill, ``pcg32_random_r``, XSH-RR 64/32)::

    seed(s, seq):  state = 0; inc = (seq << 1) | 1; next(); state += s; next()
    next():        old = state
                   state = old * 6364136223846793005 + inc            (mod 2**64)
                   xorshifted = (uint32)(((old >> 18) ^ old) >> 27)
                   rot = old >> 59
                   return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))

``s`` is the user seed (uint64, taken modulo 2**64) and ``seq`` the stream index (0 for a single
stream; stream ``b`` of a batch uses ``seq = b``).  One ``next()`` is drawn per generated sample.

Class weights (non-negative integers, one per class ``i``):

* ``temperature == 1``: the model's own int8 probabilities, ``w[i] = probs[i] + 128`` (the
  SOFTMAX output has scale 1/256 and zero point −128, so this is ``256·p`` rounded by the kernel).
* ``temperature > 0`` otherwise: ``w[i] = table[qmax − logits[i]]`` with ``qmax = max_i logits[i]``
  and ``table[k] = floor(65536 · exp(−k · s / T) + 1/2)`` for ``k = 0 … 255`` (``s`` the logits
  scale; computed in float64 on the host, see :func:`temperature_table`); ``table[0] = 65536``.
* ``temperature == 0``: greedy, the first index of the largest logit (no random number drawn).

Inverse CDF: ``W = Σ w[i]`` (> 0; all-zero weights fall back to greedy), ``u = next()``,
``r = (u · W) >> 32`` (64-bit product; ``0 ≤ r < W``), and the result is the smallest ``i`` with
``w[0] + … + w[i] > r``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel
from .errors import ConfigError

__all__ = ["pcg32_seed", "pcg32_next", "temperature_table", "sample_weights_probs",
           "sample_weights_table", "argmax_first", "draw", "Sampler"]

_MULT = np.uint64(6364136223846793005)
_M32 = np.uint64(0xFFFFFFFF)


@kernel
def pcg32_next(rng, b):
    """Advance stream ``b`` of ``rng`` (uint64 (nb, 2): state, inc) and return the uint32 output
    (as uint64)."""
    old = rng[b, 0]
    rng[b, 0] = old * np.uint64(6364136223846793005) + rng[b, 1]
    xorshifted = (((old >> np.uint64(18)) ^ old) >> np.uint64(27)) & np.uint64(0xFFFFFFFF)
    rot = old >> np.uint64(59)
    left = (np.uint64(32) - rot) & np.uint64(31)
    return ((xorshifted >> rot) | (xorshifted << left)) & np.uint64(0xFFFFFFFF)


def pcg32_seed(seed: int, n_streams: int = 1) -> np.ndarray:
    """uint64 (n_streams, 2) state/inc of PCG32 seeded with ``seed`` and sequence ``b`` per row."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    s = int(seed) % 2**64
    rng = np.zeros((n_streams, 2), np.uint64)
    for b in range(n_streams):
        rng[b, 0] = 0
        rng[b, 1] = ((b << 1) | 1) % 2**64
        pcg32_next(rng, b)
        rng[b, 0] = np.uint64((int(rng[b, 0]) + s) % 2**64)
        pcg32_next(rng, b)
    return rng


def temperature_table(logits_scale: float, temperature: float) -> np.ndarray:
    """int64[256]: ``floor(65536·exp(−k·scale/T) + 1/2)`` for ``k = 0 … 255`` (see module doc)."""
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be a positive finite number (or 0 for greedy), "
                          f"got {temperature!r}")
    s = float(np.float32(logits_scale))
    k = np.arange(256, dtype=np.float64)
    return np.floor(65536.0 * np.exp(-k * s / t) + 0.5).astype(np.int64)


@kernel
def argmax_first(row, off, n):
    """Index of the first largest value of ``row[off:off+n]``."""
    best = 0
    bv = row[off]
    for i in range(1, n):
        if row[off + i] > bv:
            bv = row[off + i]
            best = i
    return best


@kernel
def draw(weights, u):
    """Inverse CDF over int64 ``weights`` with a uint32 ``u``; -1 when every weight is 0."""
    total = np.int64(0)
    for i in range(weights.shape[0]):
        total += weights[i]
    if total <= 0:
        return -1
    r = np.int64((np.uint64(u) * np.uint64(total)) >> np.uint64(32))
    c = np.int64(0)
    for i in range(weights.shape[0]):
        c += weights[i]
        if c > r:
            return i
    return weights.shape[0] - 1


@kernel
def sample_weights_probs(row, off, n, weights):
    """``weights[i] = row[off + i] + 128`` (int8 probabilities with zero point −128)."""
    for i in range(n):
        weights[i] = np.int64(row[off + i]) + 128


@kernel
def sample_weights_table(row, off, n, table, weights):
    """``weights[i] = table[qmax − row[off + i]]`` (temperature on int8 logits)."""
    qmax = np.int64(row[off])
    for i in range(1, n):
        if np.int64(row[off + i]) > qmax:
            qmax = np.int64(row[off + i])
    for i in range(n):
        weights[i] = table[qmax - np.int64(row[off + i])]


class Sampler:
    """Pure-Python-facing sampler over int8 rows (what :meth:`Engine.generate` does in its kernel).

    ``Sampler(seed, temperature=1.0, logits_scale=s, n_streams=B)``; ``sample(probs, logits)``
    with int8 (256,) rows returns a class index for stream 0 (``stream=`` for others).
    """

    def __init__(self, seed: int, *, temperature: float = 1.0, logits_scale: float = 1.0,
                 n_streams: int = 1):
        self.rng = pcg32_seed(seed, n_streams)
        self.temperature = float(temperature)
        self.mode, self.table = sampling_mode(temperature, logits_scale)
        self._w = np.zeros(256, np.int64)

    def sample(self, probs, logits, *, stream: int = 0) -> int:
        probs = np.ascontiguousarray(probs, np.int8).ravel()
        logits = np.ascontiguousarray(logits, np.int8).ravel()
        return int(sample_one(self.mode, probs, 0, logits, 0, self.table, self.rng, stream, self._w))


def sampling_mode(temperature, logits_scale):
    """``(mode, table)``: mode 0 = probs (T = 1), 1 = logits table, 2 = greedy (T = 0)."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ConfigError(f"temperature must be a number, got {temperature!r}") from None
    if t == 0.0:
        return 2, np.zeros(256, np.int64)
    if t == 1.0:
        return 0, np.zeros(256, np.int64)
    return 1, temperature_table(logits_scale, t)


@kernel
def sample_one(mode, probs, poff, logits, loff, table, rng, b, weights):
    """One class index for stream ``b`` (see module docstring); ``weights`` int64 (256,) scratch."""
    n = weights.shape[0]
    if mode == 2:
        return argmax_first(logits, loff, n)
    if mode == 0:
        sample_weights_probs(probs, poff, n, weights)
    else:
        sample_weights_table(logits, loff, n, table, weights)
    u = pcg32_next(rng, b)
    i = draw(weights, u)
    if i < 0:
        return argmax_first(logits, loff, n)
    return i
