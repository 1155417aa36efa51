"""Latency ESTIMATE of one step on a target, and a deadline simulation of real-time playback.

Cost model: cycles of one step = Σ over operators of (dispatch + work), where work uses the core's
coefficients (:class:`firmware_sim.targets.CoreModel`, each an assumption with its source in
``targets.json``) applied to the graph's counts (:mod:`firmware_sim.opcount`):

* FULLY_CONNECTED: macs × cycles_per_mac + outputs × cycles_per_requant
  (+ weight bytes × the target's weight_fetch_cycles_per_byte for slow external flash)
* ADD / MUL: elements × cycles_per_add_element / cycles_per_mul_element
* TANH / LOGISTIC: elements × cycles_per_transcendental_element; SOFTMAX: elements × its cost
* copies (CONCATENATION, GATHER, RESHAPE, the delay-line reads and writes the host does):
  bytes × cycles_per_copy_byte + calls × cycles_per_copy_call

Deadline simulation (:func:`simulate_fifo`): one core generates samples back to back into an
output FIFO of ``depth`` samples that a DAC drains at ``sample_rate``; the producer blocks while the
FIFO is full; playback starts when the FIFO is first full (prefill).  Per-sample cost is
``base × (1 + u)``, u ~ Uniform(−jitter, +jitter) (cache / flash wait-state / bus variation), plus
``isr_cycles`` every ``isr_period`` samples (the audio DMA interrupt).  An underrun is a DAC tick
that finds the FIFO empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from wavenet_edge._jit import kernel
from wavenet_edge.errors import ConfigError

__all__ = ["LatencyEstimate", "estimate_latency", "JitterModel", "FifoResult", "simulate_fifo",
           "smallest_fifo", "step_costs", "C_EXPORT_CORES", "estimate_c_export", "CEngineEstimate",
           "c_engine_core", "c_engine_cycles", "measured_c_engine"]


@dataclass
class LatencyEstimate:
    """Estimated cycles of one step on one target (an ESTIMATE: see the cost model's sources)."""

    target: str
    clock_hz: int
    cycles_per_sample: float
    breakdown: dict
    per_op: list = field(default_factory=list)
    kind: str = "estimate"

    @property
    def seconds_per_sample(self) -> float:
        return self.cycles_per_sample / self.clock_hz

    @property
    def max_sample_rate(self) -> float:
        """Largest sample rate (Hz) one core sustains on average."""
        return self.clock_hz / self.cycles_per_sample

    def real_time_factor(self, sample_rate: float) -> float:
        """Generation speed / playback speed (≥ 1: real time on average)."""
        return self.max_sample_rate / float(sample_rate)

    def cpu_load(self, sample_rate: float) -> float:
        """Fraction of the core's cycles used at ``sample_rate`` (> 1: not real time)."""
        return self.cycles_per_sample * float(sample_rate) / self.clock_hz

    def to_dict(self, sample_rate=None) -> dict:
        d = {"kind": self.kind, "cycles_per_sample": round(self.cycles_per_sample, 1),
             "microseconds_per_sample": round(1e6 * self.seconds_per_sample, 3),
             "max_realtime_sample_rate_hz": round(self.max_sample_rate, 1),
             "breakdown_cycles": {k: round(v, 1) for k, v in self.breakdown.items()}}
        if sample_rate:
            d["real_time_factor"] = round(self.real_time_factor(sample_rate), 4)
            d["cpu_load"] = round(self.cpu_load(sample_rate), 4)
        return d


def step_costs(counts, target) -> tuple:
    """``(per_op, breakdown)``: cycles per operator (list of dicts) and per category."""
    c = target.core
    wf = target.weight_fetch_cycles_per_byte
    per_op = []
    br = {"dispatch": 0.0}
    for o in counts.ops:
        if o.category == "fully_connected":
            work = o.macs * c.cycles_per_mac + o.requants * c.cycles_per_requant
            key = "fully_connected"
        elif o.category == "add":
            work, key = o.elements * c.cycles_per_add_element, "add"
        elif o.category == "mul":
            work, key = o.elements * c.cycles_per_mul_element, "mul"
        elif o.category == "transcendental":
            work, key = o.elements * c.cycles_per_transcendental_element, "tanh_logistic"
        elif o.category == "softmax":
            work, key = o.elements * c.cycles_per_softmax_element, "softmax"
        else:
            work = o.copy_bytes * c.cycles_per_copy_byte + o.copy_calls * c.cycles_per_copy_call
            key = "copy"
        fetch = o.weight_bytes * wf
        br[key] = br.get(key, 0.0) + work
        if fetch:
            br["weight_fetch"] = br.get("weight_fetch", 0.0) + fetch
        br["dispatch"] += c.cycles_per_op_dispatch
        per_op.append({"index": o.index, "opcode": o.opcode, "output": o.output,
                       "cycles": work + fetch + c.cycles_per_op_dispatch})
    dl_bytes = counts.delay_read_bytes + counts.delay_write_bytes
    dl_calls = counts.delay_reads + counts.delay_writes
    br["delay_lines"] = dl_bytes * c.cycles_per_copy_byte + dl_calls * c.cycles_per_copy_call
    return per_op, br


def estimate_latency(counts, target) -> LatencyEstimate:
    """Cycles per generated sample of the graph ``counts`` on ``target`` (estimate)."""
    per_op, br = step_costs(counts, target)
    total = float(sum(br.values()))
    return LatencyEstimate(target=target.name, clock_hz=int(target.clock_hz),
                           cycles_per_sample=total, breakdown=br, per_op=per_op)


#: the QEMU-measured core of our C export (targets.json ``<core>-wavenet-c-<kernels>``, fastest
#: kernel variant) for each built-in TFLM cost-model core
C_EXPORT_CORES = {"cortex-m4f": "cortex-m4-wavenet-c-dsp", "cortex-m4": "cortex-m4-wavenet-c-dsp",
                  "cortex-m7": "cortex-m7-wavenet-c-dsp", "cortex-m55": "cortex-m55-wavenet-c-mve"}


def estimate_c_export(counts, target, cores):
    """Cycles per sample of the wavenet-edge C export (``firmware_sim.c_export``) on ``target``
    with the cost coefficients measured in QEMU (``cores``: ``{name: CoreModel}`` of the
    registry): ``(core name, LatencyEstimate)``, or ``None`` when no core of ``target``'s kind
    was measured.  The C engine aliases CONCATENATION and RESHAPE away, so those operators cost
    nothing here (estimate)."""
    from dataclasses import replace
    name = C_EXPORT_CORES.get(target.core.name, target.core.name + "-wavenet-c")
    core = cores.get(name)
    if core is None:
        return None
    counts = replace(counts, ops=[o for o in counts.ops
                                  if o.opcode not in ("CONCATENATION", "RESHAPE")])
    return name, estimate_latency(counts, replace(target, core=core))


@dataclass
class CEngineEstimate:
    """Cycles per generated sample of OUR C engine on a target (an ESTIMATE): one ``wn_step``
    (SOFTMAX on demand, not in it) plus one draw on the logits.  ``source`` says which
    coefficients priced it: ``"measured"`` (this run's ``--emulate``: QEMU instruction counts of
    this model), ``"stored"`` (the per-kernel model of ``c_engine_costs.json``) or
    ``"stored-per-operator"`` (targets.json's per-operator coefficients, no kernel model)."""

    core: str
    cycles_per_sample: float
    instructions_per_sample: float
    cpi: float
    source: str
    detail: str
    clock_hz: int
    softmax_cycles: float = 0.0

    @property
    def max_sample_rate(self) -> float:
        return self.clock_hz / self.cycles_per_sample

    def real_time_factor(self, sample_rate: float) -> float:
        return self.max_sample_rate / float(sample_rate)

    def to_dict(self, sample_rate=None) -> dict:
        d = {"kind": "estimate", "core": self.core, "coefficients": self.source,
             "coefficients_detail": self.detail,
             "cycles_per_sample": round(self.cycles_per_sample, 1),
             "instructions_per_sample": round(self.instructions_per_sample, 1),
             "cycles_per_instruction": round(self.cpi, 4),
             "max_realtime_sample_rate_hz": round(self.max_sample_rate, 1),
             "softmax_on_demand_cycles": round(self.softmax_cycles, 1)}
        if sample_rate:
            d["real_time_factor"] = round(self.real_time_factor(sample_rate), 4)
            d["real_time"] = self.real_time_factor(sample_rate) >= 1.0
        return d


def c_engine_core(target, cores):
    """The measured C-engine core (``CoreModel``) for ``target``'s core kind, or None (a target
    whose own core is a measured C-engine core, e.g. from emulate's target file, is its own)."""
    if "-wavenet-c-" in target.core.name:
        return target.core
    name = C_EXPORT_CORES.get(target.core.name, target.core.name + "-wavenet-c")
    return cores.get(name)


def c_engine_cycles(core, features) -> tuple:
    """``(instructions, cycles)`` of the step ``features`` (:func:`firmware_sim.c_costs.
    step_features`) with ``core``'s per-kernel model (``core.fused``)."""
    from .c_costs import predict_instructions
    ins = predict_instructions(core.fused["instructions"], features)
    return ins, ins * float(core.fused["cpi"])


def measured_c_engine(emulation, target) -> tuple | None:
    """``(run, cpi)``: the fastest run of ``emulation`` (:class:`firmware_sim.emulate.
    EmulationReport`) on ``target``'s core kind and its cycles per instruction (per-class
    ESTIMATE when the run has one, else the assumed flat CPI), or None."""
    if emulation is None:
        return None
    want = C_EXPORT_CORES.get(target.core.name, "").split("-wavenet-c-")[0]
    runs = [r for r in emulation.runs if r.core == want]
    if not runs:
        return None
    r = min(runs, key=lambda x: x.instructions_per_sample)
    cls = r.cycles_per_sample_classes_estimate
    cpi = cls / r.instructions_per_sample if cls == cls and cls > 0 else r.cpi_assumed
    return r, cpi


@dataclass(frozen=True)
class JitterModel:
    """Per-sample cost variation: ``u ~ Uniform(-jitter, +jitter)`` relative, plus ``isr_cycles``
    every ``isr_period`` samples (audio DMA half-transfer interrupt).  Deterministic by ``seed``."""

    jitter: float = 0.05
    isr_period: int = 256
    isr_cycles: float = 2000.0
    seed: int = 0

    def __post_init__(self):
        if not (0.0 <= self.jitter < 1.0):
            raise ConfigError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.isr_period < 1 or self.isr_cycles < 0:
            raise ConfigError("isr_period must be >= 1 and isr_cycles >= 0")

    def costs(self, base_cycles: float, n: int) -> np.ndarray:
        """Cycles of samples 0…n-1 (float64 [n])."""
        rng = np.random.default_rng(self.seed)
        c = base_cycles * (1.0 + rng.uniform(-self.jitter, self.jitter, n)) if self.jitter else \
            np.full(n, float(base_cycles))
        if self.isr_cycles:
            c[self.isr_period - 1::self.isr_period] += self.isr_cycles
        return c


@dataclass
class FifoResult:
    """Outcome of a deadline simulation (times in seconds, counts in samples/ticks)."""

    depth: int
    samples: int
    underruns: int
    first_underrun: int | None
    startup_latency_s: float
    max_late_s: float

    def to_dict(self) -> dict:
        return {"fifo_depth": self.depth, "samples": self.samples, "underruns": self.underruns,
                "first_underrun_sample": self.first_underrun,
                "startup_latency_ms": round(1e3 * self.startup_latency_s, 3),
                "max_lateness_ms": round(1e3 * self.max_late_s, 3)}


@kernel
def _fifo_kernel(dur, period, depth):
    """dur: float64 [n] seconds of compute per sample; period = 1/sample_rate; depth ≥ 1.

    The producer computes sample i from the moment it pushed sample i-1 (time q_{i-1}), finishing at
    f_i, then waits for room: q_i = max(f_i, play time of sample i − depth).  Playback starts at
    T0 = q_{depth-1} (FIFO full); sample j plays at tick k_j (time T0 + k_j·period): k_j = j for
    j < depth, else k_j = max(k_{j-1} + 1, ceil((q_j − T0)/period)); every skipped tick is an
    underrun.  Returns (underruns, first late sample or -1, T0, max lateness in seconds).
    """
    n = dur.shape[0]
    k = np.empty(n, np.int64)
    q = 0.0
    t0 = 0.0
    under = np.int64(0)
    first = np.int64(-1)
    max_late = 0.0
    pre = min(depth, n)
    for i in range(n):
        q = q + dur[i]
        if i >= depth:
            p = t0 + k[i - depth] * period
            if p > q:
                q = p
        if i == pre - 1:
            t0 = q
            for j in range(pre):
                k[j] = j
        if i >= pre:
            need = np.int64(math.ceil((q - t0) / period - 1e-9))
            kk = k[i - 1] + 1
            if need > kk:
                late = (need - kk) * period
                if late > max_late:
                    max_late = late
                under += need - kk
                if first < 0:
                    first = i
                kk = need
            k[i] = kk
    return under, first, t0, max_late


def simulate_fifo(base_cycles: float, clock_hz: float, sample_rate: float, *, depth: int,
                  seconds: float = 10.0, jitter: JitterModel | None = None) -> FifoResult:
    """Generate ``seconds`` of audio at ``sample_rate`` into a FIFO of ``depth`` samples."""
    if depth < 1:
        raise ConfigError(f"FIFO depth must be >= 1, got {depth}")
    if sample_rate <= 0 or clock_hz <= 0 or base_cycles <= 0:
        raise ConfigError("sample_rate, clock and cycles must be > 0")
    n = max(1, int(round(seconds * sample_rate)))
    jm = jitter if jitter is not None else JitterModel()
    dur = jm.costs(base_cycles, n) / float(clock_hz)
    under, first, t0, late = _fifo_kernel(dur, 1.0 / float(sample_rate), int(depth))
    return FifoResult(depth=int(depth), samples=n, underruns=int(under),
                      first_underrun=None if first < 0 else int(first), startup_latency_s=float(t0),
                      max_late_s=float(late))


def smallest_fifo(base_cycles: float, clock_hz: float, sample_rate: float, *,
                  seconds: float = 10.0, jitter: JitterModel | None = None,
                  max_depth: int = 1 << 20) -> FifoResult | None:
    """The smallest FIFO depth with no underrun over ``seconds`` (doubling, then bisection), or
    None if even ``max_depth`` (or all of the audio) underruns: not real time on average."""
    def run(d):
        return simulate_fifo(base_cycles, clock_hz, sample_rate, depth=d, seconds=seconds,
                             jitter=jitter)
    n = max(1, int(round(seconds * sample_rate)))
    r = run(1)
    if r.underruns == 0:
        return r
    lo, hi = 1, 2
    while True:
        r = run(hi)
        if r.underruns == 0:
            break
        lo = hi
        if hi >= min(max_depth, n):
            return None
        hi = min(hi * 2, max_depth, n)
    best = r
    while hi - lo > 1:
        mid = (lo + hi) // 2
        rm = run(mid)
        if rm.underruns == 0:
            hi, best = mid, rm
        else:
            lo = mid
    return best
