"""Runtime sub-commands of ``wavenet-edge`` (entry-point plug-ins): ``info``, ``generate``, ``score``.

Each ``register_*(subparsers)`` adds one sub-parser and sets ``func``; the engine is imported
inside the handlers so that ``wavenet-edge --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["register_info", "register_generate", "register_score"]


def _profile_arg(p):
    from .cli import profile_arg
    p.add_argument("--profile", default="tflm", type=profile_arg(), metavar="PROFILE",
                   help="int8 arithmetic to reproduce: tflm (TensorFlow Lite Micro, default), "
                        "litert (LiteRT builtin kernels), litert-ref, xnnpack (LiteRT default); "
                        "litert-arm64, xnnpack-arm64: the aarch64 builds (phones, Raspberry Pi)")


# -- info ---------------------------------------------------------------------------------------
def register_info(subparsers):
    """``wavenet-edge info MODEL.tflite``: config, sizes, delay lines, quantization summary."""
    p = subparsers.add_parser(
        "info", help="describe a wavenet-edge .tflite step graph",
        description="Print the model's configuration, sizes (file, weights, activations, delay "
                    "lines), its delay-line contract and a quantization summary.")
    p.add_argument("model", help="wavenet-edge .tflite step graph")
    p.set_defaults(func=_run_info)
    return p


def _kib(n):
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def info_text(engine) -> str:
    """The ``info`` report of a loaded :class:`~wavenet_edge.engine.Engine` as text."""
    import numpy as np

    cfg, prog, model, meta = engine.config, engine.program, engine.model, engine.metadata
    lines = [f"model        {engine.path}",
             f"producer     {meta.get('producer', '?')}  (contract v{meta.get('format_version')})",
             f"sample rate  {engine.sr} Hz, mu-law {engine.mulaw_convention} (mu={engine.mu})"]
    d = cfg.dilations
    lines.append(f"layers       {cfg.n_layers} (kernel {cfg.kernel_size}, dilations "
                 f"{', '.join(map(str, d[:12]))}{' …' if len(d) > 12 else ''})")
    lines.append(f"channels     residual {cfg.residual_channels}, dilation {cfg.dilation_channels}, "
                 f"skip {cfg.skip_channels}, end {cfg.end_channels}, classes "
                 f"{cfg.quantization_channels}")
    lines.append(f"initial      filter width {cfg.initial_filter_width}")
    gc = (f"{cfg.gc_cardinality} speakers × {cfg.gc_channels} channels" if cfg.has_gc else "none")
    lines.append(f"conditioning {gc}")
    if cfg.has_cond:
        up = cfg.upsampler
        line = f"local cond   {cfg.cin_channels} bands, {up} upsampler"
        frames = engine._shared.frames
        if frames is not None:
            fp = frames[0]
            F = cfg.freq_axis_kernel_size
            line += (f" (scales {list(cfg.upsample_scales)}, hop {fp.hop}, F {F}"
                     + (f", reach {fp.contract.get('band_reach')} bands" if F > 1 else "")
                     + f"); frame graph {fp.program.macs_per_sample:,} MACs/frame = "
                     f"{fp.program.macs_per_sample / fp.hop:,.0f}/sample, look-ahead "
                     f"{fp.lookahead_frames} frames")
        lines.append(line)
    lines.append(f"receptive    {cfg.receptive_field} samples "
                 f"({1000.0 * cfg.receptive_field / engine.sr:.1f} ms)")
    lines.append(f"compute      {prog.macs_per_sample:,} MACs/sample "
                 f"({prog.macs_per_sample * engine.sr / 1e9:.2f} GMAC/s in real time)")
    ops = ", ".join(f"{k} {v}" for k, v in sorted(prog.op_counts.items(), key=lambda kv: -kv[1]))
    lines.append(f"operators    {sum(prog.op_counts.values())}: {ops}")
    wbytes = sum(int(t.data.nbytes) for t in model.tensors if t.data is not None)
    lines.append(f"file         {_kib(model.size_bytes)}; constants {_kib(wbytes)}")
    ring = int(prog.ring_size) if prog.writes.size else 0
    lines.append(f"activations  {_kib(prog.arena_size)} engine arena per stream")
    lines.append(f"delay lines  {len(prog.reads)} reads of {len(prog.writes)} writes, "
                 f"{_kib(ring)} of int8 history (config: {cfg.delay_line_bytes():,} B)")
    for dl in meta["delay_lines"][:6]:
        lines.append(f"  {dl['read']:<28} <- {dl['write']:<20} delay {dl['delay']}")
    if len(meta["delay_lines"]) > 6:
        lines.append(f"  … {len(meta['delay_lines']) - 6} more")
    # quantization summary
    n_pc = sum(1 for t in model.tensors if t.data is not None and t.dtype == np.int8 and t.per_channel)
    acts = [t for t in model.tensors if t.data is None and t.dtype == np.int8 and t.is_quantized]
    lines.append(f"quantization int8 activations per tensor ({len(acts)} tensors), "
                 f"{n_pc} int8 weight tensors per output channel, int32 biases")
    for name in ("layer00/input", f"layer{cfg.n_layers - 1:02d}/input", "layer00/gated",
                 "skip/relu", "end/hidden", "logits", "probs"):
        if model.has_tensor(name):
            t = model.tensor(name)
            s, z = float(t.scale[0]), int(t.zero_point[0])
            lines.append(f"  {name:<16} scale {s:.6g}, zero point {z:4d}  "
                         f"(range {s * (-128 - z):+.4g} … {s * (127 - z):+.4g})")
    cal = meta.get("calibration") or {}
    if cal:
        lines.append("calibration  " + ", ".join(f"{k} {v}" for k, v in cal.items()
                                                  if isinstance(v, (str, int, float))))
    return "\n".join(lines)


def _run_info(args) -> int:
    from .engine import Engine

    eng = Engine.from_file(args.model)
    print(info_text(eng))
    return 0


# -- generate -------------------------------------------------------------------------------------
def register_generate(subparsers):
    """``wavenet-edge generate MODEL --seconds S -o OUT.wav``: free-running synthesis."""
    p = subparsers.add_parser(
        "generate", help="generate audio with the int8 engine",
        description="Free-running generation with the bit-exact int8 engine: each sample is drawn "
                    "with the integer PCG32 sampler (reproducible on a microcontroller with the "
                    "same file and seed) and fed back. Writes 16-bit PCM at the model's rate.")
    p.add_argument("model", help="wavenet-edge .tflite step graph")
    p.add_argument("--seconds", type=float, default=2.0, help="duration to generate (default 2)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="1 = the model's probabilities (default), 0 = greedy, other values "
                        "sharpen (<1) or flatten (>1) via the integer temperature table")
    p.add_argument("--prime", metavar="WAV", help="audio fed teacher-forced before generating")
    p.add_argument("--speaker", type=int, default=None, help="speaker id (gc models)")
    _profile_arg(p)
    p.add_argument("-o", "--output", default=None,
                   help="output WAV (default: <model name>-generated.wav)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_generate)
    return p


def _default_output(model_path):
    stem = os.path.splitext(os.path.basename(os.fspath(model_path)))[0] or "model"
    return f"{stem}-generated.wav"


def _run_generate(args) -> int:
    import numpy as np

    from .audio import load_wav, write_wav
    from .engine import Engine
    from .errors import ConfigError

    if not (args.seconds > 0 and np.isfinite(args.seconds)):
        raise ConfigError(f"--seconds must be positive, got {args.seconds}")
    if not (np.isfinite(args.temperature) and args.temperature >= 0):
        raise ConfigError(f"--temperature must be >= 0, got {args.temperature}")
    out = args.output or _default_output(args.model)
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise ConfigError(f"output directory {d} does not exist")
    eng = Engine.from_file(args.model, profile=args.profile)
    if args.speaker is not None or eng.config.has_gc:
        eng.speaker = 0 if args.speaker is None else args.speaker
    prime = None
    if args.prime:
        y, _ = load_wav(args.prime, sr=eng.sr)
        prime = eng.encode(np.clip(y, -1.0, 1.0))
    n = int(round(args.seconds * eng.sr))
    from tqdm.auto import tqdm

    compile_s = eng.warmup()   # numba compile / cache load, kept out of the real-time factor

    t0 = time.perf_counter()
    with tqdm(total=n, unit="sample", unit_scale=True, desc="generating",
              disable=args.no_progress, leave=False) as bar:
        codes = eng.generate(n, seed=args.seed, temperature=args.temperature, prime=prime,
                             progress=bar.update)
    dt = time.perf_counter() - t0
    write_wav(out, eng.decode(codes), eng.sr)
    rtf = (n / eng.sr) / dt if dt > 0 else float("inf")
    print(f"wrote {out}: {n:,} samples ({n / eng.sr:.2f} s at {eng.sr} Hz) "
          f"in {dt:.2f} s, {n / dt:,.0f} samples/s = {rtf:.2f}x real time "
          f"(profile {args.profile}, seed {args.seed}; kernel load/compile {compile_s:.2f} s)")
    return 0


# -- score ----------------------------------------------------------------------------------------
def register_score(subparsers):
    """``wavenet-edge score MODEL AUDIO...``: teacher-forced bits/sample per file."""
    p = subparsers.add_parser(
        "score", help="bits/sample of audio files under the int8 model",
        description="Teacher-forced cross-entropy of each file (resampled to the model's rate, "
                    "mu-law encoded with the model's convention) from the int8 logits, in "
                    "bits/sample (8 = no better than uniform over 256 classes).")
    p.add_argument("model", help="wavenet-edge .tflite step graph")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="WAV files")
    p.add_argument("--speaker", type=int, default=None, help="speaker id (gc models)")
    _profile_arg(p)
    p.set_defaults(func=_run_score)
    return p


def _run_score(args) -> int:
    import numpy as np

    from .audio import load_wav
    from .engine import Engine

    eng = Engine.from_file(args.model, profile=args.profile)
    if args.speaker is not None:
        eng.speaker = args.speaker
    clips = [(path, load_wav(path, sr=eng.sr)[0]) for path in args.audio]
    width = max(len(str(p)) for p, _ in clips)
    for path, y in clips:
        bits = eng.score(np.clip(y, -1.0, 1.0))
        print(f"{str(path):<{width}}  {bits:.4f} bits/sample  ({y.shape[0]:,} samples)")
        sys.stdout.flush()
    return 0
