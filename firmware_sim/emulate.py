"""Run the exported C engine as real firmware in QEMU: bit-exactness and exact instruction counts.

:func:`emulate` exports the model (:mod:`firmware_sim.c_export`), cross-compiles it with a small
driver (``c/wn_driver.c``) for each core and kernel variant (:mod:`firmware_sim.qemu`), runs it
with the instruction-counting plugin, and compares every step with the Numba engine (profile
``tflm``): the driver prints a hash of (probs, logits, every delay-line write) per step and the
full vectors every ``full_every`` steps.  A ``marker()`` call before and after each ``wn_step``
gives the executed instructions per generated sample; a FULLY_CONNECTED-only benchmark (one
matrix, run with ``cols`` and with zero columns) gives instructions per MAC of the inner loop.

QEMU counts *instructions*, not cycles.  :data:`CPI_ASSUMED` converts them to a cycle ESTIMATE
with an assumed cycles-per-instruction factor per core (the same factors ``targets.json`` states
for its cost coefficients); a second, per-class ESTIMATE counts one steady step per instruction
address and prices each instruction class from the cores' reference manuals
(:mod:`firmware_sim.cycles`).  The step skips the SOFTMAX (probabilities on demand); the driver
also measures the SOFTMAX on demand and one sample on the logits / on the probabilities.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from wavenet_edge.errors import ConfigError, WaveNetEdgeError
from wavenet_edge.lowered import OpKind

__all__ = ["emulate", "EmulationReport", "CoreRun", "CPI_ASSUMED", "KERNELS_FOR_CORE",
           "check_undefined_behaviour", "SanitizedRun", "SAMPLE_DRAWS",
           "engine_reference", "parse_driver_output", "driver_header", "build_host_driver",
           "REFERENCE_INSTRUCTIONS_PER_MAC"]

_C_DIR = Path(__file__).parent / "c"

#: assumed cycles per executed instruction (an ESTIMATE; QEMU does not model timing):
#: M4 ~1.2 (2-cycle loads, 1-cycle SMLAD; Cortex-M4 TRM DDI0439B §3.3), M7 ~0.75 (dual issue with
#: data in TCM/D-cache; Cortex-M7 TRM DDI0489F), M55 ~1.2 (dual-beat MVE; Cortex-M55 TRM 101051)
CPI_ASSUMED = {"cortex-m4": 1.2, "cortex-m7": 0.75, "cortex-m55": 1.2}

#: kernel variants each core can run
KERNELS_FOR_CORE = {"cortex-m4": ("plain", "dsp"), "cortex-m7": ("plain", "dsp"),
                    "cortex-m55": ("plain", "dsp", "mve")}

#: reference figures (instructions per int8 MAC of an FC kernel) quoted by the brief
REFERENCE_INSTRUCTIONS_PER_MAC = {
    "plain C": {"cortex-m4": 5.0, "cortex-m7": 5.0, "cortex-m55": 4.0},
    "DSP intrinsics": {"cortex-m4": 3.0, "cortex-m7": 3.0, "cortex-m55": 3.0},
    "optimized library": {"cortex-m4": 1.9, "cortex-m7": 1.9, "cortex-m55": 0.5},
}

_KCODE = {"plain": 1, "dsp": 2, "mve": 3}
#: draws of the sampling benchmark (``WN_DRV_DRAWS`` in c/wn_driver.c)
SAMPLE_DRAWS = 8
_HOST_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
_ARM_WARN = ["-Wall", "-Wextra", "-Werror"]


# ------------------------------------------------------------------------------------------------
# the driver scenario and its output
# ------------------------------------------------------------------------------------------------
def driver_header(codes, *, generate: bool, seed: int = 0, sampling_mode: int = 1, speaker: int = 0,
                  full_every: int = 1, bench=None, write_bytes: int = 0, frames=None) -> str:
    """Text of ``wn_driver_data.h``: teacher-forced ``codes`` (generate=False) or free-running
    generation of ``len(codes)`` steps from ``codes[0]`` (generate=True).  ``frames``: a
    vocoder's int8 features as the device takes them (:func:`firmware_sim.c_export.
    quantize_features`: padded frames (n_frames, cin) with an upsampler, one row per step
    without)."""
    codes = [int(c) for c in np.asarray(codes).ravel()]
    rows, cols = bench if bench else (1, 1)
    body = ", ".join(str(c) for c in codes)
    fr = ""
    if frames is not None:
        q = np.asarray(frames, np.int8)
        vals = ", ".join(str(int(v)) for v in q.ravel()) or "0"
        fr = (f"#define WN_DRV_N_FRAMES {q.shape[0]}u\n"
              f"static const int8_t wn_drv_frames[{max(q.size, 1)}] = {{{vals}}};\n")
    return fr + (f"#define WN_DRV_STEPS {len(codes)}u\n#define WN_DRV_GENERATE {int(bool(generate))}\n"
            f"#define WN_DRV_SEED {int(seed) % 2**64}ull\n"
            f"#define WN_DRV_SMODE {int(sampling_mode)}\n"
            f"#define WN_DRV_SPEAKER {int(speaker)}\n#define WN_DRV_FULL_EVERY {int(full_every)}u\n"
            f"#define WN_DRV_BENCH {1 if bench else 0}\n#define WN_DRV_BENCH_ROWS {int(rows)}\n"
            f"#define WN_DRV_BENCH_COLS {int(cols)}\n"
            f"#define WN_DRV_WRITE_BYTES {int(write_bytes)}\n"
            f"static const int16_t wn_drv_codes[{len(codes)}] = {{{body}}};\n")


@dataclass
class DriverOutput:
    """Parsed driver output: per step input code, sampled code (-1 teacher-forced) and hash;
    full vectors {step: int8 array} for probs (P), logits (L) and concatenated writes (W)."""

    inputs: np.ndarray
    sampled: np.ndarray
    hashes: np.ndarray
    full: dict
    complete: bool


def parse_driver_output(text: str) -> DriverOutput:
    inputs, sampled, hashes = [], [], []
    full = {"P": {}, "L": {}, "W": {}}
    complete = False
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "S" and len(parts) == 5:
            inputs.append(int(parts[2]))
            sampled.append(int(parts[3]))
            hashes.append(int(parts[4]))
        elif parts[0] in full and len(parts) in (2, 3):
            hx = parts[2] if len(parts) == 3 else ""
            full[parts[0]][int(parts[1])] = np.frombuffer(bytes.fromhex(hx), np.int8).copy()
        elif parts[0] == "END":
            complete = True
    return DriverOutput(np.array(inputs, np.int64), np.array(sampled, np.int64),
                        np.array(hashes, np.int64), full, complete)


def _fnv(h, b: bytes) -> int:
    for x in b:
        h = ((h ^ x) * 16777619) & 0xFFFFFFFF
    return h


def engine_reference(engine, inputs, *, speaker=None, cond=None):
    """Step the Numba engine (from reset) over ``inputs``; returns (probs (n,256), logits (n,256),
    writes (n, W) int8, hashes (n,)) in the driver's hash convention.  ``cond``: a vocoder's
    float features for the ``len(inputs)`` steps (``Engine.process``'s ``cond``)."""
    engine.reset()
    if speaker is not None:
        engine.speaker = speaker
    names = list(engine.program.write_names)
    n = len(inputs)
    probs = np.empty((n, 256), np.int8)
    logits = np.empty((n, 256), np.int8)
    ws = []
    if cond is not None:
        outs = engine.metadata["outputs"]
        pn, ln = outs["probabilities"], outs["logits"]
        tr = engine.trace(np.asarray(inputs, np.int64), [pn, ln, *names], cond=cond)
        probs[:], logits[:] = tr[pn], tr[ln]
        writes = (np.concatenate([tr[nm] for nm in names], axis=1) if names
                  else np.zeros((n, 0), np.int8))
        ws = list(writes)
    for j, c in enumerate(inputs if cond is None else ()):
        probs[j] = engine.step(int(c))
        logits[j] = engine.tensor("logits" if "logits" not in engine.metadata["outputs"]
                                  else engine.metadata["outputs"]["logits"])[0]
        ws.append(np.concatenate([engine.tensor(nm)[0] for nm in names]) if names
                  else np.zeros(0, np.int8))
    writes = np.stack(ws) if ws else np.zeros((n, 0), np.int8)
    hashes = np.array([_fnv(_fnv(_fnv(2166136261, probs[j].tobytes()), logits[j].tobytes()),
                            writes[j].tobytes()) for j in range(n)], np.int64)
    return probs, logits, writes, hashes


def export_sources(export_dir) -> list:
    """The C files of an export (the conditioning file only in a vocoder's)."""
    ed = Path(export_dir)
    return [ed / n for n in ("wavenet_model.c", "wavenet_engine.c", "wavenet_cond.c")
            if (ed / n).exists()]


def default_features(engine, steps: int) -> np.ndarray:
    """Deterministic float features for ``steps`` samples of a vocoder (padded frames with an
    upsampler, one row per sample without): smooth random walks per band across the middle of
    the features' int8 range, with a held stretch, so that frames differ from each other and
    the conditioning changes the outputs."""
    cfg = engine.config
    ci = engine.metadata["cond_input"]["features"]
    scale, zp = float(ci["scale"]), int(ci["zero_point"])
    n = cfg.frames_for(steps) if cfg.upsampler != "none" else steps
    rng = np.random.default_rng(1234)
    walk = np.cumsum(rng.normal(0.0, 0.35, (n, cfg.cin_channels)), axis=0)
    walk = np.tanh(walk / 3.0)
    walk[n // 3:n // 3 + max(1, n // 10)] = walk[n // 3]
    lo, hi = (-128 - zp) * scale, (127 - zp) * scale
    return (lo + hi) / 2 + walk * (hi - lo) * 0.4


def build_host_driver(export_dir, header_text: str, out_dir, *, kernels: str = "plain",
                      extra_flags=()) -> Path:
    """Compile export + driver with the host gcc (``-std=c99 -Wall -Wextra -Werror``)."""
    out_dir = Path(out_dir)
    (out_dir / "wn_driver_data.h").write_text(header_text)
    exe = out_dir / "wn_driver_host"
    ed = Path(export_dir)
    cmd = ["gcc", *_HOST_FLAGS, f"-DWN_KERNELS={_KCODE[kernels]}", "-DWN_HOST", *extra_flags,
           f"-I{ed}", f"-I{out_dir}", *map(str, export_sources(ed)),
           str(_C_DIR / "wn_driver.c"), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise WaveNetEdgeError("host gcc failed: " + " | ".join(r.stderr.strip().splitlines()[:6]))
    return exe


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------
@dataclass
class CoreRun:
    """One core × kernel variant."""

    core: str
    kernels: str
    steps: int
    bitexact_steps: int           # steps whose hash (probs, logits, writes) equals the engine's
    full_vectors_checked: int     # steps whose full vectors were compared too
    codes_match: bool             # generated codes equal the engine's (free-running)
    instructions_per_sample: float     # mean over steps (exact counts; marker overhead removed)
    instructions_min: int
    instructions_max: int
    repeatable: bool              # a second run gave the same counts
    fc_instructions_per_mac: float     # FC-only benchmark, inner loop (requant excluded)
    fc_instructions_per_mac_with_requant: float
    fc_bench_shape: tuple
    macs_per_sample: int
    cpi_assumed: float
    text_bytes: int = 0
    #: measured instructions per operator kind and per delay-line pass of one steady step
    #: (profiling build with a marker before every operator), see :func:`_profile_costs`
    op_profile: dict = field(default_factory=dict)
    #: cost coefficients in ``targets.json`` form (cycles = instructions x ``cpi_assumed``)
    measured_costs: dict = field(default_factory=dict)
    #: analytic latency model (firmware_sim.latency) with ``measured_costs`` on the C engine's
    #: operator list, cycles per sample — agrees with ``cycles_per_sample_estimate`` plus the
    #: on-demand SOFTMAX when the coefficients describe the step
    analytic_cycles_per_sample: float = 0.0
    #: instructions of the work outside ``wn_step``: the probabilities on demand (SOFTMAX, which
    #: the step skips and the sampler does not need), one sample on the logits with the export's
    #: weight table (mean of :data:`SAMPLE_DRAWS` draws), one greedy sample
    softmax_instructions: int = 0
    sample_logits_instructions: float = 0.0
    sample_greedy_instructions: int = 0
    #: per-class cycle ESTIMATE of one steady step (firmware_sim.cycles.CycleEstimate.to_dict)
    cycle_classes: dict = field(default_factory=dict)
    #: a vocoder with an upsampler: samples per frame call, the frame program's MACs per call,
    #: the calls run, their instructions (mean per call; one steady call); 0 otherwise.  The
    #: step's own cond work (the cond row and its per-layer QUANTIZE) is in the step's count
    hop: int = 0
    frame_macs: int = 0
    frame_calls: int = 0
    frame_instructions_per_call: float = 0.0
    frame_instructions_steady: int = 0

    @property
    def frame_instructions_per_sample(self) -> float:
        """The frame program's instructions per generated sample (one call per hop)."""
        return self.frame_instructions_per_call / self.hop if self.hop else 0.0

    @property
    def total_instructions_per_sample(self) -> float:
        """The step plus the frame work per sample (= the step without a frame program)."""
        return self.instructions_per_sample + self.frame_instructions_per_sample

    @property
    def cycles_per_sample_classes_estimate(self) -> float:
        """Cycles of one step priced per instruction class (NaN without a class profile)."""
        return float(self.cycle_classes.get("cycles_ESTIMATE", float("nan")))

    @property
    def generated_sample_instructions(self) -> float:
        """What a free-running device pays per generated sample: the step plus one sample on
        its logits (no SOFTMAX)."""
        return self.instructions_per_sample + self.sample_logits_instructions

    @property
    def cycles_per_sample_estimate(self) -> float:
        return self.instructions_per_sample * self.cpi_assumed

    @property
    def instructions_per_mac_whole_step(self) -> float:
        return self.instructions_per_sample / max(self.macs_per_sample, 1)

    @property
    def bitexact(self) -> bool:
        return self.bitexact_steps == self.steps and self.codes_match

    def core_model(self):
        """:class:`firmware_sim.targets.CoreModel` with the measured coefficients."""
        from firmware_sim.targets import CoreModel
        return CoreModel(name=f"{self.core}-wavenet-c-{self.kernels}",
                         kernels=f"wavenet-edge C export, {self.kernels} kernels (QEMU-measured "
                                 f"instructions x assumed CPI {self.cpi_assumed})",
                         costs=dict(self.measured_costs),
                         sources={k: "firmware_sim.emulate: QEMU instruction counts per operator"
                                  for k in self.measured_costs})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fc_bench_shape"] = list(self.fc_bench_shape)
        d["cycles_per_sample_ESTIMATE"] = round(self.cycles_per_sample_estimate, 1)
        d["cycles_per_sample_classes_ESTIMATE"] = round(self.cycles_per_sample_classes_estimate, 1)
        d["instructions_per_mac_whole_step"] = round(self.instructions_per_mac_whole_step, 3)
        d["bitexact"] = self.bitexact
        d["generated_sample_instructions"] = round(self.generated_sample_instructions, 1)
        d["frame_instructions_per_sample"] = round(self.frame_instructions_per_sample, 1)
        d["total_instructions_per_sample"] = round(self.total_instructions_per_sample, 1)
        for k, v in d.items():   # no benchmark / no profile: null, not NaN, in JSON
            if isinstance(v, float) and v != v:
                d[k] = None
        return d


@dataclass
class EmulationReport:
    """Result of :func:`emulate`: one :class:`CoreRun` per core × kernel variant."""

    model: str
    mode: str
    steps: int
    runs: list = field(default_factory=list)
    macs_per_sample: int = 0
    sample_rate: int = 16000

    def target_rates(self) -> list:
        """Per built-in target on an emulated core, with that core's fastest variant: the
        largest sample rate the measured step sustains (step without SOFTMAX plus one sample on
        the logits), by the flat-CPI and by the per-class cycle ESTIMATE."""
        from firmware_sim.latency import C_EXPORT_CORES
        from firmware_sim.targets import builtin_targets
        best = {}
        for r in self.runs:
            b = best.get(r.core)
            if b is None or r.instructions_per_sample < b.instructions_per_sample:
                best[r.core] = r
        out = []
        for t in builtin_targets().values():
            c = C_EXPORT_CORES.get(t.core.name, "").split("-wavenet-c-")[0]
            if c not in best:
                continue
            r = best[c]
            extra = r.sample_logits_instructions + r.frame_instructions_per_sample
            flat = (r.instructions_per_sample + extra) * r.cpi_assumed
            cls = r.cycles_per_sample_classes_estimate
            cls = cls + extra * (cls / r.instructions_per_sample) if cls == cls else cls
            out.append(dict(target=t.name, core=c, kernels=r.kernels, clock_hz=t.clock_hz,
                            max_rate_flat_cpi_ESTIMATE=round(t.clock_hz / flat, 1),
                            max_rate_classes_ESTIMATE=(round(t.clock_hz / cls, 1) if cls == cls
                                                       else None),
                            real_time=bool(cls == cls and t.clock_hz / cls >= self.sample_rate)))
        return out

    @property
    def ok(self) -> bool:
        return all(r.bitexact for r in self.runs)

    def run(self, core, kernels) -> CoreRun:
        for r in self.runs:
            if r.core == core and r.kernels == kernels:
                return r
        raise KeyError((core, kernels))

    def measured_instructions_per_mac(self) -> dict:
        """{core: {kernels: FC inner-loop instructions per MAC}} (feed for the latency model)."""
        out = {}
        for r in self.runs:
            out.setdefault(r.core, {})[r.kernels] = round(r.fc_instructions_per_mac, 3)
        return out

    def target_file(self) -> dict:
        """A ``--target-file`` document (``firmware_sim/targets.py`` format) with one measured core
        per emulated core x kernel variant (``<core>-wavenet-c-<kernels>``: cost coefficients =
        QEMU instructions per operator x assumed CPI) and, for every built-in target on one of
        these cores, a copy ``<target>-wavenet-c`` using the fastest variant measured on it; so
        ``simulate --target-file`` prices the C export with measured rather than assumed costs."""
        from firmware_sim.targets import builtin_targets
        cores, best = {}, {}
        for r in self.runs:
            if not r.measured_costs:
                continue
            name = f"{r.core}-wavenet-c-{r.kernels}"
            cores[name] = {**{k: round(float(v), 4) for k, v in r.measured_costs.items()},
                           "kernels": r.core_model().kernels,
                           "sources": {k: f"firmware_sim.emulate on {self.model}: QEMU-counted "
                                          f"instructions per operator x assumed CPI {r.cpi_assumed}"
                                       for k in r.measured_costs}}
            fz = r.op_profile.get("fused")
            if fz:   # the per-kernel model (firmware_sim.c_costs) of this one shape
                cores[name]["fused"] = {
                    "instructions": {**fz["instructions"],
                                     "sample": float(r.sample_logits_instructions),
                                     "softmax_call": float(r.softmax_instructions)},
                    "cpi": r.cpi_assumed, "mac_granule": 1, "measured_on": [self.model],
                    "source": "firmware_sim.emulate: fitted to this model's profile only"}
            if (r.core not in best
                    or r.instructions_per_sample < best[r.core].instructions_per_sample):
                best[r.core] = r
        alias = {"cortex-m4f": "cortex-m4", "cortex-m4": "cortex-m4", "cortex-m7": "cortex-m7",
                 "cortex-m55": "cortex-m55"}
        targets = []
        for t in builtin_targets().values():
            c = alias.get(t.core.name)
            if c in best:
                d = t.to_dict()
                d = {k: d[k] for k in ("title", "clock_hz", "sram_bytes", "flash_bytes",
                                       "flash_external", "weight_fetch_cycles_per_byte", "source",
                                       "caveats")}
                d.update(name=f"{t.name}-wavenet-c", title=f"{t.title}, wavenet-edge C export "
                         f"({best[c].kernels} kernels, measured)",
                         core=f"{c}-wavenet-c-{best[c].kernels}")
                targets.append(d)
        return {"format_version": 1,
                "about": "Cost coefficients measured by firmware_sim.emulate (exact QEMU instruction "
                         "counts per operator of the C export, times an ASSUMED cycles-per-"
                         "instruction factor per core: cycles remain estimates).",
                "cores": cores, "targets": targets}

    def write_target_file(self, path) -> None:
        """Write :meth:`target_file` as JSON (atomically)."""
        from wavenet_edge._fileio import atomic_write
        with atomic_write(path, "w") as f:
            json.dump(self.target_file(), f, indent=1)

    def to_dict(self) -> dict:
        return {"model": self.model, "mode": self.mode, "steps": self.steps,
                "macs_per_sample": self.macs_per_sample, "ok": self.ok,
                "cycle_estimate_note": "QEMU counts executed instructions exactly; cycles are an "
                                       "ESTIMATE = instructions x assumed CPI per core",
                "cpi_assumed": CPI_ASSUMED,
                "reference_instructions_per_mac": REFERENCE_INSTRUCTIONS_PER_MAC,
                "runs": [r.to_dict() for r in self.runs],
                "sample_rate": self.sample_rate, "targets": self.target_rates()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        lines = [f"Emulated firmware (QEMU, exact executed instructions): {self.model}",
                 f"{self.mode}, {self.steps} steps, {self.macs_per_sample} MACs/sample; "
                 "cycles are an ESTIMATE = instructions x assumed CPI "
                 + ", ".join(f"{c} {v}" for c, v in CPI_ASSUMED.items()),
                 f"{'core':11s} {'kernels':7s} {'instr/sample':>12s} {'instr/MAC':>9s} "
                 f"{'FC instr/MAC':>12s} {'CPI':>5s} {'cycles EST':>10s} {'class EST':>10s} "
                 f"{'model EST':>10s}  bit-exact"]
        for r in self.runs:
            ok = (f"{r.bitexact_steps}/{r.steps} steps"
                  + ("" if r.codes_match else ", codes DIFFER")
                  + f" ({r.full_vectors_checked} full)"
                  + ("" if r.repeatable else ", NOT repeatable"))
            model = f"{r.analytic_cycles_per_sample:10.0f}" if r.measured_costs else f"{'-':>10s}"
            lines.append(f"{r.core:11s} {r.kernels:7s} {r.instructions_per_sample:12.1f} "
                         f"{r.instructions_per_mac_whole_step:9.2f} "
                         f"{r.fc_instructions_per_mac:12.2f} "
                         f"{r.cpi_assumed:5.2f} {r.cycles_per_sample_estimate:10.0f} "
                         f"{r.cycles_per_sample_classes_estimate:10.0f} {model}  {ok}")
        lines.append("instr/sample = wn_step without the SOFTMAX (probabilities on demand); "
                     "instr/MAC = whole step / MACs; FC instr/MAC = inner loop of an FC-only "
                     "benchmark; class EST = executed instructions classified and priced per "
                     "class (firmware_sim.cycles, TRM figures); model EST = the latency cost "
                     "model with the coefficients measured per operator (below), SOFTMAX included")
        for r in self.runs:
            if r.softmax_instructions:
                lines.append(f"{r.core} {r.kernels}: outside the step, SOFTMAX on demand "
                             f"{r.softmax_instructions} instr (only if probabilities are "
                             f"wanted), one sample on the logits "
                             f"{r.sample_logits_instructions:.0f} (free-running step + sample "
                             f"{r.generated_sample_instructions:.0f}), greedy "
                             f"{r.sample_greedy_instructions}")
        for r in self.runs:
            if r.hop:
                lines.append(f"{r.core} {r.kernels}: frame program (wn_frame, one call per hop "
                             f"{r.hop}) {r.frame_macs} MACs/call = {r.frame_macs / r.hop:.1f} "
                             f"MACs/sample, {r.frame_instructions_per_call:.0f} instr/call "
                             f"({r.frame_calls} calls) = {r.frame_instructions_per_sample:.1f} "
                             f"instr/sample; step (with its cond row) + frames "
                             f"{r.total_instructions_per_sample:.1f} instr/sample")
        lines.append("reference FC instr/MAC: plain C ~5 (M4/M7), ~4 (M55); DSP intrinsics ~3; "
                     "optimized library ~1.9 (M4/M7), ~0.5 (M55)")
        rates = self.target_rates()
        if rates:
            lines.append(f"real time at {self.sample_rate} Hz with our C (step + one sample on "
                         "the logits, per-class cycle ESTIMATE): " + "; ".join(
                             f"{x['target']} ({x['core']} {x['kernels']}, "
                             f"{x['clock_hz'] / 1e6:g} MHz) "
                             + (f"{x['max_rate_classes_ESTIMATE'] / 1e3:.1f} kHz"
                                if x["max_rate_classes_ESTIMATE"] else "-")
                             + (" yes" if x["real_time"] else " no") for x in rates))
        seen = set()
        for r in reversed(self.runs):
            if r.measured_costs and r.core not in seen:
                seen.add(r.core)
                c = r.measured_costs
                lines.append(f"measured cost coefficients, {r.core} {r.kernels} (cycles EST): "
                             f"mac {c['cycles_per_mac']:.2f}, "
                             f"requant {c['cycles_per_requant']:.1f}, "
                             f"add {c['cycles_per_add_element']:.1f}, "
                             f"mul {c['cycles_per_mul_element']:.1f}, "
                             f"tanh/logistic {c['cycles_per_transcendental_element']:.1f}, "
                             f"softmax {c['cycles_per_softmax_element']:.1f}, "
                             f"copy/byte {c['cycles_per_copy_byte']:.2f}, "
                             f"dispatch {c['cycles_per_op_dispatch']:.0f}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# front door
# ------------------------------------------------------------------------------------------------
def _load(model):
    from wavenet_edge.engine import Engine
    from wavenet_edge.tflite_file import load_model
    m = load_model(model)
    return Engine(m, profile="tflm"), m.name


def _text_size(elf) -> int:
    try:
        r = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            p = line.split()
            if p and p[0] == ".text":
                return int(p[1])
    except OSError:
        pass
    return 0


def emulate(model, *, cores=("cortex-m4", "cortex-m7", "cortex-m55"), steps: int = 200,
            kernels="all", codes=None, seed: int = 0, speaker=None, full_every: int = 25,
            bench=(64, 256), repeat_check: bool = True, profile_ops: bool = True, work_dir=None,
            progress: bool = False, cycle_classes: bool = True,
            features=None) -> EmulationReport:
    """Export ``model``, run it as firmware on each core in QEMU, compare with the engine.

    model : ``.tflite`` path, bytes or :class:`Engine`
    cores : subset of :data:`firmware_sim.qemu.CORES`
    steps : steps per run; with ``codes`` None the firmware generates freely (PCG32 ``seed``,
        temperature 1) from the silence code, else it is teacher-forced with ``codes``
    kernels : ``"all"`` (every variant the core supports, :data:`KERNELS_FOR_CORE`), ``"auto"``
        (the best one), one name, or a sequence of names
    full_every : print and compare full vectors every this many steps (hashes at every step)
    bench : (rows, cols) of the FC-only instructions-per-MAC benchmark
    profile_ops : also build with a marker before every operator, fit cost coefficients per
        operator kind (``CoreRun.measured_costs``) and evaluate the analytic latency model with them
    cycle_classes : also count one steady step per instruction address, classify and price the
        instructions per class (:mod:`firmware_sim.cycles`, ``CoreRun.cycle_classes``)
    features : a vocoder's float features for the run (``Engine.process``'s ``cond``: padded
        frames with an upsampler), default :func:`default_features`; the host quantizes them
        (:func:`firmware_sim.c_export.quantize_features`) and the firmware runs the frame
        program (``wn_frame``) and the step with its cond rows; ``steps`` is rounded to whole
        hops (up when generating, down when teacher-forced).  ``CoreRun.frame_*`` count the
        frame calls' instructions
    """
    from firmware_sim.c_export import export_c, quantize_features
    from firmware_sim.qemu import CORES, compile_firmware, run_firmware, toolchain_status

    missing = toolchain_status()
    if missing:
        raise WaveNetEdgeError(f"cannot emulate: {missing}")
    for c in cores:
        if c not in CORES:
            raise ConfigError(f"unknown core {c!r}; known: {', '.join(CORES)}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    if bench is not None and (len(bench) != 2 or min(int(v) for v in bench) < 1):
        raise ConfigError(f"bench must be (rows, cols) with positive sizes, got {bench!r}")
    eng, label = _load(model)
    cfg = eng.config
    spk = 0 if speaker is None else int(speaker)
    if cfg.has_gc and not (0 <= spk < cfg.gc_cardinality):
        raise ConfigError(f"speaker must lie in [0, {cfg.gc_cardinality - 1}]")
    generate = codes is None
    hop = (cfg.hop if cfg.upsampler != "none" else 1) if cfg.has_cond else 1
    if not cfg.has_cond and features is not None:
        raise ConfigError(f"{label}: features given but the model has no local conditioning")
    if generate:
        steps = -(-int(steps) // hop) * hop
    else:
        inputs = np.asarray(codes, np.int64).ravel()[:steps]
        inputs = inputs[:inputs.size // hop * hop]
        if inputs.size == 0 or inputs.min() < 0 or inputs.max() > 255:
            raise ConfigError("codes must be class indices in [0, 255]"
                              + (f", at least one hop ({hop})" if hop > 1 else ""))
        steps = int(inputs.size)
    cond = None
    if cfg.has_cond:
        cond = default_features(eng, steps) if features is None else features
    if generate:
        gen = eng.generate(int(steps), seed=seed, temperature=1.0,
                           speaker=spk if cfg.has_gc else None, cond=cond)
        first = eng.silence_code()
        inputs = np.concatenate([[first], gen[:-1]]).astype(np.int64)
        drv_codes = [first]
    else:
        gen = None
        drv_codes = inputs
    probs, logits, writes, hashes = engine_reference(eng, inputs,
                                                     speaker=spk if cfg.has_gc else None,
                                                     cond=cond)
    n = len(inputs)
    per = 3 if cond is not None else 2   # driver intervals per step (gap, [frames,] step)

    tmp = tempfile.TemporaryDirectory(prefix="wn-emulate-") if work_dir is None else None
    wd = Path(tmp.name if tmp else work_dir)
    wd.mkdir(parents=True, exist_ok=True)
    try:
        exp = export_c(eng, wd / "export")
        wb = int(sum(exp.write_widths))
        drv = [drv_codes[0]] * n if generate else inputs
        frames_q = None if cond is None else quantize_features(exp.program, cond)
        (wd / "wn_driver_data.h").write_text(driver_header(
            drv, generate=generate, seed=seed, speaker=spk, full_every=full_every, bench=bench,
            write_bytes=wb, frames=frames_q))
        report = EmulationReport(model=label, mode="free-running generation (T=1, seed "
                                 f"{seed})" if generate else "teacher-forced", steps=n,
                                 macs_per_sample=exp.macs_per_sample,
                                 sample_rate=int(eng.sr))
        jobs = []
        for core in cores:
            avail = KERNELS_FOR_CORE[core]
            if kernels == "all":
                ks = avail
            elif kernels == "auto":
                ks = (avail[-1],)
            else:
                ks = (kernels,) if isinstance(kernels, str) else tuple(kernels)
                for k in ks:
                    if k not in avail:
                        raise ConfigError(f"kernels {k!r} not available on {core} "
                                          f"({', '.join(avail)})")
            jobs.extend((core, k) for k in ks)
        from tqdm.auto import tqdm
        for core, k in tqdm(jobs, desc="emulating", unit="run", disable=not progress, leave=False):
            bdir = wd / f"{core}-{k}"
            bdir.mkdir(exist_ok=True)
            src = [*export_sources(wd / "export"), _C_DIR / "wn_driver.c"]
            elf = compile_firmware(src, core, bdir, defines=[f"WN_KERNELS={_KCODE[k]}"],
                                   include_dirs=[wd / "export", wd])
            res = run_firmware(elf, core)
            out = parse_driver_output(res.stdout)
            if not out.complete or len(out.hashes) != n:
                raise WaveNetEdgeError(f"firmware on {core} ({k}) printed {len(out.hashes)} "
                                       f"of {n} steps")
            rep_ok = True
            if repeat_check:
                rep_ok = run_firmware(elf, core).marks == res.marks
            marks = res.marks
            over = marks[1]
            step_counts = np.array([marks[1 + per + per * j] - over for j in range(n)],
                                   np.int64)
            frame_info = {}
            if exp.frame_macs:     # the frame calls before each step (interval 3 + 3j)
                fc = np.array([marks[3 + per * j] - over for j in range(n)], np.int64)
                calls = (n // hop) + (exp.program["cond"]["frames"]["block_delay"])
                frame_info = dict(frame_calls=int(calls),
                                  frame_instructions_per_call=round(float(fc.sum()) / calls, 1),
                                  frame_instructions_steady=int(fc[hop]) if n > hop else 0)
            nb = 2 + per * n
            extra = [0, 0.0, 0]
            if bench:
                fc_full = marks[nb + 1] - over
                fc_zero = marks[nb + 2] - over
                bmacs = bench[0] * bench[1]
                extra = [marks[nb + 4] - over, (marks[nb + 6] - over) / SAMPLE_DRAWS,
                         marks[nb + 7] - over]
            else:
                fc_full, fc_zero, bmacs = float("nan"), float("nan"), 1
            classes = {}
            if cycle_classes:
                from firmware_sim.cycles import estimate_cycles
                j = min(n - 1, 2)
                h = run_firmware(elf, core, hist=(per + 1 + per * j, per + 2 + per * j)).hist
                classes = estimate_cycles(h, elf, core).to_dict()
            eq = out.hashes == hashes
            nfull = 0
            for j, v in out.full["P"].items():
                good = (np.array_equal(v, probs[j]) and np.array_equal(out.full["L"][j], logits[j])
                        and np.array_equal(out.full["W"][j], writes[j]))
                eq[j] &= good
                nfull += 1
            prof, costs, analytic = {}, {}, 0.0
            if profile_ops:
                prof, costs, analytic = _profile(eng, exp, wd, bdir, core, k, inputs, spk,
                                                 frames_q)
            codes_match = bool(np.array_equal(out.inputs, inputs))
            if generate:
                codes_match &= bool(np.array_equal(out.sampled, gen))
            report.runs.append(CoreRun(
                core=core, kernels=k, steps=n, bitexact_steps=int(eq.sum()),
                full_vectors_checked=nfull, codes_match=codes_match,
                instructions_per_sample=float(step_counts.mean()),
                instructions_min=int(step_counts.min()), instructions_max=int(step_counts.max()),
                repeatable=rep_ok, fc_instructions_per_mac=(fc_full - fc_zero) / bmacs,
                fc_instructions_per_mac_with_requant=fc_full / bmacs,
                fc_bench_shape=tuple(bench or ()), macs_per_sample=exp.macs_per_sample,
                cpi_assumed=CPI_ASSUMED[core], text_bytes=_text_size(elf), op_profile=prof,
                measured_costs=costs, analytic_cycles_per_sample=analytic,
                softmax_instructions=int(extra[0]),
                sample_logits_instructions=round(float(extra[1]), 1),
                sample_greedy_instructions=int(extra[2]), cycle_classes=classes,
                hop=hop if exp.frame_macs else 0, frame_macs=exp.frame_macs, **frame_info))
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()



# ------------------------------------------------------------------------------------------------
# undefined-behaviour check of every variant
# ------------------------------------------------------------------------------------------------
@dataclass
class SanitizedRun:
    """One core x kernel variant built with the trapping UndefinedBehaviorSanitizer."""

    core: str
    kernels: str
    steps: int
    bitexact_steps: int     # steps whose hash (probs, logits, writes) equals the engine's
    codes_match: bool       # the sampled codes equal Engine.generate's

    @property
    def ok(self) -> bool:
        return self.bitexact_steps == self.steps and self.codes_match


def check_undefined_behaviour(model, *, cores=("cortex-m4", "cortex-m7", "cortex-m55"),
                              kernels="all", steps: int = 40, seed: int = 0,
                              work_dir=None) -> list:
    """Build the exported engine with its driver for every core x kernel variant with
    ``-fsanitize=undefined -fsanitize-undefined-trap-on-error`` (and ``-Werror``), run
    ``steps`` free-running steps in QEMU (each step also computes the SOFTMAX for the
    comparison; the driver's benchmark part runs an FC, one probabilities-on-demand SOFTMAX,
    sampling on the logits and greedy), and compare with the engine.  Any undefined operation
    the sanitizer instruments traps and raises :class:`firmware_sim.qemu.EmulationError`;
    otherwise returns one :class:`SanitizedRun` per build.  Not covered: accesses out of bounds
    through pointers (no AddressSanitizer bare-metal), and the MVE/DSP intrinsics themselves
    (they are instructions, defined for every input)."""
    from firmware_sim.c_export import export_c
    from firmware_sim.qemu import CORES, compile_firmware, run_firmware, toolchain_status
    missing = toolchain_status()
    if missing:
        raise WaveNetEdgeError(f"cannot emulate: {missing}")
    eng, _ = _load(model)
    spk = 0
    if eng.config.has_gc:
        eng.speaker = spk
    cfg = eng.config
    cond = None
    if cfg.has_cond:     # a vocoder: whole hops of the default features
        hop = cfg.hop if cfg.upsampler != "none" else 1
        steps = -(-int(steps) // hop) * hop
        cond = default_features(eng, steps)
    gen = eng.generate(int(steps), seed=seed, temperature=1.0, cond=cond)
    first = eng.silence_code()
    inputs = np.concatenate([[first], gen[:-1]]).astype(np.int64)
    _, _, _, hashes = engine_reference(eng, inputs, speaker=spk if eng.config.has_gc else None,
                                       cond=cond)
    tmp = tempfile.TemporaryDirectory(prefix="wn-ubsan-") if work_dir is None else None
    wd = Path(tmp.name if tmp else work_dir)
    try:
        exp = export_c(eng, wd / "export")
        from firmware_sim.c_export import quantize_features
        (wd / "wn_driver_data.h").write_text(driver_header(
            [first] * len(inputs), generate=True, seed=seed, speaker=spk, full_every=0,
            bench=(8, 40), write_bytes=int(sum(exp.write_widths)),
            frames=None if cond is None else quantize_features(exp.program, cond)))
        src = [*export_sources(wd / "export"), _C_DIR / "wn_driver.c"]
        runs = []
        for core in cores:
            if core not in CORES:
                raise ConfigError(f"unknown core {core!r}; known: {', '.join(CORES)}")
            ks = KERNELS_FOR_CORE[core] if kernels == "all" else (
                (kernels,) if isinstance(kernels, str) else tuple(kernels))
            for k in ks:
                bdir = wd / f"{core}-{k}"
                bdir.mkdir(exist_ok=True)
                elf = compile_firmware(src, core, bdir, defines=[f"WN_KERNELS={_KCODE[k]}"],
                                       include_dirs=[wd / "export", wd], sanitize=True)
                out = parse_driver_output(run_firmware(elf, core).stdout)
                n = min(len(out.hashes), len(hashes))
                runs.append(SanitizedRun(
                    core=core, kernels=k, steps=len(hashes),
                    bitexact_steps=int((out.hashes[:n] == hashes[:n]).sum()) if out.complete
                    else 0, codes_match=bool(np.array_equal(out.sampled, gen))))
        return runs
    finally:
        if tmp is not None:
            tmp.cleanup()


# ------------------------------------------------------------------------------------------------
# per-operator profile -> cost coefficients for the analytic latency model
# ------------------------------------------------------------------------------------------------
_KIND_NAMES = {OpKind.GATHER: "gather", OpKind.FC: "fully_connected", OpKind.ADD: "add",
               OpKind.MUL: "mul", OpKind.LUT: "transcendental", OpKind.SOFTMAX: "softmax",
               OpKind.COPY: "copy"}


def _profile(eng, exp, wd, bdir, core, kernels, inputs, spk, frames=None):
    """Build with ``-DWN_OP_HOOK=marker``, run 3 teacher-forced steps, return
    (per-kind instruction totals, cost coefficients, analytic cycles per sample).  ``frames``:
    a vocoder's int8 features (the driver's frame interval before each step is skipped)."""
    from firmware_sim.qemu import compile_firmware, run_firmware
    prog = exp.program
    n_ops = len(prog["ops"])
    pdir = bdir / "profile"
    pdir.mkdir(exist_ok=True)
    steps = 3
    (pdir / "wn_driver_data.h").write_text(driver_header(
        list(inputs[:steps]) + [inputs[0]] * max(0, steps - len(inputs)), generate=False,
        speaker=spk, full_every=0, bench=None, write_bytes=int(sum(exp.write_widths)),
        frames=frames))
    src = [*export_sources(wd / "export"), _C_DIR / "wn_driver.c"]
    elf = compile_firmware(src, core, pdir, defines=[f"WN_KERNELS={_KCODE[kernels]}",
                                                     "WN_OP_HOOK=marker"],
                           include_dirs=[wd / "export", pdir])
    marks = run_firmware(elf, core).marks
    over = marks[1]
    fr = 0 if frames is None else 1      # a vocoder's frame interval before the step
    per = n_ops + 3 + fr                 # gap, [frames,] delay reads, every op, delay writes
    last = 2 + (steps - 1) * per
    seg = [m - over for m in marks[last + fr:last + per]]
    reads_i, ops_i, writes_i = seg[1], seg[2:2 + n_ops], seg[2 + n_ops]
    return _fit_costs(prog, ops_i, reads_i, writes_i, CPI_ASSUMED[core], eng)


_COEFS = ("cycles_per_mac", "cycles_per_requant", "cycles_per_add_element",
          "cycles_per_mul_element", "cycles_per_transcendental_element",
          "cycles_per_softmax_element", "cycles_per_copy_byte", "cycles_per_copy_call",
          "cycles_per_op_dispatch")


def _features(o) -> np.ndarray:
    """What one operator contributes to each coefficient of :data:`_COEFS`."""
    f = np.zeros(len(_COEFS))
    k = OpKind(int(o["kind"]))
    per_element = {OpKind.ADD: 2, OpKind.MUL: 3, OpKind.LUT: 4, OpKind.SOFTMAX: 5}
    if k == OpKind.FC:
        f[0], f[1] = o["n"] * o["cols"], o["n"]
    elif k in per_element:
        f[per_element[k]] = o["n"]
    elif k in (OpKind.GATHER, OpKind.COPY):
        f[6], f[7] = o["n"], 1
    f[8] = 1
    return f


#: instructions under which a profiled operator's interval is taken as part of the fused kernel
#: before it (the cheapest real operator, a 16-byte GATHER copy, takes ~35)
_ABSORBED_BELOW = 12


def _fit_costs(prog, ops_i, reads_i, writes_i, cpi, eng):
    """Least-squares cost coefficients from the per-operator instruction counts.  A fused kernel
    (the engine's gated unit, FC+ADD) is counted at its first operator and its other operators
    have empty intervals, so operators are grouped into kernels and every kernel contributes one
    equation: its instructions = sum over its operators of coefficient x feature."""
    ops = prog["ops"]
    totals = {}
    for o, c in zip(ops, ops_i):
        name = _KIND_NAMES[OpKind(int(o["kind"]))]
        totals[name] = totals.get(name, 0) + int(c)
    totals["delay_lines"] = int(reads_i + writes_i)
    rows, ys = [], []
    for o, c in zip(ops, ops_i):
        # a fused kernel's other operators get (near-)empty intervals: their hook calls and a
        # little loop bookkeeping the compiler places there (no operator costs this little)
        if rows and c < _ABSORBED_BELOW:             # absorbed by the kernel before it
            rows[-1] = rows[-1] + _features(o)
            ys[-1] += c
        else:
            rows.append(_features(o))
            ys.append(float(c))
    rb = sum(prog["writes"][r["write"]]["width"] for r in prog["reads"])
    wb = sum(w["width"] for w in prog["writes"])
    passes = ((rb, len(prog["reads"]), reads_i), (wb, len(prog["writes"]), writes_i))
    for nbytes, calls, c in passes:
        f = np.zeros(len(_COEFS))
        f[6], f[7] = nbytes, calls
        rows.append(f)
        ys.append(float(c))
    A, y = np.array(rows), np.array(ys)
    # non-negative least squares by elimination: a coefficient the fit drives below zero is
    # fixed at zero (its work is then carried by the others) and the rest refitted
    used = A.any(axis=0)
    coef = np.zeros(len(_COEFS))
    while used.any():
        coef[:] = 0.0
        coef[used] = np.linalg.lstsq(A[:, used], y, rcond=None)[0]
        if (coef >= 0).all():
            break
        used &= coef > 0
    instr = {k: float(v) for k, v in zip(_COEFS, coef)}
    costs = {k: round(v * cpi, 4) for k, v in instr.items()}
    # the kernel-level model (firmware_sim.c_costs) fitted to this one shape, and the step it
    # prices (+ the SOFTMAX on demand, which this profiling build runs inside the step)
    from firmware_sim import c_costs
    fused = c_costs.fit_fused_costs(c_costs.profile_program(prog, ops_i, reads_i, writes_i))
    prof = dict(instructions=totals,
                instruction_coefficients={k: round(v, 4) for k, v in instr.items()},
                per_op=[int(c) for c in ops_i], reads=int(reads_i), writes=int(writes_i),
                fused=fused.to_dict())
    analytic = _analytic(eng, costs, prog, fused, cpi)
    return prof, costs, analytic


def _analytic(eng, costs, prog, fused, cpi) -> float:
    """Cycles per sample of the step + the SOFTMAX on demand, priced per executed kernel
    (:mod:`firmware_sim.c_costs`) with the coefficients ``fused`` fitted to this profile."""
    from firmware_sim import c_costs
    f = c_costs.program_features(prog["ops"], prog["reads"], prog["writes"])
    f["sample"] = 0
    f["softmax_call"] = sum(1 for k in c_costs.plan_kernels(prog["ops"]) if k.kind == "softmax")
    return c_costs.predict_instructions(fused.instructions, f) * cpi
