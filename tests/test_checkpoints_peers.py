"""Checkpoints written by the ORIGINAL implementations (``tests/data/peers``, made with torch / TF
running the peers' own code): our import must reproduce their logits.

Every fixture directory holds the checkpoint file(s), ``inputs.npy``, ``logits.npy`` (rows from
``meta["logits_first_t"]`` on), optionally the peer's incremental/fast-generation logits, the
speaker id, and ``config.json`` (the peer's constructor arguments, accepted as --config).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from converters.checkpoints import import_checkpoint, inspect_checkpoint, load_checkpoint
from wavenet_edge.errors import CheckpointError

PEERS = Path(__file__).parent / "data" / "peers"
TOL = 1e-4
_CKPT_SUFFIXES = (".pt", ".pth", ".npz")


def _cases():
    out = []
    for layout_dir in sorted(PEERS.glob("*")):
        for fx in sorted(layout_dir.glob("*")):
            if not (fx / "meta.json").exists():
                continue
            # legacy_container/: the same checkpoints in the pre-1.6 torch stream format
            files = sorted(fx.iterdir()) + sorted((fx / "legacy_container").glob("*"))
            for f in files:
                if f.suffix in _CKPT_SUFFIXES and f.is_file():
                    rel = str(f.relative_to(fx))
                    out.append(pytest.param(layout_dir.name, fx, rel,
                                            id=f"{layout_dir.name}/{fx.name}/{rel}"))
    return out


CASES = _cases()
if not CASES:  # pragma: no cover - fixtures are committed
    pytestmark = pytest.mark.skip("no peer fixtures in tests/data/peers")


def _fixture(fx: Path):
    meta = json.loads((fx / "meta.json").read_text())
    x = np.load(fx / "inputs.npy")
    spk = int(np.load(fx / "speaker.npy")) if (fx / "speaker.npy").exists() else None
    return meta, x, spk


@pytest.mark.parametrize("layout,fx,fname", CASES)
def test_peer_logits(layout, fx, fname):
    meta, x, spk = _fixture(fx)
    model, rep = import_checkpoint(fx / fname, config=str(fx / "config.json"))
    assert rep["layout"] == layout
    assert model.config.mulaw == layout      # each peer's mu-law convention travels along
    assert model.config.receptive_field == meta["receptive_field"]
    ref = np.load(fx / "logits.npy")
    got = model.logits(x, speaker=spk)[meta["logits_first_t"]:]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= TOL
    for inc_name in ("logits_incremental.npy", "logits_fast.npy"):
        if (fx / inc_name).exists():        # the peer's own queue / incremental generator
            inc = np.load(fx / inc_name)
            st = model.stepper(speaker=spk)
            steps = np.array([st.step(c) for c in x])
            assert np.abs(steps - inc).max() <= TOL


@pytest.mark.parametrize("layout,fx,fname", CASES)
def test_peer_report(layout, fx, fname):
    rep = inspect_checkpoint(fx / fname, config=str(fx / "config.json"))
    cfg = json.loads((fx / "config.json").read_text())
    inf, ass = rep["inferred"], rep["assumed"]
    assert rep["layout_source"] == "detected from key names"
    k = cfg.get("kernel_size", cfg.get("filter_width"))
    assert inf["kernel_size"]["value"] == k
    assert inf["residual_channels"]["value"] == cfg["residual_channels"]
    assert "dilations" in ass or "dilations" in inf
    assert "mulaw" in ass and "residual_scale" in ass and "skip_scale" in ass
    if layout == "wavenet_vocoder":
        assert inf["dilation_channels"]["value"] == cfg["gate_channels"] // 2
        L = cfg["layers"]
        assert rep["config"]["skip_scale"] == pytest.approx(math.sqrt(1 / L))
        assert rep["config"]["residual_scale"] == pytest.approx(math.sqrt(0.5))
        if fname.endswith("checkpoint.pth"):
            assert "trainer checkpoint" in rep["format"]
    if fname.startswith("legacy_container/"):
        assert rep["format"].startswith("legacy torch (< 1.6)")
    elif layout == "tensorflow-wavenet":
        assert inf["initial_filter_width"]["value"] == cfg["filter_width"]
        assert inf["use_biases"]["value"] == cfg["use_biases"]
        assert any("initial_filter_width=32 ignored" in n for n in rep["notes"])
    elif layout == "pytorch-wavenet":
        assert inf["end_channels"]["value"] == cfg["end_channels"]
    if cfg.get("gin_channels", -1) > 0 or cfg.get("global_condition_cardinality"):
        assert inf["gc_cardinality"]["value"] == cfg.get("n_speakers",
                                                         cfg.get("global_condition_cardinality"))


def test_peer_whole_model_needs_no_config():
    checked = 0
    for fx in sorted((PEERS / "pytorch-wavenet").glob("*")):
        if not (fx / "model_whole.pt").exists():
            continue
        checked += 1
        meta, x, spk = _fixture(fx)
        model, rep = import_checkpoint(fx / "model_whole.pt")
        assert rep["inferred"]["dilations"]["from"] == "pickled model attribute 'dilations'"
        ref = np.load(fx / "logits.npy")
        assert np.abs(model.logits(x)[meta["logits_first_t"]:] - ref).max() <= TOL
    assert checked >= 2     # k2_nobias, k3_bias: a loop over no fixture would check nothing


def test_peer_without_config_says_what_is_missing():
    checked = set()
    for layout_dir, word in (("pytorch-wavenet", "blocks"), ("wavenet_vocoder", "stacks"),
                             ("tensorflow-wavenet", "dilations")):
        for fx in sorted((PEERS / layout_dir).glob("*")):
            f = next((p for p in sorted(fx.iterdir()) if p.suffix in _CKPT_SUFFIXES
                      and p.name != "model_whole.pt"), None)
            if f is None:
                continue
            with pytest.raises(CheckpointError, match=word) as e:
                load_checkpoint(f)
            assert str(e.value).startswith(str(f))
            # the dilations alone are enough
            meta, x, spk = _fixture(fx)
            cfg = json.loads((fx / "config.json").read_text())
            if "dilations" in cfg:
                dil = cfg["dilations"]
            else:
                per = cfg["layers"] // cfg.get("blocks", cfg.get("stacks", 1)) \
                    if layout_dir == "wavenet_vocoder" else cfg["layers"]
                n = cfg["layers"] if layout_dir == "wavenet_vocoder" else \
                    cfg["layers"] * cfg["blocks"]
                dil = [2 ** (i % per) for i in range(n)]
            m = load_checkpoint(f, config={"dilations": dil})
            ref = np.load(fx / "logits.npy")
            assert np.abs(m.logits(x, speaker=spk)[meta["logits_first_t"]:] - ref).max() <= TOL
            checked.add(layout_dir)
    assert checked == {"pytorch-wavenet", "wavenet_vocoder", "tensorflow-wavenet"}


def test_peer_wrong_layout_override():
    files = [(d.name, next(p for p in sorted(fx.iterdir()) if p.suffix in _CKPT_SUFFIXES))
             for d in sorted(PEERS.glob("*")) if d.is_dir()
             for fx in sorted(d.glob("*"))[:1]]
    names = [n for n, _ in files]
    assert len(names) >= 3, names
    for name, f in files:
        for other in names:
            if other == name:
                continue
            with pytest.raises(CheckpointError, match=f"layout={other} given"):
                load_checkpoint(f, layout=other)


@pytest.mark.skipif(not os.path.isdir(PEERS / "tensorflow-wavenet"), reason="no ibab fixtures")
def test_tf_saver_bundle_read_without_tensorflow():
    """The Saver's own files (``model.ckpt-N.index`` + ``.data-*``), addressed four ways."""
    n = 0
    for fx in sorted((PEERS / "tensorflow-wavenet").glob("*")):
        meta, x, spk = _fixture(fx)
        ref = np.load(fx / "logits.npy")
        for idx in fx.glob("model.ckpt-*.index"):
            prefix = str(idx)[: -len(".index")]
            shard = next(fx.glob(idx.name[: -len(".index")] + ".data-*"))
            for p in (fx, prefix, idx, shard):
                m, rep = import_checkpoint(p, config=str(fx / "config.json"))
                assert rep["format"] == "TensorFlow checkpoint bundle"
                assert rep["layout"] == "tensorflow-wavenet"
                got = m.logits(x, speaker=spk)[meta["logits_first_t"]:]
                assert np.abs(got - ref).max() <= TOL
                n += 1
    assert n >= 4
