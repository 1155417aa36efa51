"""Every front door takes a ``.tflite`` path, its bytes, a parsed model or an Engine through one
normalizer (wavenet_edge.tflite_file.load_model), and speaks one vocabulary of profiles: an
unknown name raises UnknownProfileError, listing the known ones, wherever it is given."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import firmware_sim
from converters import ContractHost, make_runner
from test_engine_helpers import model_bytes
from wavenet_edge import PROFILES, Engine, load_model, read_tflite
from wavenet_edge.errors import ConfigError, UnknownProfileError
from wavenet_edge.int8.requant import profile_id
from wavenet_edge.profiles import resolve_profile

FORMS = ("path", "bytes", "parsed", "engine")


@pytest.fixture(scope="module")
def data():
    return model_bytes("k2")


@pytest.fixture(scope="module")
def path(data, tmp_path_factory):
    p = tmp_path_factory.mktemp("doors") / "k2.tflite"
    p.write_bytes(data)
    return p


def _as(form, data, path):
    return {"path": lambda: path, "bytes": lambda: data,
            "parsed": lambda: read_tflite(data), "engine": lambda: Engine.from_bytes(data)}[form]()


def test_load_model_normalizes_every_form(data, path):
    for form in FORMS:
        m = load_model(_as(form, data, path))
        assert m.data == data and len(m.operators) == len(read_tflite(data).operators), form
    assert load_model(path).name == str(path)
    with pytest.raises(ConfigError, match="got int"):
        load_model(42)


def test_check_bitexact_takes_every_form(data, path):
    got = {f: firmware_sim.check_bitexact(_as(f, data, path), steps=30, runtime="litert")
           for f in FORMS}
    for f, r in got.items():
        assert r.ok and r.teacher_forced_identical == 30 and r.free_running_identical == 30, f
    assert got["path"].to_dict() == got["bytes"].to_dict() | {"audio": got["path"].audio}


def test_contract_host_and_runner_take_every_form(data, path):
    codes = np.random.default_rng(0).integers(0, 256, 20)
    want = ContractHost(data, "litert").run(codes)["logits"]
    for f in FORMS:
        np.testing.assert_array_equal(ContractHost(_as(f, data, path), "litert").run(codes)["logits"],
                                      want, err_msg=f)
        assert make_runner(_as(f, data, path), "litert-ref").runtime == "litert-ref"


def test_simulate_takes_every_form(data, path):
    target = next(iter(firmware_sim.builtin_targets()))
    reps = [firmware_sim.simulate(_as(f, data, path), targets=[target], check_bitexact=False,
                                  seconds=0.05) for f in FORMS]
    for r in reps:
        assert r.model_bytes == len(data) and r.counts == reps[0].counts
        assert r.delay_lines == reps[0].delay_lines and r.arena == reps[0].arena


def test_export_c_takes_every_form(data, path, tmp_path):
    outs = []
    for f in FORMS:
        res = firmware_sim.export_c(_as(f, data, path), tmp_path / f)
        outs.append({n: open(p).read() for n, p in res.files.items()})
    assert all(o == outs[0] for o in outs)


def test_engine_takes_every_form(data, path):
    codes = np.random.default_rng(1).integers(0, 256, 25)
    want = Engine.from_bytes(data).process(codes)
    for f in FORMS:
        np.testing.assert_array_equal(Engine(_as(f, data, path)).process(codes), want, err_msg=f)
    np.testing.assert_array_equal(Engine.from_file(path).process(codes), want)


@pytest.mark.parametrize("door", ["check_bitexact", "simulate", "export_c", "emulate",
                                  "ContractHost", "make_runner", "Engine"])
def test_a_wrong_type_is_a_clear_error(door, tmp_path):
    call = {"check_bitexact": lambda: firmware_sim.check_bitexact(3.5),
            "simulate": lambda: firmware_sim.simulate(3.5),
            "export_c": lambda: firmware_sim.export_c(3.5, tmp_path),
            "emulate": lambda: firmware_sim.emulate(3.5, steps=1),
            "ContractHost": lambda: ContractHost(3.5),
            "make_runner": lambda: make_runner(3.5),
            "Engine": lambda: Engine(3.5)}[door]
    with pytest.raises(ConfigError, match="a .tflite path, its bytes, a TFLiteModel or an Engine"):
        call()


# -- one vocabulary of profiles -----------------------------------------------------------------
def test_profile_names_are_the_runtime_names():
    from converters.interpreters import RUNTIMES
    assert set(RUNTIMES) <= set(PROFILES)
    assert resolve_profile("litert-default") == "xnnpack"      # the old verify name, an alias
    assert "litert-default" not in RUNTIMES


@pytest.mark.parametrize("where", ["resolve_profile", "profile_id", "check_bitexact runtime",
                                   "check_bitexact profile", "simulate", "ContractHost",
                                   "make_runner"])
def test_unknown_profile_is_one_error_everywhere(where, data):
    call = {"resolve_profile": lambda: resolve_profile("onnx"),
            "profile_id": lambda: profile_id("onnx"),
            "check_bitexact runtime": lambda: firmware_sim.check_bitexact(data, runtime="onnx"),
            "check_bitexact profile": lambda: firmware_sim.check_bitexact(data, profile="onnx"),
            "simulate": lambda: firmware_sim.simulate(data, engine_profile="onnx"),
            "ContractHost": lambda: ContractHost(data, "onnx"),
            "make_runner": lambda: make_runner(data, "onnx")}[where]
    with pytest.raises(UnknownProfileError, match=r"unknown profile 'onnx'; known: tflm, litert"):
        call()


@pytest.mark.parametrize("args", [["verify", "{m}", "--against", "tflm,onnx"],
                                  ["verify", "{m}", "--engine-profile", "onnx"],
                                  ["simulate", "{m}", "--engine-profile", "onnx"],
                                  ["generate", "{m}", "--profile", "onnx", "-o", "{m}.wav"],
                                  ["score", "{m}", "{m}", "--profile", "onnx"]])
def test_cli_names_the_known_profiles(args, path):
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", *[a.format(m=path) for a in args]],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unknown profile 'onnx'; known: tflm, litert, litert-ref, xnnpack" in r.stderr
