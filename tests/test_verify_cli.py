"""`wavenet-edge verify`: engine vs real interpreters, by subprocess."""

import json
import subprocess
import sys

import pytest

from test_engine_helpers import model_bytes


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    # the suite's shared kernel-3 model (tests/test_engine_helpers.CONFIGS["k3"])
    p = tmp_path_factory.mktemp("verify") / "k3.tflite"
    p.write_bytes(model_bytes("k3"))
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
    # the engine's litert profile against TFLM: their FC rounding differs on this model within
    # 300 steps (asserted below), and the CLI must say so with exit status 1
    r = _run(model_path, "--against", "tflm", "--engine-profile", "litert", "--steps", "300",
             "--json")
    assert r.returncode == 1, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and str(model_path) in err[0] and "Traceback" not in r.stderr
    res = json.loads(r.stdout)["tflm"]
    assert not res["ok"] and res["engine_profile"] == "litert"
    diff = sum(c["different"] for c in res["per_tensor"]["teacher-forced"].values())
    assert diff > 0 and res["teacher_forced"]["identical"] < 300
    # the same model and steps with the matching profile: identical, exit 0
    ok = _run(model_path, "--against", "tflm", "--steps", "300")
    assert ok.returncode == 0 and "tflm: bit-exact" in ok.stdout


def test_verify_accepts_the_engine_profile_names(model_path):
    r = _run(model_path, "--against", "xnnpack,litert-default", "--steps", "50", "--json")
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)) == {"xnnpack"}     # the alias names the same runtime


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
