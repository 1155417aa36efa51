"""firmware_sim: memory figures, op counts, TFLM arena, bit-exactness and the simulate() front door
on small spec graphs built by the real converter pipeline (no mocks: TFLM is the oracle)."""

import json

import numpy as np
import pytest

from wavenet_edge import WaveNetConfig, preset
from wavenet_edge.errors import ConfigError, MismatchError, ModelFileError
from wavenet_edge.tflite_file import read_tflite

from firmware_sim.arena import arena_fits, measure_arena
from firmware_sim.bitexact import check_bitexact
from firmware_sim.latency import JitterModel
from firmware_sim.memory import (RUNTIME_FLASH_BYTES, STACK_SRAM_BYTES, delay_line_bytes_for_config,
                                 delay_lines_from_metadata, memory_budget, shrink_suggestions)
from firmware_sim.opcount import contract_metadata, count_ops
from firmware_sim.simulate import simulate
from firmware_sim.targets import select_targets

SMALL = WaveNetConfig(dilations=(1, 2, 4, 8), residual_channels=8, dilation_channels=8,
                      skip_channels=16, end_channels=16)
# kernel 3 (one write feeds delays d and 2d), initial width 3 (summing FC), global conditioning
K3 = WaveNetConfig(dilations=(1, 2), kernel_size=3, initial_filter_width=3, residual_channels=4,
                   dilation_channels=4, skip_channels=8, end_channels=8, gc_cardinality=2,
                   gc_channels=3)


def build_graph(cfg, seed=0) -> bytes:
    """A calibrated spec step graph from the converter's own pipeline (random float weights)."""
    from converters.calibrate import choose_ranges, collect_statistics
    from converters.canonical import canonicalize
    from converters.export import build_step_graph
    from converters.quantize import activation_plan
    from wavenet_edge import FloatWaveNet

    m = canonicalize(FloatWaveNet.initialize(cfg, seed=seed))
    clips = [np.random.default_rng(seed).integers(0, 256, 300)]
    speakers = [1] if cfg.has_gc else None
    st = collect_statistics(m, clips, speakers=speakers, progress=False)
    return build_step_graph(m, activation_plan(cfg, choose_ranges(st, "minmax")))


@pytest.fixture(scope="module")
def small():
    return build_graph(SMALL)


@pytest.fixture(scope="module")
def k3():
    return build_graph(K3)


@pytest.fixture(autouse=True)
def _cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# -- memory ---------------------------------------------------------------------------------------
def test_delay_lines_hand_computed(small, k3):
    def lines(data):
        m = read_tflite(data)
        return delay_lines_from_metadata(contract_metadata(m),
                                         lambda n: int(np.prod(m.tensor(n).shape)))

    s = lines(small)
    assert s.ring_bytes == s.per_read_bytes == (1 + 2 + 4 + 8) * 8 == 120
    k = lines(k3)
    # layers: one ring per layer input, length 2d: (2·1 + 2·2)·4; initial taps: delays 2 and 1
    assert k.ring_bytes == (2 + 4) * 4 + (2 + 1) * 4 == 36
    # one queue per read instead: delays d and 2d both stored
    assert k.per_read_bytes == (1 + 2 + 2 + 4) * 4 + (2 + 1) * 4 == 48
    assert k.n_reads == 6 and k.n_writes == 4
    assert k.ring_bytes == K3.delay_line_bytes() and s.ring_bytes == SMALL.delay_line_bytes()


def test_tensorflow_wavenet_delay_lines():
    cfg = preset("tensorflow-wavenet")
    # 5 blocks of 1..512 (sum 1023), R = 32, kernel 2; initial width 32: taps 1..31
    assert delay_line_bytes_for_config(cfg) == 5 * 1023 * 32 + sum(range(32)) * 32 == 179552


def test_memory_budget_arithmetic(small):
    t = {x.name: x for x in select_targets()}["stm32f446"]
    mb = memory_budget(t, model_bytes=len(small), delay_line_bytes=120, arena_bytes=14272,
                       fifo_samples=256)
    assert mb.flash_bytes == -(-len(small) // 16) * 16 + RUNTIME_FLASH_BYTES
    assert mb.sram_bytes == 120 + 14272 + STACK_SRAM_BYTES + 512
    assert mb.sram_headroom == 128 * 1024 - mb.sram_bytes and mb.fits
    tiny = memory_budget(t, model_bytes=len(small), delay_line_bytes=200_000, arena_bytes=14272)
    assert not tiny.fits_sram and tiny.fits_flash and not tiny.fits


def test_shrink_suggestions_tensorflow_wavenet_on_f446():
    cfg = preset("tensorflow-wavenet")
    t = {x.name: x for x in select_targets()}["stm32f446"]
    mb = memory_budget(t, model_bytes=1_900_000, delay_line_bytes=cfg.delay_line_bytes(),
                       arena_bytes=30_000)
    assert not mb.fits
    sug = {s["change"]: s for s in shrink_suggestions(cfg, mb)}
    half = sug["residual_channels 32 -> 16"]
    assert half["delay_line_bytes"] == 179552 // 2
    blocks = sug["dilation blocks 5 -> 4"]
    assert blocks["delay_line_bytes"] == 4 * 1023 * 32 + sum(range(32)) * 32
    assert all(s["flash_bytes_est"] > RUNTIME_FLASH_BYTES for s in sug.values())


# -- op counts ------------------------------------------------------------------------------------
def test_op_counts_match_graph_and_config(small, k3):
    c = count_ops(read_tflite(small))
    fc = [t for t in read_tflite(small).operators if t.opcode == "FULLY_CONNECTED"]
    m = read_tflite(small)
    assert c.macs == sum(int(np.prod(m.tensors[o.inputs[1]].shape)) for o in fc)
    assert c.macs == SMALL.macs_per_sample()
    L, G = SMALL.n_layers, SMALL.dilation_channels
    cats = c.by_category()
    assert cats["transcendental"]["elements"] == 2 * L * G
    assert cats["mul"]["elements"] == L * G
    assert cats["add"]["elements"] == (L - 1) * SMALL.residual_channels
    assert cats["softmax"]["elements"] == 256
    assert c.delay_read_bytes == c.delay_write_bytes == L * SMALL.residual_channels
    ck = count_ops(read_tflite(k3))
    # the graph sums the w initial taps with an [R, w·R] FC (R·w·R MACs); the config counts w·R adds
    w, R = K3.initial_filter_width, K3.residual_channels
    assert ck.macs == K3.macs_per_sample() - w * R + w * R * R
    assert ck.delay_read_bytes == 6 * R and ck.delay_write_bytes == 4 * R


def test_not_a_step_graph_is_rejected(small):
    from converters.tflite_writer import GraphBuilder
    b = GraphBuilder()
    x = b.add_tensor("x", [1, 4], np.int8, scale=0.1, zero_point=0)
    y = b.add_tensor("y", [1, 4], np.int8, scale=0.1, zero_point=0)
    b.add_operator("RELU", [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    with pytest.raises(ModelFileError, match="wavenet_edge"):
        count_ops(read_tflite(b.build()))


# -- arena ----------------------------------------------------------------------------------------
def test_arena_is_the_smallest_that_runs_in_tflm(small):
    r = measure_arena(small)
    a = r["arena_bytes"]
    assert arena_fits(small, a) and arena_fits(small, r["arena_bytes_aligned"])
    assert not arena_fits(small, a - 1) and not arena_fits(small, a - 16)
    again = measure_arena(small)
    assert again["cached"] and again["arena_bytes"] == a


# -- bit-exactness --------------------------------------------------------------------------------
def test_bitexact_teacher_forced_and_free_running(k3):
    r = check_bitexact(k3, steps=150, seed=3)
    assert r.ok, r.message()
    assert r.teacher_forced_identical == 150 and r.free_running_identical == 150
    assert {"probs", "logits", "layer00/input", "initial/contrib0"} <= set(r.compared)


def test_bitexact_reports_first_difference(small):
    # the LiteRT arithmetic profile genuinely differs from TFLM's on this graph
    r = check_bitexact(small, steps=300, profile="litert")
    assert not r.ok
    m = r.mismatch
    assert m["phase"] == "teacher-forced" and m["n_different"] >= 1
    assert m["tensor"] in r.compared and 0 <= m["step"] < 300
    assert r.teacher_forced_identical < 300
    with pytest.raises(MismatchError, match=f"step {m['step']}"):
        check_bitexact(small, steps=300, profile="litert", raise_on_mismatch=True)


def test_bitexact_with_wav(small, tmp_path):
    from wavenet_edge import write_wav
    t = np.arange(3000) / 16000
    write_wav(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    r = check_bitexact(small, steps=100, free_steps=20, wav=tmp_path / "a.wav")
    assert r.ok and "a.wav" in r.audio and r.free_running_steps == 20


# -- front door -----------------------------------------------------------------------------------
def test_simulate_report(small, tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(small)
    rep = simulate(p, targets=["stm32h743", "rp2040"], steps=30, seconds=0.5,
                   jitter=JitterModel(jitter=0.0, isr_cycles=0))
    assert rep.ok and [r.target.name for r in rep.results] == ["stm32h743", "rp2040"]
    d = json.loads(rep.to_json())
    assert d["latency_kind"] == "estimate" and d["ops"]["macs"] == SMALL.macs_per_sample()
    assert d["delay_lines"]["ring_bytes"] == 120
    h = d["targets"][0]
    assert h["memory"]["arena_bytes"] == d["arena"]["arena_bytes_aligned"]
    assert h["memory"]["sram_bytes"] == 120 + d["arena"]["arena_bytes_aligned"] + \
        STACK_SRAM_BYTES + 2 * 256
    rp = rep.results[1]
    assert rp.latency.real_time_factor(16000) < 1 and rp.min_fifo is None and rp.suggestions
    text = rep.table()
    assert "stm32h743" in text and "ESTIMATE" in text and "bit-exactness" in text


def test_simulate_bad_inputs(small, tmp_path):
    with pytest.raises(ConfigError, match="unknown target"):
        simulate(small, targets=["pdp11"], check_bitexact=False)
    with pytest.raises(ConfigError, match="FIFO"):
        simulate(small, fifo=0, check_bitexact=False)
    with pytest.raises(ModelFileError):
        simulate(tmp_path / "missing.tflite", check_bitexact=False)
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelFileError):
        simulate(tmp_path / "junk.tflite", check_bitexact=False)
