"""PyTorch ``torch.save`` files read without torch, safely: zip format (torch ≥ 1.6) and the
legacy stream (torch < 1.6, :func:`read_torch_legacy`).

A torch checkpoint is a zip archive ``<name>/data.pkl`` (a protocol-2 pickle) plus one entry
``<name>/data/<key>`` of raw bytes per storage and an optional ``<name>/byteorder`` ("little" when
absent).  Unpickling arbitrary data executes arbitrary code, so :class:`_RestrictedUnpickler`
resolves globals from a short allow-list of *our own* stand-ins and never imports anything:

* ``torch._utils._rebuild_tensor_v2/_v3``, ``_rebuild_parameter(_with_state)`` → :class:`TensorRef`
  (lazy: the bytes are read, bounds-checked and copied only when :meth:`TensorRef.numpy` is called);
* ``torch.<Dtype>Storage`` / ``torch.UntypedStorage`` → the storage dtype (``persistent_load``
  maps ``('storage', type, key, location, numel)`` to a :class:`StorageRef`);
* ``torch.Size`` → ``tuple``; ``torch.float32`` & co. → an inert dtype tag; ``torch.device`` → a
  string; ``torch.FloatTensor`` & co. → inert tags; ``collections.OrderedDict``, ``set``,
  ``frozenset`` → the real (harmless) builtins.

Whole pickled models (``torch.save(model)``) reference their own classes (``wavenet_model.
WaveNetModel``, ``torch.nn.modules.conv.Conv1d`` …).  Such globals become inert
:class:`Placeholder` subclasses: ``NEWOBJ`` makes an empty instance, ``BUILD`` only stores the
state dict, and *calling* one (a ``REDUCE``, the way pickle payloads run code) is refused.
Globals from modules that only ever appear in exploits (``os``, ``posix``, ``subprocess``,
``builtins`` …) are refused outright.  Nothing from the file is ever executed.

Refusals and corruption raise :class:`~wavenet_edge.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import zipfile

import numpy as np

from wavenet_edge.errors import CheckpointError

from ._limits import check_zip_member, read_member

__all__ = ["TensorRef", "StorageRef", "Placeholder", "read_torch_zip", "read_torch_legacy",
           "is_legacy_torch", "LEGACY_MAGIC"]

# torch's legacy (pre-1.6) serialization starts with this pickled long
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PREFIX = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")

_MAX_PICKLE_BYTES = 256 << 20

# storage class name → numpy dtype (bfloat16 is read as uint16 and widened on demand)
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2",
    "BFloat16Storage": "bf16", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
    "UntypedStorage": "u1",
}
_DTYPE_NAMES = {
    "float64": "<f8", "double": "<f8", "float32": "<f4", "float": "<f4", "float16": "<f2",
    "half": "<f2", "bfloat16": "bf16", "int64": "<i8", "long": "<i8", "int32": "<i4",
    "int": "<i4", "int16": "<i2", "short": "<i2", "int8": "i1", "uint8": "u1", "bool": "?",
}
_TENSOR_TYPES = {"FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor",
                 "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor"}

# module roots whose globals are only ever in a pickle to run code: refuse, never stub
_DENIED_ROOTS = {
    "builtins", "__builtin__", "os", "posix", "nt", "subprocess", "sys", "shutil", "socket",
    "importlib", "imp", "runpy", "code", "codeop", "pickle", "_pickle", "marshal", "types",
    "ctypes", "cffi", "functools", "operator", "itertools", "copyreg", "copy_reg", "_codecs",
    "codecs", "io", "_io", "pty", "signal", "multiprocessing", "threading", "_thread",
    "webbrowser", "tempfile", "pathlib", "glob", "asyncio", "http", "urllib", "urllib2",
    "requests", "ftplib", "smtplib", "telnetlib", "platform", "inspect", "gc", "weakref",
    "numpy", "pydoc", "timeit", "trace", "pdb", "bdb", "cProfile", "profile", "sqlite3",
    "dill", "cloudpickle", "joblib", "yaml", "zipimport", "pkgutil", "site", "sysconfig",
    "distutils", "setuptools", "pip", "ensurepip", "venv", "xmlrpc", "logging", "tkinter",
    "_posixsubprocess", "posixpath", "ntpath", "genericpath", "fcntl", "resource", "mmap",
    "select", "selectors", "ssl", "base64", "binascii", "zlib", "lzma", "bz2", "gzip",
    "zipfile", "tarfile", "shelve", "dbm", "eval", "exec", "string", "re", "ast",
    "contextlib", "abc", "collections", "torch", "tensorflow", "jax", "IPython",
}
# torch sub-packages whose classes legitimately appear in pickled models (stubbed, inert)
_STUB_TORCH_PREFIXES = ("torch.nn.modules.", "torch.nn.parameter", "torch.nn.utils.")


class StorageRef:
    """One storage: its key (zip entry ``data/<key>`` or legacy record), element dtype, element
    count, and for a legacy storage *view* the element offset into its root storage."""

    __slots__ = ("key", "dtype", "numel", "base")

    def __init__(self, key: str, dtype: str, numel: int, base: int = 0):
        self.key, self.dtype, self.numel, self.base = key, dtype, numel, base

    def __setstate__(self, state):
        # a BUILD opcode on our own objects would bypass the checks made when they were built
        raise _Refused("pickle tries to modify a storage reference")


class TensorRef:
    """A tensor not yet read: storage, element offset, size, stride (elements)."""

    __slots__ = ("storage", "offset", "size", "stride", "_reader")

    def __init__(self, storage, offset, size, stride, reader):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self._reader = reader

    @property
    def shape(self) -> tuple:
        return tuple(self.size)

    @property
    def dtype(self) -> str:
        return "bfloat16" if self.storage.dtype == "bf16" else str(np.dtype(self.storage.dtype))

    def numpy(self) -> np.ndarray:
        """The tensor as a fresh C-contiguous array (bfloat16 widened to float32)."""
        return self._reader(self)

    def __setstate__(self, state):
        # torch 0.3 pickled a Parameter as REDUCE(Parameter, (data,)) then BUILD with the
        # Variable state (requires_grad, volatile, backward_hooks): accepted and ignored
        if (isinstance(state, tuple) and len(state) == 3 and isinstance(state[0], bool)
                and isinstance(state[1], bool) and (state[2] is None or isinstance(state[2], dict))):
            return
        raise _Refused("pickle tries to modify a tensor after building it")


class _DtypeTag:
    """Inert stand-in for ``torch.float32`` & co. and tensor type classes."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"

    def __setstate__(self, state):
        raise _Refused(f"pickle tries to modify torch.{self.name}")

    def __reduce__(self):  # pragma: no cover - never re-pickled
        raise TypeError("inert tag")


class Placeholder:
    """Inert stand-in for a class of a pickled model; never runs the real class's code."""

    _global = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        # reached only by REDUCE (calling the global); NEWOBJ uses __new__ alone
        raise _Refused(f"refusing to call {self._global} (a pickled function call)")

    def __setstate__(self, state):
        object.__setattr__(self, "_pickled_state", state)

    @property
    def state(self):
        return getattr(self, "_pickled_state", None)

    def __repr__(self):
        return f"<placeholder {self._global}>"


class _Refused(Exception):
    pass


def _device(*args):
    return "device:" + ":".join(str(a) for a in args)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream, reader, *, allow_objects: bool, legacy: bool = False):
        super().__init__(stream)
        self._reader = reader
        self._allow_objects = allow_objects
        self._legacy = legacy
        self.storages: dict = {}
        self._placeholders: dict = {}
        self.globals_seen: list = []

    # -- globals ------------------------------------------------------------------------------
    def find_class(self, module, name):
        # protocol-2 pickles spell Python 3 names the Python 2 way (__builtin__, commands.*):
        # map them first so that the checks below see the real target
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        self.globals_seen.append(f"{module}.{name}")
        full = f"{module}.{name}"
        if module == "torch._utils":
            fn = {"_rebuild_tensor": self._rebuild_tensor,
                  "_rebuild_tensor_v2": self._rebuild_tensor_v2,
                  "_rebuild_tensor_v3": self._rebuild_tensor_v3,
                  "_rebuild_parameter": self._rebuild_parameter,
                  "_rebuild_parameter_with_state": self._rebuild_parameter_with_state,
                  }.get(name)
            if fn is not None:
                return fn
        elif module in ("torch", "torch.cuda"):
            if name in _STORAGE_DTYPES:
                return _DtypeTag(name)
            if name == "Size":
                return tuple
            if name in _DTYPE_NAMES or name in _TENSOR_TYPES:
                return _DtypeTag(name)
            if name == "device":
                return _device
        elif module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        elif module in ("builtins", "__builtin__") and name in ("set", "frozenset"):
            return set if name == "set" else frozenset
        elif module == "torch.nn.parameter" and name == "Parameter":
            return self._rebuild_parameter      # torch 0.3 pickled Parameter(data, grad)
        root = module.split(".")[0]
        stub_ok = (module.startswith(_STUB_TORCH_PREFIXES)
                   or (root not in _DENIED_ROOTS and not root.startswith("_")))
        if self._allow_objects and stub_ok and name.isidentifier() and "." not in name:
            return self._placeholder(full)
        raise _Refused(f"refusing unsafe global {full}")

    def _placeholder(self, full):
        cls = self._placeholders.get(full)
        if cls is None:
            cls = type("Placeholder", (Placeholder,), {"_global": full, "__slots__": ()})
            self._placeholders[full] = cls
        return cls

    # -- storages -----------------------------------------------------------------------------
    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise _Refused(f"unsupported persistent id {str(pid)[:60]}")
        kind = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if self._legacy and kind == "module" and len(pid) == 4:
            # legacy files record each module class with its source; the class is a stub
            return pid[1]
        n = 6 if self._legacy else 5
        if (kind != "storage" or len(pid) != n or not isinstance(pid[1], _DtypeTag)
                or not isinstance(pid[2], (str, bytes))
                or not isinstance(pid[4], int) or pid[4] < 0):
            raise _Refused(f"unsupported persistent id {str(pid)[:60]}")
        tag = pid[1].name
        if tag not in _STORAGE_DTYPES:
            raise _Refused(f"unsupported storage type torch.{tag}")
        key = pid[2].decode("ascii", "replace") if isinstance(pid[2], bytes) else pid[2]
        dt = _STORAGE_DTYPES[tag]
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = StorageRef(key, dt, pid[4])
        elif root.dtype != dt or root.numel != pid[4]:
            raise _Refused(f"storage {key} declared twice differently")
        view = pid[5] if self._legacy else None
        if view is None:
            return root
        if (not isinstance(view, tuple) or len(view) != 3
                or not all(isinstance(v, int) and v >= 0 for v in view[1:])
                or view[1] + view[2] > root.numel):
            raise _Refused(f"malformed storage view of {key}")
        return StorageRef(key, dt, view[2], base=view[1])

    # -- tensor rebuilders (ours) -------------------------------------------------------------
    def _tensor(self, storage, offset, size, stride, dtype=None):
        if not isinstance(storage, StorageRef):
            raise _Refused("tensor without a storage")
        ok = (isinstance(offset, int) and offset >= 0
              and isinstance(size, tuple) and isinstance(stride, tuple)
              and len(size) == len(stride)
              and all(isinstance(v, int) and v >= 0 for v in size + stride))
        if not ok:
            raise _Refused("malformed tensor size/stride/offset")
        count = 1
        for n in size:
            count *= n
        # stride-0 views (expand) may repeat elements, but not without bound
        if count > 16 * storage.numel + 65536:
            raise _Refused(f"tensor view of {count} elements over a storage of "
                           f"{storage.numel}")
        if dtype is not None and storage.dtype == "u1":   # v3: untyped storage, dtype given
            if not isinstance(dtype, _DtypeTag) or dtype.name not in _DTYPE_NAMES:
                raise _Refused("malformed tensor dtype")
            dt = _DTYPE_NAMES[dtype.name]
            item = 2 if dt == "bf16" else np.dtype(dt).itemsize
            storage = StorageRef(storage.key, dt, storage.numel // item)
        return TensorRef(storage, offset, size, stride, self._reader)

    def _rebuild_tensor(self, storage, offset, size, stride):
        return self._tensor(storage, offset, size, stride)

    def _rebuild_tensor_v2(self, storage, offset, size, stride, requires_grad=False,
                           backward_hooks=None, metadata=None):
        return self._tensor(storage, offset, size, stride)

    def _rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, backward_hooks,
                           dtype, metadata=None):
        return self._tensor(storage, offset, size, stride, dtype)

    @staticmethod
    def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
        if not isinstance(data, TensorRef):
            raise _Refused("parameter without tensor data")
        return data

    @staticmethod
    def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
        if not isinstance(data, TensorRef):
            raise _Refused("parameter without tensor data")
        return data


def is_legacy_torch(head: bytes) -> bool:
    """True when ``head`` (first bytes of a file) starts like a legacy torch.save file."""
    return head.startswith(_LEGACY_PREFIX)


def _tensor_reader(get_raw, byteorder: str, path):
    """``TensorRef -> ndarray`` given ``get_raw(StorageRef) -> bytes`` of its root storage."""

    def read(t: TensorRef) -> np.ndarray:
        st = t.storage
        dt = st.dtype
        base_dt = np.dtype("<u2" if dt == "bf16" else dt)
        if byteorder == "big":
            base_dt = base_dt.newbyteorder(">")
        raw = get_raw(st)
        if len(raw) < (st.base + st.numel) * base_dt.itemsize:
            raise CheckpointError(f"storage {st.key} holds {len(raw)} bytes, expected "
                                  f"{(st.base + st.numel) * base_dt.itemsize}", path=path)
        flat = np.frombuffer(raw, dtype=base_dt, count=st.numel,
                             offset=st.base * base_dt.itemsize)
        size, stride = t.size, t.stride
        if any(n == 0 for n in size):
            out = np.zeros(size, dtype=base_dt)
        else:
            last = t.offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= st.numel:
                raise CheckpointError(f"tensor view exceeds its storage {st.key} "
                                      f"(needs element {last}, storage has {st.numel})",
                                      path=path)
            out = np.lib.stride_tricks.as_strided(
                flat[t.offset:], shape=size, strides=[s * base_dt.itemsize for s in stride],
                writeable=False)
        out = np.array(out, dtype=base_dt.newbyteorder("="), order="C")
        if dt == "bf16":
            out = (out.astype(np.uint32) << 16).view(np.float32)
        return out

    return read


def _zip_raw(zf: zipfile.ZipFile, prefix: str, path):
    cache: dict = {}

    def get(st: StorageRef) -> bytes:
        name = f"{prefix}data/{st.key}"
        if name not in cache:
            try:
                info = zf.getinfo(name)
            except KeyError:
                raise CheckpointError(f"storage entry {name} missing from the archive",
                                      path=path) from None
            item = 2 if st.dtype == "bf16" else np.dtype(st.dtype).itemsize
            need = (st.base + st.numel) * item
            if info.file_size < need:
                raise CheckpointError(f"storage {name} holds {info.file_size} bytes, "
                                      f"expected {need}", path=path)
            cache[name] = read_member(zf, info, path=path, limit=info.file_size)
        return cache[name]

    return get


def _unpickle(up: "_RestrictedUnpickler", path, what="data.pkl"):
    try:
        return up.load()
    except _Refused as e:
        raise CheckpointError(str(e), path=path) from None
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError("pickle nests too deeply", path=path) from None
    except MemoryError:
        raise CheckpointError("pickle too large to unpickle", path=path) from None
    except Exception as e:  # corrupt pickle streams raise many types
        raise CheckpointError(f"corrupt pickle {what} ({type(e).__name__}: {str(e)[:80]})",
                              path=path) from None


def read_torch_zip(path, zf: zipfile.ZipFile, *, allow_objects: bool = True):
    """Unpickle ``data.pkl`` of an open torch zip archive with the restricted unpickler.

    Returns ``(obj, globals_seen)``: the unpickled object graph in which every tensor is a
    :class:`TensorRef` and every pickled class instance a :class:`Placeholder`.
    """
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if not pkl:
        if any(n.endswith("constants.pkl") for n in names) or any("/code/" in n for n in names):
            raise CheckpointError("TorchScript archive (torch.jit.save); save the model's "
                                  "state_dict with torch.save instead", path=path)
        raise CheckpointError("zip archive without data.pkl: not a torch.save file", path=path)
    if len(pkl) > 1:
        raise CheckpointError("zip archive with several data.pkl records", path=path)
    prefix = pkl[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        bo = read_member(zf, zf.getinfo(prefix + "byteorder"), path=path, limit=16)
        byteorder = bo.decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"unknown byteorder {byteorder!r}", path=path)
    info = zf.getinfo(pkl[0])
    check_zip_member(info, path=path, limit=_MAX_PICKLE_BYTES)
    data = read_member(zf, info, path=path, limit=_MAX_PICKLE_BYTES)
    up = _RestrictedUnpickler(io.BytesIO(data), _tensor_reader(_zip_raw(zf, prefix, path),
                                                                byteorder, path),
                              allow_objects=allow_objects)
    obj = _unpickle(up, path)
    return obj, up.globals_seen


def read_torch_legacy(path, data: bytes, *, allow_objects: bool = True):
    """Unpickle a legacy (torch < 1.6) ``torch.save`` stream held in ``data``.

    The stream is: pickled magic number, protocol version 1001, sys-info dict, the main pickle
    (storages as persistent ids ``('storage', type, key, location, numel, view)``), the list of
    storage keys, then per key an int64 element count and the raw bytes.  Every pickle goes
    through the same restricted unpickler as the zip format.
    """
    f = io.BytesIO(data)

    def small():
        return _unpickle(_RestrictedUnpickler(f, None, allow_objects=False), path, "header")

    if small() != LEGACY_MAGIC:
        raise CheckpointError("bad legacy torch magic number", path=path)
    version = small()
    if version != 1001:
        raise CheckpointError(f"unsupported legacy torch protocol version {version!r}",
                              path=path)
    info = small()
    if not isinstance(info, dict):
        raise CheckpointError("corrupt legacy torch header", path=path)
    if info.get("little_endian") is False:
        raise CheckpointError("big-endian legacy torch file: not supported", path=path)
    raws: dict = {}

    def get(st: StorageRef) -> bytes:
        return raws[st.key]

    up = _RestrictedUnpickler(f, _tensor_reader(get, "little", path),
                              allow_objects=allow_objects, legacy=True)
    obj = _unpickle(up, path)
    keys = small()
    if not isinstance(keys, list) or not all(isinstance(k, (str, bytes)) for k in keys):
        raise CheckpointError("corrupt legacy storage key list", path=path)
    pos = f.tell()
    for k in keys:
        k = k.decode("ascii", "replace") if isinstance(k, bytes) else k
        st = up.storages.get(k)
        if st is None:
            raise CheckpointError(f"legacy storage {k} listed but never used", path=path)
        if pos + 8 > len(data):
            raise CheckpointError("legacy torch file is truncated (storage header)", path=path)
        n = int.from_bytes(data[pos:pos + 8], "little", signed=True)
        pos += 8
        item = 2 if st.dtype == "bf16" else np.dtype(st.dtype).itemsize
        if n != st.numel:
            raise CheckpointError(f"legacy storage {k} holds {n} elements, expected "
                                  f"{st.numel}", path=path)
        if pos + n * item > len(data):
            raise CheckpointError("legacy torch file is truncated (storage data)", path=path)
        raws[k] = data[pos:pos + n * item]
        pos += n * item
    missing = sorted(set(up.storages) - set(raws))
    if missing:
        raise CheckpointError(f"legacy storages without data: {', '.join(missing[:3])}",
                              path=path)
    return obj, up.globals_seen
