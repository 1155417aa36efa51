"""Emit the int8 step graph (``docs/step-graph.md``, normative) as ``.tflite`` bytes.

Input: a canonical float model (:func:`converters.canonical.canonicalize`) and the activation plan
(:func:`converters.quantize.activation_plan`).  Weights and biases are quantized here (per output
channel int8, int32 biases); the graph is assembled with
:class:`converters.tflite_writer.GraphBuilder` and carries the delay-line contract as
``Model.metadata["wavenet_edge"]`` (UTF-8 JSON).
"""

from __future__ import annotations

import json

import numpy as np

from wavenet_edge import __version__
from wavenet_edge.contract import FORMAT_VERSION, METADATA_NAME
from wavenet_edge.errors import ConversionError
from wavenet_edge.float_model import FloatWaveNet
from wavenet_edge.graph_spec import MAX_CONCAT_INPUTS, concat_tree

from .frame_graph import METADATA_NAME as FRAMES_METADATA_NAME
from .frame_graph import FramePlan, build_frame_graph
from .quantize import QParams, quantize_activation, quantize_bias, quantize_weights

__all__ = ["METADATA_NAME", "FORMAT_VERSION", "MAX_CONCAT_INPUTS", "delay_lines", "metadata",
           "speaker_alphas", "build_step_graph"]

# TFLM's CONCATENATION kernel accepts at most 10 inputs per operator


def delay_lines(config) -> list:
    """The delay-line contract in contract order: initial taps j = 0…w-2, then each layer's
    reads m = k-1 … 1 (the tap order).  Items: ``{"read", "write", "delay"}`` (delay in steps)."""
    w, k = config.initial_filter_width, config.kernel_size
    out = []
    for j in range(w - 1):
        out.append({"read": f"initial/contrib{j}@{w - 1 - j}", "write": f"initial/contrib{j}",
                    "delay": w - 1 - j})
    for l, d in enumerate(config.dilations):
        for m in range(k - 1, 0, -1):
            out.append({"read": f"layer{l:02d}/input@{m * d}", "write": f"layer{l:02d}/input",
                        "delay": m * d})
    return out


def metadata(config, *, calibration: dict | None = None, cond_input: dict | None = None) -> dict:
    """The ``wavenet_edge`` metadata object (see the spec's delay-line contract); ``cond_input``
    (locally conditioned models only) is added after ``speaker_input``."""
    meta = {
        "format_version": FORMAT_VERSION,
        "producer": f"wavenet-edge {__version__}",
        "config": config.to_dict(),
        "sample_rate": int(config.sample_rate),
        "mulaw": {"convention": config.mulaw, "mu": int(config.quantization_channels) - 1},
        "sample_input": {"name": "sample", "encoding": "class_index", "dtype": "int32"},
        "speaker_input": ({"name": "speaker", "cardinality": int(config.gc_cardinality)}
                          if config.has_gc else None),
        "outputs": {"probabilities": "probs", "logits": "logits"},
        "delay_lines": delay_lines(config),
        "calibration": dict(calibration or {}),
    }
    if cond_input is not None:
        # after speaker_input; unconditioned models keep their metadata byte for byte
        items = list(meta.items())
        at = [k for k, _ in items].index("speaker_input") + 1
        meta = dict(items[:at] + [("cond_input", cond_input)] + items[at:])
    return meta


def cond_input_section(config, cond_qp, features_qp: QParams, frames_meta: dict | None) -> dict:
    """The contract's ``cond_input`` object (docs/step-graph.md, "Contract additions").

    ``cond_qp``: the ``cond`` tensor's :class:`~converters.quantize.CondQParams` (it holds
    ``c_up / beta``); ``features_qp``: how the host quantizes the model-ready float features;
    ``frames_meta``: the frame graph's own contract (None without an upsampler)."""
    return {
        "name": "cond", "channels": int(config.cin_channels), "hop": int(config.hop),
        "cin_pad": int(config.cin_pad), "upsampler": config.upsampler,
        "beta": float(cond_qp.beta),
        "features": {"scale": float(features_qp.scale), "zero_point": int(features_qp.zero_point),
                     "mel": None if config.mel is None else config.mel.to_dict()},
        "frame_graph": None if frames_meta is None else FRAMES_METADATA_NAME,
        "block_delay": None if frames_meta is None else int(frames_meta["block_delay"]),
    }


def speaker_alphas(model: FloatWaveNet, plan: dict) -> list:
    """Per layer ``α_l > 0`` with ``embedding / α_l`` inside ``layer{l}/input``'s int8 range.

    The speaker vector is concatenated with the layer input, so it must share its quantization;
    dividing the table by α_l (and multiplying the gc weights by α_l) makes it fit.
    """
    emb = model.weights["gc/embedding"]
    out = []
    for l in range(model.config.n_layers):
        lo, hi = plan[f"layer{l:02d}/input"].range
        a = 0.0
        if emb.max() > 0:
            a = max(a, float(emb.max()) / hi) if hi > 0 else np.inf
        if emb.min() < 0:
            a = max(a, float(emb.min()) / lo) if lo < 0 else np.inf
        if not np.isfinite(a):
            raise ConversionError(f"layer {l}: input range {lo:.3g}…{hi:.3g} cannot hold the "
                                  "speaker embedding")
        out.append(a if a > 0 else 1.0)
    return out


class _Emitter:
    """Small helper around GraphBuilder: named activations from the plan, quantized constants."""

    def __init__(self, builder, plan: dict):
        self.b = builder
        self.plan = plan
        self.ids = {}

    def act(self, name, shape, qp: QParams | None = None):
        qp = qp or self.plan[name]
        t = self.b.add_tensor(name, list(shape), np.int8, scale=[qp.scale],
                              zero_point=[qp.zero_point])
        self.ids[name] = t
        return t

    def int32(self, name, shape, data=None):
        t = self.b.add_tensor(name, list(shape), np.int32,
                              data=None if data is None else np.asarray(data, np.int32))
        self.ids[name] = t
        return t

    def table(self, name, values, qp: QParams):
        q = quantize_activation(values, qp)
        t = self.b.add_tensor(name, list(q.shape), np.int8, data=q, scale=[qp.scale],
                              zero_point=[qp.zero_point])
        self.ids[name] = t
        return t

    def fc_weights(self, prefix, w_out_in, b, input_qp: QParams):
        """Quantized FC weights [out, in] and bias; returns (weights id, bias id)."""
        q, ws = quantize_weights(w_out_in)
        tw = self.b.add_tensor(prefix + "/weights", list(q.shape), np.int8, data=q,
                               scale=ws, zero_point=np.zeros(len(ws), np.int64),
                               quantized_dimension=0)
        bq, bs = quantize_bias(b, input_qp.scale, ws)
        tb = self.b.add_tensor(prefix + "/bias", [len(bq)], np.int32, data=bq, scale=bs,
                               zero_point=np.zeros(len(bs), np.int64), quantized_dimension=0)
        return tw, tb

    def concat_tree(self, prefix, items, final_name, qp: QParams):
        """CONCATENATION along axis 1 with ≤ MAX_CONCAT_INPUTS inputs per operator.

        ``items``: ``(tensor id, width)`` pairs (each tensor [1, width], all quantized by ``qp``);
        intermediates are ``{prefix}concat{i}``, i = 0, 1, … in creation order.
        Returns the id of ``final_name`` ([1, Σ width]).
        """
        counter = [0]

        def merge(chunk, final):
            n = sum(c[1] for c in chunk)
            if final:
                name = final_name
            else:
                name = f"{prefix}concat{counter[0]}"
                counter[0] += 1
            t = self.act(name, [1, n], qp)
            self.b.add_operator("CONCATENATION", [c[0] for c in chunk], [t], axis=1,
                                fused_activation_function="NONE")
            return (t, n)

        return concat_tree(items, merge)[0]

def build_step_graph(model: FloatWaveNet, plan: dict, *, calibration: dict | None = None,
                     description: str = "wavenet-edge int8 step graph",
                     frame_plan: FramePlan | None = None) -> bytes:
    """The ``.tflite`` flatbuffer of the step graph for canonical ``model`` quantized by ``plan``.

    ``plan``: ``{tensor name: QParams}`` for every activation (``activation_plan``).
    ``calibration``: ``{"method", "audio", …}`` recorded in the metadata.
    ``frame_plan``: locally conditioned models with an upsampler: the frame graph's feature and
    stage quantization (:func:`converters.frame_graph.frame_plan`; its block quantization is
    replaced by ``plan["cond"]``, the bytes the host copies into ``cond``); the frame graph is
    stored in ``Model.metadata["wavenet_edge_frames"]``.
    """
    from .tflite_writer import GraphBuilder

    cfg, W = model.config, model.weights
    if cfg.residual_scale != 1.0 or cfg.skip_scale != 1.0:
        raise ConversionError("export needs the canonical model (residual_scale = skip_scale = 1)")
    R, G, S, E, Q = (cfg.residual_channels, cfg.dilation_channels, cfg.skip_channels,
                     cfg.end_channels, cfg.quantization_channels)
    L, k, w = cfg.n_layers, cfg.kernel_size, cfg.initial_filter_width
    C = cfg.gc_channels
    b = GraphBuilder()
    em = _Emitter(b, plan)

    # graph inputs: sample, speaker, then every delay-line read in contract order
    sample = em.int32("sample", [1])
    speaker = em.int32("speaker", [1]) if cfg.has_gc else None
    cond = em.act("cond", [1, cfg.cin_channels]) if cfg.has_cond else None
    lines = delay_lines(cfg)
    reads = [em.act(dl["read"], [1, R]) for dl in lines]

    # -- initial causal layer --------------------------------------------------------------------
    table = W["initial/table"]
    if w == 1:
        t_tab = em.table("initial/table", table[0] + W["initial/bias"], plan["layer00/input"])
        h = em.act("layer00/input", [1, R])
        b.add_operator("GATHER", [t_tab, sample], [h], axis=0)
    else:
        cq = plan["initial/contrib0"]
        contrib = []
        for j in range(w):
            t_tab = em.table(f"initial/table{j}", table[j], cq)
            t = em.act(f"initial/contrib{j}", [1, R])
            b.add_operator("GATHER", [t_tab, sample], [t], axis=0)
            contrib.append(t)
        taps_in = [em.ids[f"initial/contrib{j}@{w - 1 - j}"] for j in range(w - 1)] + [contrib[-1]]
        taps = em.concat_tree("initial/", [(t, R) for t in taps_in], "initial/taps", cq)
        summing = np.zeros((R, w * R))
        for j in range(w):
            summing[np.arange(R), j * R + np.arange(R)] = 1.0
        tw, tb = em.fc_weights("initial/sum", summing, W["initial/bias"], cq)
        h = em.act("layer00/input", [1, R])
        b.add_operator("FULLY_CONNECTED", [taps, tw, tb], [h], fused_activation_function="NONE",
                       weights_format="DEFAULT", keep_num_dims=False)

    # -- dilated layers ----------------------------------------------------------------------------
    alphas = speaker_alphas(model, plan) if cfg.has_gc else None
    gated = []
    for l, d in enumerate(cfg.dilations):
        p, pw = f"layer{l:02d}/", f"layers/{l}/"
        in_qp = plan[p + "input"]
        taps_in = [em.ids[f"{p}input@{m * d}"] for m in range(k - 1, 0, -1)] + [h]
        wf = [W[pw + "filter/w"][j] for j in range(k)]     # each (R, G), x @ W orientation
        wg = [W[pw + "gate/w"][j] for j in range(k)]
        if cfg.has_gc:
            t_spk_tab = em.table(p + "speaker_table", W["gc/embedding"] / alphas[l], in_qp)
            t_spk = em.act(p + "speaker", [1, C])
            b.add_operator("GATHER", [t_spk_tab, speaker], [t_spk], axis=0)
            taps_in.append(t_spk)
            wf.append(alphas[l] * W[pw + "gc_filter/w"])
            wg.append(alphas[l] * W[pw + "gc_gate/w"])
        if cfg.has_cond:
            # into this layer's input quantization (a CONCATENATION needs one); cond holds
            # c_up / beta, so the conv1x1c columns carry beta
            t_cond = em.act(p + "cond", [1, cfg.cin_channels])
            b.add_operator("QUANTIZE", [cond], [t_cond])
            taps_in.append(t_cond)
            beta = plan["cond"].beta
            wf.append(beta * W[pw + "cond_filter/w"])
            wg.append(beta * W[pw + "cond_gate/w"])
        widths = [R] * k + ([C] if cfg.has_gc else []) + ([cfg.cin_channels] if cfg.has_cond else [])
        taps = em.concat_tree(p, list(zip(taps_in, widths)), p + "taps", in_qp)
        outs = {}
        for part, ws in (("filter", wf), ("gate", wg)):
            tw, tb = em.fc_weights(p + part, np.concatenate(ws, axis=0).T, W[pw + part + "/b"],
                                   in_qp)
            outs[part] = em.act(p + part, [1, G])
            b.add_operator("FULLY_CONNECTED", [taps, tw, tb], [outs[part]],
                           fused_activation_function="NONE", weights_format="DEFAULT",
                           keep_num_dims=False)
        t_tanh = em.act(p + "filter_tanh", [1, G])
        b.add_operator("TANH", [outs["filter"]], [t_tanh])
        t_sig = em.act(p + "gate_sigmoid", [1, G])
        b.add_operator("LOGISTIC", [outs["gate"]], [t_sig])
        t_a = em.act(p + "gated", [1, G])
        b.add_operator("MUL", [t_tanh, t_sig], [t_a], fused_activation_function="NONE")
        gated.append(t_a)
        if l < L - 1:
            tw, tb = em.fc_weights(p + "residual", W[pw + "residual/w"].T, W[pw + "residual/b"],
                                   plan[p + "gated"])
            t_res = em.act(p + "residual", [1, R])
            b.add_operator("FULLY_CONNECTED", [t_a, tw, tb], [t_res],
                           fused_activation_function="NONE", weights_format="DEFAULT",
                           keep_num_dims=False)
            h_next = em.act(f"layer{l + 1:02d}/input", [1, R])
            b.add_operator("ADD", [h, t_res], [h_next], fused_activation_function="NONE")
            h = h_next

    # -- skip sum and output stack -----------------------------------------------------------------
    g_qp = plan["skip/gated_all"]
    if L == 1:
        gated_all = gated[0]
    else:
        gated_all = em.concat_tree("skip/", [(t, G) for t in gated], "skip/gated_all", g_qp)
    w_skip = np.concatenate([W[f"layers/{l}/skip/w"] for l in range(L)], axis=0).T   # [S, L·G]
    b_skip = np.sum([W[f"layers/{l}/skip/b"] for l in range(L)], axis=0)
    tw, tb = em.fc_weights("skip", w_skip, b_skip, g_qp)
    t_s = em.act("skip/relu", [1, S])
    b.add_operator("FULLY_CONNECTED", [gated_all, tw, tb], [t_s], fused_activation_function="RELU",
                   weights_format="DEFAULT", keep_num_dims=False)
    tw, tb = em.fc_weights("end", W["end1/w"].T, W["end1/b"], plan["skip/relu"])
    t_e = em.act("end/hidden", [1, E])
    b.add_operator("FULLY_CONNECTED", [t_s, tw, tb], [t_e], fused_activation_function="RELU",
                   weights_format="DEFAULT", keep_num_dims=False)
    tw, tb = em.fc_weights("logits", W["end2/w"].T, W["end2/b"], plan["end/hidden"])
    t_logits = em.act("logits", [1, Q])
    b.add_operator("FULLY_CONNECTED", [t_e, tw, tb], [t_logits], fused_activation_function="NONE",
                   weights_format="DEFAULT", keep_num_dims=False)
    t_probs = em.act("probs", [1, Q])
    b.add_operator("SOFTMAX", [t_logits], [t_probs], beta=1.0)

    inputs = ([sample] + ([speaker] if speaker is not None else [])
              + ([cond] if cond is not None else []) + reads)
    writes = []
    for dl in lines:
        if dl["write"] not in writes:
            writes.append(dl["write"])
    outputs = [t_probs, t_logits] + [em.ids[name] for name in writes]
    b.set_inputs(inputs)
    b.set_outputs(outputs)
    cond_meta = None
    if cfg.has_cond:
        cq = plan["cond"]
        frames_meta = None
        if cfg.upsampler != "none":
            if frame_plan is None:
                raise ConversionError("a model with an upsampler needs the frame graph's "
                                      "quantization (frame_plan)")
            fplan = FramePlan(frame_plan.features, frame_plan.stage, QParams(cq.scale,
                                                                             cq.zero_point))
            frames = build_frame_graph(model, fplan, beta=cq.beta)
            from wavenet_edge.tflite_file import read_tflite
            frames_meta = json.loads(read_tflite(frames).metadata[FRAMES_METADATA_NAME])
            b.add_metadata(FRAMES_METADATA_NAME, frames)
            fq = frame_plan.features
        else:
            # features at sample rate go straight into cond: the host quantizes x with
            # (beta·scale, zero point), which is c_up / beta at cond's own quantization
            fq = QParams(float(np.float32(cq.beta * cq.scale)), cq.zero_point)
        cond_meta = cond_input_section(cfg, cq, fq, frames_meta)
    meta = metadata(cfg, calibration=calibration, cond_input=cond_meta)
    b.add_metadata(METADATA_NAME, json.dumps(meta, sort_keys=False).encode("utf-8"))
    return b.build(description=description)

