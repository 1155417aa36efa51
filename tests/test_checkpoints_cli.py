"""``wavenet-edge import``: report, --json, -o writes a loadable .npz, errors exit 2 on one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wavenet_edge.cli import main
from wavenet_edge.float_model import FloatWaveNet

FX = Path(__file__).parent / "data" / "peers" / "wavenet_vocoder" / "k2_gc"
pytestmark = pytest.mark.skipif(not (FX / "checkpoint.pth").exists(), reason="no r9y9 fixture")


def test_import_writes_npz_and_reports(tmp_path, capsys):
    out = tmp_path / "m.npz"
    rc = main(["import", str(FX / "checkpoint.pth"), "--config", str(FX / "config.json"),
               "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "layout    wavenet_vocoder" in text and "assumed" in text
    assert "stacks=2" in text and f"wrote {out}" in text
    m = FloatWaveNet.load(out)
    meta = json.loads((FX / "meta.json").read_text())
    x = np.load(FX / "inputs.npy")
    ref = np.load(FX / "logits.npy")
    assert np.abs(m.logits(x, speaker=meta["speaker"]) - ref).max() <= 1e-4
    rc = main(["import", str(FX / "state_dict.pth"), "--config", str(FX / "config.json"),
               "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["layout"] == "wavenet_vocoder" and rep["format"].endswith("state_dict")


def test_import_errors_are_one_line(tmp_path, capsys):
    rc = main(["import", str(FX / "checkpoint.pth")])
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert rc == 2 and "stacks" in err and len(err.splitlines()) == 1
    assert "incomplete" in cap.out and "gc_cardinality" in cap.out   # what is known, first
    rc = main(["import", str(FX / "checkpoint.pth"), "--layout", "pytorch-wavenet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "layout=pytorch-wavenet given" in err
