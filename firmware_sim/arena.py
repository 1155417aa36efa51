"""The TFLM tensor arena a step graph needs, MEASURED with the real ``tflite-micro`` interpreter.

The smallest ``arena_size`` (bytes) for which the interpreter both allocates (AllocateTensors runs
in the constructor) and invokes once, found by doubling then bisection to the byte; cached per file
hash and tflite-micro version under ``$XDG_CACHE_HOME/wavenet-edge/``.

Caveat (stated in every report): the Python package is a 64-bit host build.  The arena holds the
activations (identical on a 32-bit MCU), kernel scratch buffers, and TFLM's persistent structures
(TfLiteEvalTensor, node/registration arrays, per-channel quantization data), which contain pointers
and are therefore larger on the host than on a 32-bit Cortex-M: the host figure is an upper bound
for those.  The arena must be 16-byte aligned on the device (``alignas(16)``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from wavenet_edge._fileio import atomic_write
from wavenet_edge.errors import WaveNetEdgeError

__all__ = ["measure_arena", "arena_fits", "ArenaError"]

_MAX_ARENA = 256 * 1024 * 1024


class ArenaError(WaveNetEdgeError):
    """TFLM could not run the graph at any arena size (unsupported operator, corrupt graph)."""


@contextlib.contextmanager
def _quiet_stderr():
    """TFLM reports allocation failures on the C-level stderr; silence fd 2 while probing."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(fd, 2)
    finally:
        os.close(fd)


def _tflm_version() -> str:
    try:
        from importlib.metadata import version
        return version("tflite-micro")
    except Exception:  # noqa: BLE001 - version is only a cache key
        return "unknown"


def _set_valid_inputs(interp):
    """Inputs an invocation accepts: index 0 for int32 inputs (sample, speaker), zero point else."""
    i = 0
    while True:
        try:
            d = interp.get_input_details(i)
        except Exception:  # noqa: BLE001 - past the last input
            return
        dt = np.dtype(d["dtype"])
        zp = d.get("quantization_parameters", {}).get("zero_points", [])
        fill = int(zp[0]) if (len(zp) and dt != np.int32) else 0
        interp.set_input(np.full(tuple(d["shape"]), fill, dtype=dt), i)
        i += 1


def _probe(data: bytes, arena_size: int, invoke: bool) -> bool:
    from tflite_micro.python.tflite_micro import runtime
    with _quiet_stderr():
        try:
            interp = runtime.Interpreter.from_bytes(data, arena_size=int(arena_size))
            if invoke:
                _set_valid_inputs(interp)
                interp.invoke()
        except RuntimeError:
            return False
    return True


def arena_fits(data: bytes, arena_size: int, *, invoke: bool = True) -> bool:
    """Whether TFLM allocates (and, with ``invoke``, invokes once) ``data`` in ``arena_size`` bytes.

    Probed in a forked child where available, so that a kernel crashing on a starved arena cannot
    take the caller down (a crash counts as "does not fit").
    """
    data = bytes(data)
    if not hasattr(os, "fork"):  # pragma: no cover - non-POSIX
        return _probe(data, arena_size, invoke)
    from tflite_micro.python.tflite_micro import runtime  # noqa: F401 - import before forking
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 1
        try:
            import faulthandler
            faulthandler.disable()  # a starved-arena segfault is an expected "no", not a report
            code = 0 if _probe(data, arena_size, invoke) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _cache_path(digest: str) -> Path:
    d = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wavenet-edge"
    return d / f"arena-{digest[:24]}.json"


def measure_arena(data: bytes, *, use_cache: bool = True, name: str = "<bytes>") -> dict:
    """Smallest TFLM arena (bytes) for ``data`` (``.tflite`` bytes), by bisection.

    Returns ``{"arena_bytes", "arena_bytes_aligned" (rounded up to 16), "probes", "cached",
    "tflite_micro", "host_build": "64-bit"}``.  Raises :class:`ArenaError` if nothing up to
    256 MiB works.
    """
    data = bytes(data)
    ver = _tflm_version()
    digest = hashlib.sha256(data + ver.encode()).hexdigest()
    path = _cache_path(digest)
    if use_cache and path.exists():
        try:
            rec = json.loads(path.read_text())
            if rec.get("sha256") == digest:
                rec["cached"] = True
                return rec
        except (OSError, json.JSONDecodeError):
            pass
    probes = 0
    hi = max(4096, 1 << int(np.ceil(np.log2(max(1, len(data) // 8)))))
    lo = 0  # largest size known to fail
    while True:
        probes += 1
        if arena_fits(data, hi):
            break
        lo = hi
        hi *= 2
        if hi > _MAX_ARENA:
            raise ArenaError("TFLM cannot allocate/invoke the graph even with a 256 MiB arena "
                             "(unsupported operator or corrupt graph?)", path=name)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probes += 1
        if arena_fits(data, mid):
            hi = mid
        else:
            lo = mid
    rec = {"sha256": digest, "arena_bytes": int(hi), "arena_bytes_aligned": int(-(-hi // 16) * 16),
           "probes": probes, "tflite_micro": ver, "host_build": "64-bit", "cached": False}
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path, "w") as f:
                json.dump(rec, f)
        except (OSError, WaveNetEdgeError):
            pass
    return rec
