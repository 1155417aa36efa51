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
from firmware_sim.memory import (RUNTIME_FLASH_BYTES, STACK_SRAM_BYTES, Scaling,
                                 delay_line_bytes_for_config, delay_lines_from_metadata,
                                 memory_budget, shrink_moves)
from firmware_sim.opcount import contract_metadata, count_ops, counts_from_config
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


# 12 layers: the skip concatenation needs a tree (at most 10 inputs per operator)
TWELVE = WaveNetConfig(dilations=(1, 2, 4, 8, 16, 32) * 2, residual_channels=4,
                       dilation_channels=6, skip_channels=8, end_channels=8)


@pytest.fixture(scope="module")
def k3():
    return build_graph(K3)


@pytest.fixture(scope="module")
def twelve():
    return build_graph(TWELVE)


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


def test_shrink_moves_tensorflow_wavenet():
    cfg = preset("tensorflow-wavenet")
    moves = dict(shrink_moves(cfg))
    assert moves["residual_channels 32 -> 16"].delay_line_bytes() == 179552 // 2
    assert moves["dilation blocks 5 -> 4"].delay_line_bytes() == \
        4 * 1023 * 32 + sum(range(32)) * 32
    assert moves["drop dilation 512 (max 512 -> 256)"].delay_line_bytes() == \
        5 * 511 * 32 + sum(range(32)) * 32
    assert moves["initial_filter_width 32 -> 1"].delay_line_bytes() == 5 * 1023 * 32
    # reductions stop at 8 residual/dilation channels and 32 skip/end channels
    small = cfg.replace(residual_channels=8, dilation_channels=8, skip_channels=32,
                        end_channels=32)
    assert not any("channels" in what for what, _ in shrink_moves(small))


def test_scaled_estimates_against_measured(small, twelve):
    # calibrate on one graph, predict another of the same family: exact constants, file and arena
    # scaled by tensor count
    m12 = read_tflite(twelve)
    c12 = count_ops(m12)
    sc = Scaling.from_model(len(twelve), c12, len(m12.tensors),
                            measure_arena(twelve)["arena_bytes"])
    want = counts_from_config(SMALL)
    assert want.constant_bytes == count_ops(read_tflite(small)).constant_bytes
    assert abs(sc.model_bytes_for(want) - len(small)) < 0.05 * len(small)
    a = measure_arena(small)["arena_bytes"]
    assert abs(sc.arena_bytes_for(want) - a) < 0.05 * a


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


def _rows(counts):
    return [(o.opcode, o.output, o.macs, o.requants, o.elements, o.copy_bytes, o.copy_calls,
             o.weight_bytes) for o in counts.ops]


def test_counts_from_config_equal_the_converted_graph(small, k3, twelve):
    for cfg, data in ((SMALL, small), (K3, k3), (TWELVE, twelve)):
        m = read_tflite(data)
        got, want = count_ops(m), counts_from_config(cfg)
        assert _rows(got) == _rows(want)
        assert got.constant_bytes == want.constant_bytes
        assert len(m.tensors) == want.extra["n_tensors"]
        assert (got.delay_read_bytes, got.delay_write_bytes, got.delay_reads,
                got.delay_writes) == (want.delay_read_bytes, want.delay_write_bytes,
                                      want.delay_reads, want.delay_writes)
    assert any(o.output == "skip/concat0" for o in counts_from_config(TWELVE).ops)


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


def test_simulate_plans_a_smaller_model_that_fits(twelve, tmp_path):
    arena = measure_arena(twelve)["arena_bytes_aligned"]
    board = tmp_path / "b.json"
    # SRAM for about 2/3 of what the 12-layer model needs, a fast clock
    need = arena + STACK_SRAM_BYTES + 2 * 64 + TWELVE.delay_line_bytes()
    board.write_text(json.dumps([{"name": "mini", "core": "cortex-m7", "clock_hz": 10**9,
                                  "sram_bytes": int(need * 2 / 3), "flash_bytes": 1 << 20}]))
    rep = simulate(twelve, target_file=board, check_bitexact=False, fifo=64, seconds=0.2,
                   sr=8000)
    r = rep.results[0]
    assert not r.memory.fits_sram
    plans = [s for s in r.suggestions if s.get("plan") and s["change"].startswith("to fit:")]
    assert len(plans) == 1
    p = plans[0]
    assert p["achieved"] and p["fits"] and p["sram_bytes_est"] <= int(need * 2 / 3)
    assert "measured" in p["kind"] and p["config_changes"]
    assert "to fit" in rep.table()
