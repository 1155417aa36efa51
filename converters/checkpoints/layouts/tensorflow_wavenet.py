"""ibab/tensorflow-wavenet variables (an ``.npz`` of the TF checkpoint's variables).

Names after stripping the ``wavenet/`` scope and a ``:0`` suffix (TF conv filters are
``[width, in, out]``, already our x @ W orientation; tap ``j`` acts on ``x[t-(w-1-j)·d]``)::

    causal_layer/filter                   [w, 256, R]    (w = filter_width for one-hot input)
    dilated_stack/layer{i}/filter, gate   [k, R, G]
    dilated_stack/layer{i}/dense          [1, G, R]      residual (no scaling)
    dilated_stack/layer{i}/skip           [1, G, S]
    dilated_stack/layer{i}/gc_filter, gc_gate [1, C, G]  (global conditioning)
    postprocessing/postprocess1           [1, S, E]      (E = S in the peer)
    postprocessing/postprocess2           [1, E, 256]
    embeddings/gc_embedding               [n, C]

Biases (``use_biases``): the peer's ``create_bias_variable`` passes its name where ``tf.Variable``
expects ``trainable``, so in real checkpoints they are unnamed, ``Variable``, ``Variable_1``, …
in creation order within their scope (layer: filter, gate, dense, skip; postprocessing: 1, 2).
The intended names are accepted too (``filter_bias``, ``gate_bias``, ``dense_bias``,
``slip_bias`` (sic) or ``skip_bias``, ``postprocess1_bias``, ``postprocess2_bias``).
Optimizer slots (``…/Adam``, ``…/Adam_1``, ``beta1_power`` …), ``global_step`` and the
``state_buffer``/``pointer`` variables of its 2016 fast generator are ignored.

Dilations are not in the variables: config (``dilations`` of its ``wavenet_params.json``) or the
published default ``[1 … 512] × 5`` when there are 50 layers.  Refused: scalar input
(``causal_layer/filter`` with one input channel), global conditioning by external vectors
(``gc_filter`` without ``embeddings/gc_embedding``).  Mu-law: ``mulaw="tensorflow-wavenet"``.
"""

from __future__ import annotations

import numpy as np

from ._base import Context, contiguous_count, dilation_pattern, layer_indices

NAME = "tensorflow-wavenet"
MULAW = "tensorflow-wavenet"
NATIVE_KEYS = ("filter_width", "sample_rate", "dilations", "residual_channels",
               "dilation_channels", "quantization_channels", "skip_channels", "use_biases",
               "scalar_input", "initial_filter_width", "batch_size", "histograms",
               "global_condition_channels", "global_condition_cardinality")
_OPT_SUFFIXES = ("/Adam", "/Adam_1", "/Momentum", "/RMSProp", "/RMSProp_1",
                 "/ExponentialMovingAverage")
_OPT_NAMES = ("beta1_power", "beta2_power", "global_step")


def normalize_name(name: str) -> str:
    """Strip a ``:0`` suffix and the ``wavenet/`` scope."""
    if name.endswith(":0"):
        name = name[:-2]
    while name.startswith("wavenet/"):
        name = name[len("wavenet/"):]
    return name


def score(keys) -> int:
    keys = {normalize_name(k) for k in keys}
    s = 2 * ("causal_layer/filter" in keys)
    s += 2 * any(k.startswith("dilated_stack/layer") for k in keys)
    s += ("postprocessing/postprocess1" in keys) + ("postprocessing/postprocess2" in keys)
    return s


def _bias(ctx: Context, scope: str, names: tuple, position: int, n: int):
    """Bias of ``scope`` by intended name, or the ``position``-th unnamed ``Variable``."""
    for nm in names:
        if ctx.has(scope + nm):
            return ctx.get(scope + nm, (n,)), True
    pos = scope + ("Variable" if position == 0 else f"Variable_{position}")
    if ctx.has(pos):
        return ctx.get(pos, (n,)), True
    return np.zeros(n), False


def convert(ctx: Context):
    keys = list(ctx.tensors)
    ignored = []
    for k in keys:
        last = k.split("/")[-1]
        if (k.endswith(_OPT_SUFFIXES) or last in _OPT_NAMES or last == "pointer"
                or last.startswith("state_buffer")):
            ctx.ignore(k)
            ignored.append(k)
    if ignored:
        ctx.notes.append(f"ignored {len(ignored)} optimizer / generator-state variable(s), "
                         f"e.g. {ignored[0]}")
    L = contiguous_count(ctx, layer_indices(keys, "dilated_stack/layer"), "dilated_stack layers")
    w, Q, R = ctx.shape("causal_layer/filter")
    if Q == 1:
        ctx.fail("scalar-input model (causal_layer/filter has 1 input channel): only one-hot "
                 "256-class input is supported")
    k, R2, G = ctx.shape("dilated_stack/layer0/filter")
    if R2 != R:
        ctx.fail(f"dilated_stack/layer0/filter takes {R2} channels but causal_layer gives {R}")
    S = ctx.shape("dilated_stack/layer0/skip")[2]
    S2, E = ctx.shape("postprocessing/postprocess1")[1:]
    if S2 != S:
        ctx.fail(f"postprocess1 takes {S2} channels but the skips have {S}")
    ctx.infer("quantization_channels", Q, "causal_layer/filter in-channels")
    ctx.infer("residual_channels", R, "causal_layer/filter out-channels")
    ctx.infer("initial_filter_width", w, "causal_layer/filter width")
    ctx.infer("kernel_size", k, "dilated_stack/layer0/filter width")
    ctx.infer("dilation_channels", G, "dilated_stack/layer0/filter out-channels")
    ctx.infer("skip_channels", S, "dilated_stack/layer0/skip out-channels")
    ctx.infer("end_channels", E, "postprocessing/postprocess1 out-channels")
    nat = ctx.native
    if nat.get("scalar_input"):
        ctx.fail("config scalar_input=true: only one-hot input models are supported")
    for nk, v in (("filter_width", k), ("residual_channels", R), ("dilation_channels", G),
                  ("skip_channels", S), ("quantization_channels", Q)):
        if nk in nat and int(nat[nk]) != v:
            ctx.fail(f"config {nk}={nat[nk]} but the checkpoint has {v}")
    if "initial_filter_width" in nat:
        ctx.notes.append(f"config initial_filter_width={nat['initial_filter_width']} ignored: "
                         "the peer uses it only for scalar input; one-hot models use "
                         f"filter_width ({w})")

    gc = ctx.has("dilated_stack/layer0/gc_filter") or ctx.has("dilated_stack/layer0/gc_gate")
    C = n = 0
    if gc:
        if not ctx.has("embeddings/gc_embedding"):
            ctx.fail("global conditioning by external vectors (gc_filter without "
                     "embeddings/gc_embedding) is not supported")
        n, C = ctx.shape("embeddings/gc_embedding")
        ctx.infer("gc_cardinality", n, "embeddings/gc_embedding rows")
        ctx.infer("gc_channels", C, "embeddings/gc_embedding columns")
    elif ctx.has("embeddings/gc_embedding"):
        ctx.fail("embeddings/gc_embedding present but no gc_filter/gc_gate in the layers")
    else:
        ctx.infer("gc_cardinality", 0, "no embeddings/gc_embedding")

    W = {"initial/table": ctx.get("causal_layer/filter", (w, Q, R)), "initial/bias": np.zeros(R)}
    any_b = False
    for l in range(L):
        s, p = f"dilated_stack/layer{l}/", f"layers/{l}/"
        W[p + "filter/w"] = ctx.get(s + "filter", (k, R, G))
        W[p + "gate/w"] = ctx.get(s + "gate", (k, R, G))
        W[p + "residual/w"] = ctx.get(s + "dense", (1, G, R))[0]
        W[p + "skip/w"] = ctx.get(s + "skip", (1, G, S))[0]
        if gc:
            W[p + "gc_filter/w"] = ctx.get(s + "gc_filter", (1, C, G))[0]
            W[p + "gc_gate/w"] = ctx.get(s + "gc_gate", (1, C, G))[0]
        for pos, (ours, names, size) in enumerate((
                ("filter/b", ("filter_bias",), G), ("gate/b", ("gate_bias",), G),
                ("residual/b", ("dense_bias",), R), ("skip/b", ("slip_bias", "skip_bias"), S))):
            W[p + ours], has = _bias(ctx, s, names, pos, size)
            any_b |= has
    if gc:
        W["gc/embedding"] = ctx.get("embeddings/gc_embedding", (n, C))
    W["end1/w"] = ctx.get("postprocessing/postprocess1", (1, S, E))[0]
    W["end2/w"] = ctx.get("postprocessing/postprocess2", (1, E, Q))[0]
    W["end1/b"], has = _bias(ctx, "postprocessing/", ("postprocess1_bias",), 0, E)
    any_b |= has
    W["end2/b"], has = _bias(ctx, "postprocessing/", ("postprocess2_bias",), 1, Q)
    any_b |= has
    ctx.infer("use_biases", bool(any_b), "bias variables present" if any_b else
              "no bias variables")
    if "use_biases" in nat and bool(nat["use_biases"]) != bool(any_b):
        ctx.fail(f"config use_biases={nat['use_biases']} but bias variables are "
                 f"{'present' if any_b else 'absent'}")
    ctx.check_all_used()

    if "dilations" in ctx.overrides:
        dil = tuple(ctx.overrides["dilations"])
        ctx.assumed["dilations"] = {"value": list(dil), "from": "config"}
    elif L == 50:
        dil = dilation_pattern(10, 5)
        ctx.assumed["dilations"] = {"value": list(dil),
                                    "from": "tensorflow-wavenet wavenet_params.json default "
                                            "[1 … 512] × 5"}
    else:
        ctx.fail(f"{L} layers: dilations are not in the variables; give them with --config "
                 "(the model's wavenet_params.json, or JSON with \"dilations\")")
    if len(dil) != L:
        ctx.fail(f"config gives {len(dil)} dilations for {L} layers")
    values = dict(dilations=dil, kernel_size=k, residual_channels=R, dilation_channels=G,
                  skip_channels=S, end_channels=E, quantization_channels=Q,
                  initial_filter_width=w, use_biases=bool(any_b), gc_cardinality=n,
                  gc_channels=C,
                  residual_scale=ctx.assume("residual_scale", 1.0,
                                            "tensorflow-wavenet: unscaled residual"),
                  skip_scale=ctx.assume("skip_scale", 1.0, "tensorflow-wavenet: unscaled skips"),
                  mulaw=ctx.assume("mulaw", MULAW, "tensorflow-wavenet mu_law_encode"),
                  sample_rate=ctx.assume("sample_rate", 16000,
                                         "tensorflow-wavenet wavenet_params.json 16000 Hz"))
    return ctx.build_config(values), W
