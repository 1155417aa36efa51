"""One interface over the real interpreters that serve as bit-exactness oracles.

``make_runner(model, runtime)`` with ``runtime`` one of :data:`RUNTIMES` (the profile names of
:mod:`wavenet_edge.profiles`; ``model`` a path, bytes or parsed model):

* ``"tflm"``: tflite-micro's Python interpreter (the reference kernels that run on the MCU); the
  tensor arena is ``arena_size`` bytes, or, when not given, the smallest arena that allocates
  (:func:`find_arena_size`, a bisection run in forked children because TFLM can crash the process
  on a far-too-small arena).
* ``"litert"``: ai-edge-litert with ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`` (the
  builtin optimized kernels, no XNNPACK).
* ``"litert-ref"``: ``OpResolverType.BUILTIN_REF`` (the reference kernels).
* ``"xnnpack"``: the default resolver, i.e. with the XNNPACK delegate applied (alias
  ``"litert-default"``).
* ``"litert-arm64"`` / ``"xnnpack-arm64"``: the aarch64 wheel (builtin kernels / default
  resolver) under user-mode qemu, see :mod:`converters.litert_arm64`.

All runners share the API of :class:`Runner`: tensors are addressed by their names in the model,
mapped once to the interpreter's own input/output positions, so a step costs one set per input,
one invoke and one copy per output read; ``bind_input``/``bind_output`` return the raw wrapper calls
for per-step loops.

Measured here (2 cores shared with other jobs, so ±30 %): one step of a chain of 20 int8
FULLY_CONNECTED 64x64 layers costs about 85-110 µs in ``tflm``, 25-35 µs in ``litert``, 16-28 µs in
``litert-ref`` and 2-4 µs in ``xnnpack``; the wrapper adds 0.3-2.5 µs per set or get.
Bit-exactness vs TFLM on single int8 operators (``tests/test_tflite_file.py``): LiteRT builtin and
reference kernels agree except FULLY_CONNECTED (±1 LSB on rare near-ties: TFLM rounds twice, the
LiteRT reference kernel once, the optimized kernel differently again); XNNPACK also differs by
±1 LSB on MUL.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import hashlib
import os

import numpy as np

from wavenet_edge.errors import ModelFileError, WaveNetEdgeError
from wavenet_edge.profiles import resolve_profile
from wavenet_edge.tflite_file import load_model

__all__ = ["RUNTIMES", "EMULATED_RUNTIMES", "Runner", "make_runner", "find_arena_size"]

#: the runtimes this module can run, named by the engine profile each one defines
RUNTIMES = ("tflm", "litert", "litert-ref", "xnnpack")
#: the aarch64 wheel under qemu (:mod:`converters.litert_arm64`): a child process per runner,
#: seconds to start, so loops over :data:`RUNTIMES` leave them out
EMULATED_RUNTIMES = ("litert-arm64", "xnnpack-arm64")

_ARENA_CACHE: dict = {}


def _litert():
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise WaveNetEdgeError(f"LiteRT runtimes need the ai-edge-litert package "
                               f"(pip install ai-edge-litert): {e}") from None
    return Interpreter, OpResolverType


def _tflm():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise WaveNetEdgeError(f"runtime 'tflm' needs the tflite-micro package "
                               f"(pip install tflite-micro): {e}") from None
    return runtime


@contextlib.contextmanager
def _captured_fds():
    """Capture C-level stdout/stderr (TFLM's MicroPrintf); yields a list filled with the text."""
    import tempfile

    text: list = []
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield text
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            text.append(tmp.read().decode("utf-8", "replace"))


def _tflm_allocates(model_bytes: bytes, arena_size: int) -> bool:
    """Whether TFLM allocates the model in ``arena_size`` bytes (tried in a forked child)."""
    runtime = _tflm()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 1
        try:
            faulthandler.disable()  # the crash on a tiny arena is expected here, keep it quiet
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            runtime.Interpreter.from_bytes(model_bytes, arena_size=int(arena_size))
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def find_arena_size(model_bytes: bytes, *, granularity: int = 16) -> int:
    """Smallest TFLM tensor-arena size (bytes, a multiple of ``granularity``) allocating the model.

    Bisection between 0 and a generous bound; each probe runs in a forked child so that a crash
    on a tiny arena cannot take the caller down. Cached per model content.
    """
    key = (hashlib.sha1(model_bytes).hexdigest(), granularity)
    if key in _ARENA_CACHE:
        return _ARENA_CACHE[key]
    if not hasattr(os, "fork"):  # pragma: no cover - non-POSIX
        raise WaveNetEdgeError("finding the TFLM arena size needs os.fork; pass arena_size")
    hi = max(64 * 1024, 2 * len(model_bytes))
    if not _tflm_allocates(model_bytes, hi):
        hi = max(hi * 16, 16 * len(model_bytes))
        if not _tflm_allocates(model_bytes, hi):
            return hi  # not an arena problem: let the caller's load report TFLM's own error
    lo = 0  # invariant: lo fails (or is 0), hi allocates
    while hi - lo > granularity:
        mid = (lo + hi) // 2 // granularity * granularity
        if mid <= lo:
            break
        if _tflm_allocates(model_bytes, mid):
            hi = mid
        else:
            lo = mid
    _ARENA_CACHE[key] = hi
    return hi


class Runner:
    """A loaded interpreter. ``input_names``/``output_names`` are in the model's graph order.

    ``set_input(name, array)`` casts to the tensor's dtype/shape if needed; ``get_output(name)``
    returns a fresh copy (int8/int32 as stored, shapes as in the model).
    """

    runtime: str
    input_names: tuple
    output_names: tuple
    arena_size: int | None = None

    def __init__(self, runtime, model, in_specs, out_names):
        self.runtime = runtime
        self.input_names = tuple(n for n, _, _, _ in in_specs)
        self.output_names = tuple(out_names)
        self._in = {n: (i, shape, dtype) for n, i, shape, dtype in in_specs}
        self._out = {n: i for i, n in enumerate(out_names)}
        self.model = model

    def input_spec(self, name):
        """(shape, dtype) of input ``name``."""
        _, shape, dtype = self._lookup_in(name)
        return shape, dtype

    def _lookup_in(self, name):
        try:
            return self._in[name]
        except KeyError:
            raise WaveNetEdgeError(f"{self.runtime}: the model has no input {name!r}") from None

    def _lookup_out(self, name):
        try:
            return self._out[name]
        except KeyError:
            raise WaveNetEdgeError(f"{self.runtime}: the model has no output {name!r}") from None

    @staticmethod
    def _coerce(array, shape, dtype):
        a = np.asarray(array)
        if a.dtype != dtype:
            a = a.astype(dtype)
        if a.shape != shape:
            a = a.reshape(shape)
        return a

    def set_input(self, name, array):
        raise NotImplementedError

    def bind_input(self, name):
        """A callable ``f(array)`` setting input ``name`` with no checks: the array must already
        have the input's exact dtype and shape (the per-step fast path of hosts)."""
        raise NotImplementedError

    def bind_output(self, name):
        """A callable ``f() -> array`` returning a copy of output ``name``."""
        raise NotImplementedError

    def invoke(self):
        raise NotImplementedError

    def get_output(self, name) -> np.ndarray:
        raise NotImplementedError

    def reset(self):
        raise NotImplementedError


class _LiteRTRunner(Runner):
    def __init__(self, model_bytes, runtime, model):
        Interpreter, OpResolverType = _litert()
        kw = {}
        if runtime == "litert":
            kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        elif runtime == "litert-ref":
            kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_REF
        # Keep the exact object handed to the interpreter alive as long as it runs (both wrappers
        # read the flatbuffer in place).
        self._model_bytes = model_bytes = bytes(model_bytes)
        try:
            it = Interpreter(model_content=model_bytes, num_threads=1, **kw)
            it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f"{runtime} cannot load the model: {str(e).splitlines()[0]}",
                                 path=model.name) from None
        ins = [(d["name"], int(d["index"]), tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]))
               for d in it.get_input_details()]
        outs = it.get_output_details()
        super().__init__(runtime, model, ins, [d["name"] for d in outs])
        self._out_idx = {d["name"]: int(d["index"]) for d in outs}
        self._it = it
        # The wrapper's public methods only forward to these (plus a views-held check that does
        # not apply: no numpy view of interpreter memory is ever kept here).
        raw = it._interpreter
        self._set = raw.SetTensor
        self._get = raw.GetTensor
        self.invoke = raw.Invoke

    def set_input(self, name, array):
        idx, shape, dtype = self._lookup_in(name)
        self._set(idx, self._coerce(array, shape, dtype))

    def bind_input(self, name):
        return functools.partial(self._set, self._lookup_in(name)[0])

    def get_output(self, name):
        self._lookup_out(name)
        return self._get(self._out_idx[name], 0)  # GetTensor copies

    def bind_output(self, name):
        self._lookup_out(name)
        return functools.partial(self._get, self._out_idx[name], 0)

    def reset(self):
        self._it.reset_all_variables()


class _TFLMRunner(Runner):
    def __init__(self, model_bytes, model, arena_size):
        runtime = _tflm()
        if arena_size is None:
            arena_size = find_arena_size(model_bytes)
        arena_size = int(arena_size)
        self._model_bytes = model_bytes = bytes(model_bytes)
        try:
            with _captured_fds() as printed:
                it = runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_size)
        except (ValueError, RuntimeError) as e:
            said = [ln.strip() for ln in "".join(printed).splitlines() if ln.strip()]
            detail = "; ".join(said[:2]) or str(e).splitlines()[0]
            raise ModelFileError(f"tflm cannot load the model with a {arena_size} byte arena: "
                                 f"{detail}", path=model.name) from None
        names = [model.tensors[i].name for i in model.inputs]
        ins = []
        for k, name in enumerate(names):
            d = it.get_input_details(k)
            ins.append((name, k, tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"])))
        super().__init__("tflm", model, ins, [model.tensors[i].name for i in model.outputs])
        self.arena_size = arena_size
        self._it = it
        self._set = it._interpreter.SetInputTensor
        self._get = it._interpreter.GetOutputTensor
        self.invoke = it._interpreter.Invoke

    def set_input(self, name, array):
        idx, shape, dtype = self._lookup_in(name)
        self._set(self._coerce(array, shape, dtype), idx)

    def bind_input(self, name):
        idx = self._lookup_in(name)[0]
        setter = self._set
        return lambda array: setter(array, idx)

    def get_output(self, name):
        return self._get(self._lookup_out(name))  # the wrapper returns a new array

    def bind_output(self, name):
        return functools.partial(self._get, self._lookup_out(name))

    def reset(self):
        self._it.reset()


def make_runner(model, runtime: str = "tflm", *, arena_size: int | None = None,
                name: str | None = None) -> Runner:
    """Load ``model`` (a ``.tflite`` path, its bytes or a parsed model) into ``runtime``.

    Raises ModelFileError if the file is malformed or the runtime refuses it, UnknownProfileError
    if ``runtime`` is not one of :data:`RUNTIMES`, WaveNetEdgeError if the runtime's package is
    missing.
    """
    runtime = resolve_profile(runtime, known=RUNTIMES + EMULATED_RUNTIMES)
    model = load_model(model, name=name)
    if runtime == "tflm":
        return _TFLMRunner(model.data, model, arena_size)
    if runtime.endswith("-arm64"):  # the aarch64 wheel under qemu (converters.litert_arm64)
        from .litert_arm64 import Arm64Runner
        return Arm64Runner(model.data, runtime, model)
    return _LiteRTRunner(model.data, runtime, model)
