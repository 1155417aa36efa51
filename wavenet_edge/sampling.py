"""Integer sampler: the same file and seed give the same codes on a PC and on a microcontroller.

Everything here is integer arithmetic on uint32/uint64 (the weight table is computed once on the
host, in integer fixed point, and is *data*: the C export embeds it), so the algorithm can be
mirrored exactly in C (``wn_sample`` in the C export).

Random numbers — PCG32 (O'Neill, ``pcg32_random_r``, XSH-RR 64/32)::

    seed(s, seq):  state = 0; inc = (seq << 1) | 1; next(); state += s; next()
    next():        old = state
                   state = old * 6364136223846793005 + inc            (mod 2**64)
                   xorshifted = (uint32)(((old >> 18) ^ old) >> 27)
                   rot = old >> 59
                   return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))

``s`` is the user seed (uint64, taken modulo 2**64) and ``seq`` the stream index (0 for a single
stream; stream ``b`` of a batch uses ``seq = b``).  One ``next()`` is drawn per generated sample.

Class weights (non-negative integers, one per class ``i``), one definition for every
temperature ``T > 0`` (including 1): ``w[i] = table[qmax − logits[i]]`` with ``qmax = max_i
logits[i]`` and ``table`` = :func:`wavenet_edge.int8.sampling.logit_weight_table` (the SOFTMAX's
fixed-point exponential of ``−k·s/T`` in Q15, ``s`` the logits scale; ``table[0] = 32768``).  At
``T = 1`` these are the exponentials the graph's SOFTMAX sums, so sampling needs no SOFTMAX: the
device samples its int8 logits (the int8 probabilities stay available to hosts that ask for
them, but the sampler does not read them).  ``temperature == 0``: greedy, the first index of the
largest logit (no random number drawn).

Changed in this release: ``T = 1`` used to draw from the int8 probabilities (``probs + 128``);
it now uses the logits table like every other temperature, so the codes generated for a given
seed differ from earlier releases (at every temperature: the table is now the fixed-point
exponential rather than a float64 ``exp``).

Inverse CDF: ``W = Σ w[i]`` (> 0; all-zero weights fall back to greedy), ``u = next()``,
``r = (u · W) >> 32`` (64-bit product; ``0 ≤ r < W``), and the result is the smallest ``i`` with
``w[0] + … + w[i] > r``.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from .errors import ConfigError
from .int8.sampling import logit_weight_table

__all__ = ["pcg32_seed", "pcg32_next", "temperature_table", "sample_weights_table",
           "argmax_first", "draw", "Sampler", "sampling_mode", "sample_one", "MODE_TABLE",
           "MODE_GREEDY"]

#: sampler modes (the C export's WN_SAMPLE_TABLE / WN_SAMPLE_GREEDY)
MODE_TABLE = 1
MODE_GREEDY = 2

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
    """int64[256] weights ``table[qmax − q]`` (:func:`wavenet_edge.int8.sampling.logit_weight_table`)."""
    return logit_weight_table(logits_scale, temperature)


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
def sample_weights_table(row, off, n, table, weights):
    """``weights[i] = table[qmax − row[off + i]]`` (temperature on int8 logits)."""
    qmax = np.int64(row[off])
    for i in range(1, n):
        if np.int64(row[off + i]) > qmax:
            qmax = np.int64(row[off + i])
    for i in range(n):
        weights[i] = table[qmax - np.int64(row[off + i])]


class Sampler:
    """Pure-Python-facing sampler over int8 logits (what :meth:`Engine.generate` does in its
    kernel).

    ``Sampler(seed, temperature=1.0, logits_scale=s, n_streams=B)``; ``sample(logits)`` with an
    int8 (256,) row returns a class index for stream 0 (``stream=`` for others).
    """

    def __init__(self, seed: int, *, temperature: float = 1.0, logits_scale: float = 1.0,
                 n_streams: int = 1):
        self.rng = pcg32_seed(seed, n_streams)
        self.temperature = float(temperature)
        self.mode, self.table = sampling_mode(temperature, logits_scale)
        self._w = np.zeros(256, np.int64)

    def sample(self, logits, *, stream: int = 0) -> int:
        logits = np.ascontiguousarray(logits, np.int8).ravel()
        if logits.shape != (256,):
            raise ConfigError(f"logits must be 256 int8 values, got shape {np.shape(logits)}")
        return int(sample_one(self.mode, logits, 0, self.table, self.rng, stream, self._w))


def sampling_mode(temperature, logits_scale):
    """``(mode, table)``: :data:`MODE_TABLE` with the weight table for ``temperature`` > 0,
    :data:`MODE_GREEDY` for 0."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ConfigError(f"temperature must be a number, got {temperature!r}") from None
    if t == 0.0:
        return MODE_GREEDY, np.zeros(256, np.int64)
    return MODE_TABLE, logit_weight_table(logits_scale, t)


@kernel
def sample_one(mode, logits, loff, table, rng, b, weights):
    """One class index for stream ``b`` from the int8 logits ``logits[loff:loff+256]`` (see the
    module docstring); ``weights`` int64 (256,) scratch."""
    n = weights.shape[0]
    if mode == 2:
        return argmax_first(logits, loff, n)
    sample_weights_table(logits, loff, n, table, weights)
    u = pcg32_next(rng, b)
    i = draw(weights, u)
    if i < 0:
        return argmax_first(logits, loff, n)
    return i
