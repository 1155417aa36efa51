"""``wavenet-edge`` command line: a thin shell over the libraries.

Sub-commands are plug-ins (entry-point group ``wavenet_edge.commands``): each entry point is a
function ``register(subparsers)`` that adds one sub-parser and sets ``func=handler(args) -> int``.
This keeps the dependency arrow one way: the runtime never imports the host toolchain, yet one
``wavenet-edge`` command reaches all of it.  Handlers import their heavy modules lazily so that
``--help`` stays fast.  User errors (:class:`WaveNetEdgeError`) become one line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from .errors import WaveNetEdgeError

__all__ = ["main", "build_parser", "int_arg", "float_arg"]


def int_arg(minimum: int):
    """argparse ``type=`` for an integer ``>= minimum`` (message names the bound)."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return v
    return parse


def float_arg(*, above: float | None = None, below: float | None = None,
              at_least: float | None = None):
    """argparse ``type=`` for a finite number with the given bounds (``above``/``below``
    exclusive, ``at_least`` inclusive)."""
    import math
    parts = ([f"> {above:g}"] if above is not None else []) + \
            ([f">= {at_least:g}"] if at_least is not None else []) + \
            ([f"< {below:g}"] if below is not None else [])
    want = "a number" + (" " + " and ".join(parts) if parts else "")

    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}") from None
        if not math.isfinite(v) or (above is not None and v <= above) or \
                (below is not None and v >= below) or (at_least is not None and v < at_least):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return v
    return parse


def profile_arg(*, known=None, many: bool = False):
    """argparse ``type=`` for a profile name (:mod:`wavenet_edge.profiles`; aliases accepted, the
    canonical name returned) or, with ``many``, a comma-separated list of them.  ``known``: the
    names the command can serve (default: every profile)."""
    def parse(text):
        from .errors import UnknownProfileError
        from .profiles import PROFILES, resolve_profile
        names = [t.strip() for t in text.split(",")] if many else [text]
        try:
            out = [resolve_profile(n, known=known or PROFILES) for n in names if n]
        except UnknownProfileError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if not out:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of profiles, "
                                             f"got {text!r}")
        return list(dict.fromkeys(out)) if many else out[0]
    return parse


_ORDER = ["quickstart", "train", "convert", "info", "generate", "vocode", "score", "verify",
          "simulate",
          "export-c", "explain"]


def _entry_points():
    from importlib.metadata import entry_points
    # The same distribution can be visible twice (an editable install's metadata plus the
    # project's own *.egg-info when the CLI runs from the checkout): one command per name.
    eps = {}
    for ep in entry_points(group="wavenet_edge.commands"):
        eps.setdefault(ep.name, ep)
    order = {n: i for i, n in enumerate(_ORDER)}
    return sorted(eps.values(), key=lambda ep: (order.get(ep.name, len(order)), ep.name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavenet-edge",
        description="Train or import a WaveNet, quantize it to an int8 .tflite, and run it "
                    "bit-exact on the edge.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"wavenet-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in _entry_points():
        ep.load()(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WaveNetEdgeError as e:
        print(f"wavenet-edge {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"wavenet-edge {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
