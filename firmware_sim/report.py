"""The simulation report: one readable table per run (a row per target) and a JSON form.

Figures are labelled for what they are: memory is exact for the model (file bytes, delay lines)
and measured for the arena (real TFLM, 64-bit host build) plus stated allowances; latency is an
ESTIMATE from a documented cost model; bit-exactness is a count of identical int8 steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ["TargetResult", "Report", "format_bytes"]


def shape_text_of(c) -> str:
    from .planner import shape_text
    return shape_text(c)


def receptive_field_words_of(rf, sr) -> str:
    from .planner import receptive_field_words
    return receptive_field_words(rf, sr)


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; negative values keep their sign."""
    s = "-" if n < 0 else ""
    n = abs(int(n))
    if n < 1024:
        return f"{s}{n} B"
    if n < 1024 * 1024:
        return f"{s}{n / 1024:.1f} KiB"
    return f"{s}{n / (1024 * 1024):.2f} MiB"


def _suggestion_parts(s: dict, sr: int) -> tuple:
    """``(shared text, per-target cycles text, verdict)`` of one suggestion."""
    parts = []
    if s.get("sram_bytes_est") is not None:
        parts.append(f"delay lines {format_bytes(s['delay_line_bytes'])}, SRAM "
                     f"{format_bytes(s['sram_bytes_est'])}, flash "
                     f"{format_bytes(s['flash_bytes_est'])}")
    parts.append(f"receptive field {s['receptive_field']}")
    cyc = (f"{s['est_cycles_per_sample']:,.0f} cyc/sample (RTF "
           f"{s['est_real_time_factor']:.2f})")
    rt = s["est_real_time_factor"] >= 1
    if s.get("achieved") is False:
        mr = s.get("min_receptive_field")
        verdict = (f"not reachable without cutting the receptive field below {mr} samples "
                   f"({1000.0 * mr / sr:.3g} ms: the model would forget everything older)"
                   if mr else "not reachable by these reductions")
    elif s.get("fits") is None:
        verdict = "real time" if rt else "still not real time"
    elif s["fits"]:
        verdict = "fits and real time" if rt else "fits, not real time"
    else:
        verdict = "still does not fit"
    if s.get("kind", "estimate") != "estimate":
        parts.append(s["kind"])
    return f"{s['change']}: {', '.join(parts)}", cyc, verdict


def _c_line(r, sr) -> str:
    core, c = r.c_export
    rtf = c.real_time_factor(sr)
    mem = r.c_memory
    fit = ("" if mem is None else
           f", flash {format_bytes(mem.flash_bytes)}/{format_bytes(mem.flash_capacity)}, SRAM "
           f"{format_bytes(mem.sram_bytes)}/{format_bytes(mem.sram_capacity)}"
           + ("" if mem.fits else " (does not fit)"))
    return (f"  {r.target.name}: {c.cycles_per_sample:,.0f} cyc/sample, max "
            f"{c.max_sample_rate:,.0f} Hz, RTF {rtf:.2f} -> "
            + ("real time" if rtf >= 1.0 and (mem is None or mem.fits) else "not real time"
               if rtf < 1.0 else "real time but does not fit") + f"{fit} ({core})")


@dataclass
class TargetResult:
    """Everything about one target: ``memory`` (MemoryBudget), ``latency`` (LatencyEstimate),
    ``fifo`` (FifoResult at the requested depth), ``min_fifo`` (FifoResult or None = impossible),
    ``suggestions`` (list of dicts; empty when it fits and runs in real time)."""

    target: object
    memory: object
    latency: object
    fifo: object
    min_fifo: object
    suggestions: list = field(default_factory=list)
    #: our C export on this target: (core name, CEngineEstimate — its ``source`` says which
    #: coefficients priced it), or None (no measured core of this kind)
    c_export: tuple = None
    #: flash/SRAM of our C export (MemoryBudget; exact sizes + stated allowances) or None
    c_memory: object = None
    #: the shrink planner's answer for our C engine (firmware_sim.planner.Plan) or None
    c_plan: object = None

    @property
    def real_time(self) -> bool:
        return self.min_fifo is not None and self.fifo.underruns == 0

    def to_dict(self, sample_rate) -> dict:
        return {"target": self.target.to_dict(), "memory": self.memory.to_dict(),
                "latency": {**self.latency.to_dict(sample_rate),
                            "per_op_cycles": [dict(o, cycles=round(o["cycles"], 1))
                                              for o in self.latency.per_op]},
                "fifo": self.fifo.to_dict(),
                "smallest_fifo_without_underrun": (None if self.min_fifo is None
                                                   else self.min_fifo.depth),
                "smallest_fifo_startup_latency_ms": (None if self.min_fifo is None else
                                                     round(1e3 * self.min_fifo.startup_latency_s, 3)),
                "suggestions": list(self.suggestions),
                "c_export": (None if self.c_export is None else
                             {"cost_model": "our C engine: " + self.c_export[1].detail,
                              **self.c_export[1].to_dict(sample_rate),
                              "memory": (None if self.c_memory is None
                                         else self.c_memory.to_dict()),
                              "fits": None if self.c_memory is None else self.c_memory.fits,
                              "real_time": self.c_export[1].real_time_factor(sample_rate) >= 1.0,
                              "plan": (None if self.c_plan is None
                                       else self.c_plan.to_dict(sample_rate))})}


@dataclass
class Report:
    """The result of :func:`firmware_sim.simulate.simulate`."""

    model: str
    model_bytes: int
    sample_rate: int
    config: dict | None
    counts: object
    delay_lines: object
    arena: dict
    fifo_depth: int
    seconds: float
    jitter: object
    results: list
    bitexact: object | None
    assumptions: dict
    config_macs_per_sample: int | None = None
    #: a vocoder's conditioning work (firmware_sim.simulate._frame_work), else None
    conditioning: dict | None = None

    @property
    def ok(self) -> bool:
        """False only for a bit-exactness failure (fitting is a verdict, not an error)."""
        return self.bitexact is None or self.bitexact.ok

    def to_dict(self) -> dict:
        jm = self.jitter
        return {
            "model": self.model, "model_bytes": self.model_bytes, "sample_rate": self.sample_rate,
            "config": self.config,
            "ops": self.counts.to_dict(),
            "config_macs_per_sample": self.config_macs_per_sample,
            "conditioning": self.conditioning,
            "delay_lines": {"ring_bytes": self.delay_lines.ring_bytes,
                            "per_read_bytes": self.delay_lines.per_read_bytes,
                            "reads": self.delay_lines.n_reads, "writes": self.delay_lines.n_writes},
            "arena": dict(self.arena),
            "deadline_simulation": {"fifo_depth": self.fifo_depth, "seconds": self.seconds,
                                    "jitter": {"relative_uniform": jm.jitter,
                                               "isr_period_samples": jm.isr_period,
                                               "isr_cycles": jm.isr_cycles, "seed": jm.seed}},
            "targets": [r.to_dict(self.sample_rate) for r in self.results],
            "bitexact": None if self.bitexact is None else self.bitexact.to_dict(),
            "assumptions": dict(self.assumptions),
            "latency_kind": "estimate",
        }

    def to_json(self, **kw) -> str:
        kw.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kw)

    # -- text -------------------------------------------------------------------------------
    def _c_engine_lines(self) -> list:
        cx = [r for r in self.results if r.c_export is not None]
        if not cx:
            return []
        out = ["The table prices the TFLM interpreter (cost model). Our exported C engine "
               "(export-c), step + one draw on the logits (SOFTMAX on demand), cycles ESTIMATE:"]
        by_source = {}
        for r in cx:
            by_source.setdefault(r.c_export[1].detail, []).append(r)
        for detail, rs in by_source.items():
            out.append(f"  coefficients: {detail}")
            out.extend(_c_line(r, self.sample_rate) for r in rs)
        none = [r.target.name for r in self.results if r.c_export is None]
        if none:
            out.append(f"  {', '.join(none)}: no measured core of this kind (TFLM cost model "
                       "only)")
        return out

    def _plan_lines(self) -> list:
        plans = [r.c_plan for r in self.results if r.c_plan is not None]
        if not plans:
            return []
        sr = self.sample_rate
        out = ["", f"Shrink plan for our C engine: the largest configuration of this family that "
                   f"fits and runs in real time at {sr} Hz (largest = most channels incl. "
                   "skip/end, then layers, then receptive field; receptive field kept >= 1/8 "
                   "of the model's; estimates):"]
        groups = {}
        for p in plans:
            groups.setdefault(p.key(), []).append(p)
        for ps in groups.values():
            p = ps[0]
            names = ", ".join(x.target for x in ps)
            if not p.achieved:
                sm = p.smallest
                fl = sm["receptive_field_floor"]
                out.append(f"  {names}: no configuration of the {p.searched} searched runs in "
                           f"real time: even the smallest ({sm['shape']}) needs "
                           f"{sm['cycles_per_sample']:,.0f} cycles/sample (at most "
                           f"{sm['max_sample_rate_hz']:,.0f} Hz); going further would cut the "
                           f"receptive field below {fl} samples ({1000.0 * fl / sr:.3g} ms: the "
                           "model would forget everything older)")
                continue
            c = p.config
            rtf = ", ".join(f"{x.target} RTF {x.real_time_factor:.2f}" for x in ps)
            out.append(f"  {names}: {p.change}" if p.change != "no change" else
                       f"  {names}: the model as it is ({shape_text_of(c)})")
            out.append(f"    {c.macs_per_sample():,} MACs/sample, {c.parameter_count():,} "
                       f"parameters; {rtf}; binding: {p.binding}")
            out.append("    receptive field: " + receptive_field_words_of(c.receptive_field, sr))
            if p.bits is not None:
                ref = ("" if p.model_bits is None or p.change == "no change" else
                       f"; the model's shape: {p.model_bits['heldout_bits_per_sample']:.2f}")
                out.append(f"    expected cost: {p.bits['heldout_bits_per_sample']:.2f} bits/sample"
                           f" on the built-in held-out set after {p.bits['train_steps']} training"
                           f" steps{ref} (measured by {p.bits['measured_by']}; order-0 entropy "
                           f"{p.bits['heldout_order0_bits']:.2f})")
            else:
                out.append("    expected cost: bits/sample not measured for this shape "
                           "(benchmarks/shrink_quality.py measures a grid around the tiny preset)")
        return out

    def _cond_lines(self) -> list:
        k = self.conditioning
        if not k:
            return []
        out = [f"vocoder ({k['cin_channels']} cond channels, {k['upsampler']} upsampler): step "
               f"{k['step_macs_per_sample']:,} MACs/sample (cond columns "
               f"{k['cond_macs_per_sample']:,}) + per-sample cond QUANTIZE "
               f"{k['cond_quantize_ops']} ops, {k['cond_quantize_elements_per_sample']} "
               f"elements"]
        if k["frame_macs_per_call"]:
            out.append(f"  frame graph once per {k['hop']} samples: {k['frame_macs_per_call']:,} "
                       f"MACs, {k['frame_ops_per_call']} ops per frame = "
                       f"{k['frame_macs_per_sample']:,.1f} MACs/sample; step + frames "
                       f"{k['total_macs_per_sample']:,.1f} MACs/sample (in the latency "
                       f"figures below)")
        return out

    def table(self) -> str:
        c = self.counts
        lines = [f"{self.model}: {format_bytes(self.model_bytes)} .tflite, {c.n_ops} ops, "
                 f"{c.macs:,} MACs/sample"
                 + (f" (config: {self.config_macs_per_sample:,})"
                    if self.config_macs_per_sample is not None else "")
                 + f", delay lines {format_bytes(self.delay_lines.ring_bytes)}, "
                 f"TFLM arena {format_bytes(self.arena['arena_bytes'])} (measured)",
                 f"sample rate {self.sample_rate} Hz; latency figures are ESTIMATES "
                 f"(cost model in firmware_sim/targets.json)", *self._cond_lines(), ""]
        hdr = ["target", "core", "MHz", "fits", "flash used/total", "SRAM used/total",
               "SRAM headroom", "cyc/sample", "max Hz", "RTF", f"underruns@{self.fifo_depth}",
               "min FIFO"]
        rows = []
        for r in self.results:
            m, lat = r.memory, r.latency
            fits = "yes" if m.fits else ("no: flash+SRAM" if not (m.fits_flash or m.fits_sram)
                                         else "no: flash" if not m.fits_flash else "no: SRAM")
            rows.append([
                r.target.name, r.target.core.name, f"{r.target.clock_hz / 1e6:g}", fits,
                f"{format_bytes(m.flash_bytes)}/{format_bytes(m.flash_capacity)}",
                f"{format_bytes(m.sram_bytes)}/{format_bytes(m.sram_capacity)}",
                format_bytes(m.sram_headroom), f"{lat.cycles_per_sample:,.0f}",
                f"{lat.max_sample_rate:,.0f}", f"{lat.real_time_factor(self.sample_rate):.2f}",
                str(r.fifo.underruns), "-" if r.min_fifo is None else str(r.min_fifo.depth)])
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(hdr, widths)))
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)))
        lines.append("")
        lines.append("SRAM = delay lines + arena + stack allowance + FIFO; RTF = real-time factor "
                     "(>= 1: real time); min FIFO = smallest output FIFO (samples) with no underrun "
                     f"over {self.seconds:g} s with ±{100 * self.jitter.jitter:g}% jitter and a "
                     f"{self.jitter.isr_cycles:g}-cycle interrupt every {self.jitter.isr_period} "
                     "samples ('-': not real time).")
        lines.extend(self._c_engine_lines())
        for r in self.results:
            br = r.latency.breakdown
            tot = sum(br.values()) or 1.0
            parts = ", ".join(f"{k} {100 * v / tot:.0f}%" for k, v in
                              sorted(br.items(), key=lambda kv: -kv[1]) if v > 0)
            lines.append(f"  {r.target.name}: {parts}")
        lines.extend(self._plan_lines())
        groups = {}
        for r in self.results:
            if not r.suggestions:
                continue
            why = []
            if not r.memory.fits:
                why.append("does not fit")
            if r.min_fifo is None or r.fifo.underruns:
                why.append("not real time" if r.min_fifo is None else
                           f"underruns with a {self.fifo_depth}-sample FIFO")
            shown = [s for s in r.suggestions if s.get("plan") or s.get("fits") is None]
            parts = [_suggestion_parts(s, self.sample_rate) for s in shown]
            key = (" and ".join(why), tuple((p[0], p[2]) for p in parts),
                   len(r.suggestions) - len(shown))
            groups.setdefault(key, []).append((r.target.name, [p[1] for p in parts]))
        # targets that share a verdict and the same suggestions get ONE paragraph; only the
        # cycles differ per target
        for (why, shared, hidden), members in groups.items():
            lines.append("")
            lines.append(f"{', '.join(n for n, _ in members)}: {why} with TFLM; what to shrink "
                         "(estimates):")
            for i, (text, verdict) in enumerate(shared):
                cyc = "; ".join((f"{n} " if len(members) > 1 else "") + c[i]
                                for n, c in members)
                lines.append(f"  - {text}, {cyc} -> {verdict}")
            if hidden:
                lines.append(f"  ({hidden} one-step reductions in --json)")
        lines.append("")
        if self.bitexact is None:
            lines.append("bit-exactness: not checked")
        else:
            b = self.bitexact
            lines.append(f"bit-exactness vs TFLM ({b.audio}): teacher-forced "
                         f"{b.teacher_forced_identical}/{b.teacher_forced_steps} identical, "
                         f"free-running {b.free_running_identical}/{b.free_running_steps} "
                         f"identical -> {'OK' if b.ok else 'FAILED: ' + b.message()}")
        return "\n".join(lines)
