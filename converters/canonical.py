"""Canonical float form: fold ``residual_scale`` and ``skip_scale`` into the weights.

The int8 graph has no multiply after the residual ADD and none after the skip sum, so the
converter first rewrites the float model into an equivalent one with
``residual_scale = skip_scale = 1`` (see ``docs/step-graph.md``).  With ``r = residual_scale`` and
``c_l = r**l`` the residual stream is carried as ``ĥ_l = h_l / c_l``:

* layer l's dilated filter/gate weights are multiplied by ``c_l`` (they read ``h_l = c_l·ĥ_l``);
  the global-conditioning weights read the speaker embedding, not ``h``, and stay as they are;
* layer l's residual weights and bias are divided by ``c_l``
  (``ĥ_{l+1} = (c_l·ĥ_l + a_l·Wr + br)·r / c_{l+1} = ĥ_l + (a_l·Wr + br)/c_l``);
* every skip weight and bias is multiplied by ``skip_scale``.

The logits are unchanged up to float64 rounding (≤ 1e-12 relative).
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.float_model import FloatWaveNet

__all__ = ["canonicalize", "is_canonical"]


def is_canonical(model: FloatWaveNet) -> bool:
    """True when ``model`` already has ``residual_scale = skip_scale = 1``."""
    return model.config.residual_scale == 1.0 and model.config.skip_scale == 1.0


def canonicalize(model: FloatWaveNet) -> FloatWaveNet:
    """Equivalent :class:`FloatWaveNet` with ``residual_scale = skip_scale = 1`` (new object).

    The weights are float64 copies; the input model is not modified.
    """
    cfg = model.config
    r, sk = float(cfg.residual_scale), float(cfg.skip_scale)
    W = {name: np.array(a, dtype=np.float64, copy=True) for name, a in model.weights.items()}
    for l in range(cfg.n_layers):
        p = f"layers/{l}/"
        c = r ** l
        W[p + "filter/w"] *= c
        W[p + "gate/w"] *= c
        W[p + "residual/w"] /= c
        W[p + "residual/b"] /= c
        W[p + "skip/w"] *= sk
        W[p + "skip/b"] *= sk
    new_cfg = cfg.replace(residual_scale=1.0, skip_scale=1.0)
    return FloatWaveNet(new_cfg, W, source=model.source)
