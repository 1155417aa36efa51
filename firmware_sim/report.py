"""The simulation report: one readable table per run (a row per target) and a JSON form.

Figures are labelled for what they are: memory is exact for the model (file bytes, delay lines)
and measured for the arena (real TFLM, 64-bit host build) plus stated allowances; latency is an
ESTIMATE from a documented cost model; bit-exactness is a count of identical int8 steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ["TargetResult", "Report", "format_bytes"]


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; negative values keep their sign."""
    s = "-" if n < 0 else ""
    n = abs(int(n))
    if n < 1024:
        return f"{s}{n} B"
    if n < 1024 * 1024:
        return f"{s}{n / 1024:.1f} KiB"
    return f"{s}{n / (1024 * 1024):.2f} MiB"


def _suggestion_text(s: dict) -> str:
    parts = []
    if s.get("sram_bytes_est") is not None:
        parts.append(f"delay lines {format_bytes(s['delay_line_bytes'])}, SRAM "
                     f"{format_bytes(s['sram_bytes_est'])}, flash "
                     f"{format_bytes(s['flash_bytes_est'])}")
    parts.append(f"{s['est_cycles_per_sample']:,.0f} cyc/sample (RTF "
                 f"{s['est_real_time_factor']:.2f})")
    parts.append(f"receptive field {s['receptive_field']}")
    rt = s["est_real_time_factor"] >= 1
    if s.get("achieved") is False:
        verdict = ("not reachable without cutting the receptive field below "
                   f"{s['min_receptive_field']} samples" if s.get("min_receptive_field")
                   else "not reachable by these reductions")
    elif s.get("fits") is None:
        verdict = "real time" if rt else "still not real time"
    elif s["fits"]:
        verdict = "fits and real time" if rt else "fits, not real time"
    else:
        verdict = "still does not fit"
    if s.get("kind", "estimate") != "estimate":
        parts.append(s["kind"])
    return f"{s['change']}: {', '.join(parts)} -> {verdict}"


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
    #: our C export on this target, priced with the QEMU-measured coefficients
    #: (firmware_sim.latency.estimate_c_export): (core name, LatencyEstimate), or None (no
    #: measured core of this kind)
    c_export: tuple = None

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
                             {"cost_model": "measured: QEMU instruction counts of the exported C "
                                            "engine per operator x assumed CPI",
                              "core": self.c_export[0],
                              **self.c_export[1].to_dict(sample_rate),
                              "real_time": self.c_export[1].real_time_factor(sample_rate) >= 1.0})}


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
    def table(self) -> str:
        c = self.counts
        lines = [f"{self.model}: {format_bytes(self.model_bytes)} .tflite, {c.n_ops} ops, "
                 f"{c.macs:,} MACs/sample"
                 + (f" (config: {self.config_macs_per_sample:,})"
                    if self.config_macs_per_sample is not None else "")
                 + f", delay lines {format_bytes(self.delay_lines.ring_bytes)}, "
                 f"TFLM arena {format_bytes(self.arena['arena_bytes'])} (measured)",
                 f"sample rate {self.sample_rate} Hz; latency figures are ESTIMATES "
                 f"(cost model in firmware_sim/targets.json)", ""]
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
        cx = [r for r in self.results if r.c_export is not None]
        if cx:
            lines.append("The table prices the TFLM interpreter (cost model). Our exported C "
                         "engine (export-c), priced with coefficients MEASURED in QEMU "
                         "(targets.json cores *-wavenet-c-*; cycles are estimates):")
            for r in cx:
                core, c = r.c_export
                rtf = c.real_time_factor(self.sample_rate)
                lines.append(f"  {r.target.name}: {c.cycles_per_sample:,.0f} cyc/sample, max "
                             f"{c.max_sample_rate:,.0f} Hz, RTF {rtf:.2f} -> "
                             + ("real time" if rtf >= 1.0 else "not real time")
                             + f" ({core})")
        for r in self.results:
            br = r.latency.breakdown
            tot = sum(br.values()) or 1.0
            parts = ", ".join(f"{k} {100 * v / tot:.0f}%" for k, v in
                              sorted(br.items(), key=lambda kv: -kv[1]) if v > 0)
            lines.append(f"  {r.target.name}: {parts}")
        for r in self.results:
            if not r.suggestions:
                continue
            why = []
            if not r.memory.fits:
                why.append("does not fit")
            if r.min_fifo is None or r.fifo.underruns:
                why.append("not real time" if r.min_fifo is None else
                           f"underruns with a {self.fifo_depth}-sample FIFO")
            lines.append("")
            lines.append(f"{r.target.name} {' and '.join(why)}; what to shrink (estimates):")
            shown = [s for s in r.suggestions if s.get("plan") or s.get("fits") is None]
            for s in shown:
                lines.append("  - " + _suggestion_text(s))
            if len(shown) < len(r.suggestions):
                lines.append(f"  ({len(r.suggestions) - len(shown)} one-step reductions in --json)")
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
