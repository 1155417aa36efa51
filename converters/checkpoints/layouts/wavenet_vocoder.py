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
(constructor), 2 → 1).

Local conditioning: ``conv_layers.{l}.conv1x1c.*`` (2G, cin, 1) (split like ``conv``; biased
before 2019: folded into the biases) and the upsampler: ``upsample_net.conv_in.weight``
(cin, cin, 2·cin_pad+1, plain, no bias) + ``upsample_net.upsample.up_layers.{2i+1}.*`` for
ConvInUpsampleNetwork, ``upsample_net.up_layers.{2i+1}.*`` for UpsampleNetwork, each a
weight-normed Conv2d (1, 1, F, 2s+1) with a scalar g; no upsample_net = features at sample rate.
cin_pad of a plain UpsampleNetwork is not in the weights (hparams ``cin_pad``).  The hparams'
mel keys (``num_mels``, ``fft_size``, ``hop_size``, ``win_length``, ``window``, ``fmin``,
``fmax``) become the model's feature recipe.

Refused: the legacy ``upsample_conv`` (ConvTranspose2d + ReLU) upsampler, an upsampler
activation, scalar input (raw / mulaw), mixture outputs (``out_channels`` ≠ 256), global
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
               "upsample_scales", "freq_axis_kernel_size", "num_mels", "fft_size", "hop_size",
               "win_length", "window", "fmin", "fmax")
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
    legacy_up = [k for k in keys if k.startswith("upsample_conv.")]
    if legacy_up:
        ctx.fail("the legacy upsample_conv upsampler (ConvTranspose2d + ReLU, wavenet_vocoder "
                 f"before 2019) is not supported (found {legacy_up[0]}); only UpsampleNetwork / "
                 "ConvInUpsampleNetwork are")
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
    lc = _local_conditioning(ctx, keys, L, G)
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
        for on, module, n_in, name in ((gc, "conv1x1g", C, "gc"),
                                       (lc["cin_channels"], "conv1x1c", lc["cin_channels"], "cond")):
            if not on:
                continue
            wg = _weight(ctx, q + module + ".", (2 * G, n_in, 1))[:, :, 0]
            W[p + name + "_filter/w"] = np.ascontiguousarray(wg[:G].T)
            W[p + name + "_gate/w"] = np.ascontiguousarray(wg[G:].T)
            # 2018 versions biased conv1x1g / conv1x1c: the speaker term is constant, and a
            # bias is constant over time anyway: folded into the filter and gate biases
            gb, has = _bias(ctx, q + module + ".bias", 2 * G)
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
    W.update(lc.pop("weights"))
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
    values.update(lc)
    if "mel" not in ctx.overrides and values["cin_channels"]:
        values["mel"] = _mel_recipe(ctx, values)
    return ctx.build_config(values), W


# -- local conditioning ---------------------------------------------------------------------------
_NATIVE_LC = ("cin_channels", "cin_pad", "upsample_scales", "freq_axis_kernel_size")


def _weight2d(ctx: Context, prefix: str, shape) -> np.ndarray:
    """Folded Conv2d(1, 1, (F, w)) weight → (F, w): weight norm with a scalar g (norm over all)."""
    for gname, vname in ((prefix + "weight_g", prefix + "weight_v"),
                         (prefix + "parametrizations.weight.original0",
                          prefix + "parametrizations.weight.original1")):
        if ctx.has(gname) or ctx.has(vname):
            v = ctx.get(vname, shape)
            g = ctx.get(gname, (1, 1, 1, 1))
            norm = np.sqrt(np.sum(v * v))
            if norm == 0:
                ctx.fail(f"{vname} is all zero (weight norm undefined)")
            return (g * v / norm)[0, 0]
    return ctx.get(prefix + "weight", shape)[0, 0]


def _native_int(ctx, key, default=None):
    v = ctx.native.get(key, default)
    if key == "upsample_params" or v is None:
        return v
    try:
        return int(v)
    except (TypeError, ValueError):
        ctx.fail(f"config {key}={v!r} is not an integer")


def _local_conditioning(ctx: Context, keys, L: int, G: int) -> dict:
    """conv1x1c and the upsampler: WaveNetConfig values plus ``weights`` (canonical names).

    What the weights tell: cin_channels (conv1x1c in-channels), the upsampler kind (conv_in
    present or not), each scale s and F (kernel (F, 2s+1)), cin_pad of conv-in (kernel 2p+1).
    cin_pad of the plain upsampler is hparams-only (r9y9's train.py copies it into
    upsample_params): it must come from the config."""
    for k in _NATIVE_LC:                 # the peer's vocabulary wins over the same-named fields
        ctx.overrides.pop(k, None)
    up_keys = sorted(k for k in keys if k.startswith("upsample_net."))
    has_c = _has_module(ctx, "conv_layers.0.conv1x1c.")
    params = ctx.native.get("upsample_params") or {}
    if not isinstance(params, dict):
        ctx.fail("config upsample_params must be an object")
    act = params.get("upsample_activation", "none")
    if act not in (None, "none"):
        ctx.fail(f"config upsample_activation={act!r}: an upsampler activation is not supported "
                 "(only the linear upsampler, r9y9's default)")
    if params.get("mode", "nearest") != "nearest":
        ctx.fail(f"config upsample_params mode={params['mode']!r}: only nearest stretching is "
                 "supported")
    given_cin = _native_int(ctx, "cin_channels")
    if not has_c:
        if up_keys:
            ctx.fail(f"local conditioning: upsampler weights ({up_keys[0]}) but the layers have "
                     "no conv1x1c")
        missing = [l for l in range(1, L) if _has_module(ctx, f"conv_layers.{l}.conv1x1c.")]
        if missing:
            ctx.fail(f"local conditioning: conv_layers.{missing[0]} has conv1x1c but "
                     "conv_layers.0 has none")
        if given_cin is not None and given_cin > 0:
            ctx.fail(f"config cin_channels={given_cin} (local conditioning) but the checkpoint "
                     "has no conv1x1c")
        ctx.infer("cin_channels", 0, "no conv1x1c")
        return {"cin_channels": 0, "weights": {}}
    cin = _shape(ctx, "conv_layers.0.conv1x1c.")[1]
    for l in range(L):
        if not _has_module(ctx, f"conv_layers.{l}.conv1x1c."):
            ctx.fail(f"local conditioning: conv_layers.{l} has no conv1x1c (conv_layers.0 has)")
    if given_cin is not None and given_cin != cin:
        ctx.fail(f"config cin_channels={given_cin} but the checkpoint's conv1x1c takes {cin}")
    ctx.infer("cin_channels", cin, "conv_layers.0.conv1x1c in-channels")
    weights = {}
    out = {"cin_channels": cin}
    if not up_keys:
        if ctx.native.get("upsample_conditional_features"):
            ctx.fail("config upsample_conditional_features=true but the checkpoint has no "
                     "upsample_net weights")
        ctx.infer("upsampler", "none", "no upsample_net: features given at sample rate")
        out.update(upsampler="none", upsample_scales=(), cin_pad=0, freq_axis_kernel_size=1)
        return dict(out, weights=weights)
    conv_in = ctx.has("upsample_net.conv_in.weight")
    kind = "conv-in" if conv_in else "plain"
    net = ctx.native.get("upsample_net")
    if net is not None and net != {"conv-in": "ConvInUpsampleNetwork",
                                   "plain": "UpsampleNetwork"}[kind]:
        ctx.fail(f"config upsample_net={net!r} but the checkpoint holds a "
                 f"{'ConvInUpsampleNetwork' if conv_in else 'UpsampleNetwork'}")
    ctx.infer("upsampler", kind, "upsample_net.conv_in present" if conv_in
              else "upsample_net without conv_in (UpsampleNetwork)")
    base = "upsample_net.upsample.up_layers." if conv_in else "upsample_net.up_layers."
    idx = layer_indices(keys, base)
    if idx != [2 * i + 1 for i in range(len(idx))] or not idx:
        ctx.fail(f"upsampler layers {idx} are not stretch/conv pairs (an upsampler activation "
                 "between them is not supported)")
    scales, F = [], None
    for i, j in enumerate(idx):
        shp = _shape(ctx, f"{base}{j}.")
        if len(shp) != 4 or shp[:2] != (1, 1) or shp[3] % 2 == 0:
            ctx.fail(f"{base}{j} weight has shape {shp}, expected (1, 1, F, 2s+1)")
        if F is not None and shp[2] != F:
            ctx.fail(f"{base}{j} has freq_axis_kernel_size {shp[2]}, earlier layers {F}")
        F = shp[2]
        scales.append((shp[3] - 1) // 2)
        weights[f"upsample/{i}/w"] = _weight2d(ctx, f"{base}{j}.", shp)
    given = params.get("upsample_scales", ctx.native.get("upsample_scales"))
    if given is not None and [int(v) for v in given] != scales:
        ctx.fail(f"config upsample_scales={list(given)} but the checkpoint's kernels give "
                 f"{scales}")
    gF = params.get("freq_axis_kernel_size", ctx.native.get("freq_axis_kernel_size"))
    if gF is not None and int(gF) != F:
        ctx.fail(f"config freq_axis_kernel_size={gF} but the checkpoint's kernels have {F}")
    ctx.infer("upsample_scales", tuple(scales), "upsampler kernel widths 2s+1")
    ctx.infer("freq_axis_kernel_size", F, "upsampler kernel heights")
    gpad = ctx.native.get("cin_pad", params.get("cin_pad"))
    if conv_in:
        K = ctx.shape("upsample_net.conv_in.weight")
        if len(K) != 3 or K[0] != cin or K[1] != cin or K[2] % 2 == 0:
            ctx.fail(f"upsample_net.conv_in.weight has shape {K}, expected ({cin}, {cin}, "
                     "2·cin_pad+1)")
        pad = (K[2] - 1) // 2
        if gpad is not None and int(gpad) != pad:
            ctx.fail(f"config cin_pad={gpad} but conv_in's kernel {K[2]} gives cin_pad={pad}")
        ctx.infer("cin_pad", pad, "conv_in kernel width 2·cin_pad+1")
        w = ctx.get("upsample_net.conv_in.weight", K)            # (out, in, K), no weight norm
        weights["upsample/conv_in/w"] = np.ascontiguousarray(w.transpose(2, 1, 0))
    else:
        if gpad is None:
            ctx.fail("UpsampleNetwork: cin_pad is not in the weights; give the hparams JSON "
                     "(--config) with cin_pad (0 if the features were not padded)")
        pad = int(gpad)
        ctx.assumed["cin_pad"] = {"value": pad, "from": "config cin_pad"}
    out.update(upsampler=kind, upsample_scales=tuple(scales), cin_pad=pad,
               freq_axis_kernel_size=F)
    return dict(out, weights=weights)


def _mel_recipe(ctx: Context, values: dict):
    """The hparams' feature recipe (r9y9 ``audio.logmelspectrogram``: magnitude STFT, Slaney mel,
    log10 of max(S, 1e-10)), when the hparams JSON gives it; None otherwise."""
    from wavenet_edge.mel_recipe import MelRecipe
    nat = ctx.native
    if "num_mels" not in nat or "fft_size" not in nat:
        ctx.notes.append("no feature recipe in the config (num_mels, fft_size, hop_size …): "
                         "the model takes features you compute")
        return None
    hop = nat.get("hop_size") or values.get("upsample_scales") and int(np.prod(
        values["upsample_scales"]))
    win = nat.get("win_length", -1)
    if win is None or int(win) <= 0:
        win = nat["fft_size"]
    try:
        rec = MelRecipe(n_mels=int(nat["num_mels"]), n_fft=int(nat["fft_size"]),
                        hop_length=int(hop), win_length=int(win),
                        window=nat.get("window", "hann"), fmin=float(nat.get("fmin", 0.0)),
                        fmax=None if nat.get("fmax") is None else float(nat["fmax"]),
                        center=True, pad_mode="reflect", power=1.0, compression="log10",
                        floor=1e-10)
    except Exception as e:            # ConfigError from the recipe's validation
        ctx.fail(f"config feature recipe: {e}")
    ctx.assumed["mel"] = {"value": rec.to_dict(), "from": "config num_mels/fft_size/hop_size/"
                          "win_length/window/fmin/fmax + r9y9 logmelspectrogram (normalisation "
                          "by mean/var statistics is not in the hparams: none)"}
    return rec
