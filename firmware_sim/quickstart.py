"""``wavenet-edge quickstart``: the whole pipeline on the built-in signal set, nothing downloaded.

train ``tiny`` → convert to int8 ``.tflite`` → verify the engine against TFLM and LiteRT →
simulate the built-in microcontroller targets → continue held-out clips (the temperature chosen
by measurement) → generate audio → pictures → summary.
Each stage is a library call; this module only sequences them and writes the files.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from wavenet_edge._fileio import atomic_write
from wavenet_edge.audio import write_wav
from wavenet_edge.config import preset
from wavenet_edge.errors import ConfigError, WaveNetEdgeError
from wavenet_edge.mulaw import encode_classes

__all__ = ["quickstart"]


N_STAGES = 8
CONTINUE_CLIPS, CONTINUE_SECONDS, PRIME_SECONDS = 4, 1.0, 0.5


def _stage(log, n, title):
    log("")
    log(f"[{n}/{N_STAGES}] {title}")


def _verdict(cont) -> str:
    """One plain sentence on what the continuation measurement says."""
    d, other = cont.distance[cont.best], cont.baselines["other clip"]
    if d < min(1.0, other):
        return (f"the continuation is closer to the original's ({d:.2f}) than silence (1.00) and "
                f"another clip's continuation ({other:.2f}): the model carries the primed tones on")
    if d < other:
        return (f"the continuation is nearer the original's ({d:.2f}) than another clip's "
                f"continuation ({other:.2f}) but not nearer than silence (1.00): the model starts "
                "on the primed tones, then the noise it adds outweighs them")
    return (f"the continuation is no nearer the original's ({d:.2f}) than silence (1.00) or "
            f"another clip's continuation ({other:.2f}): this model does not continue the tones")


def quickstart(out_dir="quickstart_out", *, preset_name: str = "tiny", steps: int | None = None,
               seconds: float | None = 75.0, verify_steps: int = 2000, generate_seconds: float = 2.0,
               seed: int = 0, plots: bool = True, progress: bool = True, log=print) -> dict:
    """Run the pipeline; returns the summary dict (also written to ``out_dir/summary.json``).

    ``steps``/``seconds``: training budget (whichever is reached first).  ``verify_steps``:
    teacher-forced and free-running steps compared against each real interpreter.
    """
    from converters.continuation import continue_clips
    from converters.convert import convert
    from converters.signals import builtin_signals, order0_entropy_bits
    from converters.train import train
    from wavenet_edge.engine import Engine

    from .bitexact import check_bitexact
    from .simulate import simulate

    if generate_seconds <= 0:
        raise ConfigError(f"generate_seconds must be > 0, got {generate_seconds}")
    os.makedirs(out_dir, exist_ok=True)
    cfg = preset(preset_name)
    sr = cfg.sample_rate
    files = {}
    t_start = time.perf_counter()

    _stage(log, 1, f"train the '{preset_name}' preset on the built-in signal set "
                   f"({cfg.n_layers} layers, receptive field {cfg.receptive_field} samples)")
    train_audio = builtin_signals(split="train", sr=sr, seed=seed)
    heldout = builtin_signals(split="heldout", sr=sr, seed=seed)
    ckpt = os.path.join(out_dir, f"wavenet-{preset_name}.npz")
    model, hist = train(cfg, train_audio, steps=steps, seconds=seconds, seed=seed, heldout=heldout,
                        checkpoint=ckpt, progress=progress)
    files["checkpoint"] = ckpt
    held_codes = np.concatenate([encode_classes(y, convention=cfg.mulaw) for y in heldout])
    order0 = order0_entropy_bits(held_codes)
    log(f"  held-out bits/sample: {hist['heldout_bits_before']:.3f} before, "
        f"{hist['heldout_bits_after']:.3f} after {hist['steps']} steps "
        f"({hist['seconds']:.0f} s); order-0 entropy {order0:.3f}")

    _stage(log, 2, "quantize to int8 and write one .tflite")
    tfl = os.path.join(out_dir, f"wavenet-{preset_name}.tflite")
    rep_path = os.path.join(out_dir, "convert-report.json")
    conv = convert(model, out=tfl, report=rep_path, progress=progress)
    files["tflite"], files["convert_report"] = tfl, rep_path
    q = conv.quality or {}
    log(conv.table())

    _stage(log, 3, "verify: Numba engine vs the real interpreters, bit for bit")
    verify = {}
    for runtime in ("tflm", "litert"):
        r = check_bitexact(conv.tflite, steps=verify_steps, runtime=runtime, profile=runtime,
                           seed=seed, name=tfl)
        verify[runtime] = r.to_dict()
        log(f"  {runtime:7s} teacher-forced {r.teacher_forced_identical}/{r.teacher_forced_steps} "
            f"identical, free-running {r.free_running_identical}/{r.free_running_steps} identical"
            + ("" if r.ok else f"  MISMATCH: {r.message()}"))
        if not r.ok:
            from wavenet_edge.errors import MismatchError
            raise MismatchError(r.message(), path=tfl)

    _stage(log, 4, "simulate the built-in microcontroller targets (latency = estimate)")
    sim = simulate(conv.tflite, check_bitexact=False, name=os.path.basename(tfl))
    log(sim.table())
    sim_path = os.path.join(out_dir, "simulate.json")
    with atomic_write(sim_path, "w") as f:
        f.write(sim.to_json())
    files["simulate_report"] = sim_path

    _stage(log, 5, f"continue {CONTINUE_CLIPS} held-out clips with the int8 engine: prime "
                   f"{PRIME_SECONDS:g} s, generate {CONTINUE_SECONDS - PRIME_SECONDS:g} s, "
                   "temperature chosen by spectral distance")
    eng = Engine.from_file(tfl)
    eng.generate(16, seed=seed)          # compile and warm up before timing
    eng.reset()
    clips = builtin_signals(split="heldout", n_clips=CONTINUE_CLIPS, seconds=CONTINUE_SECONDS,
                            sr=sr, seed=seed)
    prime = int(round(PRIME_SECONDS * sr))
    cont = continue_clips(eng, clips, prime=prime, progress=progress)
    log(cont.table())
    verdict = _verdict(cont)
    log(f"  at T = {cont.best:g} {verdict}")
    # the clip drawn and written is the median one at the chosen temperature, not the best
    k = int(np.argsort(cont.per_clip[cont.best])[len(clips) // 2])
    continued = np.concatenate([clips[k][:prime], cont.audio[cont.best][k]]).astype(np.float32)
    cwav, owav = (os.path.join(out_dir, f) for f in ("continuation.wav", "original.wav"))
    write_wav(cwav, continued, sr)
    write_wav(owav, clips[k], sr)
    files["continuation_audio"], files["original_audio"] = cwav, owav

    _stage(log, 6, f"generate {generate_seconds:g} s of audio from silence at T = {cont.best:g}")
    n = int(round(generate_seconds * sr))
    t0 = time.perf_counter()
    codes = eng.generate(n, seed=seed, temperature=cont.best)
    dt = time.perf_counter() - t0
    y = eng.decode(codes)
    wav = os.path.join(out_dir, "generated.wav")
    write_wav(wav, y, sr)
    files["audio"] = wav
    sps = n / dt
    log(f"  {n} samples in {dt:.3f} s: {sps:,.0f} samples/s, real-time factor "
        f"{sps / sr:.1f}x at {sr} Hz")

    pictures = {}
    if plots:
        _stage(log, 7, "pictures: continuation next to the original; generated audio; what each "
                       "layer hears")
        try:
            from converters.explain import layer_frequency_response, octave_agreement
            from converters.plots import plot_audio, plot_continuation, plot_layer_response
            cpng = os.path.join(out_dir, "continuation.png")
            plot_continuation(clips[k], continued, sr, prime, cpng, distances=cont.distance,
                              baselines=cont.baselines, best=cont.best,
                              title=f"wavenet-edge {preset_name} (int8 engine): held-out clip "
                                    f"{k} of {len(clips)} (the median one) continued at "
                                    f"T = {cont.best:g}")
            files["continuation_png"] = cpng
            png = os.path.join(out_dir, "generated.png")
            plot_audio(y, sr, png, reference=heldout[0][:n],
                       title=f"wavenet-edge {preset_name}: int8 engine from silence, "
                             f"T = {cont.best:g}, seed {seed}")
            resp = layer_frequency_response(model, progress=progress)
            lpng = os.path.join(out_dir, "layers.png")
            plot_layer_response(resp, lpng, title=f"{preset_name}: what each dilated layer hears")
            pictures = {"audio": png, "layers": lpng,
                        "octave_agreement": octave_agreement(resp)}
            files["audio_png"], files["layers_png"] = png, lpng
        except WaveNetEdgeError as e:     # matplotlib missing: say how to get it, carry on
            log(f"  skipped: {e}")
    else:
        _stage(log, 7, "pictures: skipped (--no-plots)")

    _stage(log, 8, "summary")
    rt_targets = [r.target.name for r in sim.results
                  if r.memory.fits and r.latency.real_time_factor(sim.sample_rate) >= 1.0]
    # our exported C (its own flash/SRAM, priced by the stored per-kernel model: simulate says so)
    rt_c = [r.target.name for r in sim.results if r.c_export is not None
            and r.c_memory is not None and r.c_memory.fits
            and r.c_export[1].real_time_factor(sim.sample_rate) >= 1.0]
    summary = {
        "preset": preset_name,
        "files": files,
        "heldout_bits_per_sample": {"order0": order0, "untrained": hist["heldout_bits_before"],
                                    "float": q.get("float_bits", hist["heldout_bits_after"]),
                                    "int8": q.get("int8_bits")},
        "calibration_method": conv.method,
        "continuation": {**cont.to_dict(), "clip_drawn": k, "verdict": verdict},
        "verify": {k: {"teacher_forced": v["teacher_forced"], "free_running": v["free_running"]}
                   for k, v in verify.items()},
        "engine_samples_per_second": sps,
        "real_time_factor": sps / sr,
        "real_time_targets": rt_targets,
        "real_time_targets_c_export": rt_c,
        "octave_agreement": pictures.get("octave_agreement"),
        "seconds": time.perf_counter() - t_start,
    }
    spath = os.path.join(out_dir, "summary.json")
    with atomic_write(spath, "w") as f:
        json.dump(summary, f, indent=2)
    for k, v in files.items():
        log(f"  wrote {v}")
    bits = summary["heldout_bits_per_sample"]
    log(f"  bits/sample on held-out audio: float {bits['float']:.3f}, int8 "
        + (f"{bits['int8']:.3f}" if bits["int8"] is not None else "n/a")
        + f" (order-0 entropy {order0:.3f})")
    log(f"  continuation of held-out clips at T = {cont.best:g}: {verdict} (listen: "
        f"{cwav} after {owav})")
    log(f"  what the model is: a next-sample predictor over the last {cfg.receptive_field} samples "
        f"({cfg.parameter_count():,} parameters) trained {hist['seconds']:.0f} s on sums of sines "
        "and chirps; it continues such tones, it does not make speech or music")
    log(f"  engine: {sps:,.0f} samples/s = {sps / sr:.1f}x real time on one core")
    log(f"  real time on: {', '.join(rt_targets) if rt_targets else 'none of the built-in targets'}")
    srcs = sorted({r.c_export[1].source for r in sim.results if r.c_export is not None})
    log(f"  real time with the exported C (export-c; {', '.join(srcs) or 'no'} QEMU-fitted "
        "coefficients, estimate): " + (", ".join(rt_c) if rt_c else "none of the built-in targets"))
    log(f"  done in {summary['seconds']:.0f} s")
    return summary
