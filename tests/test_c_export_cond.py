"""The C export of a vocoder (a locally conditioned model): the frame program as a second
record list (``wn_frame``), the step with its cond row (``wn_step_cond`` / ``wn_set_cond``), the
host quantizing the features.  Bit-exact with the engine (profile tflm) at every step — host gcc
for the conv-in (F = 1 and 3), plain and no-upsampler cases, real QEMU firmware on Cortex-M4/M7/M55 in every kernel variant —
across several frames and both edges, teacher-forced and free-running; the conditioning
changes the outputs; memory figures equal what gcc lays out; the CLI exports a vocoder."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest

from firmware_sim.c_export import COND_FILES, export_c, frame_state_bytes, quantize_features
from firmware_sim.emulate import (KERNELS_FOR_CORE, build_host_driver, check_undefined_behaviour,
                                  default_features, driver_header, emulate, engine_reference,
                                  parse_driver_output)
from firmware_sim.qemu import toolchain_status
from wavenet_edge import FloatWaveNet, WaveNetConfig
from wavenet_edge.engine import Engine

NET = dict(dilations=(1, 2, 4, 8, 1, 2, 4, 8), residual_channels=8, dilation_channels=8,
           skip_channels=16, end_channels=16)
CASES = {
    # r9y9's ConvInUpsampleNetwork: K = 3 frames per call, hop 16
    "conv-in": dict(cin_channels=5, upsampler="conv-in", upsample_scales=(4, 4), cin_pad=1),
    # plain UpsampleNetwork with a speaker, kernel 3
    "plain-gc": dict(cin_channels=4, upsampler="plain", upsample_scales=(4, 4), cin_pad=1,
                     gc_cardinality=3, gc_channels=3, kernel_size=3),
    # features at sample rate: no frame program, the host quantizes each row
    "none": dict(cin_channels=6),
    # freq_axis_kernel_size 3: the band-window frame graph (edge-band FCs, SLICE as COPY rows)
    "conv-in-F3": dict(cin_channels=7, upsampler="conv-in", upsample_scales=(4, 4), cin_pad=1,
                       freq_axis_kernel_size=3),
}
CLIP = 2400
#: sizeof of the vocoder's state structs and of every const array of a plain-C build
PROBE = r"""
#include <stdio.h>
#include "wavenet_cond.h"
#include "wavenet_model.c"
int main(void)
{
    printf("%u %u %u\n", (unsigned)sizeof(wn_state), (unsigned)sizeof(wn_frame_state),
           (unsigned)(sizeof wn_ops + sizeof wn_dl_reads + sizeof wn_dl_writes + sizeof wn_weights
                      + sizeof wn_bias + sizeof wn_mult + sizeof wn_shift + sizeof wn_iparams
                      + sizeof wn_luts + sizeof wn_softmax_exp + sizeof wn_pcm16
                      + sizeof wn_sample_table + sizeof wn_frame_ops + sizeof wn_frame_reads
                      + sizeof wn_frame_writes + sizeof wn_frame_weights + sizeof wn_frame_bias
                      + sizeof wn_frame_mult + sizeof wn_frame_shift + sizeof wn_frame_iparams));
    return 0;
}
"""


def _clip(seed, n=CLIP):
    t = np.arange(n)
    return 0.5 * np.sin(2 * np.pi * t / 37.0) + 0.1 * np.random.default_rng(seed).normal(size=n)


@functools.lru_cache(maxsize=None)
def vocoder(case: str) -> bytes:
    from converters.convert import convert
    cfg = WaveNetConfig(**NET, **CASES[case])
    m = FloatWaveNet.initialize(cfg, seed=3)
    rng = np.random.default_rng(3)
    for k in m.weights:
        if k.startswith("upsample/") and k != "upsample/conv_in/w":
            m.weights[k] = rng.normal(size=m.weights[k].shape) * 0.4
        if "/cond_" in k:
            m.weights[k] = m.weights[k] * 2.0         # conditioning that matters
    feats = []
    for s in range(2):
        r = np.random.default_rng(10 + s)
        n = cfg.frames_for(CLIP) if cfg.upsampler != "none" else CLIP
        feats.append(np.cumsum(r.normal(0, 0.4, (n, cfg.cin_channels)), axis=0) * 0.5)
    return convert(m, calibration=[_clip(0), _clip(1)], features=feats, method="minmax",
                   progress=False, evaluate_quality=False).tflite


def _codes(n, seed=5):
    t = np.arange(n)
    y = 0.5 * np.sin(t / 7.0) + 0.1 * np.random.default_rng(seed).normal(size=n)
    return ((np.clip(y, -1, 1) + 1) * 127.5).astype(np.int64).clip(0, 255)


def _steps(eng):
    """Several frames past the start edge and the look-ahead: 3 hops + the look-ahead + 2."""
    fr = eng._shared.frames
    if fr is None:
        return 48
    return (3 + fr[0].lookahead_frames + 2) * eng.config.hop


def _host(d, eng, codes, feats, *, generate=False, seed=0, speaker=0):
    exp = export_c(eng, d / "export", kernels="plain")
    hdr = driver_header(codes, generate=generate, seed=seed, speaker=speaker, full_every=1,
                        write_bytes=sum(exp.write_widths),
                        frames=quantize_features(exp.program, feats))
    exe = build_host_driver(d / "export", hdr, d, kernels="plain")
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = parse_driver_output(r.stdout)
    assert out.complete
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_host_teacher_forced_and_free_running_bit_exact(case, tmp_path):
    eng = Engine(vocoder(case), profile="tflm")
    n = _steps(eng)
    spk = 2 if eng.config.has_gc else None
    codes = _codes(n)
    feats = default_features(eng, n)
    out = _host(tmp_path, eng, codes, feats, speaker=spk or 0)
    probs, logits, writes, hashes = engine_reference(eng, codes, speaker=spk, cond=feats)
    np.testing.assert_array_equal(np.stack([out.full["L"][j] for j in range(n)]), logits)
    np.testing.assert_array_equal(np.stack([out.full["P"][j] for j in range(n)]), probs)
    np.testing.assert_array_equal(np.stack([out.full["W"][j] for j in range(n)]), writes)
    np.testing.assert_array_equal(out.hashes, hashes)
    # the reference is the engine's process(cond=...) itself
    eng.reset()
    eng.speaker = spk
    np.testing.assert_array_equal(eng.process(codes, cond=feats, logits=True), logits)
    # other features: other logits (the cond path is live), in C as in the engine (conv-in)
    other = feats[::-1].copy()
    l2 = engine_reference(eng, codes, speaker=spk, cond=other)[1]
    assert np.mean(l2 != logits) > 0.3
    if case == "conv-in":
        out2 = _host(tmp_path, eng, codes, other, speaker=spk or 0)
        np.testing.assert_array_equal(np.stack([out2.full["L"][j] for j in range(n)]), l2)
    # free-running: the device's sampler gives Engine.generate's codes for the same seed
    eng.reset()
    eng.speaker = spk
    gen = eng.generate(n, seed=77, cond=feats)
    first = eng.silence_code()
    out3 = _host(tmp_path, eng, [first] * n, feats, generate=True, seed=77, speaker=spk or 0)
    np.testing.assert_array_equal(out3.sampled, gen)
    assert len(np.unique(gen)) > 5


def test_export_files_memory_and_sizes(tmp_path):
    """The vocoder's files, macros and memory figures; sizeof(wn_state)/sizeof(wn_frame_state)
    and the const arrays as host gcc lays them out."""
    data = vocoder("conv-in")
    eng = Engine(data, profile="tflm")
    res = export_c(eng, tmp_path / "export")
    assert set(COND_FILES) <= set(res.files)
    fp = eng._shared.frames[0]
    assert res.hop == eng.config.hop == 16 and res.frame_macs == fp.program.macs_per_sample > 0
    h = (tmp_path / "export" / "wavenet_model.h").read_text()
    for macro in (f"WN_HOP {fp.hop}", f"WN_FRAME_K {fp.frames_per_call}",
                  f"WN_FRAME_BLOCK_DELAY {fp.block_delay}", "WN_HAS_FRAMES 1",
                  f"WN_COND_CHANNELS {fp.channels}", f"WN_FEATURE_ZERO_POINT "
                  f"{fp.feature_zero_point}"):
        assert macro in h, macro
    prog = tmp_path / "probe.c"
    prog.write_text(PROBE)
    exe = tmp_path / "probe"
    ed = tmp_path / "export"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-DWN_KERNELS=1",
                    f"-I{ed}", str(prog), str(ed / "wavenet_engine.c"), str(ed / "wavenet_cond.c"),
                    "-o", str(exe)], check=True)
    st, fst, flash = map(int, subprocess.run([str(exe)], capture_output=True, text=True,
                                             check=True).stdout.split())
    assert st == res.state_bytes
    assert fst == res.frame_state_bytes == frame_state_bytes(res.program) > fp.program.arena_size
    assert flash == res.flash_bytes > fp.program.wblob.size + eng.program.wblob.size
    assert "wn_frame" in (tmp_path / "export" / "README.md").read_text()


def test_cli_exports_a_vocoder(tmp_path):
    (tmp_path / "voc.tflite").write_bytes(vocoder("conv-in"))
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "export-c",
                        str(tmp_path / "voc.tflite"), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "frame program" in r.stdout and "wavenet_cond.c" in r.stdout
    assert (tmp_path / "out" / "wavenet_cond.c").exists()


needs_qemu = pytest.mark.skipif(toolchain_status() is not None, reason=str(toolchain_status()))


@pytest.fixture(scope="module")
def teacher():
    """Real firmware, every core x kernel variant, teacher-forced over 3 hops + the look-ahead."""
    eng = Engine(vocoder("conv-in"), profile="tflm")
    n = _steps(eng)
    return eng, n, emulate(vocoder("conv-in"), steps=n, codes=_codes(n, 9), full_every=4,
                           bench=None, profile_ops=False, cycle_classes=False,
                           repeat_check=False)


@pytest.mark.emulate
@needs_qemu
def test_qemu_teacher_forced_every_core_and_variant(teacher):
    """Every step's hash, full vectors every 4th step; the frame calls are counted apart from
    the step."""
    eng, n, rep = teacher
    want = [(c, k) for c, ks in KERNELS_FOR_CORE.items() for k in ks]
    assert [(r.core, r.kernels) for r in rep.runs] == want
    fp = eng._shared.frames[0]
    for r in rep.runs:
        assert r.bitexact_steps == r.steps == n, (r.core, r.kernels)
        assert r.full_vectors_checked >= n // 4
        assert r.hop == 16 and r.frame_calls == n // 16 + fp.block_delay
        assert 0 < r.frame_instructions_per_call < r.instructions_per_sample
        assert r.total_instructions_per_sample > r.instructions_per_sample
    assert rep.ok
    assert "frame program" in rep.table()


@pytest.mark.emulate
@needs_qemu
def test_qemu_free_running_plain_upsampler_with_speaker():
    """Free-running on the device with the same seed: the engine's codes, best variant per
    core (plain upsampler, speaker 1)."""
    rep = emulate(vocoder("plain-gc"), steps=96, seed=5, speaker=1, kernels="auto",
                  full_every=8, bench=None, profile_ops=False, cycle_classes=False,
                  repeat_check=False)
    assert len(rep.runs) == 3 and "free-running" in rep.mode
    for r in rep.runs:
        assert r.codes_match and r.bitexact_steps == r.steps == 96, (r.core, r.kernels)


@pytest.mark.emulate
@needs_qemu
def test_qemu_undefined_behaviour_vocoder():
    """Trapping UBSan builds of the vocoder (frame program included) run clean and bit-exact."""
    # plain C (wavenet_cond.c is plain C in every variant) and MVE (wn_fc on odd shapes)
    runs = check_undefined_behaviour(vocoder("conv-in"), cores=("cortex-m55",),
                                     kernels=("plain", "mve"), steps=40)
    assert len(runs) == 2
    assert all(r.ok for r in runs), [(r.core, r.kernels, r.bitexact_steps) for r in runs]


def _simulate(**kw):
    from firmware_sim.simulate import simulate
    return simulate(vocoder("conv-in"), targets=["stm32h743", "alif-e3-hp"], check_bitexact=False,
                    plan=False, **kw)


def test_simulate_counts_the_frame_work_per_sample():
    """simulate's text and JSON report the frame graph's MACs per frame / hop and the step's
    cond QUANTIZE; the TFLM latency and our C engine's estimate include the frame work, the C
    memory the frame program's arrays and state."""
    import json
    eng = Engine(vocoder("conv-in"), profile="tflm")
    fp = eng._shared.frames[0]
    rep = _simulate()
    k = json.loads(rep.to_json())["conditioning"]
    assert k["hop"] == 16 and k["frame_macs_per_call"] == fp.program.macs_per_sample
    assert k["frame_macs_per_sample"] == pytest.approx(fp.program.macs_per_sample / 16, abs=0.01)
    assert k["step_macs_per_sample"] == eng.program.macs_per_sample
    assert k["cond_quantize_ops"] == len(eng.config.dilations)
    assert k["cond_quantize_elements_per_sample"] == 5 * len(eng.config.dilations)
    assert k["cond_macs_per_sample"] == eng.config.macs_breakdown()["cond_per_sample"] > 0
    assert k["total_macs_per_sample"] == pytest.approx(
        eng.program.macs_per_sample + fp.program.macs_per_sample / 16, abs=0.01)
    txt = rep.table()
    assert "frame graph once per 16 samples" in txt and "cond QUANTIZE" in txt
    for r in rep.results:
        assert r.latency.breakdown["frame_graph"] > 0
        assert "frame program" in r.c_export[1].detail
        assert any("frame program" in n for n in r.c_memory.notes)


@pytest.mark.emulate
@needs_qemu
def test_simulate_with_emulation_adds_the_measured_frame_work(teacher):
    _, _, emu = teacher
    rep = _simulate(emulation=emu)
    base = _simulate()
    for r, b in zip(rep.results, base.results):
        est = r.c_export[1]
        assert est.source == "measured" and "frame program measured in QEMU" in est.detail
        run = min((x for x in emu.runs if x.core == {"stm32h743": "cortex-m7",
                                                     "alif-e3-hp": "cortex-m55"}[r.target.name]),
                  key=lambda x: x.instructions_per_sample)
        want = (run.instructions_per_sample + run.sample_logits_instructions
                + run.frame_instructions_per_sample)
        assert est.instructions_per_sample == pytest.approx(want)
        assert b.c_export[1].source == "stored"


def test_a_frame_row_the_c_cannot_run_is_a_one_line_error(tmp_path, monkeypatch):
    """What the frame interpreter does not know (here: COPY, by narrowing its kinds) is refused
    with one line naming the file and the row kind, and no output directory."""
    import firmware_sim.c_export as cx
    from wavenet_edge.errors import ModelFileError
    from wavenet_edge.lowered import OpKind
    (tmp_path / "voc.tflite").write_bytes(vocoder("conv-in"))
    monkeypatch.setattr(cx, "FRAME_KINDS", (OpKind.FC,))
    with pytest.raises(ModelFileError) as e:
        export_c(tmp_path / "voc.tflite", tmp_path / "out")
    msg = str(e.value)
    assert "voc.tflite" in msg and "COPY" in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()
