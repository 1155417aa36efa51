"""vincentherrmann/pytorch-wavenet (``WaveNetModel``) state dicts and whole pickled models.

Keys (nn.Conv1d weights are ``(out, in, k)``; tap ``j`` multiplies ``h[t-(k-1-j)·d]``)::

    start_conv.weight (R, 256, 1)        [start_conv.bias (R,)]             1×1, no activation
    filter_convs.{l}.weight (G, R, k)    [filter_convs.{l}.bias (G,)]
    gate_convs.{l}.weight (G, R, k)      [gate_convs.{l}.bias (G,)]
    residual_convs.{l}.weight (R, G, 1)  [residual_convs.{l}.bias (R,)]
    skip_convs.{l}.weight (S, G, 1)      [skip_convs.{l}.bias (S,)]
    end_conv_1.weight (E, S, 1), end_conv_1.bias (E,)     (always biased)
    end_conv_2.weight (256, E, 1), end_conv_2.bias (256,)

No residual or skip scaling.  Dilations ``(1, 2, …, 2**(layers-1)) × blocks`` are not in a state
dict: they come from the pickled model's ``dilations`` attribute (whole-model files), from the
user's config (``layers``/``blocks`` or ``dilations``), from the peer's default 10 × 4 when there
are 40 layers, or from a prime layer count (one block).  Otherwise the import refuses.
Mu-law: the peer's digitize convention (``mulaw="pytorch-wavenet"``, mu = 256 classes).
"""

from __future__ import annotations

import numpy as np

from ._base import (Context, bias_or_zeros, contiguous_count, conv_1x1, dilation_pattern,
                    layer_indices)

NAME = "pytorch-wavenet"
MULAW = "pytorch-wavenet"
SIGNATURE = ("start_conv.weight", "end_conv_1.weight", "end_conv_2.weight")
NATIVE_KEYS = ("layers", "blocks", "dilation_channels", "residual_channels", "skip_channels",
               "end_channels", "classes", "output_length", "kernel_size", "dtype", "bias")
_DEFAULT_LAYERS, _DEFAULT_BLOCKS = 10, 4


def score(keys) -> int:
    """How strongly the key set says "pytorch-wavenet" (0: not at all)."""
    keys = set(keys)
    s = sum(k in keys for k in SIGNATURE)
    s += any(k.startswith("filter_convs.") for k in keys)
    s += any(k.startswith("gate_convs.") for k in keys)
    s += any(k.startswith("residual_convs.") for k in keys)
    return s


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % p for p in range(2, int(n ** 0.5) + 1))


def _dilations(ctx: Context, L: int) -> tuple:
    if "dilations" in ctx.overrides:
        d = tuple(ctx.overrides["dilations"])
        ctx.assumed["dilations"] = {"value": list(d), "from": "config"}
        return d
    nat = ctx.native
    if "layers" in nat or "blocks" in nat:
        layers, blocks = nat.get("layers"), nat.get("blocks")
        if layers is None:
            layers = L // int(blocks)
        if blocks is None:
            blocks = L // int(layers)
        layers, blocks = int(layers), int(blocks)
        if layers * blocks != L:
            ctx.fail(f"config layers={layers} × blocks={blocks} does not match the {L} "
                     "layers of the checkpoint")
        d = dilation_pattern(layers, blocks)
        ctx.assumed["dilations"] = {"value": list(d),
                                    "from": f"config layers={layers}, blocks={blocks}"}
        return d
    pickled = ctx.attrs.get("dilations")
    if isinstance(pickled, (list, tuple)) and len(pickled) == L:
        try:
            d = tuple(int(p[0]) if isinstance(p, (list, tuple)) else int(p) for p in pickled)
        except (TypeError, ValueError, IndexError):
            d = None
        if d is not None and all(v > 0 for v in d):
            ctx.inferred["dilations"] = {"value": list(d),
                                         "from": "pickled model attribute 'dilations'"}
            return d
    if L == _DEFAULT_LAYERS * _DEFAULT_BLOCKS:
        d = dilation_pattern(_DEFAULT_LAYERS, _DEFAULT_BLOCKS)
        ctx.assumed["dilations"] = {"value": list(d), "from": "pytorch-wavenet default "
                                    "layers=10, blocks=4 (40 layers)"}
        return d
    if L == 1 or _is_prime(L):
        d = dilation_pattern(L, 1)
        ctx.assumed["dilations"] = {"value": list(d), "from": f"{L} layers (prime): one block"}
        return d
    ctx.fail(f"{L} dilated layers: the layers × blocks split is ambiguous; give it with "
             "--config (JSON with \"layers\" and \"blocks\", or \"dilations\")")


def convert(ctx: Context):
    keys = list(ctx.tensors)
    L = contiguous_count(ctx, layer_indices(keys, "filter_convs."), "filter_convs layers")
    for group in ("gate_convs.", "residual_convs.", "skip_convs."):
        n = contiguous_count(ctx, layer_indices(keys, group), group.rstrip(".") + " layers")
        if n != L:
            ctx.fail(f"{L} filter_convs but {n} {group.rstrip('.')}")
    R, Q, w = ctx.shape("start_conv.weight")
    if w != 1:
        ctx.fail(f"start_conv.weight has kernel width {w}, expected 1")
    G, R2, k = ctx.shape("filter_convs.0.weight")
    S = ctx.shape("skip_convs.0.weight")[0]
    E = ctx.shape("end_conv_1.weight")[0]
    if R2 != R:
        ctx.fail(f"filter_convs.0.weight takes {R2} channels but start_conv gives {R}")
    ctx.infer("quantization_channels", Q, "start_conv.weight in-channels")
    ctx.infer("residual_channels", R, "start_conv.weight out-channels")
    ctx.infer("dilation_channels", G, "filter_convs.0.weight out-channels")
    ctx.infer("kernel_size", k, "filter_convs.0.weight width")
    ctx.infer("skip_channels", S, "skip_convs.0.weight out-channels")
    ctx.infer("end_channels", E, "end_conv_1.weight out-channels")
    ctx.infer("initial_filter_width", 1, "start_conv is 1×1")
    nat = ctx.native
    for nk, field, v in (("dilation_channels", "dilation_channels", G),
                         ("residual_channels", "residual_channels", R),
                         ("skip_channels", "skip_channels", S), ("end_channels", "end_channels", E),
                         ("kernel_size", "kernel_size", k), ("classes", "quantization_channels", Q)):
        if nk in nat and int(nat[nk]) != v:
            ctx.fail(f"config {nk}={nat[nk]} but the checkpoint has {v}")

    W = {}
    W["initial/table"] = conv_1x1(ctx, "start_conv.weight", Q, R)[None]
    W["initial/bias"], any_bias = bias_or_zeros(ctx, "start_conv.bias", R)
    biased = {"start_conv": any_bias}
    for l in range(L):
        p = f"layers/{l}/"
        for ours, theirs, n_out in (("filter", "filter_convs", G), ("gate", "gate_convs", G)):
            wt = ctx.get(f"{theirs}.{l}.weight", (n_out, R, k))
            W[p + ours + "/w"] = np.ascontiguousarray(wt.transpose(2, 1, 0))
            W[p + ours + "/b"], b = bias_or_zeros(ctx, f"{theirs}.{l}.bias", n_out)
            biased[theirs] = biased.get(theirs, False) or b
        W[p + "residual/w"] = conv_1x1(ctx, f"residual_convs.{l}.weight", G, R)
        W[p + "residual/b"], b = bias_or_zeros(ctx, f"residual_convs.{l}.bias", R)
        biased["residual_convs"] = biased.get("residual_convs", False) or b
        W[p + "skip/w"] = conv_1x1(ctx, f"skip_convs.{l}.weight", G, S)
        W[p + "skip/b"], b = bias_or_zeros(ctx, f"skip_convs.{l}.bias", S)
        biased["skip_convs"] = biased.get("skip_convs", False) or b
    W["end1/w"] = conv_1x1(ctx, "end_conv_1.weight", S, E)
    W["end1/b"], b1 = bias_or_zeros(ctx, "end_conv_1.bias", E)
    W["end2/w"] = conv_1x1(ctx, "end_conv_2.weight", E, Q)
    W["end2/b"], b2 = bias_or_zeros(ctx, "end_conv_2.bias", Q)
    biased["end_convs"] = b1 or b2
    any_bias = any(biased.values())
    ctx.infer("use_biases", any_bias,
              "bias tensors present on " + (", ".join(k for k, v in biased.items() if v) or
                                            "nothing"))
    if "bias" in nat and bool(nat["bias"]) != biased.get("filter_convs", False):
        ctx.fail(f"config bias={nat['bias']} but filter_convs biases are "
                 f"{'present' if biased.get('filter_convs') else 'absent'}")
    ctx.check_all_used()
    dil = _dilations(ctx, L)
    if len(dil) != L:
        ctx.fail(f"config gives {len(dil)} dilations for {L} layers")
    values = dict(dilations=dil, kernel_size=k, residual_channels=R, dilation_channels=G,
                  skip_channels=S, end_channels=E, quantization_channels=Q,
                  initial_filter_width=1, use_biases=any_bias,
                  residual_scale=ctx.assume("residual_scale", 1.0, "pytorch-wavenet: unscaled"),
                  skip_scale=ctx.assume("skip_scale", 1.0, "pytorch-wavenet: unscaled"),
                  mulaw=ctx.assume("mulaw", MULAW, "pytorch-wavenet mu-law (digitize)"),
                  sample_rate=ctx.assume("sample_rate", 16000,
                                         "pytorch-wavenet default sampling rate 16000 Hz"))
    return ctx.build_config(values), W
