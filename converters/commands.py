"""Sub-commands of ``wavenet-edge`` provided by the host toolchain (entry-point plug-ins).

Each ``register_*(subparsers)`` adds one sub-parser and sets ``func``; heavy modules are imported
inside the handlers so that ``wavenet-edge --help`` stays fast.
"""

from __future__ import annotations


def register_convert(subparsers):
    """``wavenet-edge convert CHECKPOINT -o MODEL.tflite``: quantize to the int8 step graph."""
    p = subparsers.add_parser(
        "convert", help="quantize a float WaveNet checkpoint to an int8 .tflite step graph",
        description="Calibrate on audio, quantize to int8 and write the one .tflite step graph; "
                    "prints size, cost and int8-vs-float quality on held-out audio.")
    p.add_argument("checkpoint", help="float checkpoint (.npz of wavenet-edge, or a supported "
                                      "peer layout)")
    p.add_argument("-o", "--output", required=True, help="output .tflite path")
    p.add_argument("--calibration", nargs="+", metavar="WAV",
                   help="calibration WAV files or directories (default: the built-in set)")
    p.add_argument("--heldout", nargs="+", metavar="WAV",
                   help="held-out WAV files or directories for the quality report "
                        "(default: the built-in held-out set)")
    p.add_argument("--method", default="auto", choices=["auto", "minmax", "percentile", "mse"],
                   help="activation range method; auto measures all and keeps the best "
                        "(default: auto)")
    p.add_argument("--eval-steps", type=int, default=4000,
                   help="int8 steps run for the quality report (default: 4000)")
    p.add_argument("--runner", default="litert", choices=["litert", "tflm", "engine"],
                   help="what runs the int8 graph for the report: LiteRT builtin kernels or TFLM "
                        "through the metadata contract, or the Numba engine (bit-exact with "
                        "LiteRT, fast) (default: litert)")
    p.add_argument("--report", metavar="JSON", help="also write the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_convert)
    return p


def _run_convert(args) -> int:
    from wavenet_edge.errors import ConfigError

    from .convert import convert
    from .report import contract_host_runner, engine_runner

    if args.eval_steps < 2:
        raise ConfigError(f"--eval-steps must be >= 2, got {args.eval_steps}")
    result = convert(args.checkpoint, calibration=args.calibration, heldout=args.heldout,
                     out=args.output, method=args.method, report=args.report,
                     progress=not args.no_progress, eval_steps=args.eval_steps,
                     runner=(engine_runner("litert") if args.runner == "engine"
                             else contract_host_runner(args.runner)))
    print(result.table())
    print(f"wrote {result.path} ({len(result.tflite):,} bytes, method {result.method})")
    return 0


def register_train(subparsers):
    """``wavenet-edge train [AUDIO ...] -o CKPT.npz``: train a float WaveNet (numpy + numba)."""
    p = subparsers.add_parser(
        "train", help="train a float WaveNet on WAV files or on the built-in signal set",
        description="Train a WaveNet by next-sample cross-entropy on mu-law classes "
                    "(numpy + numba, Adam). Without AUDIO, trains on the built-in set of "
                    "sinusoid mixtures and chirps. Prints held-out bits/sample before and after "
                    "training and the order-0 entropy of the held-out codes.")
    p.add_argument("audio", nargs="*", metavar="AUDIO",
                   help="training WAV files or directories (integer PCM, mono/stereo, any rate: "
                        "resampled to the model's rate); the last 10%% of each file is held out. "
                        "Default: the built-in signal set")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", default=None,
                   help="named configuration: tiny, small, tensorflow-wavenet (default: tiny)")
    g.add_argument("--config", metavar="FILE", help="WaveNetConfig as a JSON file")
    g.add_argument("--init", metavar="CKPT", help="continue training this checkpoint (.npz)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (budget)")
    p.add_argument("--seconds", type=float, default=None,
                   help="wall-clock budget in seconds (default 60 when --steps is not given)")
    p.add_argument("--seed", type=int, default=0, help="initialization and sampling seed")
    p.add_argument("--batch-size", type=int, default=8, help="windows per step (default 8)")
    p.add_argument("--window", type=int, default=None,
                   help="input samples per window (default: receptive field + 511)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam step size (default 1e-2, or 1e-3 with --init)")
    p.add_argument("--checkpoint-every", type=int, default=250,
                   help="also write the output every N steps (default 250)")
    p.add_argument("-o", "--output", default=None,
                   help="output checkpoint .npz (default: wavenet-<preset or config name>.npz, "
                        "or <init name>-continued.npz)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)
    return p


def _run_train(args) -> int:
    import os
    import sys

    from wavenet_edge.config import WaveNetConfig, preset
    from wavenet_edge.errors import ConfigError
    from wavenet_edge.float_model import FloatWaveNet

    from .signals import builtin_signals, load_training_audio, split_tail
    from .train import train

    def say(msg):
        print(msg, file=sys.stderr)

    if args.init:
        model = FloatWaveNet.load(args.init)
        cfg, name = model.config, os.path.splitext(os.path.basename(args.init))[0]
    elif args.config:
        cfg = WaveNetConfig.from_file(args.config)
        model, name = cfg, os.path.splitext(os.path.basename(args.config))[0]
    else:
        name = args.preset or "tiny"
        cfg = preset(name)
        model = cfg
    out = args.output or (f"{name}-continued.npz" if args.init else f"wavenet-{name}.npz")
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise ConfigError(f"output directory {out_dir} does not exist", path=out)

    if args.audio:
        clips = load_training_audio(args.audio, sr=cfg.sample_rate, log_fn=say)
        clips, heldout = split_tail(clips, fraction=0.1)
        source = f"{len(clips)} file(s), last 10% of each held out"
    else:
        clips = builtin_signals(split="train", sr=cfg.sample_rate)
        heldout = builtin_signals(split="heldout", sr=cfg.sample_rate)
        source = f"built-in signal set ({len(clips)} clips, {len(heldout)} held out)"
    lr = args.lr if args.lr is not None else (1e-3 if args.init else 1e-2)
    trained, h = train(model, clips, steps=args.steps, seconds=args.seconds, seed=args.seed,
                       batch_size=args.batch_size, window=args.window, lr=lr,
                       checkpoint=out, checkpoint_every=args.checkpoint_every,
                       progress=not args.no_progress, heldout=heldout, log_fn=say)
    if h["heldout_bits_before"] is not None:
        print(f"held-out order-0 entropy of the mu-law codes: {h['heldout_order0_bits']:.3f} "
              "bits/sample")
        print(f"held-out before training: {h['heldout_bits_before']:.3f} bits/sample")
        print(f"held-out after training:  {h['heldout_bits_after']:.3f} bits/sample")
    print(f"trained {name} for {h['steps']} steps in {h['seconds']:.1f} s on {source} "
          f"({h['positions']:,} scored samples)")
    print(f"wrote {out}")
    return 0
