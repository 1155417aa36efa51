"""r9y9/wavenet_vocoder (``WaveNet``, input_type "mulaw-quantize") state dicts.

Every conv is weight-normalised (``nn.utils.weight_norm``): ``weight_g`` (out, 1, 1) and
``weight_v`` (out, in, k) fold to ``g · v / ‖v‖`` with the norm over (in, k) per output channel
(torch ≥ 2.1 parametrizations name them ``parametrizations.weight.original0/1``); checkpoints
made with ``weight_normalization=False`` (2018 versions) hold a plain ``weight``.  Keys::

    first_conv.*                      (R, 256, 1) + bias       1×1 on the one-hot input
    conv_layers.{l}.conv.*            (2G, R, k) + bias (2G,)  rows [:G] → tanh, [G:] → sigmoid
    conv_layers.{l}.conv1x1g.*        (2G, C, 1)               global conditioning (split alike)
    conv_layers.{l}.conv1x1_out.*     (R, G, 1) + bias         residual
    conv_layers.{l}.conv1x1_skip.*    (S, G, 1) + bias         skip
    last_conv_layers.1.*              (E, S, 1) + bias         after a ReLU
    last_conv_layers.3.*              (256, E, 1) + bias       after a ReLU
    embed_speakers.weight             (n_speakers, C)

``h[l+1] = (h[l] + conv1x1_out(a)) · √0.5``; the skip sum is multiplied by ``√(1/L)`` (since the
2019 refactor).  2018 versions combined skips as ``s = (s + skip_l)·√0.5`` per layer (``legacy``
hparam, default True then) or summed them unscaled (``legacy=False``); choose with
``layout_options: {"skip": "legacy" | "sum" | "sqrt_1_over_L"}`` or an hparams ``legacy`` key.
The legacy weights ``√0.5^(L-max(l,1))`` are folded into each layer's skip conv.

Dilations ``2**(l mod (L/stacks))``: ``stacks`` is not in the weights (config ``stacks`` or
``dilations``; defaults: 30 layers → 3 stacks (mulaw256 preset), 24 → 4 (hparams.py), 20 → 2
(constructor), 2 → 1).  Refused: local conditioning (``conv1x1c``, ``upsample_net``,
``upsample_conv``), scalar input (raw / mulaw), mixture outputs (``out_channels`` ≠ 256), global
conditioning by external vectors (``conv1x1g`` without ``embed_speakers``).
Mu-law: ``mulaw="wavenet_vocoder"`` (nnmnkwii ``mulaw_quantize``, mu = 255: the class is
``int((F(x) + 1)/2 · 255)``, truncated).
"""

from __future__ import annotations

import math

import numpy as np

from ._base import Context, contiguous_count, dilation_pattern, layer_indices

NAME = "wavenet_vocoder"
MULAW = "wavenet_vocoder"
NATIVE_KEYS = ("out_channels", "layers", "stacks", "residual_channels", "gate_channels",
               "skip_out_channels", "kernel_size", "dropout", "cin_channels", "gin_channels",
               "n_speakers", "upsample_conditional_features", "upsample_net", "upsample_params",
               "scalar_input", "use_speaker_embedding", "output_distribution", "cin_pad",
               "legacy", "weight_normalization", "input_type", "quantize_channels", "name",
               "upsample_scales", "freq_axis_kernel_size")
_DEFAULT_STACKS = {30: (3, "mulaw256 preset: 30 layers, 3 stacks"),
                   24: (4, "hparams.py default: 24 layers, 4 stacks"),
                   20: (2, "WaveNet() default: 20 layers, 2 stacks"),
                   2: (1, "demo preset: 2 layers, 1 stack")}
_SKIP_MODES = ("sqrt_1_over_L", "legacy", "sum")


def score(keys) -> int:
    keys = set(keys)
    s = 2 * any(k.startswith("first_conv.") for k in keys)
    s += 2 * any(k.startswith("last_conv_layers.") for k in keys)
    s += any(k.startswith("conv_layers.") and ".conv1x1_skip." in k for k in keys)
    s += any(k.startswith("conv_layers.") and ".conv1x1_out." in k for k in keys)
    return s


def _weight(ctx: Context, prefix: str, shape) -> np.ndarray:
    """Folded conv weight (out, in, k) of module ``prefix`` (weight norm or plain)."""
    names = [(prefix + "weight_g", prefix + "weight_v"),
             (prefix + "parametrizations.weight.original0",
              prefix + "parametrizations.weight.original1")]
    for gname, vname in names:
        if ctx.has(gname) or ctx.has(vname):
            v = ctx.get(vname, shape)
            g = ctx.get(gname, (v.shape[0], 1, 1))
            norm = np.sqrt(np.sum(v * v, axis=(1, 2), keepdims=True))
            if np.any(norm == 0):
                ctx.fail(f"{vname} has an all-zero output channel (weight norm undefined)")
            return g * v / norm
    return ctx.get(prefix + "weight", shape)


def _shape(ctx: Context, prefix: str) -> tuple:
    for n in (prefix + "weight_v", prefix + "parametrizations.weight.original1",
              prefix + "weight"):
        if ctx.has(n):
            return ctx.shape(n)
    ctx.fail(f"missing weight of {prefix.rstrip('.')}")


def _has_module(ctx: Context, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in ctx.tensors)


def _bias(ctx: Context, name: str, n: int):
    if ctx.has(name):
        return ctx.get(name, (n,)), True
    return np.zeros(n), False


def convert(ctx: Context):
    keys = list(ctx.tensors)
    for bad, why in (("conv1x1c", "local conditioning (conv1x1c)"),
                     ("upsample_net.", "local conditioning (upsample_net)"),
                     ("upsample_conv.", "local conditioning (upsample_conv)")):
        hit = [k for k in keys if bad in k.split(".") or k.startswith(bad)]
        if hit:
            ctx.fail(f"{why} is not supported: this importer takes unconditional or "
                     f"speaker-conditioned models only (found {hit[0]})")
    L = contiguous_count(ctx, layer_indices(keys, "conv_layers."), "conv_layers")
    R, Q, w = _shape(ctx, "first_conv.")
    if Q == 1:
        ctx.fail("scalar-input model (input_type raw/mulaw): only mulaw-quantize (one-hot 256 "
                 "classes) is supported")
    if w != 1:
        ctx.fail(f"first_conv has kernel width {w}, expected 1")
    G2, R2, k = _shape(ctx, "conv_layers.0.conv.")
    if R2 != R or G2 % 2:
        ctx.fail(f"conv_layers.0.conv weight {(G2, R2, k)} does not fit residual_channels={R}")
    G = G2 // 2
    S = _shape(ctx, "conv_layers.0.conv1x1_skip.")[0]
    E = _shape(ctx, "last_conv_layers.1.")[0]
    Qo = _shape(ctx, "last_conv_layers.3.")[0]
    if Qo != Q:
        ctx.fail(f"output layer has {Qo} channels for {Q} input classes (mixture-density "
                 "output? only mulaw-quantize softmax models are supported)")
    ctx.infer("quantization_channels", Q, "first_conv in-channels")
    ctx.infer("residual_channels", R, "first_conv out-channels")
    ctx.infer("dilation_channels", G, "conv_layers.0.conv out-channels / 2")
    ctx.infer("kernel_size", k, "conv_layers.0.conv width")
    ctx.infer("skip_channels", S, "conv_layers.0.conv1x1_skip out-channels")
    ctx.infer("end_channels", E, "last_conv_layers.1 out-channels")
    ctx.infer("initial_filter_width", 1, "first_conv is 1×1")
    nat = ctx.native
    for nk, v in (("residual_channels", R), ("gate_channels", 2 * G), ("skip_out_channels", S),
                  ("kernel_size", k), ("out_channels", Q), ("quantize_channels", Q)):
        if nk in nat and int(nat[nk]) != v:
            ctx.fail(f"config {nk}={nat[nk]} but the checkpoint has {v}")
    if "input_type" in nat and nat["input_type"] != "mulaw-quantize":
        ctx.fail(f"config input_type={nat['input_type']!r}: only mulaw-quantize is supported")

    gc = _has_module(ctx, "conv_layers.0.conv1x1g.")
    C = n_spk = 0
    if gc:
        if not ctx.has("embed_speakers.weight"):
            ctx.fail("global conditioning by external feature vectors (conv1x1g without "
                     "embed_speakers) is not supported")
        n_spk, C = ctx.shape("embed_speakers.weight")
        ctx.infer("gc_cardinality", n_spk, "embed_speakers.weight rows")
        ctx.infer("gc_channels", C, "embed_speakers.weight columns")
    elif ctx.has("embed_speakers.weight"):
        ctx.fail("embed_speakers.weight present but no conv1x1g in the layers")
    else:
        ctx.infer("gc_cardinality", 0, "no conv1x1g / embed_speakers")
    for nk, v in (("gin_channels", C), ("n_speakers", n_spk)):
        given = nat.get(nk)
        if given is not None and (int(given) > 0 or v > 0) and int(given) != v:
            ctx.fail(f"config {nk}={given} but the checkpoint has {v or 'no speaker embedding'}")
    if nat.get("cin_channels") is not None and int(nat["cin_channels"]) > 0:
        ctx.fail(f"config cin_channels={nat['cin_channels']} (local conditioning) but the "
                 "checkpoint has none; this importer takes unconditional models only")

    W = {}
    W["initial/table"] = np.ascontiguousarray(_weight(ctx, "first_conv.", (R, Q, 1))[:, :, 0].T)[None]
    W["initial/bias"], any_b = _bias(ctx, "first_conv.bias", R)
    for l in range(L):
        p, q = f"layers/{l}/", f"conv_layers.{l}."
        wt = _weight(ctx, q + "conv.", (2 * G, R, k))
        W[p + "filter/w"] = np.ascontiguousarray(wt[:G].transpose(2, 1, 0))
        W[p + "gate/w"] = np.ascontiguousarray(wt[G:].transpose(2, 1, 0))
        b, has = _bias(ctx, q + "conv.bias", 2 * G)
        any_b |= has
        bf, bg = b[:G].copy(), b[G:].copy()
        if gc:
            wg = _weight(ctx, q + "conv1x1g.", (2 * G, C, 1))[:, :, 0]
            W[p + "gc_filter/w"] = np.ascontiguousarray(wg[:G].T)
            W[p + "gc_gate/w"] = np.ascontiguousarray(wg[G:].T)
            # 2018 versions biased conv1x1g: a constant, folded into the gate biases
            gb, has = _bias(ctx, q + "conv1x1g.bias", 2 * G)
            bf += gb[:G]
            bg += gb[G:]
            any_b |= has
        W[p + "filter/b"], W[p + "gate/b"] = bf, bg
        W[p + "residual/w"] = np.ascontiguousarray(_weight(ctx, q + "conv1x1_out.", (R, G, 1))[:, :, 0].T)
        W[p + "residual/b"], has = _bias(ctx, q + "conv1x1_out.bias", R)
        any_b |= has
        W[p + "skip/w"] = np.ascontiguousarray(_weight(ctx, q + "conv1x1_skip.", (S, G, 1))[:, :, 0].T)
        W[p + "skip/b"], has = _bias(ctx, q + "conv1x1_skip.bias", S)
        any_b |= has
    if gc:
        W["gc/embedding"] = ctx.get("embed_speakers.weight", (n_spk, C))
    W["end1/w"] = np.ascontiguousarray(_weight(ctx, "last_conv_layers.1.", (E, S, 1))[:, :, 0].T)
    W["end1/b"], has = _bias(ctx, "last_conv_layers.1.bias", E)
    any_b |= has
    W["end2/w"] = np.ascontiguousarray(_weight(ctx, "last_conv_layers.3.", (Q, E, 1))[:, :, 0].T)
    W["end2/b"], has = _bias(ctx, "last_conv_layers.3.bias", Q)
    any_b |= has
    ctx.infer("use_biases", bool(any_b), "bias tensors present" if any_b else "no bias tensors")
    ctx.check_all_used()

    # dilations
    if "dilations" in ctx.overrides:
        dil = tuple(ctx.overrides["dilations"])
        ctx.assumed["dilations"] = {"value": list(dil), "from": "config"}
    else:
        if "stacks" in nat:
            stacks, how = int(nat["stacks"]), "config stacks"
        elif L in _DEFAULT_STACKS:
            stacks, how = _DEFAULT_STACKS[L]
        else:
            ctx.fail(f"{L} layers: the number of dilation cycles (stacks) is not in the weights; "
                     "give it with --config (JSON with \"stacks\", or \"dilations\")")
        if stacks <= 0 or L % stacks:
            ctx.fail(f"stacks={stacks} does not divide the {L} layers")
        if "layers" in nat and int(nat["layers"]) != L:
            ctx.fail(f"config layers={nat['layers']} but the checkpoint has {L}")
        dil = dilation_pattern(L // stacks, stacks)
        ctx.assumed["dilations"] = {"value": list(dil), "from": f"{how} (stacks={stacks})"}
    if len(dil) != L:
        ctx.fail(f"config gives {len(dil)} dilations for {L} layers")

    # skip combination
    mode = ctx.options.get("skip")
    how = "layout_options"
    if mode is None and "legacy" in nat:
        mode, how = ("legacy" if nat["legacy"] else "sum"), f"config legacy={nat['legacy']}"
    if mode is None:
        mode, how = "sqrt_1_over_L", "wavenet_vocoder ≥ 2019: skips × √(1/L)"
    if mode not in _SKIP_MODES:
        ctx.fail(f"layout option skip={mode!r}; expected one of {', '.join(_SKIP_MODES)}")
    ctx.assumed["skip_combination"] = {"value": mode, "from": how}
    if mode == "sqrt_1_over_L":
        skip_scale = ctx.assume("skip_scale", math.sqrt(1.0 / L), how)
    else:
        skip_scale = ctx.assume("skip_scale", 1.0, how)
        if mode == "legacy":
            for l in range(L):
                f = math.sqrt(0.5) ** (L - max(l, 1))
                W[f"layers/{l}/skip/w"] = W[f"layers/{l}/skip/w"] * f
                W[f"layers/{l}/skip/b"] = W[f"layers/{l}/skip/b"] * f
    values = dict(dilations=dil, kernel_size=k, residual_channels=R, dilation_channels=G,
                  skip_channels=S, end_channels=E, quantization_channels=Q,
                  initial_filter_width=1, use_biases=bool(any_b),
                  gc_cardinality=n_spk, gc_channels=C,
                  residual_scale=ctx.assume("residual_scale", math.sqrt(0.5),
                                            "wavenet_vocoder: (x + residual) · √0.5"),
                  skip_scale=skip_scale,
                  mulaw=ctx.assume("mulaw", MULAW, "wavenet_vocoder mulaw_quantize"),
                  sample_rate=ctx.assume("sample_rate", int(nat.get("sample_rate", 22050)),
                                         "config sample_rate" if "sample_rate" in nat else
                                         "wavenet_vocoder hparams default 22050 Hz"))
    return ctx.build_config(values), W
