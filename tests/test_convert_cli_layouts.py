"""`wavenet-edge convert CKPT --layout auto [--config] -o m.tflite` for each peer layout (CLI)."""

import subprocess
import sys
from pathlib import Path

import pytest

from wavenet_edge import Engine

PEERS = Path(__file__).parent / "data" / "peers"
CASES = [("pytorch-wavenet", "k2_nobias", "model_whole.pt", False),  # dilations in the pickle
         ("pytorch-wavenet", "k3_bias", "ckpt.pt", True),
         ("wavenet_vocoder", "k2_gc", "checkpoint.pth", True),
         ("tensorflow-wavenet", "k3_nobias", "variables.npz", True)]


@pytest.mark.parametrize("layout,fx,fname,with_config", CASES)
def test_convert_cli_each_layout(tmp_path, layout, fx, fname, with_config):
    d = PEERS / layout / fx
    out = tmp_path / "m.tflite"
    cmd = [sys.executable, "-m", "wavenet_edge", "convert", str(d / fname), "--layout", "auto",
           "-o", str(out), "--method", "minmax", "--eval-steps", "200", "--no-progress"]
    if with_config:
        cmd += ["--config", str(d / "config.json")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    eng = Engine.from_file(out)
    assert eng.mulaw_convention == layout
    assert eng.process([128, 130, 120]).shape == (3, 256)


def test_convert_cli_ambiguous_layout_needs_config(tmp_path):
    d = PEERS / "pytorch-wavenet" / "k3_bias"
    out = tmp_path / "m.tflite"
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "convert", str(d / "ckpt.pt"),
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "--config" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_convert_cli_wrong_layout_override(tmp_path):
    d = PEERS / "wavenet_vocoder" / "k3"
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "convert", str(d / "checkpoint.pth"),
                        "--layout", "tensorflow-wavenet", "-o", str(tmp_path / "m.tflite")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "checkpoint.pth" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
