"""``wavenet-edge simulate``: the CLI face of :func:`firmware_sim.simulate.simulate`."""

from __future__ import annotations

__all__ = ["register_simulate", "register_verify", "register_export_c", "register_quickstart"]


from converters.interpreters import EMULATED_RUNTIMES, RUNTIMES

_RUNTIMES = RUNTIMES + EMULATED_RUNTIMES
from wavenet_edge.cli import float_arg, int_arg, profile_arg

_positive_int = int_arg(1)
_nonneg_int = int_arg(0)
_positive_float = float_arg(above=0.0)
_fraction = float_arg(at_least=0.0, below=1.0)


def register_simulate(subparsers) -> None:
    """Add the ``simulate`` sub-command."""
    p = subparsers.add_parser(
        "simulate", help="will this .tflite fit, run in real time, and match TFLM on a microcontroller?",
        description="Per target: flash and SRAM (delay lines + TFLM arena measured with the real "
                    "interpreter + allowances), an ESTIMATE of cycles per sample with a deadline "
                    "simulation of an audio output FIFO, and a bit-exactness check of the Numba "
                    "engine against TFLM (exit status 1 on any difference).")
    p.add_argument("model", metavar="MODEL.tflite", nargs="?", help="a wavenet-edge step graph")
    p.add_argument("--target", action="append", metavar="NAME", dest="targets",
                   help="target to simulate (repeatable; default: all built-in, or all of "
                        "--target-file)")
    p.add_argument("--target-file", metavar="FILE", help="JSON file of extra boards (and cores)")
    p.add_argument("--list-targets", action="store_true", help="list the targets and exit")
    p.add_argument("--sample-rate", type=_positive_int, metavar="HZ",
                   help="playback rate for the real-time check (default: the model's)")
    p.add_argument("--steps", type=_nonneg_int, default=None, metavar="N",
                   help="teacher-forced and free-running steps of the bit-exactness check "
                        "(default 1000)")
    p.add_argument("--fifo", type=_positive_int, default=None, metavar="DEPTH",
                   help="audio output FIFO depth in samples (default 256)")
    p.add_argument("--seconds", type=_positive_float, default=None, metavar="S",
                   help="seconds of audio in the deadline simulation (default 10)")
    p.add_argument("--jitter", type=_fraction, default=0.05, metavar="J",
                   help="relative per-sample cycle jitter, uniform in ±J (default 0.05)")
    p.add_argument("--wav", metavar="FILE", help="teacher-forcing audio (default: built-in "
                                                 "held-out signals)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and jitter (default 0)")
    p.add_argument("--no-bitexact", action="store_true", help="skip the bit-exactness check")
    p.add_argument("--engine-profile", type=profile_arg(), default="tflm", metavar="PROFILE",
                   help="arithmetic profile of the Numba engine compared with TFLM (default tflm; "
                        "the others are for diagnosis and are expected to differ)")
    p.add_argument("--emulate", action="store_true",
                   help="also export the C engine and run it as firmware on Cortex-M4/M7/M55 in "
                        "QEMU: exact instructions per sample, bit-exactness, cycle ESTIMATE")
    p.add_argument("--emulate-steps", type=_positive_int, default=200, metavar="N",
                   help="free-running steps of the emulated firmware (default 200)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from wavenet_edge.errors import MismatchError

    if args.list_targets:
        from .targets import select_targets
        for t in select_targets(args.targets, target_file=args.target_file):
            print(f"{t.name:12s} {t.core.name:14s} {t.clock_hz / 1e6:6g} MHz  "
                  f"SRAM {t.sram_bytes // 1024} KiB  flash {t.flash_bytes // 1024} KiB  {t.title}")
        return 0

    if args.model is None:
        from wavenet_edge.errors import ConfigError
        raise ConfigError("MODEL.tflite is required (or --list-targets)")
    from .latency import JitterModel
    from .simulate import DEFAULT_FIFO, DEFAULT_SECONDS, DEFAULT_STEPS, simulate

    emu = None
    if args.emulate:  # firmware_sim.emulate (C export in QEMU): simulate then prices our C with it
        from .emulate import emulate
        emu = emulate(args.model, steps=args.emulate_steps, seed=args.seed, progress=not args.json)
    report = simulate(args.model, targets=args.targets, target_file=args.target_file,
                      sr=args.sample_rate,
                      steps=DEFAULT_STEPS if args.steps is None else args.steps,
                      check_bitexact=not args.no_bitexact,
                      fifo=DEFAULT_FIFO if args.fifo is None else args.fifo,
                      seconds=DEFAULT_SECONDS if args.seconds is None else args.seconds,
                      jitter=JitterModel(jitter=args.jitter, seed=args.seed), wav=args.wav,
                      seed=args.seed, progress=not args.json, engine_profile=args.engine_profile,
                      emulation=emu)
    if args.json:
        import json
        d = json.loads(report.to_json())
        if emu is not None:
            d["emulation"] = emu.to_dict()
        print(json.dumps(d, indent=2))
    else:
        print(report.table())
        if emu is not None:
            print("\n" + emu.table())
    if not report.ok:
        raise MismatchError(report.bitexact.message(), path=args.model)
    if emu is not None and not emu.ok:
        raise MismatchError("emulated firmware differs from the engine (see the emulation report)",
                            path=args.model)
    return 0


def register_verify(subparsers) -> None:
    """Add the ``verify`` sub-command."""
    p = subparsers.add_parser(
        "verify", help="run the engine and real interpreters side by side: identical int8 outputs?",
        description="Drives each real interpreter through the .tflite's delay-line contract and "
                    "the Numba engine (matching arithmetic profile) on the same teacher-forced "
                    "audio, then on free-running generation (both fed the engine's sampled codes); "
                    "prints identical/different step counts per output tensor. Exit status 1 on "
                    "any difference.")
    p.add_argument("model", help="the .tflite written by 'wavenet-edge convert'")
    p.add_argument("--steps", type=_nonneg_int, default=2000,
                   help="teacher-forced steps (default 2000)")
    p.add_argument("--free-steps", type=_nonneg_int, default=None,
                   help="free-running steps (default: --steps)")
    p.add_argument("--against", type=profile_arg(known=_RUNTIMES, many=True),
                   default=["tflm", "litert"], metavar="RUNTIMES",
                   help="comma-separated runtimes, each named by the engine profile it defines "
                        "(default tflm,litert; also litert-ref, xnnpack = LiteRT default; "
                        "litert-arm64, xnnpack-arm64 = the aarch64 wheel under qemu)")
    p.add_argument("--engine-profile", type=profile_arg(), default=None, metavar="PROFILE",
                   help="the engine's arithmetic profile against every runtime (default: each "
                        "runtime's own; another one shows what a mismatch looks like)")
    p.add_argument("--wav", "--audio", dest="wav", default=None, metavar="AUDIO",
                   help="teacher-forcing audio (default: built-in held-out); a vocoder is "
                        "conditioned on its features (the model's mel recipe) in both phases")
    p.add_argument("--seed", type=int, default=0, help="sampling seed for free-running steps")
    p.add_argument("--speaker", type=_nonneg_int, default=None, help="speaker id (gc models)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_run_verify)


def _run_verify(args) -> int:
    import json

    from wavenet_edge.errors import MismatchError

    from wavenet_edge.tflite_file import load_model

    from .bitexact import check_bitexact
    model = load_model(args.model)
    results = {}
    for rt in args.against:
        results[rt] = check_bitexact(model, steps=args.steps, free_steps=args.free_steps,
                                     wav=args.wav, seed=args.seed, speaker=args.speaker,
                                     runtime=rt, profile=args.engine_profile,
                                     stop_at_first=False)
    if args.json:
        print(json.dumps({rt: r.to_dict() for rt, r in results.items()}, indent=2))
    else:
        rows = [("runtime", "engine profile", "phase", "tensor", "identical", "different")]
        for rt, r in results.items():
            for phase, d in r.per_tensor.items():
                for tensor, (same, diff) in d.items():
                    rows.append((rt, r.profile, phase, tensor, str(same), str(diff)))
        w = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for i, row in enumerate(rows):
            print("  ".join(c.ljust(w[j]) if j < 4 else c.rjust(w[j]) for j, c in enumerate(row)))
            if i == 0:
                print("  ".join("-" * x for x in w))
        for rt, r in results.items():
            print(f"{rt}: {'bit-exact' if r.ok else 'DIFFERENT'} "
                  f"(teacher-forced {r.teacher_forced_identical}/{r.teacher_forced_steps}, "
                  f"free-running {r.free_running_identical}/{r.free_running_steps} identical steps; "
                  f"{r.audio})")
    bad = [r for r in results.values() if not r.ok]
    if bad:
        raise MismatchError(bad[0].message(), path=args.model)
    return 0


def register_export_c(subparsers) -> None:
    """Add the ``export-c`` sub-command (:mod:`firmware_sim.c_export`)."""
    from .c_export import register_export_c as register
    register(subparsers)


def register_quickstart(subparsers):
    """``wavenet-edge quickstart [-o DIR]``: the whole pipeline on the built-in signal set."""
    p = subparsers.add_parser(
        "quickstart", help="train, convert, verify, simulate, generate and plot: the whole "
                           "pipeline on the built-in signal set",
        description="Trains the tiny preset on the built-in signal set (nothing downloaded), "
                    "converts it to an int8 .tflite, verifies the engine against TFLM and LiteRT, "
                    "simulates the built-in microcontroller targets, generates audio and writes "
                    "pictures; ends with a summary.")
    p.add_argument("-o", "--output", default="quickstart_out", metavar="DIR",
                   help="output directory (default: quickstart_out)")
    p.add_argument("--preset", default="tiny", help="preset to train (default: tiny)")
    p.add_argument("--seconds", type=_positive_float, default=75.0,
                   help="training budget in seconds (default: 75)")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="training budget in optimizer steps")
    p.add_argument("--verify-steps", type=_nonneg_int, default=2000,
                   help="teacher-forced and free-running steps per interpreter (default: 2000)")
    p.add_argument("--generate-seconds", type=_positive_float, default=2.0,
                   help="seconds of audio to generate (default: 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true", help="skip the PNG pictures")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_quickstart)
    return p


def _run_quickstart(args) -> int:
    from .quickstart import quickstart

    quickstart(args.output, preset_name=args.preset, steps=args.steps, seconds=args.seconds,
               verify_steps=args.verify_steps, generate_seconds=args.generate_seconds,
               seed=args.seed, plots=not args.no_plots, progress=not args.no_progress)
    return 0
