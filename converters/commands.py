"""Sub-commands of ``wavenet-edge`` provided by the host toolchain (entry-point plug-ins).

Each ``register_*(subparsers)`` adds one sub-parser and sets ``func``; heavy modules are imported
inside the handlers so that ``wavenet-edge --help`` stays fast.
"""

from __future__ import annotations

from wavenet_edge.cli import int_arg


def register_convert(subparsers):
    """``wavenet-edge convert CHECKPOINT -o MODEL.tflite``: quantize to the int8 step graph."""
    p = subparsers.add_parser(
        "convert", help="quantize a float WaveNet checkpoint to an int8 .tflite step graph",
        description="Calibrate on audio, quantize to int8 and write the one .tflite step graph; "
                    "prints size, cost and int8-vs-float quality on held-out audio.")
    p.add_argument("checkpoint", help="float checkpoint (.npz of wavenet-edge, or a supported "
                                      "peer layout)")
    p.add_argument("-o", "--output", default=None,
                   help="output .tflite path (default: the checkpoint's name with .tflite)")
    p.add_argument("--layout", default="auto",
                   help="checkpoint layout: auto (default), wavenet-edge, pytorch-wavenet, "
                        "wavenet_vocoder, tensorflow-wavenet")
    p.add_argument("--config", default=None, metavar="JSON",
                   help="hyper-parameters the weights do not say (e.g. dilations), in our or "
                        "the peer's own vocabulary")
    p.add_argument("--calibration", "--calibrate", nargs="+", metavar="WAV",
                   help="calibration WAV files or directories (default: the built-in set); "
                        "unless --heldout is given, the last 10%% of each file is held out for "
                        "the quality report and --method auto (the tail 'train' holds out)")
    p.add_argument("--heldout", nargs="+", metavar="WAV",
                   help="held-out WAV files or directories for the quality report (default: "
                        "the last 10%% of the --calibrate audio, or the built-in held-out set)")
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
    import os

    from .checkpoints import load_checkpoint
    model = load_checkpoint(args.checkpoint, layout=args.layout, config=args.config)
    out = args.output
    if out is None:
        stem = args.checkpoint.rstrip("/\\")
        for suffix in (".index", ".npz", ".pth", ".pt", ".safetensors"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        out = os.path.basename(stem) + ".tflite"
    result = convert(model, calibration=args.calibration, heldout=args.heldout,
                     out=out, method=args.method, report=args.report,
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
                   help="named configuration: tiny, small, tensorflow-wavenet, vocoder-tiny, "
                        "vocoder-small (default: tiny); a vocoder preset computes its mel "
                        "features from the audio and trains with them")
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


def register_explain(subparsers):
    """``wavenet-edge explain MODEL -o layers.png``: what each dilated layer responds to."""
    p = subparsers.add_parser(
        "explain", help="what each dilated layer hears: sine-sweep response per layer (PNG)",
        description="Drives the float model with sinusoids swept over frequency and plots the RMS "
                    "of every layer's gated output (layer x frequency) next to the analytic "
                    "responses of its dilated filters; prints how well the peaks follow fs/(2d).")
    p.add_argument("model", help="float checkpoint (.npz of wavenet-edge, or a supported peer "
                                 "layout)")
    p.add_argument("-o", "--output", default=None,
                   help="PNG path (default: <model name>-layers.png next to the model)")
    p.add_argument("--layout", default="auto", help="checkpoint layout (default: auto)")
    p.add_argument("--config", default=None, help="JSON config for what the weights do not say")
    p.add_argument("--freqs", type=int_arg(2), default=48,
                   help="number of test frequencies (default 48)")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="sample rate in Hz (default: the model's)")
    p.add_argument("--json", action="store_true", help="also print the measurements as JSON")
    p.set_defaults(func=_run_explain)
    return p


def _run_explain(args) -> int:
    import json
    import os

    from .checkpoints import load_checkpoint
    from .explain import layer_frequency_response, octave_agreement
    from .plots import plot_layer_response, require_matplotlib

    require_matplotlib()  # fail before the sweep, not after
    out = args.output or os.path.splitext(args.model)[0] + "-layers.png"
    model = load_checkpoint(args.model, layout=args.layout, config=args.config)
    res = layer_frequency_response(model, sr=args.sample_rate, n_freqs=args.freqs, progress=True)
    plot_layer_response(res, out, title=f"{os.path.basename(args.model)}: what each dilated "
                                        f"layer hears")
    agree = octave_agreement(res)
    print(f"{'layer':>5} {'d':>5} {'fs/(2d) Hz':>11} {'measured peak':>14} {'filter peak':>12}")
    for l, d in enumerate(res["dilations"]):
        print(f"{l:5d} {int(d):5d} {res['octave_hz'][l]:11.1f} {res['peak_hz'][l]:14.1f} "
              f"{res['analytic_peak_hz'][l]:12.1f}")
    m = agree["peak"]
    print(f"measured peaks vs fs/(2d): rank correlation {m['spearman_logd_vs_neg_logpeak']:+.2f}, "
          f"median {m['median_octaves_off']:.1f} octaves off")
    if args.json:
        print(json.dumps({"freqs": res["freqs"].tolist(), "measured": res["measured"].tolist(),
                          "analytic": res["analytic"].tolist(), "agreement": agree}))
    print(f"wrote {out}")
    return 0
