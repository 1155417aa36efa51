"""int8 quantization primitives and the activation plan of the step graph.

Conventions (TFLite int8, ``docs/step-graph.md``):

* activations: int8 per tensor, asymmetric; ``real = scale · (q - zero_point)``; real 0.0 is
  exactly representable (integer zero point); scales are float32 values (as stored in the file);
* weights: int8 symmetric per output channel (row of an FC weight ``[out, in]``), zero point 0,
  range ±127; an all-zero row gets scale 1 (any positive value: its codes are all 0);
* biases: int32 at ``scale = input_scale · weight_scale[c]``, the product formed in float64 from
  the float32 scales (as the runtimes form it) and stored as float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavenet_edge.errors import ConversionError

__all__ = [
    "QParams",
    "CondQParams",
    "TANH_QPARAMS",
    "LOGISTIC_QPARAMS",
    "SOFTMAX_QPARAMS",
    "activation_qparams",
    "quantize_activation",
    "dequantize",
    "quantize_weights",
    "quantize_bias",
    "activation_plan",
    "cond_beta",
]


@dataclass(frozen=True)
class QParams:
    """Per-tensor int8 quantization: ``real = scale · (q - zero_point)``.

    ``scale`` is a float32-exact Python float."""

    scale: float
    zero_point: int

    @property
    def range(self):
        """(lowest, highest) representable real value."""
        return (self.scale * (-128 - self.zero_point), self.scale * (127 - self.zero_point))

    def to_dict(self) -> dict:
        return {"scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class CondQParams(QParams):
    """The quantization of the step graph's ``cond`` input, which holds ``c_up / beta``
    (:func:`cond_beta`); ``beta`` is folded into every layer's conv1x1c columns."""

    beta: float = 1.0


def _f32(x) -> float:
    return float(np.float32(x))


# narrowest activation range (real units) given to any tensor
MIN_SPAN = 1e-3

# fixed output quantizations required by the TFLite int8 kernels
TANH_QPARAMS = QParams(_f32(1.0 / 128.0), 0)
LOGISTIC_QPARAMS = QParams(_f32(1.0 / 256.0), -128)
SOFTMAX_QPARAMS = QParams(_f32(1.0 / 256.0), -128)


def activation_qparams(lo: float, hi: float) -> QParams:
    """Asymmetric int8 parameters covering ``[lo, hi]`` (widened to include 0 and to a span of at
    least ``MIN_SPAN``)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ConversionError(f"activation range [{lo}, {hi}] is not finite")
    if hi - lo < MIN_SPAN:
        # a (nearly) constant-zero tensor: a tiny scale would overflow the next layer's int32 bias
        hi = lo + MIN_SPAN
    scale = _f32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return QParams(scale, zp)


def quantize_activation(x, qp: QParams) -> np.ndarray:
    """Real values → int8 codes (round half to even like numpy, saturating)."""
    q = np.round(np.asarray(x, dtype=np.float64) / qp.scale) + qp.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q, qp: QParams) -> np.ndarray:
    """int8 codes → float64 real values."""
    return qp.scale * (np.asarray(q, dtype=np.float64) - qp.zero_point)


def quantize_weights(w) -> tuple:
    """Per-row symmetric int8.

    ``w`` (out, in) float → ``(q int8 (out, in), scales float32 (out,))``."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D (out, in), got shape {w.shape}")
    amax = np.abs(w).max(axis=1)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scales.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q, scales


def bias_scales(input_scale: float, weight_scales) -> np.ndarray:
    """float32 bias scales ``input_scale · weight_scale[c]`` (float64 product of float32s)."""
    return (np.float64(np.float32(input_scale))
            * np.asarray(weight_scales, dtype=np.float32).astype(np.float64)).astype(np.float32)


def quantize_bias(b, input_scale: float, weight_scales) -> tuple:
    """``b`` (out,) float → ``(q int32 (out,), scales float32 (out,))``; raises on overflow."""
    scales = bias_scales(input_scale, weight_scales)
    # divide by the float64 product the runtime uses for requantization, not the float32 copy
    exact = (np.float64(np.float32(input_scale))
             * np.asarray(weight_scales, np.float32).astype(np.float64))
    q = np.round(np.asarray(b, dtype=np.float64) / exact)
    lim = 2.0 ** 31 - 1
    if np.any(np.abs(q) > lim):
        raise ConversionError("a bias does not fit int32 at input_scale × weight_scale "
                              "(activation range far too narrow for the bias)")
    return q.astype(np.int32), scales


def activation_plan(config, ranges: dict) -> dict:
    """Quantization of every int8 activation tensor of the step graph, by tensor name.

    ``ranges``: ``{key: (lo, hi)}`` from :func:`converters.calibrate.choose_ranges` (keys as in
    :func:`converters.calibrate.activation_tensors`).  Applies the graph's sharing rules: every
    ``layer{l}/gated`` and every ``initial/contrib{j}`` share one quantization, delay-line reads
    and speaker tensors take their layer input's, fused-ReLU outputs start at 0, and TANH /
    LOGISTIC / SOFTMAX outputs have the kernels' fixed parameters.  With local conditioning
    (key ``cond``: the range of the sample-rate features) ``cond`` is quantized as ``c_up / β``
    (:func:`cond_beta`) and every ``layer{l}/cond`` takes its layer input's quantization.
    Returns ``{name: QParams}``.
    """
    L, k, w = config.n_layers, config.kernel_size, config.initial_filter_width
    plan = {}

    def qp(key, *, relu=False):
        try:
            lo, hi = ranges[key]
        except KeyError:
            raise ConversionError(f"no calibration range for activation {key}") from None
        if relu:
            lo = 0.0
        return activation_qparams(lo, hi)

    if w > 1:
        c = qp("initial/contrib")
        for j in range(w):
            plan[f"initial/contrib{j}"] = c
            if j < w - 1:
                plan[f"initial/contrib{j}@{w - 1 - j}"] = c
        plan["initial/taps"] = c
    gated = qp("gated")
    for l, d in enumerate(config.dilations):
        p = f"layer{l:02d}/"
        inp = qp(p + "input")
        plan[p + "input"] = inp
        for m in range(k - 1, 0, -1):
            plan[f"{p}input@{m * d}"] = inp
        if config.has_gc:
            plan[p + "speaker"] = inp
        plan[p + "taps"] = inp
        plan[p + "filter"] = qp(p + "filter")
        plan[p + "gate"] = qp(p + "gate")
        plan[p + "filter_tanh"] = TANH_QPARAMS
        plan[p + "gate_sigmoid"] = LOGISTIC_QPARAMS
        plan[p + "gated"] = gated
        if l < L - 1:
            plan[p + "residual"] = qp(p + "residual")
    if config.has_cond:
        if "cond" not in ranges:
            raise ConversionError("no calibration range for the conditioning features (cond)")
        lo, hi = min(float(ranges["cond"][0]), 0.0), max(float(ranges["cond"][1]), 0.0)
        beta = cond_beta(config, plan, (lo, hi))
        q = activation_qparams(lo / beta, hi / beta)
        plan["cond"] = CondQParams(q.scale, q.zero_point, beta)
        for l in range(L):
            plan[f"layer{l:02d}/cond"] = plan[f"layer{l:02d}/input"]
    plan["skip/gated_all"] = gated
    plan["skip/relu"] = qp("skip/relu", relu=True)
    plan["end/hidden"] = qp("end/hidden", relu=True)
    plan["logits"] = qp("logits")
    plan["probs"] = SOFTMAX_QPARAMS
    return plan


def cond_beta(config, plan: dict, cond_range) -> float:
    """The factor ``β > 0`` by which the step graph's ``cond`` input is divided (and every
    layer's conv1x1c columns multiplied) so that ``c_up / β`` lies inside every
    ``layer{l}/input`` range.

    One ``cond`` tensor feeds one QUANTIZE per layer, and a QUANTIZE keeps real values, so one β
    serves all layers: the smallest that fits the calibrated ``cond_range`` (lo, hi) of the
    sample-rate features into the narrowest layer.  β < 1 stretches small features over the
    range (resolution); 1 for all-zero features.
    """
    lo_c, hi_c = cond_range
    beta = 0.0
    for l in range(config.n_layers):
        lo, hi = plan[f"layer{l:02d}/input"].range
        if hi_c > 0:
            beta = max(beta, hi_c / hi) if hi > 0 else np.inf
        if lo_c < 0:
            beta = max(beta, lo_c / lo) if lo < 0 else np.inf
        if not np.isfinite(beta):
            raise ConversionError(f"layer {l}: input range {lo:.3g}…{hi:.3g} cannot hold the "
                                  "conditioning features (one sign only)")
    return float(beta) if beta > 0 else 1.0
