"""mu-law companding and the class-index conventions of the popular WaveNet implementations.

Our own convention (``"wavenet-edge"``) is librosa's, to the bit: ``mu_compress`` maps ``x`` in
[-1, 1] to ``F(x) = sign(x)·ln(1 + mu·|x|)/ln(1 + mu)`` and, with ``quantize=True``, to signed
integer codes ``digitize(F(x), linspace(-1, 1, mu+1), right=True) - (mu+1)//2`` (``-128 … 127`` for
mu = 255); ``mu_expand`` of a code ``c`` is ``F⁻¹(2c/(mu+1))``.  The softmax of the model predicts
the *class index* ``c + 128`` in ``0 … 255``.

Other implementations quantize differently, and a model is only correct with its own convention:

============================ ===============================================================
convention                   encode ``x`` → class index ``q`` in ``0 … mu``
============================ ===============================================================
``wavenet-edge`` (librosa)   ``digitize(F(x), linspace(-1, 1, mu+1), right=True)``
``tensorflow-wavenet``       ``int((F(x)+1)/2·mu + 0.5)``   (ibab, ``mu_law_encode``)
``wavenet_vocoder``          ``int((F(x)+1)/2·mu)``         (r9y9 via nnmnkwii ``mulaw_quantize``: truncates)
``pytorch-wavenet``          ``digitize(F₂₅₆(x), linspace(-1, 1, 256)) - 1``  (vincentherrmann; it
                             compands with mu = classes = 256, not 255)
============================ ===============================================================

Decoding back to audio, ``F⁻¹`` of: ``wavenet-edge`` ``2q/(mu+1) - 1`` (librosa);
tensorflow-wavenet and wavenet_vocoder ``2q/mu - 1``; pytorch-wavenet ``F₂₅₆⁻¹(2q/256 - 1)`` (its
``generate``: ``x / classes · 2 - 1``), which is not the inverse of its own digitize encoder: a
decoded class re-encodes one lower.  Truncating encoders (wavenet_vocoder, pytorch-wavenet) put a
decoded class on a bin edge, so float rounding may re-encode it one lower.  The rounding and digitize conventions disagree by one step on
many samples, which is why the convention travels with the model (config and ``.tflite`` metadata).
"""

from __future__ import annotations

import numpy as np

from .errors import AudioError, ConfigError

__all__ = [
    "CONVENTIONS",
    "mu_compress",
    "mu_expand",
    "encode_classes",
    "decode_classes",
]

CONVENTIONS = ("wavenet-edge", "tensorflow-wavenet", "wavenet_vocoder", "pytorch-wavenet")


def _check_mu(mu):
    if not (isinstance(mu, (int, np.integer)) and mu > 0) and not (float(mu) > 0):
        raise ConfigError(f"mu must be positive, got {mu!r}")


def _check_range(x, what="x"):
    x = np.asarray(x)
    if x.size and not np.all(np.isfinite(x)):
        raise AudioError(f"{what} contains NaN or Inf")
    if x.size and (np.max(x) > 1.0 or np.min(x) < -1.0):
        raise AudioError(f"{what} must lie in [-1, 1] (found {np.min(x):.4g} … {np.max(x):.4g})")
    return x


def _companding(x, mu):
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def mu_compress(x, *, mu=255, quantize=True):
    """mu-law compress ``x`` (librosa semantics).

    Parameters
    ----------
    x : array_like of float in [-1, 1]
    mu : positive number; ``mu + 1`` levels when ``quantize``
    quantize : bool
        ``True``: signed integer codes ``-(mu+1)/2 … (mu+1)/2 - 1`` (``-128 … 127`` for mu = 255),
        dtype int64.  ``False``: the continuous value ``F(x)`` in [-1, 1], float.

    Raises :class:`AudioError` for values outside [-1, 1] (never silently clipped).
    """
    _check_mu(mu)
    x = _check_range(np.asarray(x, dtype=np.float64))
    y = _companding(x, mu)
    if not quantize:
        return y
    bins = np.linspace(-1.0, 1.0, num=int(1 + mu), endpoint=True)
    return np.digitize(y, bins, right=True).astype(np.int64) - int(mu + 1) // 2


def mu_expand(y, *, mu=255, quantize=True):
    """Inverse of :func:`mu_compress`.

    ``quantize=True``: ``y`` are signed integer codes (``-128 … 127`` for mu = 255), scaled by
    ``2/(mu+1)`` as librosa does; ``quantize=False``: ``y`` is continuous in [-1, 1].  Returns
    float64 in [-1, 1].
    """
    _check_mu(mu)
    y = np.asarray(y)
    if quantize:
        levels = int(mu) + 1
        yi = y.astype(np.int64)
        if yi.size and (yi.min() < -(levels // 2) or yi.max() > levels - levels // 2 - 1):
            raise AudioError(f"mu-law codes must lie in [{-(levels // 2)}, {levels - levels // 2 - 1}]")
        y = yi * 2.0 / levels
    else:
        y = _check_range(np.asarray(y, dtype=np.float64), "y")
    return np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu


def encode_classes(x, *, mu=255, convention="wavenet-edge"):
    """Audio ``x`` in [-1, 1] → class indices ``0 … mu`` (int64) in the given convention."""
    if convention not in CONVENTIONS:
        raise ConfigError(f"unknown mu-law convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    x = _check_range(np.asarray(x, dtype=np.float64))
    if convention == "wavenet-edge":
        return mu_compress(x, mu=mu) + (int(mu) + 1) // 2
    f = _companding(x, mu)
    if convention == "tensorflow-wavenet":
        return ((f + 1.0) / 2.0 * mu + 0.5).astype(np.int64)
    if convention == "wavenet_vocoder":
        return ((f + 1.0) / 2.0 * mu).astype(np.int64)
    # pytorch-wavenet compands with mu = classes = mu + 1 (256, not 255), then
    # np.digitize(F(x), linspace(-1, 1, classes)) - 1
    classes = int(mu) + 1
    f = _companding(x, classes)
    bins = np.linspace(-1.0, 1.0, classes)
    return np.clip(np.digitize(f, bins) - 1, 0, int(mu))


def decode_classes(q, *, mu=255, convention="wavenet-edge"):
    """Class indices ``0 … mu`` → audio in [-1, 1] (float64), inverse of :func:`encode_classes`."""
    if convention not in CONVENTIONS:
        raise ConfigError(f"unknown mu-law convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    q = np.asarray(q).astype(np.int64)
    if q.size and (q.min() < 0 or q.max() > int(mu)):
        raise AudioError(f"class indices must lie in [0, {int(mu)}]")
    if convention == "wavenet-edge":
        return mu_expand(q - (int(mu) + 1) // 2, mu=mu)
    if convention in ("tensorflow-wavenet", "wavenet_vocoder"):
        f = 2.0 * q / mu - 1.0
    else:  # pytorch-wavenet's generate(): classes = mu + 1 used as its mu, too
        classes = int(mu) + 1
        f = 2.0 * q / classes - 1.0
        return np.sign(f) * ((1.0 + classes) ** np.abs(f) - 1.0) / classes
    return np.sign(f) * ((1.0 + mu) ** np.abs(f) - 1.0) / mu
