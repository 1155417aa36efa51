"""`wavenet-edge simulate` by subprocess: our C engine priced with the stored per-kernel model
(says which coefficients), its memory from the exact C sizes, and the shrink plan printed ONCE
for targets that share it, with the receptive-field limit in plain words."""

import json
import subprocess
import sys

import pytest

from test_planner import SMALL

TWINS = {"targets": [
    {"name": f"twin-{x}", "title": f"twin {x}", "core": "cortex-m55", "clock_hz": 200000000,
     "sram_bytes": 262144, "flash_bytes": 1048576} for x in "ab"]
    + [{"name": "fast", "title": "fast", "core": "cortex-m55", "clock_hz": 4000000000,
        "sram_bytes": 262144, "flash_bytes": 1048576}]}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from converters.convert import convert
    from wavenet_edge.float_model import FloatWaveNet
    d = tmp_path_factory.mktemp("simc")
    path = d / "small.tflite"
    path.write_bytes(convert(FloatWaveNet.initialize(SMALL, seed=0), method="minmax",
                             progress=False, evaluate_quality=False).tflite)
    tf = d / "twins.json"
    tf.write_text(json.dumps(TWINS))
    return path, tf


def _run(*args):
    r = subprocess.run([sys.executable, "-m", "wavenet_edge.cli", "simulate", *map(str, args),
                        "--no-bitexact", "--seconds", "0.1"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_text_plan_once_and_plain_words(model):
    path, tf = model
    out = _run(path, "--target-file", tf)
    plan = out.split("Shrink plan for our C engine")[1].split("\n\n")[0]
    lines = plan.splitlines()
    # the twins share one plan: one paragraph naming both, no second copy
    assert sum(1 for ln in lines if ln.startswith("  twin-a, twin-b:")) == 1
    assert not any(ln.startswith("  twin-b") for ln in lines)
    assert sum(1 for ln in lines if ln.startswith("  fast: the model as it is")) == 1
    assert "the model forgets after" in plan and "ms" in plan
    assert "binding: real time" in plan
    assert "coefficients: stored per-kernel model" in out


def test_json_says_which_coefficients(model):
    path, tf = model
    d = json.loads(_run(path, "--target-file", tf, "--json"))
    by = {t["target"]["name"]: t for t in d["targets"]}
    for name in ("twin-a", "twin-b", "fast"):
        c = by[name]["c_export"]
        assert c["coefficients"] == "stored" and "c_engine_costs.json" in c["coefficients_detail"]
        assert c["memory"]["fits"] and c["core"] == "cortex-m55-wavenet-c-mve"
    pa, pb = by["twin-a"]["c_export"]["plan"], by["twin-b"]["c_export"]["plan"]
    assert pa["achieved"] and pa["shape"] == pb["shape"]
    assert pa["receptive_field_samples"] < SMALL.receptive_field
    assert pa["receptive_field_ms"] == pytest.approx(1000 * pa["receptive_field_samples"] / 16000,
                                                     abs=1e-3)
    assert by["fast"]["c_export"]["plan"]["config_change"] == "no change"
    assert by["fast"]["c_export"]["real_time"] and not by["twin-a"]["c_export"]["real_time"]
