"""Front door: will this model run on my microcontroller, in real time, computing exactly what I
validated?  :func:`simulate` answers per target with memory (exact + measured + stated allowances),
latency (estimate) with a FIFO deadline simulation, and bit-exactness against the real TFLM.
"""

from __future__ import annotations

import os

from wavenet_edge.config import WaveNetConfig
from wavenet_edge.errors import ConfigError, ModelFileError, WaveNetEdgeError
from wavenet_edge.tflite_file import read_tflite

from . import memory as _mem
from .arena import measure_arena
from .latency import JitterModel, estimate_latency, simulate_fifo, smallest_fifo
from .opcount import contract_metadata, count_ops
from .report import Report, TargetResult
from .targets import select_targets

__all__ = ["simulate", "DEFAULT_STEPS", "DEFAULT_FIFO", "DEFAULT_SECONDS"]

DEFAULT_STEPS = 1000
DEFAULT_FIFO = 256
DEFAULT_SECONDS = 10.0


def _load(model, name):
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        label = name or "<bytes>"
    else:
        label = name or os.fspath(model)
        try:
            with open(model, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ModelFileError(f"cannot read model ({e.strerror})", path=label) from None
    return data, read_tflite(data, name=label), label


def _latency_suggestions(cfg, counts, lat, target, sample_rate, mem_suggestions):
    """Attach estimated cycles to each memory suggestion: FC and per-layer work scale with the
    candidate's MACs / op count (first-order estimate)."""
    br = lat.breakdown
    fc = br.get("fully_connected", 0.0) + br.get("weight_fetch", 0.0)
    fixed = br.get("softmax", 0.0)  # one 256-class softmax whatever the model size
    rest = lat.cycles_per_sample - fc - fixed
    m0 = max(1, cfg.macs_per_sample())
    out = []
    for s in mem_suggestions:
        ratio = s["macs_per_sample"] / m0
        layers = len(cfg.dilations)
        # per-layer overheads (dispatch, tanh/logistic, add, mul) scale roughly with layer count
        cand_layers = s.get("n_layers", layers)
        cyc = fc * ratio + fixed + rest * (cand_layers / layers if layers else 1.0)
        s = dict(s, est_cycles_per_sample=round(cyc, 1),
                 est_real_time_factor=round(target.clock_hz / cyc / sample_rate, 4))
        out.append(s)
    if fixed > 0.15 * lat.cycles_per_sample:
        cyc = lat.cycles_per_sample - fixed
        out.append({"change": "drop the SOFTMAX operator and sample from the int8 logits "
                              "(integer temperature table, wavenet_edge.sampling)",
                    "delay_line_bytes": int(cfg.delay_line_bytes()),
                    "model_bytes_est": None, "flash_bytes_est": None, "sram_bytes_est": None,
                    "macs_per_sample": cfg.macs_per_sample(), "receptive_field": cfg.receptive_field,
                    "n_layers": cfg.n_layers, "fits": None,
                    "est_cycles_per_sample": round(cyc, 1),
                    "est_real_time_factor": round(target.clock_hz / cyc / sample_rate, 4)})
    return out


def simulate(model, *, targets=None, sample_rate=None, steps: int = DEFAULT_STEPS,
             check_bitexact: bool = True, target_file=None, fifo: int = DEFAULT_FIFO,
             seconds: float = DEFAULT_SECONDS, jitter: JitterModel | None = None, wav=None,
             seed: int = 0, use_cache: bool = True, progress: bool = False,
             name: str | None = None, engine_profile: str = "tflm") -> Report:
    """Simulate ``model`` (a ``.tflite`` path or bytes) on ``targets`` (names; default: all
    built-in, or all of ``target_file``'s).

    ``sample_rate`` (Hz): playback rate for real-time checks (default: the model's).
    ``steps``: teacher-forced and free-running steps of the bit-exactness check.
    ``fifo``: output FIFO depth (samples) of the deadline simulation over ``seconds``.
    ``jitter``: :class:`JitterModel` (default ±5 %, 2000-cycle ISR every 256 samples).
    ``wav``: teacher-forcing audio instead of the built-in held-out signals.
    ``engine_profile``: the Numba engine's arithmetic profile compared with TFLM (``"tflm"``).
    Returns a :class:`Report`; bit-exactness failures are recorded in it (``report.ok``), not
    raised — the CLI turns them into exit status 1.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ConfigError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(fifo, int) or isinstance(fifo, bool) or fifo < 1:
        raise ConfigError(f"FIFO depth must be a positive integer, got {fifo!r}")
    if not (seconds > 0):
        raise ConfigError(f"seconds must be > 0, got {seconds!r}")
    chosen = select_targets(targets, target_file=target_file)
    data, tfl, label = _load(model, name)
    meta = contract_metadata(tfl)
    cfg = None
    try:
        cfg = WaveNetConfig.from_dict(meta.get("config"))
    except (WaveNetEdgeError, TypeError):
        cfg = None
    sr = sample_rate if sample_rate is not None else meta.get("sample_rate",
                                                              cfg.sample_rate if cfg else None)
    if isinstance(sr, bool) or not isinstance(sr, (int, float)) or sr <= 0:
        raise ConfigError(f"sample rate must be a positive number of Hz, got {sr!r}")
    sr = int(sr)
    jm = jitter if jitter is not None else JitterModel(seed=seed)

    counts = count_ops(tfl)

    def channels(n):
        t = tfl.tensor(n)
        return t.data.nbytes if t.data is not None else int(
            t.dtype.itemsize * max(1, int(__import__("numpy").prod(t.shape))))

    dl = _mem.delay_lines_from_metadata(meta, channels)
    arena = measure_arena(data, use_cache=use_cache, name=label)

    results = []
    for t in chosen:
        mb = _mem.memory_budget(t, model_bytes=len(data), delay_line_bytes=dl.ring_bytes,
                                arena_bytes=arena["arena_bytes_aligned"], fifo_samples=fifo)
        lat = estimate_latency(counts, t)
        fr = simulate_fifo(lat.cycles_per_sample, t.clock_hz, sr, depth=fifo, seconds=seconds,
                           jitter=jm)
        mf = smallest_fifo(lat.cycles_per_sample, t.clock_hz, sr, seconds=seconds, jitter=jm)
        # a FIFO that only works by prefetching most of the clip is not real time
        if mf is not None and lat.real_time_factor(sr) < 1.0:
            mf = None
        sugg = []
        if cfg is not None and (not mb.fits or mf is None or fr.underruns):
            sugg = _latency_suggestions(cfg, counts, lat, t, sr,
                                        _mem.shrink_suggestions(cfg, mb))
        results.append(TargetResult(target=t, memory=mb, latency=lat, fifo=fr, min_fifo=mf,
                                    suggestions=sugg))

    be = None
    if check_bitexact:
        from .bitexact import check_bitexact as _check
        be = _check(data, steps=steps, wav=wav, seed=seed, name=label, progress=progress,
                    profile=engine_profile)

    assumptions = dict(_mem.ASSUMPTIONS)
    assumptions["latency"] = ("ESTIMATE: per-core cycle coefficients with their sources in "
                              "firmware_sim/targets.json; op counts from the graph")
    assumptions["jitter"] = ("per-sample cycles x (1 + U(-j, +j)) plus an ISR every "
                             "isr_period samples; playback starts when the FIFO is full")
    return Report(model=label, model_bytes=len(data), sample_rate=sr,
                  config=None if cfg is None else cfg.to_dict(), counts=counts, delay_lines=dl,
                  arena=arena, fifo_depth=fifo, seconds=float(seconds), jitter=jm,
                  results=results, bitexact=be, assumptions=assumptions,
                  config_macs_per_sample=None if cfg is None else cfg.macs_per_sample())
