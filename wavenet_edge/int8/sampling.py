"""Integer class weights for sampling on the int8 logits, at any temperature.

The weight of a class whose logit lies ``k`` steps below the row maximum (``k = qmax − q``,
0…255) is the SOFTMAX's own fixed-point exponential of ``−k·s/T`` (``s`` the logits scale,
``T`` the temperature), rounded to Q15::

    (M, left_shift, diff_min) = softmax_params(s, beta = 1/T)     # TFLM's Prepare, beta folded
    table[k] = RoundingDivideByPOT(softmax_exp_table(M, left_shift, diff_min)[k], 16)

so ``table[0] = 32768`` and the table is non-increasing (every entry fits a uint16, a sum
of 256 fits in 24 bits); entries the SOFTMAX excludes
(``−k < diff_min``) are 0.  At ``T = 1`` these are exactly the exponentials the graph's SOFTMAX
sums before it normalizes and rounds to its 8-bit output: sampling with them draws from the
model's distribution without running the 256-way SOFTMAX (and without its 1/256 output
resolution).  Everything is integer arithmetic (gemmlowp fixed point), so the table is the same
on every host; the C export embeds it as data.  A temperature so high that ``s/T·2**26 <= 1``
(no representable multiplier) gives the uniform table.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, ConversionError
from .fixedpoint import rdbpot
from .softmax import softmax_exp_table, softmax_params

__all__ = ["logit_weight_table", "WEIGHT_ONE"]

#: the weight of the largest logit (Q15 one)
WEIGHT_ONE = 1 << 15


def logit_weight_table(logits_scale: float, temperature: float) -> np.ndarray:
    """int64[256] sampling weights ``table[qmax − q]`` for logits of scale ``logits_scale`` at
    ``temperature`` (> 0, finite); see the module docstring."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ConfigError(f"temperature must be a number, got {temperature!r}") from None
    if not (math.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be a positive finite number (or 0 for greedy), "
                          f"got {temperature!r}")
    s = float(np.float32(logits_scale))
    if not (math.isfinite(s) and s > 0):
        raise ConfigError(f"logits scale must be a positive finite number, got {logits_scale!r}")
    try:
        p = softmax_params(s, beta=1.0 / t, profile="tflm")
    except ConversionError:          # s/T too small for a multiplier: every weight is one
        return np.full(256, WEIGHT_ONE, np.int64)
    e = softmax_exp_table(p.multiplier, p.left_shift, p.diff_min)
    return np.array([rdbpot(int(v), 16) for v in e], np.int64)
