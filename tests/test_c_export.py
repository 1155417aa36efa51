"""C export, host build: the exported C99 engine (machine gcc, -Wall -Wextra -Werror) computes the
same probs, logits and delay-line writes as the Numba engine (profile tflm) at every step,
teacher-forced and free-running (PCG32 sampler, temperature 1 / table / greedy)."""

import argparse
import functools
import os
import shutil
import subprocess

import numpy as np
import pytest

from converters.convert import convert
from firmware_sim.c_export import KERNELS, export_c, register_export_c
from firmware_sim.emulate import (build_host_driver, driver_header, engine_reference,
                                  parse_driver_output)
from wavenet_edge.config import WaveNetConfig
from wavenet_edge.engine import Engine
from wavenet_edge.errors import ConfigError, ModelFileError, WaveNetEdgeError
from wavenet_edge.float_model import FloatWaveNet
from wavenet_edge.mulaw import encode_classes
from wavenet_edge.sampling import sampling_mode

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host C compiler (gcc)")

CONFIGS = {
    # kernel size 2, one-tap initial conv, no conditioning
    "k2": dict(dilations=(1, 2, 4, 8, 16, 1, 2), residual_channels=8, dilation_channels=12,
               skip_channels=16, end_channels=20),
    # kernel size 3, wide initial conv (3 taps), global conditioning, odd channel counts
    "k3": dict(dilations=(1, 2, 4, 1, 3), kernel_size=3, initial_filter_width=3,
               residual_channels=9, dilation_channels=7, skip_channels=13, end_channels=11,
               gc_cardinality=3, gc_channels=5, residual_scale=0.8),
}


def _codes(n, seed):
    t = np.arange(n) / 16000.0
    rng = np.random.default_rng(seed)
    y = 0.4 * np.sin(2 * np.pi * 210 * t) + 0.25 * np.sin(2 * np.pi * 530 * t + 1.0)
    y = y * (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t)) + 0.05 * rng.standard_normal(n)
    return encode_classes(np.clip(y, -1, 1))


@functools.lru_cache(maxsize=None)
def build_model(name, seed=0) -> bytes:
    """A converted random model with non-zero biases (int32 bias path)."""
    cfg = WaveNetConfig(**CONFIGS[name])
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed + 11)
    for k, a in m.weights.items():
        if k.endswith("/b") or k == "initial/bias":
            m.weights[k] = rng.normal(0.0, 0.1, a.shape)
    return convert(m, method="minmax", progress=False, evaluate_quality=False).tflite


@pytest.fixture(scope="module", params=list(CONFIGS))
def exported(request, tmp_path_factory):
    data = build_model(request.param)
    d = tmp_path_factory.mktemp(f"cexp-{request.param}")
    (d / "m.tflite").write_bytes(data)
    res = export_c(d / "m.tflite", d / "export", kernels="plain", temperature=0.8)
    return request.param, data, res, d


def _run(exe):
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = parse_driver_output(r.stdout)
    assert out.complete
    return out


def test_files_and_sizes(exported):
    name, data, res, d = exported
    assert set(res.files) == {"wavenet_model.h", "wavenet_model.c", "wavenet_engine.h",
                              "wavenet_engine.c", "README.md"}
    eng = Engine.from_bytes(data)
    assert all(os.stat(f).st_mode & 0o044 == 0o044 for f in res.files.values())
    assert res.macs_per_sample == eng.program.macs_per_sample
    assert res.state_bytes >= eng.program.arena_size + eng.program.ring_size
    assert res.flash_bytes > eng.program.wblob.size
    src = (d / "export" / "wavenet_engine.c").read_text()
    for banned in ("malloc", "printf", "free(", "#include <stdio.h>", "#include <stdlib.h>"):
        assert banned not in src
    assert "__ARM_FEATURE_MVE" in src and "__ARM_FEATURE_DSP" in src
    pcm = (d / "export" / "wavenet_model.c").read_text().split("wn_pcm16[256] = {")[1].split("}")[0]
    pcm = np.array([int(v) for v in pcm.replace("\n", " ").split(",")])
    np.testing.assert_array_equal(pcm, np.clip(np.round(eng.decode(np.arange(256)) * 32767.0),
                                               -32768, 32767))
    header = (d / "export" / "wavenet_model.h").read_text()
    assert f"WN_N_SPEAKERS {3 if name == 'k3' else 0}" in header


def test_teacher_forced_bit_exact(exported):
    """3000 teacher-forced steps: every step's probs, logits and delay-line writes."""
    name, data, res, d = exported
    eng = Engine.from_bytes(data, profile="tflm")
    codes = _codes(3000, 1)
    speaker = 2 if name == "k3" else None
    hdr = driver_header(codes, generate=False, speaker=speaker or 0, full_every=1,
                        write_bytes=sum(res.write_widths))
    out = _run(build_host_driver(d / "export", hdr, d, kernels="plain"))
    probs, logits, writes, hashes = engine_reference(eng, codes, speaker=speaker)
    np.testing.assert_array_equal(out.inputs, codes)
    np.testing.assert_array_equal(np.stack([out.full["P"][j] for j in range(len(codes))]), probs)
    np.testing.assert_array_equal(np.stack([out.full["L"][j] for j in range(len(codes))]), logits)
    np.testing.assert_array_equal(np.stack([out.full["W"][j] for j in range(len(codes))]), writes)
    np.testing.assert_array_equal(out.hashes, hashes)
    # the reference itself is the engine's teacher-forced output
    eng.reset()
    eng.speaker = speaker
    np.testing.assert_array_equal(eng.process(codes, logits=True), logits)


@pytest.mark.parametrize("temperature", [1.0, 0.8, 0.0])
def test_free_running_generation_bit_exact(exported, temperature):
    """The C sampler reproduces Engine.generate's codes for the same seed (and each step's outputs)."""
    name, data, res, d = exported
    n = 2000 if temperature == 1.0 else 600
    eng = Engine.from_bytes(data, profile="tflm")
    speaker = 1 if name == "k3" else None
    gen = eng.generate(n, seed=12345, temperature=temperature, speaker=speaker)
    mode, _ = sampling_mode(temperature, eng.program.logits_scale)
    first = eng.silence_code()
    hdr = driver_header([first] * n, generate=True, seed=12345, sampling_mode=mode,
                        speaker=speaker or 0, full_every=97, write_bytes=sum(res.write_widths))
    gd = d / f"gen{temperature}"
    gd.mkdir(exist_ok=True)
    # the export embeds the weight table of its temperature (the fixture's is 0.8)
    export_c(d / "m.tflite", gd / "export", kernels="plain", temperature=temperature)
    out = _run(build_host_driver(gd / "export", hdr, gd, kernels="plain"))
    np.testing.assert_array_equal(out.sampled, gen)
    inputs = np.concatenate([[first], gen[:-1]])
    np.testing.assert_array_equal(out.inputs, inputs)
    probs, logits, writes, hashes = engine_reference(eng, inputs, speaker=speaker)
    np.testing.assert_array_equal(out.hashes, hashes)
    for j, v in out.full["L"].items():
        np.testing.assert_array_equal(v, logits[j])
        np.testing.assert_array_equal(out.full["W"][j], writes[j])
    assert len(out.full["L"]) == (n + 96) // 97


def test_cross_compiles_warning_free_every_variant(exported, tmp_path):
    from firmware_sim.qemu import CORES, toolchain_status
    if toolchain_status() is not None:
        pytest.skip(toolchain_status())
    name, _, res, d = exported
    if name != "k3":
        pytest.skip("one configuration is enough for the compile matrix")
    ok = {"cortex-m4": (0, 1, 2), "cortex-m7": (0, 1, 2), "cortex-m55": (0, 1, 2, 3)}
    for core, c in CORES.items():
        for k in (0, 1, 2, 3):
            cmd = ["arm-none-eabi-gcc", *c["flags"], "-mthumb", "-O2", "-std=c99", "-Wall",
                   "-Wextra", "-Werror", "-pedantic-errors", f"-DWN_KERNELS={k}",
                   f"-I{d / 'export'}", "-c", str(d / "export" / "wavenet_engine.c"),
                   "-o", str(tmp_path / "e.o")]
            r = subprocess.run(cmd, capture_output=True, text=True)
            assert (r.returncode == 0) == (k in ok[core]), (core, k, r.stderr[:400])
            if k not in ok[core]:
                assert "needs" in r.stderr   # our own #error, not a compiler crash
        r = subprocess.run(["arm-none-eabi-gcc", *c["flags"], "-mthumb", "-O2", "-std=c99", "-Wall",
                            "-Wextra", "-Werror", f"-I{d / 'export'}", "-c",
                            str(d / "export" / "wavenet_model.c"), "-o", str(tmp_path / "m.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[:400]


def test_host_pedantic_build(exported, tmp_path):
    _, _, _, d = exported
    r = subprocess.run(["gcc", "-std=c99", "-pedantic-errors", "-Wall", "-Wextra", "-Werror", "-O2",
                        f"-I{d / 'export'}", "-c", str(d / "export" / "wavenet_engine.c"),
                        str(d / "export" / "wavenet_model.c")], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[:400]


def test_errors(tmp_path):
    with pytest.raises(ConfigError):
        export_c(b"", tmp_path, kernels="neon")
    with pytest.raises(ModelFileError):
        export_c(tmp_path / "missing.tflite", tmp_path / "out")
    with pytest.raises(ModelFileError):
        export_c(b"not a flatbuffer at all", tmp_path / "out")
    (tmp_path / "file").write_text("x")
    data = build_model("k2")
    with pytest.raises(WaveNetEdgeError):
        export_c(data, tmp_path / "file")
    with pytest.raises(ConfigError):
        export_c(data, tmp_path / "o", temperature=-1.0)
    assert set(KERNELS) == {"auto", "plain", "dsp", "mve"}


def test_cli_export_c(exported, tmp_path, capsys):
    _, _, res, d = exported
    ap = argparse.ArgumentParser()
    register_export_c(ap.add_subparsers())
    args = ap.parse_args(["export-c", str(d / "m.tflite"), str(tmp_path / "cli"),
                          "--kernels", "dsp"])
    assert args.func(args) == 0
    assert "MACs/sample" in capsys.readouterr().out
    h = (tmp_path / "cli" / "wavenet_model.h").read_text()
    assert "#define WN_KERNELS 2" in h
    assert (tmp_path / "cli" / "wavenet_engine.c").read_text() == \
        (d / "export" / "wavenet_engine.c").read_text()


def test_cli_export_c_output_option_and_default_name(exported, tmp_path, capsys, monkeypatch):
    # -o DIR as in the README; without any directory the name derives from the model's
    _, _, _, d = exported
    ap = argparse.ArgumentParser()
    register_export_c(ap.add_subparsers())
    args = ap.parse_args(["export-c", str(d / "m.tflite"), "-o", str(tmp_path / "dash-o")])
    assert args.func(args) == 0
    assert (tmp_path / "dash-o" / "wavenet_engine.c").read_text() == \
        (d / "export" / "wavenet_engine.c").read_text()
    monkeypatch.chdir(tmp_path)
    args = ap.parse_args(["export-c", str(d / "m.tflite")])
    assert args.func(args) == 0
    assert (tmp_path / "m-c" / "wavenet_model.h").exists()
    args = ap.parse_args(["export-c", str(d / "m.tflite"), "a", "-o", "b"])
    with pytest.raises(ConfigError, match="two output directories"):
        args.func(args)
    capsys.readouterr()


def test_sanitized_host_build_is_clean(exported):
    """AddressSanitizer + UndefinedBehaviorSanitizer: no out-of-bounds access, no undefined
    shift/overflow anywhere in the engine or sampler over 500 steps (and still bit-exact)."""
    name, data, res, d = exported
    codes = _codes(500, 4)
    speaker = 1 if name == "k3" else None
    hdr = driver_header(codes, generate=False, speaker=speaker or 0, full_every=50,
                        write_bytes=sum(res.write_widths))
    (d / "san").mkdir(exist_ok=True)
    try:
        exe = build_host_driver(d / "export", hdr, d / "san", kernels="plain",
                                extra_flags=["-fsanitize=address,undefined",
                                             "-fno-sanitize-recover=all", "-g"])
    except WaveNetEdgeError as e:
        pytest.skip(f"host gcc cannot build with sanitizers here ({e})")
    out = _run(exe)
    _, _, _, hashes = engine_reference(Engine.from_bytes(data), codes, speaker=speaker)
    np.testing.assert_array_equal(out.hashes, hashes)
