"""ORACLE, whole models: the engine with profiles ``litert-arm64`` / ``xnnpack-arm64`` against the
real aarch64 LiteRT (builtin kernels / default XNNPACK resolver) under qemu, through the
delay-line contract: teacher-forced on speech, then free-running, every graph output at every
step (``check_bitexact``).  A few hundred steps per model keep the emulation cheap."""

import json
import subprocess
import sys

import numpy as np
import pytest

from arm64_oracle import arm64_root_or_skip
from converters.host import ContractHost
from firmware_sim.bitexact import check_bitexact
from test_engine import _codes
from test_engine_helpers import model_bytes
from wavenet_edge.engine import Engine
from wavenet_edge.tflite_file import read_tflite

STEPS = 200


@pytest.fixture(scope="module")
def arm64():
    arm64_root_or_skip()


@pytest.mark.parametrize("runtime", ["litert-arm64", "xnnpack-arm64"])
@pytest.mark.parametrize("name", ["tiny", "small", "k3", "gc"])
def test_engine_equals_the_aarch64_interpreter(arm64, name, runtime):
    data = model_bytes(name)
    speaker = 2 if name == "gc" else None
    model = read_tflite(data)
    outputs = [model.tensors[i].name for i in model.outputs]
    # teacher-forced on speech: every graph output, every step
    host = ContractHost(data, runtime)
    eng = Engine.from_bytes(data, profile=runtime)
    if speaker is not None:
        eng.speaker = speaker
    codes = _codes(eng.config, STEPS, "a")
    ref = host.run(codes, speaker=speaker, outputs=outputs)
    got = eng.trace(codes, outputs)
    for n in outputs:
        same = np.all(ref[n].reshape(STEPS, -1) == got[n].reshape(STEPS, -1), axis=1)
        assert same.all(), f"{n}: {int((~same).sum())} of {STEPS} steps differ"
    host.runner.close()
    # free-running (both fed the engine's samples): probs, logits and every delay-line write
    r = check_bitexact(data, steps=0, free_steps=STEPS, runtime=runtime, speaker=speaker,
                       stop_at_first=False, name=name)
    assert r.profile == runtime
    assert r.ok and r.free_running_identical == STEPS, r.message()
    tensors = r.per_tensor["free-running"]
    assert set(tensors) == set(outputs)
    assert all(same == STEPS and diff == 0 for same, diff in tensors.values())


def test_arm64_profiles_differ_from_x86_only_in_probs():
    """Same model, same codes: the aarch64 profiles change ``probs`` (the SOFTMAX) and nothing
    else; with builtin kernels logits and every delay-line write are the x86 ones."""
    data = model_bytes("tiny")
    codes = _codes(Engine.from_bytes(data).config, 2000, "a")
    outs = {}
    for profile in ("litert", "litert-arm64", "xnnpack", "xnnpack-arm64"):
        model = read_tflite(data)
        names = [model.tensors[i].name for i in model.outputs]
        outs[profile] = Engine.from_bytes(data, profile=profile).trace(codes, names)
    for x86, arm in (("litert", "litert-arm64"), ("xnnpack", "xnnpack-arm64")):
        diff = {n: int(np.count_nonzero(outs[x86][n] != outs[arm][n])) for n in outs[x86]}
        assert diff["probs"] > 0, (x86, diff)
        if x86 == "litert":
            assert all(v == 0 for n, v in diff.items() if n != "probs"), diff


def test_verify_against_the_aarch64_runtimes(arm64, tmp_path):
    p = tmp_path / "k3.tflite"
    p.write_bytes(model_bytes("k3"))
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "verify", str(p), "--steps", "100",
                        "--against", "litert-arm64,xnnpack-arm64", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert set(res) == {"litert-arm64", "xnnpack-arm64"}
    for d in res.values():
        assert d["ok"] and d["teacher_forced"]["identical"] == 100
        assert d["free_running"]["identical"] == 100
