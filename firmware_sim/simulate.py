"""Front door: will this model run on my microcontroller, in real time, computing exactly what I
validated?  :func:`simulate` answers per target with memory (exact + measured + stated allowances),
latency (estimate) with a FIFO deadline simulation, and bit-exactness against the real TFLM.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wavenet_edge._deprecation import sr_keyword
from wavenet_edge.config import WaveNetConfig
from wavenet_edge.errors import ConfigError, WaveNetEdgeError
from wavenet_edge.profiles import resolve_profile
from wavenet_edge.tflite_file import load_model

from . import memory as _mem
from .arena import measure_arena
from .latency import (CEngineEstimate, JitterModel, c_engine_core, c_engine_cycles,
                      estimate_c_export, estimate_latency, measured_c_engine, simulate_fifo,
                      smallest_fifo)
from .opcount import contract_metadata, count_ops, counts_from_config
from .report import Report, TargetResult
from .targets import load_registry, select_targets

__all__ = ["simulate", "DEFAULT_STEPS", "DEFAULT_FIFO", "DEFAULT_SECONDS"]

DEFAULT_STEPS = 1000
DEFAULT_FIFO = 256
DEFAULT_SECONDS = 10.0


def _load(model, name):
    m = load_model(model, name=name)
    return m.data, m, m.name


def _config_diff(a: WaveNetConfig, b: WaveNetConfig) -> dict:
    da, db = a.to_dict(), b.to_dict()
    out = {}
    for k in da:
        if da[k] != db[k]:
            if k == "dilations":
                out[k] = [f"{len(da[k])} layers, max {max(da[k])}",
                          f"{len(db[k])} layers, max {max(db[k])}"]
            else:
                out[k] = [da[k], db[k]]
    return out


def _evaluate(cfg, change, target, scaling, fifo, sr) -> dict:
    """Estimated memory and cycles of ``cfg`` (unbuilt) on ``target``."""
    counts = counts_from_config(cfg)
    mb = _mem.memory_budget(target, model_bytes=scaling.model_bytes_for(counts),
                            delay_line_bytes=cfg.delay_line_bytes(),
                            arena_bytes=scaling.arena_bytes_for(counts), fifo_samples=fifo)
    lat = estimate_latency(counts, target)
    rtf = lat.real_time_factor(sr)
    return {"change": change, "kind": "estimate", "delay_line_bytes": mb.delay_line_bytes,
            "model_bytes_est": mb.model_bytes, "arena_bytes_est": mb.arena_bytes,
            "flash_bytes_est": mb.flash_bytes, "sram_bytes_est": mb.sram_bytes,
            "macs_per_sample": counts.macs, "est_cycles_per_sample": round(lat.cycles_per_sample, 1),
            "est_real_time_factor": round(rtf, 4), "receptive_field": cfg.receptive_field,
            "fits": mb.fits, "real_time": rtf >= 1.0,
            "_deficit_mem": max(mb.flash_bytes / mb.flash_capacity,
                                mb.sram_bytes / mb.sram_capacity),
            "_deficit_rt": 1.0 / rtf}


def _deficit(ev, need_rt) -> float:
    return max(ev["_deficit_mem"], ev["_deficit_rt"] if need_rt else 0.0)


def _public(ev) -> dict:
    return {k: v for k, v in ev.items() if not k.startswith("_")}


def _plan(cfg, target, scaling, fifo, sr, need_rt, max_steps=40) -> dict:
    """Greedy: apply the one-step reduction that lowers the worst over-budget ratio most (ties: the
    larger receptive field) until the config fits (and, with ``need_rt``, runs in real time).

    A WaveNet whose receptive field shrinks to a few samples is not the same model any more, so
    no reduction may take the receptive field below a quarter of the original."""
    cur, changes = cfg, []
    min_rf = max(2, cfg.receptive_field // 4)
    ev = _evaluate(cur, "", target, scaling, fifo, sr)
    while _deficit(ev, need_rt) > 1.0 and len(changes) < max_steps:
        best = None
        for what, c in _mem.shrink_moves(cur):
            if c.receptive_field < min_rf:
                continue
            e = _evaluate(c, what, target, scaling, fifo, sr)
            key = (_deficit(e, need_rt), -c.receptive_field)
            if best is None or key < best[0]:
                best = (key, what, c, e)
        if best is None or best[0][0] >= _deficit(ev, need_rt):
            break
        _, what, cur, ev = best
        changes.append(what)
    out = _public(ev)
    diff = _config_diff(cfg, cur)
    out.update(change=("to fit and run in real time" if need_rt else "to fit") + ": "
               + (", ".join(f"{k} {a} -> {b}" for k, (a, b) in diff.items()) or "no change"),
               plan=True, steps=changes, config_changes=diff,
               achieved=_deficit(ev, need_rt) <= 1.0, min_receptive_field=min_rf)
    return out, cur


def _proxy_measure(cfg) -> dict | None:
    """Exact model bytes and MEASURED TFLM arena of ``cfg``'s graph, built with random weights and
    fixed activation ranges (structure is all that flash size and arena depend on); None when the
    converter is unavailable."""
    try:
        from converters.calibrate import activation_tensors
        from converters.canonical import canonicalize
        from converters.export import build_step_graph
        from converters.quantize import activation_plan
        from wavenet_edge.float_model import FloatWaveNet
        model = canonicalize(FloatWaveNet.initialize(cfg.replace(residual_scale=1.0,
                                                                 skip_scale=1.0), seed=0))
        plan = activation_plan(model.config,
                               {k: (-1.0, 1.0) for k in activation_tensors(model.config)})
        data = build_step_graph(model, plan)
    except (ImportError, WaveNetEdgeError, KeyError, ValueError, TypeError):
        return None
    return {"model_bytes": len(data), "arena_bytes": measure_arena(data)["arena_bytes_aligned"]}


def _suggestions(cfg, counts, lat, mb, target, scaling, fifo, sr, need_rt) -> list:
    out = [_public(_evaluate(c, what, target, scaling, fifo, sr))
           for what, c in _mem.shrink_moves(cfg)]
    plans = []
    if not mb.fits:
        plans.append(_plan(cfg, target, scaling, fifo, sr, False))
    if need_rt:
        plans.append(_plan(cfg, target, scaling, fifo, sr, True))
    for p, c in plans:
        if p["achieved"] and p["steps"]:
            m = _proxy_measure(c)
            if m is not None:
                pm = _mem.memory_budget(target, model_bytes=m["model_bytes"],
                                        delay_line_bytes=c.delay_line_bytes(),
                                        arena_bytes=m["arena_bytes"], fifo_samples=fifo)
                p.update(kind="estimate (memory measured on a proxy graph)",
                         model_bytes_est=pm.model_bytes, arena_bytes_est=pm.arena_bytes,
                         flash_bytes_est=pm.flash_bytes, sram_bytes_est=pm.sram_bytes,
                         fits=pm.fits)
        out.append(p)
    soft = lat.breakdown.get("softmax", 0.0)
    if soft > 0.15 * lat.cycles_per_sample:
        cyc = lat.cycles_per_sample - soft
        out.append({"change": "drop the SOFTMAX operator and sample from the int8 logits "
                              "(integer temperature table, wavenet_edge.sampling)",
                    "kind": "estimate", "delay_line_bytes": mb.delay_line_bytes,
                    "model_bytes_est": None, "flash_bytes_est": None, "sram_bytes_est": None,
                    "macs_per_sample": counts.macs, "receptive_field": cfg.receptive_field,
                    "fits": None, "est_cycles_per_sample": round(cyc, 1),
                    "est_real_time_factor": round(target.clock_hz / cyc / sr, 4),
                    "real_time": target.clock_hz / cyc / sr >= 1.0})
    return out


def _frame_work(tfl, cfg, program, counts) -> dict | None:
    """A vocoder's conditioning work: the frame graph (lowered, its op counts per call, one
    call per hop samples) and the step's own cond work (the cond columns of the filter/gate
    FCs, the per-layer QUANTIZE of the cond row); None without local conditioning."""
    if cfg is None or not cfg.has_cond:
        return None
    q = [o for o in counts.ops if o.opcode == "QUANTIZE"]
    bd = cfg.macs_breakdown()
    out = dict(cin_channels=int(cfg.cin_channels), upsampler=cfg.upsampler,
               hop=int(cfg.hop) if cfg.upsampler != "none" else 1,
               step_macs_per_sample=int(program.macs_per_sample),
               cond_macs_per_sample=int(bd.get("cond_per_sample", 0)),
               cond_quantize_ops=len(q),
               cond_quantize_elements_per_sample=int(sum(o.elements for o in q)),
               frame_macs_per_call=0, frame_ops_per_call=0, frame_macs_per_sample=0.0,
               config_macs_breakdown=bd, _frame=None)
    if cfg.upsampler != "none":
        from wavenet_edge.lowered.frames import FRAMES_METADATA, lower_frames
        from .opcount import count_frame_ops
        ci = (tfl.metadata.get("wavenet_edge") and contract_metadata(tfl).get("cond_input")) or {}
        raw = tfl.metadata.get(ci.get("frame_graph") or FRAMES_METADATA)
        if raw is None:
            raise ConfigError(f"{tfl.name}: a {cfg.upsampler} vocoder without its frame graph")
        fp = lower_frames(bytes(raw), profile="tflm", cin_pad=cfg.cin_pad,
                          upsampler=cfg.upsampler, name=f"{tfl.name}:frames")
        fm = load_model(bytes(raw), name=f"{tfl.name}:frames")
        fc = count_frame_ops(fm)
        out.update(frame_macs_per_call=int(fp.program.macs_per_sample),
                   frame_ops_per_call=int(fc.n_ops), frame_graph_bytes=len(bytes(raw)),
                   frame_macs_per_sample=round(fp.program.macs_per_sample / out["hop"], 2),
                   lookahead_frames=int(fp.lookahead_frames), _frame=(fp, fc))
    out["total_macs_per_sample"] = round(out["step_macs_per_sample"]
                                         + out["frame_macs_per_sample"], 2)
    return out


def _frame_c(frame, target, core, emulation, est):
    """Our C engine's frame work per sample on ``target``: (cycles, instructions, how)."""
    from dataclasses import replace as _replace
    fp, fc = frame["_frame"]
    hop = frame["hop"]
    m = measured_c_engine(emulation, target)
    if m is not None and m[0].frame_calls:
        r, cpi = m
        ins = r.frame_instructions_per_sample
        return _replace(est, cycles_per_sample=est.cycles_per_sample + ins * cpi,
                        instructions_per_sample=est.instructions_per_sample + ins,
                        detail=est.detail + f"; + the frame program measured in QEMU: "
                               f"{r.frame_instructions_per_call:.0f} instr per call / hop {hop}"), ins
    if core is not None and core.fused is not None and est.source == "stored":
        from . import c_costs
        p = fp.program
        f = c_costs.program_features(p.ops, p.reads, p.writes,
                                     granule=int(core.fused.get("mac_granule", 1)))
        f["sample"] = 0
        ins, cyc = c_engine_cycles(core, f)
        return _replace(est, cycles_per_sample=est.cycles_per_sample + cyc / hop,
                        instructions_per_sample=est.instructions_per_sample + ins / hop,
                        detail=est.detail + f"; + the frame program priced with the same "
                               f"per-kernel model (its FCs run the generic wn_fc: rougher), "
                               f"{ins:.0f} instr per call / hop {hop}"), ins / hop
    lat = estimate_latency(fc, target)
    return _replace(est, cycles_per_sample=est.cycles_per_sample + lat.cycles_per_sample / hop,
                    detail=est.detail + f"; + the frame graph per operator / hop {hop}"), None


def _frame_memory(mb, fp):
    """``mb`` (our C export's memory) plus the frame program: its const arrays (flash) and one
    ``wn_frame_state`` (SRAM), as :mod:`firmware_sim.c_export` lays them out."""
    from dataclasses import replace as _replace
    from .c_export import _frame_flash_bytes, frame_state_bytes
    p = fp.program
    d = {"cond": {"frames": dict(ops=p.ops, reads=p.reads, writes=p.writes, weights=p.wblob,
                                 bias=p.bblob, mult=p.mult, shift=p.shift, iparams=p.iparams,
                                 arena_size=int(p.arena_size), ring_size=int(p.ring_size))}}
    fl, st = _frame_flash_bytes(d), frame_state_bytes(d)
    return _replace(mb, model_bytes=mb.model_bytes + fl, flash_bytes=mb.flash_bytes + fl,
                    arena_bytes=mb.arena_bytes + st, sram_bytes=mb.sram_bytes + st,
                    notes=list(mb.notes) + [f"vocoder: + frame program {fl} B flash, "
                                            f"wn_frame_state {st} B SRAM"])


def _c_engine(program, counts, target, cores, emulation, sr):
    """Our C engine on ``target``: ``(core name, CEngineEstimate, scale)``, or None when no core of
    the target's kind was measured.  ``scale`` = measured / per-kernel-model cycles of this model
    (1 without a measurement), applied to the planner's candidates."""
    from . import c_costs
    core = c_engine_core(target, cores)
    m = measured_c_engine(emulation, target)
    if core is None and m is None:
        return None
    feats = None
    if core is not None and core.fused is not None:
        feats = c_costs.program_features(program.ops, program.reads, program.writes,
                                         granule=int(core.fused.get("mac_granule", 1)))
    if m is not None:
        r, cpi = m
        ins = r.instructions_per_sample + r.sample_logits_instructions
        est = CEngineEstimate(
            core=f"{r.core}-wavenet-c-{r.kernels}", cycles_per_sample=ins * cpi,
            instructions_per_sample=ins, cpi=cpi, source="measured",
            detail=(f"measured in this run (--emulate): QEMU instruction counts of this model's "
                    f"step + one draw on the logits, {r.core} {r.kernels} kernels, "
                    f"{r.bitexact_steps}/{r.steps} steps bit-exact, x CPI {cpi:.3f} "
                    + ("(per-class ESTIMATE)" if r.cycle_classes else "(assumed)")),
            clock_hz=int(target.clock_hz), softmax_cycles=r.softmax_instructions * cpi)
        scale = 1.0
        if feats is not None:
            scale = est.cycles_per_sample / c_engine_cycles(core, feats)[1]
        return est.core, est, scale
    if feats is not None:
        ins, cyc = c_engine_cycles(core, feats)
        fz = core.fused
        worst = max((abs(c.get("rel_error", 0.0)) for c in fz.get("check", [])), default=None)
        stale = fz.get("engine_c_sha256") not in (None, c_costs.engine_source_hash())
        est = CEngineEstimate(
            core=core.name, cycles_per_sample=cyc, instructions_per_sample=ins,
            cpi=float(fz["cpi"]), source="stored",
            detail=("stored per-kernel model (firmware_sim/c_engine_costs.json, QEMU-fitted on "
                    f"{len(fz.get('measured_on', []))} shapes"
                    + (f", whole-step error <= {100 * worst:.0f} % there" if worst is not None
                       else "") + f") x CPI {float(fz['cpi']):.3f}"
                    + ("; fitted on another version of wavenet_engine.c: re-run "
                       "benchmarks/fit_c_costs.py or use --emulate" if stale else "")),
            clock_hz=int(target.clock_hz),
            softmax_cycles=fz["instructions"].get("softmax_call", 0.0) * float(fz["cpi"]))
        return core.name, est, 1.0
    name, lat = estimate_c_export(counts, target, cores)
    est = CEngineEstimate(core=name, cycles_per_sample=lat.cycles_per_sample,
                          instructions_per_sample=float("nan"), cpi=float("nan"),
                          source="stored-per-operator",
                          detail="stored per-operator coefficients (targets.json), SOFTMAX "
                                 "included", clock_hz=int(target.clock_hz))
    return name, est, 1.0


def simulate(model, *, targets=None, sr=None, steps: int = DEFAULT_STEPS,
             check_bitexact: bool = True, target_file=None, fifo: int = DEFAULT_FIFO,
             seconds: float = DEFAULT_SECONDS, jitter: JitterModel | None = None, wav=None,
             seed: int = 0, use_cache: bool = True, progress: bool = False,
             name: str | None = None, engine_profile: str = "tflm",
             sample_rate=None, emulation=None, plan: bool = True) -> Report:
    """Simulate ``model`` (a ``.tflite`` path, its bytes, a parsed model or an Engine) on
    ``targets`` (names; default: all built-in, or all of ``target_file``'s).

    ``sr`` (Hz): playback rate for real-time checks (default: the model's); ``sample_rate`` is
    its deprecated spelling (librosa's ``sr`` is the audio-rate name of every front door).
    ``steps``: teacher-forced and free-running steps of the bit-exactness check.
    ``fifo``: output FIFO depth (samples) of the deadline simulation over ``seconds``.
    ``jitter``: :class:`JitterModel` (default ±5 %, 2000-cycle ISR every 256 samples).
    ``wav``: teacher-forcing audio instead of the built-in held-out signals.
    ``engine_profile``: the Numba engine's arithmetic profile compared with TFLM (``"tflm"``).
    ``emulation``: an :class:`firmware_sim.emulate.EmulationReport` of this model (``simulate
    --emulate``): our C engine is then priced with what it measured, else with the stored
    per-kernel model (``c_engine_costs.json``); the report says which.
    ``plan``: run the shrink planner for our C engine (:mod:`firmware_sim.planner`).
    Returns a :class:`Report`; bit-exactness failures are recorded in it (``report.ok``), not
    raised — the CLI turns them into exit status 1.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ConfigError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(fifo, int) or isinstance(fifo, bool) or fifo < 1:
        raise ConfigError(f"FIFO depth must be a positive integer, got {fifo!r}")
    if not (seconds > 0):
        raise ConfigError(f"seconds must be > 0, got {seconds!r}")
    resolve_profile(engine_profile)
    chosen = select_targets(targets, target_file=target_file)
    data, tfl, label = _load(model, name)
    meta = contract_metadata(tfl)
    cfg = None
    try:
        cfg = WaveNetConfig.from_dict(meta.get("config"))
    except (WaveNetEdgeError, TypeError):
        cfg = None
    sr = sr_keyword(sr, sample_rate, "simulate")
    if sr is None:
        sr = meta.get("sample_rate", cfg.sample_rate if cfg else None)
    if isinstance(sr, bool) or not isinstance(sr, (int, float)) or sr <= 0:
        raise ConfigError(f"sample rate must be a positive number of Hz, got {sr!r}")
    sr = int(sr)
    jm = jitter if jitter is not None else JitterModel(seed=seed)

    counts = count_ops(tfl)

    def channels(n):
        # bytes one step of tensor n occupies (int8: its channel count)
        t = tfl.tensor(n)
        return int(t.dtype.itemsize * np.prod(t.shape, dtype=np.int64))

    dl = _mem.delay_lines_from_metadata(meta, channels)
    arena = measure_arena(data, use_cache=use_cache, name=label)
    scaling = _mem.Scaling.from_model(len(data), counts, len(tfl.tensors),
                                      arena["arena_bytes_aligned"])

    all_cores = load_registry(target_file)[1]
    from wavenet_edge.lowered import lower
    program = lower(tfl, profile="tflm")
    from .memory import c_engine_memory
    frame = _frame_work(tfl, cfg, program, counts)
    results = []
    for t in chosen:
        mb = _mem.memory_budget(t, model_bytes=len(data), delay_line_bytes=dl.ring_bytes,
                                arena_bytes=arena["arena_bytes_aligned"], fifo_samples=fifo)
        lat = estimate_latency(counts, t)
        if frame is not None and frame["_frame"] is not None:
            # the frame graph runs once per hop samples: its cycles per sample join the step's
            fl = estimate_latency(frame["_frame"][1], t)
            per = fl.cycles_per_sample / frame["hop"]
            lat = dataclasses.replace(lat, cycles_per_sample=lat.cycles_per_sample + per,
                                      breakdown={**lat.breakdown, "frame_graph": per})
        fr = simulate_fifo(lat.cycles_per_sample, t.clock_hz, sr, depth=fifo, seconds=seconds,
                           jitter=jm)
        mf = smallest_fifo(lat.cycles_per_sample, t.clock_hz, sr, seconds=seconds, jitter=jm)
        # a FIFO that only works by prefetching most of the clip is not real time
        if mf is not None and lat.real_time_factor(sr) < 1.0:
            mf = None
        sugg = []
        need_rt = mf is None or fr.underruns > 0
        if cfg is not None and (not mb.fits or need_rt):
            sugg = _suggestions(cfg, counts, lat, mb, t, scaling, fifo, sr, need_rt)
        ce = _c_engine(program, counts, t, all_cores, emulation, sr)
        cplan, cmem = None, None
        if ce is not None:
            cmem = c_engine_memory(program, t, fifo_samples=fifo,
                                   kernels=ce[0].rsplit("-", 1)[-1])
            core = c_engine_core(t, all_cores)
            if frame is not None and frame["_frame"] is not None:
                est, _ = _frame_c(frame, t, core, emulation, ce[1])
                ce = (ce[0], est, ce[2])
                cmem = _frame_memory(cmem, frame["_frame"][0])
            if plan and cfg is not None and core is not None and core.fused is not None:
                from .planner import plan_target
                cplan = plan_target(cfg, t, core, sr=sr, fifo=fifo, scale=ce[2],
                                    coefficients=ce[1].source)
        results.append(TargetResult(target=t, memory=mb, latency=lat, fifo=fr, min_fifo=mf,
                                    suggestions=sugg,
                                    c_export=None if ce is None else ce[:2],
                                    c_memory=cmem, c_plan=cplan))

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
                  config_macs_per_sample=None if cfg is None else cfg.macs_per_sample(),
                  conditioning=None if frame is None else
                  {k: v for k, v in frame.items() if not k.startswith("_")})
