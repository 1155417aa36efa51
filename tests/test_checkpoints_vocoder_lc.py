"""r9y9/wavenet_vocoder locally conditioned checkpoints (fixtures made with its own code at
a35fff7, tests/data/peers/wavenet_vocoder/lc, see make_fixtures.md): all three upsampler cases
reproduce its forward AND its incremental_forward on every row, the hparams JSON is the config,
and out-of-scope variants are refused in one line naming the file; the F = 3 conv-in checkpoint
converted runs bit-exact in the engine against TFLM and LiteRT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters.checkpoints import inspect_checkpoint, load_checkpoint, read_tensors
from test_checkpoints_torchzip import state_dict_obj, torch_zip, write
from wavenet_edge.errors import CheckpointError, ConfigError

LC = Path(__file__).parent / "data" / "peers" / "wavenet_vocoder" / "lc"
TOL = 1e-5          # the fixtures are float64 runs of float32 weights; we see ~2.6e-7
CASES = ["convin_F3", "plain_F1_gc", "sample_rate"]


def _fixture(name):
    d = LC / name
    meta = json.loads((d / "meta.json").read_text())
    return d, meta, np.load(d / "inputs.npy"), np.load(d / "cond.npy")


@pytest.mark.parametrize("name", CASES)
def test_forward_and_incremental_match_r9y9_on_every_row(name):
    d, meta, x, c = _fixture(name)
    m = load_checkpoint(d / "state_dict.pth", config=d / "hparams.json")
    spk = meta["speaker"]
    ref = np.load(d / "logits.npy")
    inc_ref = np.load(d / "logits_incremental.npy")
    lg = m.logits(x, speaker=spk, cond=c)
    assert lg.shape == ref.shape == inc_ref.shape == (meta["n_inputs"], 256)
    assert np.abs(lg - ref).max() <= TOL
    st = m.stepper(speaker=spk, cond=c, n=len(x))
    inc = np.stack([st.step(v) for v in x])
    assert np.abs(inc - inc_ref).max() <= TOL
    # the first samples (zero history and, with an upsampler, the zero-padded feature edge)
    assert np.abs(lg[:8] - ref[:8]).max() <= TOL


def test_what_the_weights_tell():
    d, meta, x, c = _fixture("convin_F3")
    rep = inspect_checkpoint(d / "state_dict.pth", config={"stacks": 2})
    assert rep["complete"], rep.get("error")
    inf = rep["inferred"]
    assert inf["upsampler"]["value"] == "conv-in"
    assert tuple(inf["upsample_scales"]["value"]) == (2, 2)
    assert inf["freq_axis_kernel_size"]["value"] == 3
    assert inf["cin_pad"]["value"] == 2 and inf["cin_channels"]["value"] == 5
    m = load_checkpoint(d / "state_dict.pth", config={"stacks": 2})
    assert np.abs(m.logits(x, cond=c) - np.load(d / "logits.npy")).max() <= TOL
    assert m.config.mel is None
    # a plain UpsampleNetwork's cin_pad lives in the hparams only
    d2 = LC / "plain_F1_gc"
    with pytest.raises(CheckpointError, match="cin_pad is not in the weights") as e:
        load_checkpoint(d2 / "state_dict.pth", config={"stacks": 2})
    assert str(e.value).startswith(str(d2 / "state_dict.pth"))


def test_hparams_mel_keys_become_the_feature_recipe():
    d, meta, x, c = _fixture("convin_F3")
    hp = json.loads((d / "hparams.json").read_text())
    hp.update(num_mels=5, fft_size=32, hop_size=4, win_length=-1, window="hann", fmin=0,
              fmax=8000, sample_rate=16000)
    m = load_checkpoint(d / "state_dict.pth", config=hp)
    rec = m.config.mel
    assert (rec.n_mels, rec.n_fft, rec.hop_length, rec.win_length) == (5, 32, 4, 32)
    assert rec.compression == "log10" and m.config.sample_rate == 16000
    hp["num_mels"] = 6
    with pytest.raises(CheckpointError, match="n_mels"):
        load_checkpoint(d / "state_dict.pth", config=hp)


def _tensors(name):
    return {k: np.asarray(v, dtype="<f4") for k, v in
            read_tensors(LC / name / "state_dict.pth").tensors.items()}


def test_old_biased_conv1x1c_folds_into_the_gate_biases(tmp_path):
    d, meta, x, c = _fixture("sample_rate")
    sd = _tensors("sample_rate")
    base = load_checkpoint(d / "state_dict.pth", config=d / "hparams.json")
    for l in range(6):
        sd[f"conv_layers.{l}.conv1x1c.bias"] = np.linspace(-1, 1, 10).astype("<f4") * (l + 1)
    p = write(tmp_path, "biased.pth", torch_zip(state_dict_obj(sd)))
    m = load_checkpoint(p, config=d / "hparams.json")
    b = np.linspace(-1, 1, 10) * 3
    assert np.allclose(m.weights["layers/2/filter/b"] - base.weights["layers/2/filter/b"], b[:5])
    assert np.allclose(m.weights["layers/2/gate/b"] - base.weights["layers/2/gate/b"], b[5:])


def test_out_of_scope_variants_are_refused(tmp_path):
    d = LC / "plain_F1_gc"
    hp = json.loads((d / "hparams.json").read_text())
    sd = _tensors("plain_F1_gc")
    # the legacy ConvTranspose2d + ReLU upsampler
    bad = dict(sd)
    bad["upsample_conv.0.weight_v"] = np.ones((1, 1, 3, 8), "<f4")
    with pytest.raises(CheckpointError, match="legacy upsample_conv"):
        load_checkpoint(write(tmp_path, "legacy.pth", torch_zip(state_dict_obj(bad))), config=hp)
    # an upsampler activation
    hp_act = dict(hp, upsample_params=dict(hp["upsample_params"], upsample_activation="LeakyReLU"))
    with pytest.raises(CheckpointError, match="upsampler activation"):
        load_checkpoint(d / "state_dict.pth", config=hp_act)
    # mixture of logistics output
    bad = dict(sd)
    bad["last_conv_layers.3.weight_v"] = np.ones((30, 7, 1), "<f4")
    bad["last_conv_layers.3.weight_g"] = np.ones((30, 1, 1), "<f4")
    bad["last_conv_layers.3.bias"] = np.ones(30, "<f4")
    with pytest.raises(CheckpointError, match="mixture"):
        load_checkpoint(write(tmp_path, "mol.pth", torch_zip(state_dict_obj(bad))), config=hp)
    # hparams that disagree with the weights
    for key, val, msg in (("cin_channels", 80, "cin_channels=80"),
                          ("upsample_net", "ConvInUpsampleNetwork", "upsample_net"),
                          ("cin_pad", None, "cin_pad")):
        h = dict(hp)
        if val is None:
            h.pop(key)
        else:
            h[key] = val
        with pytest.raises(CheckpointError, match=msg):
            load_checkpoint(d / "state_dict.pth", config=h)
    h = dict(hp, upsample_params={"upsample_scales": [3, 2]})
    with pytest.raises(CheckpointError, match=r"upsample_scales=\[3, 2\]"):
        load_checkpoint(d / "state_dict.pth", config=h)
    # conv1x1c in some layers only
    bad = {k: v for k, v in sd.items() if not k.startswith("conv_layers.3.conv1x1c.")}
    with pytest.raises(CheckpointError, match="conv_layers.3 has no conv1x1c"):
        load_checkpoint(write(tmp_path, "gap.pth", torch_zip(state_dict_obj(bad))), config=hp)


def test_wrong_feature_frames_name_both_numbers():
    d, meta, x, c = _fixture("convin_F3")
    m = load_checkpoint(d / "state_dict.pth", config=d / "hparams.json")
    with pytest.raises(ConfigError, match=f"cond has {c.shape[0] - 1} frames but {len(x)} "
                                          f"samples need {c.shape[0]}"):
        m.logits(x, cond=c[:-1])


def test_import_cli_reports_conditioning_and_writes_the_model(tmp_path):
    import subprocess
    import sys
    from wavenet_edge import FloatWaveNet
    d, meta, x, c = _fixture("plain_F1_gc")
    out = tmp_path / "voc.npz"
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "import", str(d / "state_dict.pth"),
                        "--config", str(d / "hparams.json"), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "upsampler              plain" in r.stdout
    assert "per frame of 6" in r.stdout and "conditioning" in r.stdout
    m = FloatWaveNet.load(out)
    assert np.abs(m.logits(x, speaker=meta["speaker"], cond=c) - np.load(d / "logits.npy")).max() \
        <= TOL
    h = dict(json.loads((d / "hparams.json").read_text()))
    h.pop("cin_pad")
    (tmp_path / "h.json").write_text(json.dumps(h))
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "import", str(d / "state_dict.pth"),
                        "--config", str(tmp_path / "h.json"), "-o", str(tmp_path / "y.npz")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "cin_pad is not in the weights" in r.stderr and not (tmp_path / "y.npz").exists()


def test_convin_F3_checkpoint_in_int8_engine_equals_the_interpreters():
    """r9y9's ConvInUpsampleNetwork with F = 3 (5 bands, reach 2: every band but the middle one
    an edge band), converted: the engine with cond= gives the real interpreters' logits and
    probabilities at every step, TFLM and LiteRT each in its own rounding."""
    from converters.convert import convert
    from converters.host import ContractHost
    from wavenet_edge.engine import Engine
    d, meta, x, c = _fixture("convin_F3")
    m = load_checkpoint(d / "state_dict.pth", config=d / "hparams.json")
    cfg = m.config
    rng = np.random.default_rng(4)
    n = 1200 // cfg.hop * cfg.hop
    audio = [0.4 * np.sin(2 * np.pi * np.arange(n) * f / cfg.sample_rate) for f in (180.0, 410.0)]
    feats = [rng.normal(size=(cfg.frames_for(n), cfg.cin_channels)) for _ in audio]
    data = convert(m, calibration=audio, features=feats, method="minmax", evaluate_quality=False,
                   progress=False).tflite
    for profile in ("tflm", "litert"):
        want = ContractHost(data, profile).run(x, cond=c, outputs=("logits", "probs"))
        eng = Engine(data, profile=profile)
        got = eng.trace(x, ["logits", "probs"], cond=c)
        for k in ("logits", "probs"):
            np.testing.assert_array_equal(got[k], want[k].reshape(len(x), -1), err_msg=profile)
