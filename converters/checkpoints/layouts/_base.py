"""What every layout mapper shares: the tensor getter, the inferred/assumed bookkeeping.

A layout mapper receives a :class:`Context` (the flat tensor dict of one checkpoint, the pickled
model's attributes if any, the user's overrides) and returns a :class:`WaveNetConfig` plus the
canonical weight dict of :mod:`wavenet_edge.float_model`.  It records every hyper-parameter it
read from a tensor shape (``inferred``) and every one it had to take from the layout's documented
default or from the user's config (``assumed``); the report of :func:`inspect_checkpoint` is
built from those records.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wavenet_edge.config import WaveNetConfig
from wavenet_edge.errors import CheckpointError, ConfigError

INFERABLE = ("kernel_size", "residual_channels", "dilation_channels", "skip_channels",
             "end_channels", "quantization_channels", "initial_filter_width", "use_biases",
             "gc_cardinality", "gc_channels")
FIELDS = tuple(f.name for f in dataclasses.fields(WaveNetConfig))


class Context:
    """One checkpoint being mapped.

    tensors : name → array-like with ``.shape`` and ``numpy()`` (lazy) or an ndarray
    attrs : attributes of a pickled whole-model object (``{}`` for plain state dicts)
    overrides : WaveNetConfig field → value given by the user (config), validated later
    options : layout-specific options (``layout_options`` in a config JSON)
    native : the user's config keys in the peer's own vocabulary (e.g. ``layers``, ``blocks``)
    """

    def __init__(self, path, tensors: dict, *, attrs=None, overrides=None, options=None,
                 native=None):
        self.path = path
        self.tensors = tensors
        self.attrs = attrs or {}
        self.overrides = dict(overrides or {})
        self.options = dict(options or {})
        self.native = dict(native or {})
        self.used: set = set()
        self.inferred: dict = {}
        self.assumed: dict = {}
        self.notes: list = []

    # -- errors -------------------------------------------------------------------------------
    def fail(self, msg: str):
        raise CheckpointError(msg, path=self.path)

    # -- tensors ------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.tensors

    def shape(self, name: str) -> tuple:
        if name not in self.tensors:
            self.fail(f"missing tensor {name}")
        return tuple(int(v) for v in self.tensors[name].shape)

    def get(self, name: str, shape=None) -> np.ndarray:
        """Tensor ``name`` as float64, shape-checked (``None`` entries match anything), finite."""
        if name not in self.tensors:
            self.fail(f"missing tensor {name}")
        t = self.tensors[name]
        if shape is not None:
            s = tuple(int(v) for v in t.shape)
            if len(s) != len(shape) or any(e is not None and e != v for e, v in zip(shape, s)):
                want = "(" + ", ".join("?" if e is None else str(e) for e in shape) + ")"
                self.fail(f"tensor {name} has shape {s}, expected {want}")
        a = t.numpy() if hasattr(t, "numpy") and not isinstance(t, np.ndarray) else t
        a = np.asarray(a)
        if a.dtype.kind not in "fiu":
            self.fail(f"tensor {name} has non-numeric dtype {a.dtype}")
        with np.errstate(invalid="ignore", over="ignore"):
            a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            self.fail(f"tensor {name} contains NaN or Inf")
        self.used.add(name)
        return a

    def ignore(self, name: str) -> None:
        """Mark ``name`` as understood but not needed (e.g. a constant buffer)."""
        self.used.add(name)

    def check_all_used(self) -> None:
        extra = sorted(set(self.tensors) - self.used)
        if extra:
            self.fail(f"unexpected tensor(s) for this layout: {', '.join(extra[:6])}"
                      + (" …" if len(extra) > 6 else ""))

    # -- hyper-parameters ---------------------------------------------------------------------
    def infer(self, field: str, value, how: str):
        """Record a value read from the checkpoint; a conflicting override is an error."""
        if field in self.overrides and self.overrides[field] != value:
            self.fail(f"config says {field}={self.overrides[field]!r} but the checkpoint has "
                      f"{field}={value!r} ({how})")
        self.inferred[field] = {"value": value, "from": how}
        return value

    def assume(self, field: str, default, why: str, *, native_value=None, native_how=None):
        """A value the weights cannot tell: user config first, then the layout's default."""
        if field in self.overrides:
            v = self.overrides[field]
            self.assumed[field] = {"value": v, "from": "config"}
            return v
        if native_value is not None:
            self.assumed[field] = {"value": native_value, "from": native_how}
            return native_value
        if default is None:
            self.fail(why)
        self.assumed[field] = {"value": default, "from": why}
        return default

    def build_config(self, values: dict) -> WaveNetConfig:
        """WaveNetConfig from mapped values plus any remaining user overrides."""
        d = dict(values)
        for k, v in self.overrides.items():
            if k not in d:
                d[k] = v
                self.assumed.setdefault(k, {"value": v, "from": "config"})
        try:
            return WaveNetConfig(**d)
        except (ConfigError, TypeError) as e:
            self.fail(f"inconsistent hyper-parameters ({e})")


def conv_1x1(ctx: Context, name: str, n_in=None, n_out=None) -> np.ndarray:
    """torch Conv1d weight (out, in, 1) → x @ W matrix (in, out)."""
    w = ctx.get(name, (n_out, n_in, 1))
    return np.ascontiguousarray(w[:, :, 0].T)


def bias_or_zeros(ctx: Context, name: str, n: int) -> tuple:
    """(bias (n,), present?)"""
    if ctx.has(name):
        return ctx.get(name, (n,)), True
    return np.zeros(n), False


def dilation_pattern(per_block: int, blocks: int) -> tuple:
    """``(1, 2, …, 2**(per_block-1)) × blocks``."""
    return tuple(2 ** i for i in range(per_block)) * blocks


def layer_indices(keys, prefix: str, suffix_must: str | None = None) -> list:
    """Sorted distinct integers ``i`` of keys ``prefix{i}.…``; gaps are an error upstream."""
    out = set()
    for k in keys:
        if k.startswith(prefix):
            rest = k[len(prefix):]
            head = rest.split(".", 1)[0].split("/", 1)[0]
            if head.isdigit():
                out.add(int(head))
    return sorted(out)


def contiguous_count(ctx: Context, idx: list, what: str) -> int:
    if not idx:
        ctx.fail(f"no {what} found")
    if idx != list(range(len(idx))):
        missing = sorted(set(range(max(idx) + 1)) - set(idx))
        ctx.fail(f"{what} are not numbered 0…{max(idx)} (missing {missing[:5]})")
    return len(idx)
