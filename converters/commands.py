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
    p.add_argument("--report", metavar="JSON", help="also write the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_convert)
    return p


def _run_convert(args) -> int:
    from wavenet_edge.errors import ConfigError

    from .convert import convert

    if args.eval_steps < 2:
        raise ConfigError(f"--eval-steps must be >= 2, got {args.eval_steps}")
    result = convert(args.checkpoint, calibration=args.calibration, heldout=args.heldout,
                     out=args.output, method=args.method, report=args.report,
                     progress=not args.no_progress, eval_steps=args.eval_steps)
    print(result.table())
    print(f"wrote {result.path} ({len(result.tflite):,} bytes, method {result.method})")
    return 0
