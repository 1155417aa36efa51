"""Shrink planner for OUR C engine: per target, the LARGEST configuration of the model's family
that fits (flash, SRAM incl. delay lines and arena) and runs in real time.

Candidates move along the axes that set size and cost: residual/dilation channels (x 1, 3/4, 1/2,
3/8, 1/4, multiples of 4: the C engine fuses a layer's kernels only then), skip/end channels
(x 1, 1/2, 1/4), the number of dilation blocks (cycles) and the top dilation of each block.
"Largest" is a fixed total order: widest (residual + dilation + skip + end channels), then
deepest (layers), then longest receptive field, then most parameters — the order the measured
bits/sample table (``shrink_quality.json``, tiny's family after 500 training steps) supports:
there, halving the width costs far more than halving depth or receptive field (C=16 S=E=32:
3.53 bits/sample with 16 layers, 3.60 with 6; C=16 S=E=16: 3.92; C=8 S=E=16: 4.17).  The plan is the first candidate in that order that is real time (cycles of
one step + one draw on the logits, per-kernel model :mod:`firmware_sim.c_costs`) and fits (exact
sizes of its C export: const data + engine code allowance in flash; ``wn_state`` + stack + FIFO
in SRAM) — so a larger budget never gives a smaller plan.  Every cost is an ESTIMATE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from . import c_costs
from .memory import _blocks, c_engine_memory
from .quality import measured_bits, shape_key

__all__ = ["candidates", "plan_target", "Plan", "receptive_field_words", "shape_text", "order_key"]

CHANNEL_FACTORS = (1.0, 0.75, 0.5, 0.375, 0.25)
SKIP_FACTORS = (1.0, 0.5, 0.25)


def _round4(x) -> int:
    return max(4, int(x) // 4 * 4)


def candidates(cfg) -> list:
    """Configs of ``cfg``'s family, largest first (see the module docstring); ``cfg`` itself
    is always the first."""
    R, G, S, E = (cfg.residual_channels, cfg.dilation_channels, cfg.skip_channels,
                  cfg.end_channels)
    blocks = _blocks(cfg.dilations)
    top = max(cfg.dilations)
    tops = sorted({2 ** i for i in range(int(math.log2(top)) + 1)} | {top}, reverse=True)
    seen, out = set(), [cfg]
    seen.add(shape_key(cfg))
    for fc in CHANNEL_FACTORS:
        r, g = (R, G) if fc == 1.0 else (_round4(R * fc), _round4(G * fc))
        for fs in SKIP_FACTORS:
            s, e = (S, E) if fs == 1.0 else (_round4(S * fs), _round4(E * fs))
            for nb in range(len(blocks), 0, -1):
                for t in tops:
                    dil = tuple(d for b in blocks[:nb] for d in b if d <= t)
                    if not dil:
                        continue
                    c = cfg.replace(residual_channels=r, dilation_channels=g, skip_channels=s,
                                    end_channels=e, dilations=dil)
                    k = shape_key(c)
                    if k not in seen:
                        seen.add(k)
                        out.append(c)
    head, rest = out[0], out[1:]
    floor = min_receptive_field(cfg)
    rest = [c for c in rest if c.receptive_field >= floor]
    rest.sort(key=order_key)
    return [head] + [c for c in rest if order_key(c) >= order_key(head)]


#: the planner keeps at least this fraction of the model's receptive field: below it the model
#: no longer hears what it was built to (a WaveNet of a few samples is a different model)
MIN_RF_FRACTION = 1 / 8


def min_receptive_field(cfg) -> int:
    return max(2, int(cfg.receptive_field * MIN_RF_FRACTION))


def order_key(c) -> tuple:
    """Sort key of the planner's total order (smaller = larger configuration)."""
    return (-(c.residual_channels + c.dilation_channels + c.skip_channels + c.end_channels),
            -c.n_layers, -c.receptive_field, -c.parameter_count())


@lru_cache(maxsize=1024)
def _features(cfg, granule=1):
    got = c_costs.config_kernels(cfg)
    if got is None:
        prog = _program(cfg)
        return c_costs.program_features(prog.ops, prog.reads, prog.writes, granule=granule)
    return c_costs.step_features(*got, granule=granule)


@lru_cache(maxsize=128)
def _program(cfg):
    return c_costs.program_of_config(cfg)


def shape_text(c) -> str:
    """``C=16/16 S/E=32/32 2x[1..128] (16 layers)`` for a config."""
    bl = _blocks(c.dilations)
    regular = all(b == bl[0] for b in bl) and bl[0] == [2 ** i for i in range(len(bl[0]))]
    dil = (f"{len(bl)}x[1..{bl[0][-1]}]" if regular else
           "[" + ",".join(str(d) for d in c.dilations) + "]")
    ch = (f"C={c.residual_channels}" if c.residual_channels == c.dilation_channels else
          f"R/G={c.residual_channels}/{c.dilation_channels}")
    sk = (f"S=E={c.skip_channels}" if c.skip_channels == c.end_channels else
          f"S/E={c.skip_channels}/{c.end_channels}")
    return f"{ch} {sk} {dil} ({c.n_layers} layers)"


def receptive_field_words(rf: int, sr: int) -> str:
    """The receptive-field limit in plain words."""
    ms = 1000.0 * rf / sr
    return (f"the model forgets after {ms:.3g} ms: each sample is predicted from the last {rf} "
            f"samples only, so nothing older shapes it (no period longer than {ms:.3g} ms, i.e. "
            f"no pitch below {1000.0 / ms:.0f} Hz, and no structure across syllables or notes)")


@dataclass
class Plan:
    """The planner's answer for one target (an ESTIMATE)."""

    target: str
    core: str
    coefficients: str
    achieved: bool
    config: object = None
    change: str = ""
    cycles_per_sample: float = 0.0
    real_time_factor: float = 0.0
    flash_bytes: int = 0
    flash_capacity: int = 0
    sram_bytes: int = 0
    sram_capacity: int = 0
    binding: str = ""
    bits: dict | None = None
    model_bits: dict | None = None
    smallest: dict = field(default_factory=dict)
    searched: int = 0

    def key(self):
        return (self.achieved, None if self.config is None else shape_key(self.config),
                self.binding if self.achieved else "")

    def to_dict(self, sr) -> dict:
        d = {"target": self.target, "core": self.core, "coefficients": self.coefficients,
             "achieved": self.achieved, "candidates_searched": self.searched,
             "kind": "estimate"}
        if self.achieved:
            c = self.config
            d.update(config_change=self.change, shape=shape_text(c), config=c.to_dict(),
                     macs_per_sample=c.macs_per_sample(), parameters=c.parameter_count(),
                     receptive_field_samples=c.receptive_field,
                     receptive_field_ms=round(1000.0 * c.receptive_field / sr, 3),
                     receptive_field_words=receptive_field_words(c.receptive_field, sr),
                     cycles_per_sample=round(self.cycles_per_sample, 1),
                     real_time_factor=round(self.real_time_factor, 4),
                     flash_bytes=self.flash_bytes, flash_capacity=self.flash_capacity,
                     sram_bytes=self.sram_bytes, sram_capacity=self.sram_capacity,
                     binding_constraint=self.binding,
                     expected_bits_per_sample=self.bits, model_bits_per_sample=self.model_bits)
        else:
            d["smallest_candidate"] = self.smallest
        return d


def _change(cfg, c) -> str:
    if shape_key(c) == shape_key(cfg):
        return "no change"
    return f"{shape_text(cfg)} -> {shape_text(c)}"


def plan_target(cfg, target, core, *, sr: int, fifo: int, scale: float = 1.0,
                coefficients: str = "stored") -> Plan:
    """The largest candidate of ``cfg`` that fits ``target`` and runs in real time at ``sr`` with
    the C engine priced by ``core`` (``core.fused``), cycles multiplied by ``scale`` (the ratio
    measured/predicted for the model itself when it was emulated in this run)."""
    cands = candidates(cfg)

    def cycles(c):
        return c_engine_cycles_of(core, c) * scale

    budget = target.clock_hz / float(sr)
    prev = None
    for i, c in enumerate(cands):
        cyc = cycles(c)
        rt = cyc <= budget
        mem = None
        if rt:
            mem = c_engine_memory(_program(c), target, fifo_samples=fifo, kernels=_kernels(core))
            if mem.fits:
                binding = _binding(prev, cycles, budget, target, fifo, _kernels(core))
                return Plan(target=target.name, core=core.name, coefficients=coefficients,
                            achieved=True, config=c, change=_change(cfg, c),
                            cycles_per_sample=cyc, real_time_factor=budget / cyc,
                            flash_bytes=mem.flash_bytes, flash_capacity=mem.flash_capacity,
                            sram_bytes=mem.sram_bytes, sram_capacity=mem.sram_capacity,
                            binding=binding, bits=measured_bits(c), model_bits=measured_bits(cfg),
                            searched=i + 1)
        prev = c
    small = min(cands, key=cycles)
    return Plan(target=target.name, core=core.name, coefficients=coefficients, achieved=False,
                smallest={"shape": shape_text(small), "cycles_per_sample": round(cycles(small), 1),
                          "max_sample_rate_hz": round(target.clock_hz / cycles(small), 1),
                          "receptive_field_floor": min_receptive_field(cfg)},
                searched=len(cands))


def _kernels(core) -> str:
    """The kernel variant a measured C core was built with (``<core>-wavenet-c-<kernels>``)."""
    return core.name.rsplit("-", 1)[-1] if "-wavenet-c-" in core.name else "auto"


def _binding(prev, cycles, budget, target, fifo, kernels) -> str:
    """What stops the next larger candidate (``prev``): real time, SRAM, flash; "none" when the
    model itself is the plan."""
    if prev is None:
        return "none (the model as it is)"
    if cycles(prev) > budget:
        return (f"real time: the next larger candidate ({shape_text(prev)}) needs "
                f"{cycles(prev):,.0f} cycles/sample of {budget:,.0f}")
    mem = c_engine_memory(_program(prev), target, fifo_samples=fifo, kernels=kernels)
    what = [n for n, ok in (("SRAM", mem.fits_sram), ("flash", mem.fits_flash)) if not ok]
    return (f"{' and '.join(what)}: the next larger candidate ({shape_text(prev)}) needs "
            f"{mem.sram_bytes:,} B SRAM / {mem.flash_bytes:,} B flash")


def c_engine_cycles_of(core, c) -> float:
    """Cycles per sample (step + one draw on the logits) of config ``c`` with ``core.fused``."""
    from .latency import c_engine_cycles
    return c_engine_cycles(core, _features(c, int(core.fused.get("mac_granule", 1))))[1]
