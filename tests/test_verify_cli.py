"""`wavenet-edge verify`: engine vs real interpreters, by subprocess."""

import json
import subprocess
import sys

import pytest

from converters.convert import convert
from wavenet_edge import FloatWaveNet, WaveNetConfig


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    cfg = WaveNetConfig(dilations=(1, 2, 4, 8, 1, 2), kernel_size=3, residual_channels=8,
                        dilation_channels=8, skip_channels=16, end_channels=16)
    p = tmp_path_factory.mktemp("verify") / "k3.tflite"
    convert(FloatWaveNet.initialize(cfg, seed=3), out=p, progress=False, evaluate_quality=False,
            method="minmax")
    return p


def _run(*args):
    return subprocess.run([sys.executable, "-m", "wavenet_edge", "verify", *map(str, args)],
                          capture_output=True, text=True)


def test_verify_counts_every_output_against_tflm_and_litert(model_path):
    r = _run(model_path, "--steps", "300", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert set(res) == {"tflm", "litert"}
    for rt, d in res.items():
        assert d["ok"] and d["teacher_forced"]["identical"] == 300
        assert d["free_running"]["identical"] == 300
        tensors = d["per_tensor"]["free-running"]
        assert {"probs", "logits", "layer00/input", "layer05/input"} <= set(tensors)
        assert all(c["different"] == 0 and c["identical"] == 300 for c in tensors.values())


def test_verify_reports_a_real_difference_with_exit_1(model_path):
    # the litert engine profile against TFLM: different FC rounding shows up as a mismatch
    from firmware_sim.bitexact import check_bitexact
    r = check_bitexact(model_path.read_bytes(), steps=2000, runtime="tflm", profile="litert",
                       stop_at_first=False)
    if r.ok:
        pytest.skip("no rounding tie hit in 2000 steps for this model")
    assert r.mismatch["tensor"] and sum(c[1] for c in r.per_tensor["teacher-forced"].values()) > 0


@pytest.mark.parametrize("bad, msg", [("missing.tflite", "cannot read"), ("trunc", "out of bounds")])
def test_verify_bad_input_one_line(model_path, tmp_path, bad, msg):
    p = tmp_path / bad
    if bad == "trunc":
        p.write_bytes(model_path.read_bytes()[:2000])
    r = _run(p)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and str(p) in r.stderr


def test_verify_rejects_unknown_runtime(model_path):
    r = _run(model_path, "--against", "tflm,onnx")
    assert r.returncode == 2 and "onnx" in r.stderr
