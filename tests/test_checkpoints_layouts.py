"""Layout mappers on synthetic checkpoints: a random canonical model is written in each peer's
layout (the inverse mapping, written out here), imported back, and must give the same logits;
plus the inference report, config overrides, and every kind of bad input.

The peers' own semantics are pinned by the real fixtures in ``test_checkpoints_peers.py``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from converters.checkpoints import (import_checkpoint, inspect_checkpoint, load_checkpoint,
                                    save_safetensors)
from converters.checkpoints.safetensors_io import write_safetensors
from test_checkpoints_torchzip import Global, Obj, state_dict_obj, torch_zip, write
from wavenet_edge.config import WaveNetConfig
from wavenet_edge.errors import CheckpointError, ConfigError
from wavenet_edge.float_model import FloatWaveNet


def _model(seed=0, **kw) -> FloatWaveNet:
    base = dict(dilations=(1, 2, 4, 1, 2, 4), kernel_size=2, residual_channels=6,
                dilation_channels=5, skip_channels=7, end_channels=9)
    base.update(kw)
    m = FloatWaveNet.initialize(WaveNetConfig(**base), seed=seed)
    rng = np.random.default_rng(seed + 1)
    for k in m.weights:            # non-zero biases, so that a dropped bias would show
        if k.endswith("/b") or k == "initial/bias":
            m.weights[k] = rng.normal(0, 0.3, m.weights[k].shape)
    return m


def _codes(n=80, seed=3):
    return np.random.default_rng(seed).integers(0, 256, n)


# -- inverse mappings (canonical → peer) ------------------------------------------------------
def to_pytorch_wavenet(m: FloatWaveNet, *, bias=True) -> dict:
    W, cfg = m.weights, m.config
    c1 = lambda w: w.T[:, :, None]                                   # (in,out) → (out,in,1)
    sd = {"start_conv.weight": c1(W["initial/table"][0])}
    if bias:
        sd["start_conv.bias"] = W["initial/bias"]
    for l in range(cfg.n_layers):
        p = f"layers/{l}/"
        sd[f"filter_convs.{l}.weight"] = W[p + "filter/w"].transpose(2, 1, 0)
        sd[f"gate_convs.{l}.weight"] = W[p + "gate/w"].transpose(2, 1, 0)
        sd[f"residual_convs.{l}.weight"] = c1(W[p + "residual/w"])
        sd[f"skip_convs.{l}.weight"] = c1(W[p + "skip/w"])
        if bias:
            sd[f"filter_convs.{l}.bias"] = W[p + "filter/b"]
            sd[f"gate_convs.{l}.bias"] = W[p + "gate/b"]
            sd[f"residual_convs.{l}.bias"] = W[p + "residual/b"]
            sd[f"skip_convs.{l}.bias"] = W[p + "skip/b"]
    sd.update({"end_conv_1.weight": c1(W["end1/w"]), "end_conv_1.bias": W["end1/b"],
               "end_conv_2.weight": c1(W["end2/w"]), "end_conv_2.bias": W["end2/b"]})
    return {k: np.asarray(v, "<f4") for k, v in sd.items()}


def _wn(sd, prefix, w, rng, style="old"):
    """Store ``w`` (out,in,k) weight-normalised: v = w·c (c > 0 per output), g = ‖w‖."""
    c = rng.uniform(0.5, 2.0, (w.shape[0], 1, 1))
    v = w * c
    g = np.sqrt(np.sum(w * w, axis=(1, 2), keepdims=True))
    if style == "old":
        sd[prefix + "weight_g"], sd[prefix + "weight_v"] = g, v
    elif style == "new":
        sd[prefix + "parametrizations.weight.original0"] = g
        sd[prefix + "parametrizations.weight.original1"] = v
    else:
        sd[prefix + "weight"] = w


def to_wavenet_vocoder(m: FloatWaveNet, *, style="old", seed=0) -> dict:
    W, cfg = m.weights, m.config
    rng = np.random.default_rng(seed)
    c1 = lambda w: w.T[:, :, None]
    sd = {}
    _wn(sd, "first_conv.", c1(W["initial/table"][0]), rng, style)
    sd["first_conv.bias"] = W["initial/bias"]
    for l in range(cfg.n_layers):
        p, q = f"layers/{l}/", f"conv_layers.{l}."
        conv = np.concatenate([W[p + "filter/w"], W[p + "gate/w"]], axis=2).transpose(2, 1, 0)
        _wn(sd, q + "conv.", conv, rng, style)
        sd[q + "conv.bias"] = np.concatenate([W[p + "filter/b"], W[p + "gate/b"]])
        if cfg.has_gc:
            g = np.concatenate([W[p + "gc_filter/w"], W[p + "gc_gate/w"]], axis=1)
            _wn(sd, q + "conv1x1g.", c1(g), rng, style)
        _wn(sd, q + "conv1x1_out.", c1(W[p + "residual/w"]), rng, style)
        sd[q + "conv1x1_out.bias"] = W[p + "residual/b"]
        _wn(sd, q + "conv1x1_skip.", c1(W[p + "skip/w"]), rng, style)
        sd[q + "conv1x1_skip.bias"] = W[p + "skip/b"]
    _wn(sd, "last_conv_layers.1.", c1(W["end1/w"]), rng, style)
    sd["last_conv_layers.1.bias"] = W["end1/b"]
    _wn(sd, "last_conv_layers.3.", c1(W["end2/w"]), rng, style)
    sd["last_conv_layers.3.bias"] = W["end2/b"]
    if cfg.has_gc:
        sd["embed_speakers.weight"] = W["gc/embedding"]
    return {k: np.asarray(v, "<f4") for k, v in sd.items()}


def to_tensorflow_wavenet(m: FloatWaveNet, *, named_biases=False, prefix="wavenet/",
                          suffix=":0") -> dict:
    W, cfg = m.weights, m.config
    m.weights["initial/bias"] = np.zeros_like(W["initial/bias"])     # the peer has none
    v = {"causal_layer/filter": W["initial/table"]}
    for l in range(cfg.n_layers):
        p, s = f"layers/{l}/", f"dilated_stack/layer{l}/"
        v[s + "filter"] = W[p + "filter/w"]
        v[s + "gate"] = W[p + "gate/w"]
        v[s + "dense"] = W[p + "residual/w"][None]
        v[s + "skip"] = W[p + "skip/w"][None]
        if cfg.has_gc:
            v[s + "gc_filter"] = W[p + "gc_filter/w"][None]
            v[s + "gc_gate"] = W[p + "gc_gate/w"][None]
        names = (["filter_bias", "gate_bias", "dense_bias", "slip_bias"] if named_biases
                 else ["Variable", "Variable_1", "Variable_2", "Variable_3"])
        for n, ours in zip(names, ("filter/b", "gate/b", "residual/b", "skip/b")):
            v[s + n] = W[p + ours]
    v["postprocessing/postprocess1"] = W["end1/w"][None]
    v["postprocessing/postprocess2"] = W["end2/w"][None]
    names = (["postprocess1_bias", "postprocess2_bias"] if named_biases
             else ["Variable", "Variable_1"])
    v["postprocessing/" + names[0]] = W["end1/b"]
    v["postprocessing/" + names[1]] = W["end2/b"]
    if cfg.has_gc:
        v["embeddings/gc_embedding"] = W["gc/embedding"]
    return {prefix + k + suffix: np.asarray(a, "<f4") for k, a in v.items()}


def _f32(m: FloatWaveNet) -> FloatWaveNet:
    """``m`` with its weights rounded to float32, as a checkpoint stores them."""
    return FloatWaveNet(m.config, {k: v.astype(np.float32) for k, v in m.weights.items()})


def _close(a: FloatWaveNet, b: FloatWaveNet, speaker=None, tol=1e-9):
    x = _codes()
    err = np.abs(a.logits(x, speaker=speaker) - b.logits(x, speaker=speaker)).max()
    assert err <= tol, err


# -- round trips per layout -------------------------------------------------------------------
@pytest.mark.parametrize("k,bias", [(2, False), (3, True)])
def test_pytorch_wavenet_state_dict_and_whole_model(tmp_path, k, bias):
    m = _model(kernel_size=k)
    if not bias:
        for name in list(m.weights):
            if (name.endswith("/b") or name == "initial/bias") and not name.startswith("end"):
                m.weights[name] = np.zeros_like(m.weights[name])
    sd = to_pytorch_wavenet(m, bias=bias)
    p = write(tmp_path, "sd.pt", torch_zip(state_dict_obj(sd)))
    got, rep = import_checkpoint(p, config={"layers": 3, "blocks": 2})
    _close(got, _f32(m), tol=1e-9)
    assert got.config.mulaw == "pytorch-wavenet"
    assert rep["layout"] == "pytorch-wavenet" and rep["layout_source"] == "detected from key names"
    assert rep["inferred"]["kernel_size"]["value"] == k
    assert rep["inferred"]["residual_channels"]["value"] == 6
    assert rep["inferred"]["use_biases"]["value"] is True           # end convs always biased
    assert rep["assumed"]["dilations"]["from"].startswith("config layers=3")
    assert rep["assumed"]["mulaw"]["value"] == "pytorch-wavenet"
    # whole pickled model: the dilations come from the pickled attribute
    mods = {"start_conv": None}
    whole = Obj(Global("wavenet_model", "WaveNetModel"), {
        "_parameters": {}, "_buffers": {}, "_modules": mods,
        "layers": 3, "blocks": 2, "kernel_size": k,
        "dilations": [(1, 1), (2, 1), (4, 2), (1, 4), (2, 1), (4, 2)],
        "dtype": Global("torch", "FloatTensor")})
    from test_checkpoints_torchzip import Tensor
    groups = {}
    for name, a in sd.items():
        parts = name.split(".")
        if len(parts) == 3:
            groups.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = a
        else:
            groups.setdefault(parts[0], {})[parts[1]] = a

    def conv(params):
        return Obj(Global("torch.nn.modules.conv", "Conv1d"),
                   {"_parameters": {n: Tensor(a, param=True) for n, a in params.items()},
                    "_buffers": {}, "_modules": {}})
    for g, content in groups.items():
        if g.endswith("_convs"):
            mods[g] = Obj(Global("torch.nn.modules.container", "ModuleList"),
                          {"_parameters": {}, "_buffers": {},
                           "_modules": {i: conv(c) for i, c in content.items()}})
        else:
            mods[g] = conv(content)
    p = write(tmp_path, "whole.pt", torch_zip(whole))
    got, rep = import_checkpoint(p)
    _close(got, _f32(m))
    assert rep["inferred"]["dilations"]["from"] == "pickled model attribute 'dilations'"
    assert rep["format"].startswith("torch zip: whole pickled model (wavenet_model.WaveNetModel)")


def test_pytorch_wavenet_dilation_defaults(tmp_path):
    m = _model(dilations=(1, 2, 4, 8, 16))                     # 5 layers: prime → one block
    p = write(tmp_path, "p.pt", torch_zip(state_dict_obj(to_pytorch_wavenet(m))))
    rep = inspect_checkpoint(p)
    assert rep["config"]["dilations"] == [1, 2, 4, 8, 16]
    assert "prime" in rep["assumed"]["dilations"]["from"]
    m = _model(dilations=(1, 2, 4, 1, 2, 4))                   # 6 layers: 3×2 or 2×3?
    p = write(tmp_path, "q.pt", torch_zip(state_dict_obj(to_pytorch_wavenet(m))))
    with pytest.raises(CheckpointError, match=r"ambiguous; give it with --config"):
        load_checkpoint(p)
    rep = inspect_checkpoint(p)                    # the report still says what is known
    assert rep["complete"] is False and "ambiguous" in rep["error"]
    assert rep["inferred"]["kernel_size"]["value"] == 2 and rep["config"] is None
    with pytest.raises(CheckpointError, match=r"layers=4 × blocks=2 does not match the 6"):
        load_checkpoint(p, config={"layers": 4, "blocks": 2})
    got = load_checkpoint(p, config=WaveNetConfig(dilations=(1, 2, 4, 1, 2, 4),
                                                  sample_rate=8000))
    assert got.config.sample_rate == 8000 and got.config.mulaw == "pytorch-wavenet"
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(json.dumps({"dilations": [1, 2, 4, 1, 2, 4]}))
    rep = inspect_checkpoint(p, config=str(cfg_path))
    assert rep["assumed"]["dilations"] == {"value": [1, 2, 4, 1, 2, 4], "from": "config"}


@pytest.mark.parametrize("style", ["old", "new", "plain"])
@pytest.mark.parametrize("k", [2, 3])
def test_wavenet_vocoder_weight_norm_fold(tmp_path, style, k):
    m = _model(kernel_size=k, residual_scale=math.sqrt(0.5), skip_scale=math.sqrt(1 / 6),
               end_channels=7)
    sd = to_wavenet_vocoder(m, style=style)
    trainer = {"state_dict": state_dict_obj({"module." + n: a for n, a in sd.items()}),
               "optimizer": None, "global_step": 10, "global_epoch": 1}
    p = write(tmp_path, "checkpoint_step000000010.pth", torch_zip(trainer))
    got, rep = import_checkpoint(p, config={"stacks": 2})
    _close(got, m, tol=1e-5)                                  # float32 storage of g and v
    assert rep["layout"] == "wavenet_vocoder"
    assert got.config.residual_scale == pytest.approx(math.sqrt(0.5))
    assert got.config.skip_scale == pytest.approx(math.sqrt(1 / 6))
    assert got.config.mulaw == "wavenet_vocoder" and got.config.sample_rate == 22050
    assert rep["assumed"]["dilations"]["from"] == "config stacks (stacks=2)"
    assert any("module." in n for n in rep["notes"])


def test_wavenet_vocoder_gc_legacy_and_refusals(tmp_path):
    m = _model(kernel_size=3, residual_scale=math.sqrt(0.5), skip_scale=1.0,
               gc_cardinality=3, gc_channels=4, dilations=(1, 2))
    sd = to_wavenet_vocoder(m)
    p = write(tmp_path, "gc.pth", torch_zip(state_dict_obj(sd)))
    got, rep = import_checkpoint(p, config={"layout_options": {"skip": "sum"}})
    assert rep["assumed"]["dilations"]["from"].startswith("demo preset")   # 2 layers
    for spk in range(3):
        _close(got, m, speaker=spk, tol=1e-5)
    assert rep["inferred"]["gc_cardinality"]["value"] == 3
    # legacy skip combination: s = (s + skip_l)·√0.5 for l ≥ 1, folded per layer
    leg = load_checkpoint(p, config={"legacy": True})
    for l, f in ((0, math.sqrt(0.5)), (1, math.sqrt(0.5))):
        assert np.allclose(leg.weights[f"layers/{l}/skip/w"], got.weights[f"layers/{l}/skip/w"] * f)
    # an old biased conv1x1g folds into the gate biases
    sd2 = dict(sd)
    sd2["conv_layers.0.conv1x1g.bias"] = np.arange(10, dtype="<f4")
    p2 = write(tmp_path, "gcb.pth", torch_zip(state_dict_obj(sd2)))
    got2 = load_checkpoint(p2, config={"layout_options": {"skip": "sum"}})
    assert np.allclose(got2.weights["layers/0/filter/b"] - got.weights["layers/0/filter/b"],
                       np.arange(5))
    assert np.allclose(got2.weights["layers/0/gate/b"] - got.weights["layers/0/gate/b"],
                       np.arange(5, 10))
    # refusals
    for extra, msg in (("conv_layers.0.conv1x1c.weight_v", "local conditioning"),
                       ("upsample_net.up_layers.1.weight", "local conditioning")):
        bad = dict(sd)
        bad[extra] = np.ones((10, 80, 1), "<f4")
        with pytest.raises(CheckpointError, match=msg):
            load_checkpoint(write(tmp_path, "lc.pth", torch_zip(state_dict_obj(bad))))
    bad = {k: v for k, v in sd.items() if k != "embed_speakers.weight"}
    with pytest.raises(CheckpointError, match="external feature vectors"):
        load_checkpoint(write(tmp_path, "ext.pth", torch_zip(state_dict_obj(bad))))
    bad = dict(sd)
    bad["first_conv.weight_v"] = np.ones((6, 1, 1), "<f4")
    with pytest.raises(CheckpointError, match="scalar-input"):
        load_checkpoint(write(tmp_path, "raw.pth", torch_zip(state_dict_obj(bad))))
    bad = dict(sd)
    bad["last_conv_layers.3.weight_v"] = np.ones((30, 9, 1), "<f4")
    bad["last_conv_layers.3.weight_g"] = np.ones((30, 1, 1), "<f4")
    bad["last_conv_layers.3.bias"] = np.ones(30, "<f4")
    with pytest.raises(CheckpointError, match="mixture"):
        load_checkpoint(write(tmp_path, "mol.pth", torch_zip(state_dict_obj(bad))))
    m6 = _model(dilations=(1, 2, 4, 1, 2, 4), residual_scale=math.sqrt(0.5))
    p6 = write(tmp_path, "six.pth", torch_zip(state_dict_obj(to_wavenet_vocoder(m6))))
    with pytest.raises(CheckpointError, match=r"stacks\) is not in the weights"):
        load_checkpoint(p6)
    with pytest.raises(CheckpointError, match="skip='bogus'"):
        load_checkpoint(p6, config={"stacks": 2, "layout_options": {"skip": "bogus"}})


@pytest.mark.parametrize("named", [False, True])
def test_tensorflow_wavenet_npz_and_safetensors(tmp_path, named):
    dil = tuple(2 ** i for i in range(10)) * 5
    m = _model(dilations=dil, initial_filter_width=2, residual_channels=3, dilation_channels=3,
               skip_channels=4, end_channels=4, gc_cardinality=2, gc_channels=3)
    v = to_tensorflow_wavenet(m, named_biases=named)
    v["wavenet/dilated_stack/layer0/filter/Adam:0"] = np.zeros((2, 3, 3), "<f4")
    v["beta1_power:0"] = np.float32(0.9)
    v["wavenet/dilated_stack/layer3/state_buffer:0"] = np.zeros((1, 3), "<f4")
    p = str(tmp_path / "tf.npz")
    np.savez(p, **v)
    got, rep = import_checkpoint(p)
    _close(got, _f32(m), speaker=1)
    assert rep["layout"] == "tensorflow-wavenet" and rep["format"] == "npz"
    assert rep["inferred"]["initial_filter_width"]["value"] == 2
    assert "wavenet_params.json default" in rep["assumed"]["dilations"]["from"]
    assert got.config.mulaw == "tensorflow-wavenet"
    assert any("ignored 3 optimizer / generator-state" in n for n in rep["notes"])
    ps = str(tmp_path / "tf.safetensors")
    write_safetensors(ps, {k: a for k, a in v.items() if np.ndim(a)})
    _close(load_checkpoint(ps), _f32(m), speaker=1)


def test_tensorflow_wavenet_params_json(tmp_path):
    m = _model(dilations=(1, 2, 4, 8), initial_filter_width=2, residual_channels=3,
               dilation_channels=3, skip_channels=4, end_channels=4)
    p = str(tmp_path / "tf.npz")
    np.savez(p, **to_tensorflow_wavenet(m, prefix="", suffix=""))
    with pytest.raises(CheckpointError, match="dilations are not in the variables"):
        load_checkpoint(p)
    params = {"filter_width": 2, "sample_rate": 16000, "dilations": [1, 2, 4, 8],
              "residual_channels": 3, "dilation_channels": 3, "quantization_channels": 256,
              "skip_channels": 4, "use_biases": True, "scalar_input": False,
              "initial_filter_width": 32}
    cp = tmp_path / "wavenet_params.json"
    cp.write_text(json.dumps(params))
    got, rep = import_checkpoint(p, config=str(cp))
    _close(got, _f32(m))
    assert any("initial_filter_width=32 ignored" in n for n in rep["notes"])
    params["filter_width"] = 3
    cp.write_text(json.dumps(params))
    with pytest.raises(CheckpointError, match="filter_width=3 but the checkpoint has 2"):
        load_checkpoint(p, config=str(cp))


def test_ours_npz_and_safetensors_round_trip(tmp_path):
    m = _model(gc_cardinality=2, gc_channels=3)
    p = str(tmp_path / "ours.npz")
    m.save(p)
    got, rep = import_checkpoint(p)
    assert rep["layout"] == "wavenet-edge" and got.config == m.config
    _close(got, m, speaker=1, tol=0)
    ps = str(tmp_path / "ours.safetensors")
    save_safetensors(m, ps)
    got = load_checkpoint(ps)
    assert got.config == m.config
    _close(got, m, speaker=0, tol=0)
    with pytest.raises(CheckpointError, match="embedded config has"):
        load_checkpoint(p, config={"sample_rate": 8000})


# -- bad input --------------------------------------------------------------------------------
def test_bad_tensors_and_keys(tmp_path):
    m = _model()
    cfg = {"layers": 3, "blocks": 2}
    sd = to_pytorch_wavenet(m)
    cases = []
    s = dict(sd)
    s["filter_convs.1.weight"] = s["filter_convs.1.weight"].copy()
    s["filter_convs.1.weight"][0, 0, 0] = np.nan
    cases.append((s, r"filter_convs\.1\.weight contains NaN or Inf"))
    s = dict(sd)
    s["end_conv_2.bias"] = np.full(256, np.inf, "<f4")
    cases.append((s, r"end_conv_2\.bias contains NaN or Inf"))
    s = dict(sd)
    s["gate_convs.2.weight"] = np.zeros((5, 6, 3), "<f4")
    cases.append((s, r"gate_convs\.2\.weight has shape \(5, 6, 3\), expected \(5, 6, 2\)"))
    s = {k: v for k, v in sd.items() if k != "skip_convs.4.weight"}
    cases.append((s, r"missing tensor skip_convs\.4\.weight"))
    s = dict(sd)
    s["extra_head.weight"] = np.zeros(3, "<f4")
    cases.append((s, r"unexpected tensor\(s\) for this layout: extra_head\.weight"))
    s = {k: v for k, v in sd.items() if not k.startswith("residual_convs.3.")}
    cases.append((s, r"residual_convs layers are not numbered"))
    for i, (s, msg) in enumerate(cases):
        p = write(tmp_path, f"bad{i}.pt", torch_zip(state_dict_obj(s)))
        with pytest.raises(CheckpointError, match=msg) as e:
            load_checkpoint(p, config=cfg)
        assert str(e.value).startswith(p + ": ") and "\n" not in str(e.value)


def test_layout_override_and_unknown(tmp_path):
    m = _model()
    p = write(tmp_path, "p.pt", torch_zip(state_dict_obj(to_pytorch_wavenet(m))))
    with pytest.raises(CheckpointError, match="layout=tensorflow-wavenet given but the keys "
                                              "are those of pytorch-wavenet"):
        load_checkpoint(p, layout="tensorflow-wavenet")
    with pytest.raises(CheckpointError, match="keys are those of pytorch-wavenet"):
        load_checkpoint(p, layout="wavenet_vocoder")
    got = load_checkpoint(p, layout="pytorch-wavenet", config={"layers": 3, "blocks": 2})
    assert got.config.n_layers == 6
    with pytest.raises(ConfigError, match="unknown layout"):
        load_checkpoint(p, layout="keras")
    with pytest.raises(ConfigError, match="unknown config key"):
        load_checkpoint(p, config={"layerz": 3})
    q = write(tmp_path, "other.pt", torch_zip(state_dict_obj({"encoder.0.weight":
                                                               np.zeros(3, "<f4")})))
    with pytest.raises(CheckpointError, match="unknown checkpoint layout"):
        load_checkpoint(q)
    with pytest.raises(CheckpointError, match="config says residual_channels=8"):
        load_checkpoint(p, config={"layers": 3, "blocks": 2, "residual_channels": 8})


def test_report_is_json_serialisable(tmp_path):
    m = _model(kernel_size=3, residual_scale=math.sqrt(0.5))
    p = write(tmp_path, "v.pth", torch_zip(state_dict_obj(to_wavenet_vocoder(m))))
    rep = inspect_checkpoint(p, config={"stacks": 2})
    text = json.dumps(rep)
    assert "inferred" in text
    assert set(rep["inferred"]) >= {"kernel_size", "residual_channels", "dilation_channels",
                                    "skip_channels", "end_channels", "use_biases"}
    assert set(rep["assumed"]) >= {"dilations", "residual_scale", "skip_scale", "mulaw",
                                   "sample_rate", "skip_combination"}
    assert rep["receptive_field"] == WaveNetConfig(**rep["config"]).receptive_field
