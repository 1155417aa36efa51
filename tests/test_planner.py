"""The shrink planner for our C engine (firmware_sim.planner) and its per-kernel cost model
(firmware_sim.c_costs): the kernel list of an unbuilt config equals the lowered program's, the
fit recovers known coefficients, a bigger budget never gives a smaller plan, the chosen plan
really fits and is real time under the model, and the budget boundary is exact."""

import numpy as np
import pytest

from firmware_sim import c_costs
from firmware_sim.memory import c_engine_memory
from firmware_sim.planner import (c_engine_cycles_of, candidates, min_receptive_field, order_key,
                                  plan_target, receptive_field_words)
from firmware_sim.targets import CoreModel, Target, builtin_targets
from wavenet_edge.config import WaveNetConfig, preset

SMALL = WaveNetConfig(dilations=(1, 2, 4, 8, 1, 2, 4, 8), residual_channels=8,
                      dilation_channels=8, skip_channels=16, end_channels=16)

#: a synthetic per-kernel model (instructions), CPI 1
COEFS = {"gate_kernel": 60.0, "gate_mac": 0.6, "gate_mac_generic": 0.9, "gate_channel": 9.0,
         "fc_add_kernel": 40.0, "fc_add_mac": 0.6, "fc_add_mac_generic": 0.8,
         "fc_add_channel": 6.0, "fc_kernel": 30.0, "fc_mac": 0.55, "fc_mac_generic": 0.7,
         "fc_channel": 5.0, "logits_kernel": 35.0, "logits_mac": 0.5, "logits_mac_generic": 0.75, "op_kernel": 25.0, "add_element": 8.0, "mul_element": 6.0,
         "lut_element": 3.0, "copy_byte": 0.5, "delay_byte": 0.6, "delay_call": 12.0,
         "step_fixed": 50.0, "softmax_call": 3000.0, "sample": 900.0}


def _core(coefs=COEFS, cpi=1.0):
    costs = dict.fromkeys(("cycles_per_mac", "cycles_per_requant", "cycles_per_add_element",
                           "cycles_per_mul_element", "cycles_per_transcendental_element",
                           "cycles_per_softmax_element", "cycles_per_copy_byte",
                           "cycles_per_copy_call", "cycles_per_op_dispatch"), 1.0)
    return CoreModel(name="test-wavenet-c-x", kernels="test", costs=costs,
                     fused={"instructions": dict(coefs), "cpi": cpi, "mac_granule": 1})


def _target(clock, sram=1 << 20, flash=1 << 22, name="board"):
    return Target(name=name, title=name, core=_core(), clock_hz=int(clock), sram_bytes=int(sram),
                  flash_bytes=int(flash))


@pytest.mark.parametrize("cfg", [
    SMALL,
    preset("tiny"),
    SMALL.replace(kernel_size=3, dilation_channels=12),
    SMALL.replace(residual_channels=6, dilation_channels=10),      # not multiples of 4: unfused
])
def test_config_kernels_equal_the_lowered_program(cfg):
    got = c_costs.config_kernels(cfg)
    prog = c_costs.program_of_config(cfg)
    kernels = c_costs.plan_kernels(prog.ops)
    widths = [int(w["width"]) for w in prog.writes]
    want = (kernels, sorted(widths[int(r["write"])] for r in prog.reads), sorted(widths))
    got = (got[0], sorted(got[1]), sorted(got[2]))
    assert [(k.kind, k.n, k.cols) for k in got[0]] == [(k.kind, k.n, k.cols) for k in want[0]]
    assert got[1:] == want[1:]
    kinds = {k.kind for k in kernels}
    if cfg.residual_channels % 4 == 0 and cfg.dilation_channels % 4 == 0:
        assert {"gate", "fc_add"} <= kinds and not kinds & {"lut", "mul", "add"}
    else:
        assert {"lut", "mul"} <= kinds


def test_fit_recovers_known_coefficients():
    """Equations generated from known coefficients over several shapes are fitted exactly."""
    eqs = []
    for cfg in (SMALL, preset("tiny"),
                SMALL.replace(residual_channels=12, dilation_channels=12, dilations=(1, 2, 4)),
                SMALL.replace(residual_channels=20, dilation_channels=20, dilations=(1, 2))):
        kernels, rw, ww = c_costs.config_kernels(cfg)
        for k in kernels:
            f = c_costs.kernel_features(k)
            eqs.append((f, c_costs.predict_instructions(COEFS, f)))
        for w in (rw, ww):
            f = {"delay_byte": sum(w), "delay_call": len(w), "step_fixed": 1}
            eqs.append((f, c_costs.predict_instructions(COEFS, f)))
    eqs += [({"fc_kernel": 1, "fc_mac": 64 * 32, "fc_channel": 64},
             30 + 0.55 * 64 * 32 + 5 * 64), ({"fc_kernel": 1, "fc_channel": 64}, 30 + 5 * 64)]
    fit = c_costs.fit_fused_costs(eqs, sample=900.0, softmax=3000.0)
    assert fit.max_rel_error < 1e-6
    for k in ("gate_kernel", "gate_mac", "gate_channel", "fc_add_mac_generic", "fc_mac",
              "fc_channel", "logits_kernel", "logits_mac", "delay_byte", "delay_call", "step_fixed"):
        assert fit.instructions[k] == pytest.approx(COEFS[k], rel=1e-6), k


def test_candidates_are_ordered_and_keep_the_receptive_field():
    cfg = preset("tiny")
    cands = candidates(cfg)
    assert cands[0] is cfg
    keys = [order_key(c) for c in cands[1:]]
    assert keys == sorted(keys) and order_key(cfg) <= keys[0]
    floor = min_receptive_field(cfg)
    assert floor == 511 // 8
    for c in cands[1:]:
        assert c.receptive_field >= floor
        assert c.residual_channels % 4 == 0 and c.skip_channels % 4 == 0
        assert c.residual_channels <= 16 and c.n_layers <= 16 and c.skip_channels <= 32
    # every axis moves: channels, skip/end, blocks and the top dilation
    assert {c.residual_channels for c in cands} == {4, 8, 12, 16}
    assert {c.skip_channels for c in cands} == {8, 16, 32}
    assert {c.n_layers for c in cands} >= {16, 8, 6}


def test_bigger_budget_never_gives_a_smaller_plan():
    cfg = SMALL
    core = _core()
    prev = None
    for clock in np.geomspace(2e6, 6e7, 14):
        for sram in (6 << 10, 9 << 10, 1 << 20):
            p = plan_target(cfg, _target(clock, sram=sram), core, sr=16000, fifo=64)
            rank = (order_key(p.config) if p.achieved else (np.inf,))
            # against every smaller budget seen so far (clock and SRAM both grow along the loop)
            bigger = [(c, s, r) for c, s, r in (prev or []) if c <= clock and s <= sram]
            for _, _, r in bigger:
                assert rank <= r
            prev = (prev or []) + [(clock, sram, rank)]


def test_plan_fits_and_is_real_time_under_the_model():
    cfg = preset("tiny")
    core = _core()
    t = _target(3.0e8, sram=40 << 10, flash=200 << 10)
    p = plan_target(cfg, t, core, sr=16000, fifo=256)
    assert p.achieved and p.config is not cfg
    cyc = c_engine_cycles_of(core, p.config)
    assert cyc == pytest.approx(p.cycles_per_sample) and cyc * 16000 <= t.clock_hz
    mem = c_engine_memory(c_costs.program_of_config(p.config), t, fifo_samples=256,
                          kernels="x")
    assert mem.fits and mem.sram_bytes == p.sram_bytes and mem.flash_bytes == p.flash_bytes
    # nothing larger in the order is both real time and fitting
    for c in candidates(cfg)[:p.searched - 1]:
        fits = c_engine_memory(c_costs.program_of_config(c), t, fifo_samples=256).fits
        assert not (c_engine_cycles_of(core, c) * 16000 <= t.clock_hz and fits)
    assert p.binding.startswith(("real time", "SRAM", "flash"))
    d = p.to_dict(16000)
    assert d["receptive_field_samples"] == p.config.receptive_field
    assert "forgets after" in d["receptive_field_words"]


def test_budget_boundary_is_exact():
    """A clock of exactly cycles x rate makes a candidate real time; one Hz less does not."""
    cfg = SMALL
    core = _core()
    want = candidates(cfg)[3]
    clock = int(np.ceil(c_engine_cycles_of(core, want) * 16000))
    exact = plan_target(cfg, _target(clock), core, sr=16000, fifo=0)
    below = plan_target(cfg, _target(clock - 1), core, sr=16000, fifo=0)
    assert order_key(exact.config) <= order_key(want)
    assert below.config is None or order_key(below.config) >= order_key(exact.config)
    # the model itself, with a huge budget; nothing at all with a tiny one
    assert plan_target(cfg, _target(1e12), core, sr=16000, fifo=0).change == "no change"
    none = plan_target(cfg, _target(1e4), core, sr=16000, fifo=0)
    assert not none.achieved and none.smallest["cycles_per_sample"] > 0


def test_receptive_field_in_plain_words():
    w = receptive_field_words(512, 16000)
    assert w.startswith("the model forgets after 32 ms") and "512 samples" in w


def test_stored_c_engine_models_are_loaded():
    """Every built-in target on a measured core has the per-kernel model with its provenance."""
    for t in builtin_targets().values():
        from firmware_sim.latency import c_engine_core
        from firmware_sim.targets import load_registry
        core = c_engine_core(t, load_registry()[1])
        if core is None:
            continue
        fz = core.fused
        assert fz is not None and fz["cpi"] > 0 and len(fz["measured_on"]) >= 3
        assert all(v >= 0 for v in fz["instructions"].values())
        assert set(fz["instructions"]) == set(c_costs.FUSED_COEFS)
