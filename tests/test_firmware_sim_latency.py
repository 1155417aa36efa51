"""firmware_sim: target registry and target-file validation, the cost model, and the FIFO
deadline simulation on hand-checkable cases."""

import json

import numpy as np
import pytest
from hypothesis import given, strategies as st

from wavenet_edge.errors import ConfigError

from firmware_sim.latency import (C_EXPORT_CORES, JitterModel, estimate_c_export,
                                  estimate_latency, simulate_fifo, smallest_fifo)
from firmware_sim.opcount import OpCount, StepCounts
from firmware_sim.targets import COST_FIELDS, builtin_targets, load_registry, select_targets

NOJIT = JitterModel(jitter=0.0, isr_cycles=0.0)


# -- registry -------------------------------------------------------------------------------------
def test_builtin_targets_cite_their_datasheets():
    ts = builtin_targets()
    assert {"stm32f446", "nrf52840", "stm32h743", "stm32f746", "alif-e3-hp", "rp2040",
            "esp32s3"} <= set(ts)
    for t in ts.values():
        assert t.source["document"] and t.source["url"].startswith("https://")
        assert t.source["number"]
        assert set(COST_FIELDS) <= set(t.core.costs) and t.core.sources
    assert ts["stm32f446"].clock_hz == 180_000_000 and ts["stm32f446"].sram_bytes == 128 * 1024
    assert ts["nrf52840"].flash_bytes == 1024 * 1024 and ts["nrf52840"].clock_hz == 64_000_000
    assert ts["rp2040"].sram_bytes == 264 * 1024 and ts["rp2040"].flash_external
    assert ts["stm32h743"].clock_hz == 480_000_000 and any("domain" in c
                                                          for c in ts["stm32h743"].caveats)
    assert ts["stm32f746"].sram_bytes == 320 * 1024
    assert ts["alif-e3-hp"].core.name == "cortex-m55"
    assert ts["esp32s3"].clock_hz == 240_000_000


def _board(**kw):
    d = {"name": "myboard", "core": "cortex-m4f", "clock_hz": 100_000_000,
         "sram_bytes": 65536, "flash_bytes": 262144}
    d.update(kw)
    return d


def _write(tmp_path, doc, name="boards.json"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def test_target_file_adds_boards_and_cores(tmp_path):
    core = {f: 1.0 for f in COST_FIELDS}
    p = _write(tmp_path, {"cores": {"unit": core},
                          "targets": [_board(), _board(name="u", core="unit")]})
    ts = select_targets(target_file=p)
    assert [t.name for t in ts] == ["myboard", "u"] and ts[1].core.cycles_per_mac == 1.0
    # a bare list works too, and named selection reaches built-ins and file boards alike
    q = _write(tmp_path, [_board()], "list.json")
    assert [t.name for t in select_targets(["rp2040", "myboard"], target_file=q)] == \
        ["rp2040", "myboard"]


@pytest.mark.parametrize("doc, msg", [
    ("{not json", "not valid JSON"),
    ({"targets": []}, "non-empty list"),
    ({"targets": [_board(core="z80")]}, "unknown core 'z80'"),
    ({"targets": [_board(clock_hz=-5)]}, "clock_hz must be > 0"),
    ({"targets": [_board(sram_bytes="lots")]}, "sram_bytes must be a number"),
    ({"targets": [_board(flash_bytes=1.5)]}, "flash_bytes must be an integer"),
    ({"targets": [{"name": "x", "core": "cortex-m4f", "clock_hz": 1, "sram_bytes": 1}]},
     "missing flash_bytes"),
    ({"targets": [_board(), _board()]}, "duplicate target name"),
    ({"targets": [_board(colour="red")]}, "unknown field"),
    ({"targets": [_board(name="has space")]}, "name must be"),
    ({"targets": [_board(flash_external="yes")]}, "flash_external"),
    ({"cores": {"c": {"cycles_per_mac": 1}}, "targets": [_board()]}, "core 'c': missing"),
    ({"targets": [_board()], "format_version": 7}, "format_version"),
])
def test_target_file_errors_name_file_and_field(tmp_path, doc, msg):
    p = _write(tmp_path, doc)
    with pytest.raises(ConfigError, match=msg) as e:
        load_registry(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_target_file_missing(tmp_path):
    with pytest.raises(ConfigError, match="cannot read target file"):
        load_registry(tmp_path / "nope.json")


# -- cost model -----------------------------------------------------------------------------------
def test_cost_model_by_hand(tmp_path):
    core = {f: 0.0 for f in COST_FIELDS}
    core.update(cycles_per_mac=2.0, cycles_per_requant=10.0, cycles_per_add_element=3.0,
                cycles_per_mul_element=4.0, cycles_per_transcendental_element=5.0,
                cycles_per_softmax_element=6.0, cycles_per_copy_byte=0.5,
                cycles_per_copy_call=7.0, cycles_per_op_dispatch=100.0)
    p = _write(tmp_path, {"cores": {"hand": core}, "targets": [
        _board(name="h", core="hand", clock_hz=1_000_000, weight_fetch_cycles_per_byte=1.0)]})
    t = select_targets(target_file=p)[0]
    ops = [OpCount(0, "FULLY_CONNECTED", "fc", "fully_connected", macs=64, requants=8,
                   weight_bytes=96),
           OpCount(1, "TANH", "t", "transcendental", elements=8),
           OpCount(2, "ADD", "a", "add", elements=8, requants=8),
           OpCount(3, "MUL", "m", "mul", elements=8, requants=8),
           OpCount(4, "SOFTMAX", "s", "softmax", elements=256),
           OpCount(5, "CONCATENATION", "c", "copy", copy_bytes=32, copy_calls=2)]
    counts = StepCounts(ops=ops, delay_read_bytes=16, delay_write_bytes=8, delay_reads=2,
                        delay_writes=1, constant_bytes=0)
    e = estimate_latency(counts, t)
    want = {"fully_connected": 64 * 2 + 8 * 10, "weight_fetch": 96 * 1.0,
            "tanh_logistic": 8 * 5, "add": 8 * 3, "mul": 8 * 4, "softmax": 256 * 6,
            "copy": 32 * 0.5 + 2 * 7, "delay_lines": 24 * 0.5 + 3 * 7, "dispatch": 6 * 100}
    assert e.breakdown == pytest.approx(want)
    assert e.cycles_per_sample == pytest.approx(sum(want.values()))
    assert e.max_sample_rate == pytest.approx(1e6 / sum(want.values()))
    assert sum(o["cycles"] for o in e.per_op) + want["delay_lines"] == \
        pytest.approx(e.cycles_per_sample)
    assert e.to_dict(16000)["kind"] == "estimate"


def test_c_export_priced_with_measured_coefficients():
    """The registry carries the C export's QEMU-measured cores; a target of a measured kind is
    priced with them (CONCATENATION free: the C engine aliases it), other targets are not."""
    targets, cores = load_registry()
    for name in set(C_EXPORT_CORES.values()):
        assert name in cores and "QEMU" in cores[name].sources["cycles_per_mac"]
        assert "MEASURED" in cores[name].kernels
    ops = [OpCount(0, "FULLY_CONNECTED", "fc", "fully_connected", macs=1024, requants=32,
                   weight_bytes=1024),
           OpCount(1, "CONCATENATION", "c", "copy", copy_bytes=32, copy_calls=2)]
    counts = StepCounts(ops=ops, delay_read_bytes=16, delay_write_bytes=16, delay_reads=1,
                        delay_writes=1, constant_bytes=0)
    core, e = estimate_c_export(counts, targets["alif-e3-hp"], cores)
    assert core == "cortex-m55-wavenet-c-mve"
    c = cores[core]
    want = (1024 * c.cycles_per_mac + 32 * c.cycles_per_requant + c.cycles_per_op_dispatch
            + 32 * c.cycles_per_copy_byte + 2 * c.cycles_per_copy_call)
    assert e.cycles_per_sample == pytest.approx(want + 1024 * targets["alif-e3-hp"]
                                                .weight_fetch_cycles_per_byte)
    assert estimate_c_export(counts, targets["rp2040"], cores) is None


def test_simulate_reports_the_c_export_beside_the_interpreter():
    from firmware_sim.simulate import simulate
    from test_c_export import build_model
    rep = simulate(build_model("k2"), targets=["alif-e3-hp", "rp2040"], check_bitexact=False,
                   seconds=0.05)
    d = json.loads(rep.to_json())
    alif, rp = d["targets"]
    assert alif["c_export"]["core"] == "cortex-m55-wavenet-c-mve"
    assert alif["c_export"]["coefficients"] == "stored"
    assert "QEMU-fitted" in alif["c_export"]["cost_model"]
    assert alif["c_export"]["memory"]["sram_bytes"] > alif["c_export"]["memory"]["delay_line_bytes"]
    assert alif["c_export"]["cycles_per_sample"] < alif["latency"]["cycles_per_sample"]
    assert isinstance(alif["c_export"]["real_time"], bool) and rp["c_export"] is None
    txt = rep.table()
    assert "coefficients: stored per-kernel model" in txt and "alif-e3-hp:" in txt
    assert "cortex-m55-wavenet-c-mve" in txt


# -- FIFO deadline simulation ---------------------------------------------------------------------
def test_fifo_fast_producer_never_underruns():
    # 0.9 s of compute per 1 s sample period, depth 1
    r = simulate_fifo(90, 100, 1.0, depth=1, seconds=100, jitter=NOJIT)
    assert r.underruns == 0 and r.first_underrun is None
    assert r.startup_latency_s == pytest.approx(0.9)


def test_fifo_slow_producer_by_hand():
    # c = 1.5 periods.  Sample 0 is ready at 1.5 s and starts playback (tick 0).  Sample 1 is
    # ready at 3.0 = tick 1.5 -> plays at tick 2 (tick 1 underruns); sample 2 at 4.5 = tick 3
    # (on time); sample 3 at 6.0 = tick 4.5 -> tick 5 (tick 4 underruns).
    r = simulate_fifo(150, 100, 1.0, depth=1, seconds=4, jitter=NOJIT)
    assert (r.underruns, r.first_underrun) == (2, 1)
    assert r.startup_latency_s == pytest.approx(1.5) and r.max_late_s == pytest.approx(1.0)
    # in the long run one underrun per two samples
    assert simulate_fifo(150, 100, 1.0, depth=1, seconds=100, jitter=NOJIT).underruns == 50


def test_fifo_prefill_hides_a_slow_producer_for_a_finite_clip():
    # 100 samples at 1.1 periods each take 110 s; with a prefill of d samples (ready at 1.1·d)
    # the last one is due at 1.1·d + 99: no underrun iff 1.1·d + 99 >= 110, i.e. d >= 10
    assert simulate_fifo(110, 100, 1.0, depth=9, seconds=100, jitter=NOJIT).underruns > 0
    assert simulate_fifo(110, 100, 1.0, depth=10, seconds=100, jitter=NOJIT).underruns == 0
    assert smallest_fifo(110, 100, 1.0, seconds=100, jitter=NOJIT).depth == 10


def test_jitter_and_interrupt_need_a_deeper_fifo():
    # mean 0.95 period but an interrupt of 3 periods every 50 samples: the FIFO must absorb it
    jm = JitterModel(jitter=0.0, isr_period=50, isr_cycles=300, seed=1)
    c = jm.costs(95, 200)
    assert c[49] == 395 and c[48] == 95 and c[99] == 395
    assert simulate_fifo(95, 100, 1.0, depth=1, seconds=200, jitter=jm).underruns > 0
    best = smallest_fifo(95, 100, 1.0, seconds=200, jitter=jm)
    assert best is not None and best.depth > 1
    assert simulate_fifo(95, 100, 1.0, depth=best.depth - 1, seconds=200, jitter=jm).underruns > 0


def test_jitter_model_is_deterministic_and_bounded():
    a = JitterModel(jitter=0.2, isr_cycles=0, seed=5).costs(1000, 5000)
    b = JitterModel(jitter=0.2, isr_cycles=0, seed=5).costs(1000, 5000)
    assert np.array_equal(a, b) and a.min() >= 800 and a.max() <= 1200
    with pytest.raises(ConfigError):
        JitterModel(jitter=1.5)
    with pytest.raises(ConfigError):
        simulate_fifo(1, 1, 1, depth=0)


@given(c=st.floats(0.2, 3.0), depth=st.integers(1, 64))
def test_fifo_underruns_monotone_in_depth(c, depth):
    jm = JitterModel(jitter=0.1, isr_period=7, isr_cycles=50, seed=2)
    a = simulate_fifo(100 * c, 100, 1.0, depth=depth, seconds=300, jitter=jm).underruns
    b = simulate_fifo(100 * c, 100, 1.0, depth=depth + 1, seconds=300, jitter=jm).underruns
    assert b <= a
    if c < 0.85:
        assert a == 0
