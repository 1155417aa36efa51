"""The portable build: CPU features come from numba's target (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES),
never from the host CPUID, so ``NUMBA_CPU_NAME=generic`` compiles and stays bit-exact."""

import json
import os
import subprocess
import sys

import pytest

from test_engine_helpers import model_bytes


def _env(**overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    env.update(overrides)
    return env


def _probe(**env):
    code = ("import json, llvmlite.binding as ll; from wavenet_edge import _cpu, _engine_kernels as K;"
            "print(json.dumps([_cpu.HAS_VNNI, _cpu.HAS_VBMI, K.HAS_VNNI, K.HAS_VBMI,"
            " _cpu.target_cpu_name(), ll.get_host_cpu_features().flatten()]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(**env))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_generic_target_has_no_avx512_paths():
    vnni, vbmi, kvnni, kvbmi, name, _ = _probe(NUMBA_CPU_NAME="generic")
    assert (vnni, vbmi, kvnni, kvbmi, name) == (False, False, False, False, "generic")


def test_explicit_feature_string_is_what_counts():
    feats = "+avx512f,+avx512bw,+avx512vnni,+avx512vbmi"
    assert _probe(NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES=feats)[:4] == [True] * 4
    # the last mention of a feature wins, as in LLVM
    assert _probe(NUMBA_CPU_FEATURES=feats + ",-avx512vnni")[:4] == [False, True, False, True]
    # a named CPU without a feature string: implied features are not assumed (portable paths)
    assert _probe(NUMBA_CPU_NAME="skylake-avx512", NUMBA_CPU_FEATURES="")[:2] == [False, False]


def test_host_target_follows_the_host_features():
    vnni, vbmi, kvnni, kvbmi, _, host = _probe()
    on = {f[1:] for f in host.split(",") if f.startswith("+")}
    assert vnni == kvnni == ("avx512vnni" in on)
    assert vbmi == kvbmi == ("avx512vbmi" in on)


@pytest.fixture(scope="module")
def k3_model(tmp_path_factory):
    # the suite's shared kernel-3 model (tests/test_engine_helpers.CONFIGS["k3"])
    p = tmp_path_factory.mktemp("portable") / "k3.tflite"
    p.write_bytes(model_bytes("k3"))
    return p


def test_verify_on_the_generic_target_is_bit_exact(k3_model):
    """``NUMBA_CPU_NAME=generic wavenet-edge verify`` used to abort in LLVM (exit 134)."""
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "verify", str(k3_model), "--steps",
                        "200", "--against", "tflm,litert", "--json"], capture_output=True,
                       text=True, env=_env(NUMBA_CPU_NAME="generic"))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert set(res) == {"tflm", "litert"}
    for d in res.values():
        assert d["ok"] and d["teacher_forced"]["identical"] == 200
        assert d["free_running"]["identical"] == 200
