"""torch zip reader: a byte-level writer of torch.save archives (no torch here), dtype/stride
coverage, whole pickled models, trainer dicts, and the refusal of everything unsafe.

The writer emits the same pickle opcodes and zip layout as ``torch.save`` (protocol 2,
``<archive>/data.pkl``, ``<archive>/data/<key>``, ``<archive>/byteorder``); the real-torch files of
``tests/data/peers`` are read in ``test_checkpoints_peers.py``.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import pytest

from converters.checkpoints import read_tensors
from converters.checkpoints.torch_zip import LEGACY_MAGIC
from wavenet_edge.errors import CheckpointError

# -- a minimal torch.save writer (pickle opcodes by hand) ---------------------------------------
_STORAGE = {np.dtype("<f4"): "FloatStorage", np.dtype("<f8"): "DoubleStorage",
            np.dtype("<f2"): "HalfStorage", np.dtype("<i8"): "LongStorage",
            np.dtype("<i4"): "IntStorage", np.dtype("u1"): "ByteStorage"}


class Tensor:
    """A tensor to pickle: ``data`` is the whole storage; offset/size/stride in elements."""

    def __init__(self, data, offset=0, size=None, stride=None, storage=None, param=False):
        self.data = np.ascontiguousarray(data).ravel()
        self.offset = offset
        self.size = tuple(np.shape(data)) if size is None else tuple(size)
        if stride is None:
            st, acc = [], 1
            for n in reversed(self.size):
                st.append(acc)
                acc *= n
            stride = tuple(reversed(st))
        self.stride = tuple(stride)
        self.storage = storage or _STORAGE[self.data.dtype]
        self.param = param


class Global:
    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    """``func(*args)`` in the pickle (a REDUCE)."""

    def __init__(self, func: Global, args: tuple):
        self.func, self.args = func, args


class Obj:
    """``cls.__new__(cls)`` then ``BUILD(state)`` (how nn.Modules are pickled)."""

    def __init__(self, cls: Global, state: dict):
        self.cls, self.state = cls, state


class Writer:
    def __init__(self, byteorder="little", legacy=False):
        self.out = bytearray(b"\x80\x02")
        self.storages = {}
        self.byteorder = byteorder
        self.legacy = legacy
        self.itemsize = {}

    def emit(self, v):
        o = self.out
        if v is None:
            o += b"N"
        elif v is True:
            o += b"\x88"
        elif v is False:
            o += b"\x89"
        elif isinstance(v, int):
            o += b"J" + struct.pack("<i", v) if -2**31 <= v < 2**31 else \
                b"\x8a\x08" + v.to_bytes(8, "little", signed=True)
        elif isinstance(v, float):
            o += b"G" + struct.pack(">d", v)
        elif isinstance(v, str):
            b = v.encode()
            o += b"X" + struct.pack("<I", len(b)) + b
        elif isinstance(v, tuple):
            o += b"("
            for x in v:
                self.emit(x)
            o += b"t"
        elif isinstance(v, list):
            o += b"]("
            for x in v:
                self.emit(x)
            o += b"e"
        elif isinstance(v, dict):
            o += b"}("
            for k, x in v.items():
                self.emit(k)
                self.emit(x)
            o += b"u"
        elif isinstance(v, Global):
            o += f"c{v.module}\n{v.name}\n".encode()
        elif isinstance(v, Call):
            self.emit(v.func)
            self.emit(tuple(v.args))
            o += b"R"
        elif isinstance(v, Obj):
            self.emit(v.cls)
            o += b")\x81"
            self.emit(v.state)
            o += b"b"
        elif isinstance(v, Tensor):
            key = str(len(self.storages))
            dt = v.data.dtype.newbyteorder(">" if self.byteorder == "big" else "<")
            self.storages[key] = v.data.astype(dt).tobytes()
            self.itemsize[key] = dt.itemsize
            if v.param:
                o += b"ctorch._utils\n_rebuild_parameter\n("
            o += b"ctorch._utils\n_rebuild_tensor_v2\n("
            o += b"("
            self.emit("storage")
            self.emit(Global("torch", v.storage))
            self.emit(key)
            self.emit("cpu")
            self.emit(int(v.data.size))
            if self.legacy:
                self.emit(getattr(v, "view", None))
            o += b"tQ"
            self.emit(v.offset)
            self.emit(v.size)
            self.emit(v.stride)
            self.emit(False)
            self.emit(Call(Global("collections", "OrderedDict"), ()))
            o += b"tR"
            if v.param:
                self.emit(True)
                self.emit(Call(Global("collections", "OrderedDict"), ()))
                o += b"tR"
        else:
            raise TypeError(type(v))


def torch_zip(obj=None, *, pickle_bytes=None, archive="archive", byteorder="little",
              compress=False, storages=None, with_byteorder=True) -> bytes:
    """Bytes of a torch.save-style archive holding ``obj`` (or raw ``pickle_bytes``)."""
    w = Writer(byteorder)
    if pickle_bytes is None:
        w.emit(obj)
        w.out += b"."
        pickle_bytes = bytes(w.out)
    buf = io.BytesIO()
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", mode) as z:
        z.writestr(f"{archive}/data.pkl", pickle_bytes)
        if with_byteorder:
            z.writestr(f"{archive}/byteorder", byteorder)
        for k, b in (storages if storages is not None else w.storages).items():
            z.writestr(f"{archive}/data/{k}", b)
        z.writestr(f"{archive}/version", "3\n")
    return buf.getvalue()


def legacy_stream(obj, *, keys=None, counts=None, sys_info=None) -> bytes:
    """Bytes of a legacy (torch < 1.6) ``torch.save`` stream holding ``obj``."""
    head = pickle.dumps(LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps(sys_info if sys_info is not None else
                         {"protocol_version": 1001, "little_endian": True,
                          "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    w = Writer(legacy=True)
    w.emit(obj)
    w.out += b"."
    keys = list(w.storages) if keys is None else keys
    body = bytes(w.out) + pickle.dumps(keys, protocol=2)
    for i, k in enumerate(keys):
        raw = w.storages.get(k, b"")
        n = len(raw) // w.itemsize[k] if counts is None else counts[i]
        body += int(n).to_bytes(8, "little", signed=True) + raw
    return head + body


def state_dict_obj(arrays: dict) -> Call:
    """An OrderedDict state dict of float tensors, pickled the way torch does."""
    return Call(Global("collections", "OrderedDict"),
                ([(k, Tensor(np.asarray(v))) for k, v in arrays.items()],))


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


# -- reading ----------------------------------------------------------------------------------
def test_dtypes_strides_offsets_and_byteorder(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 6))
    base32 = a.astype("<f4")
    objs = {
        "f64": Tensor(a),
        "f32_T": Tensor(base32, size=(6, 4), stride=(1, 6)),           # a transposed view
        "f16_view": Tensor(a.astype("<f2"), offset=8, size=(2, 3), stride=(6, 1)),
        "i64_step": Tensor(np.arange(10, dtype="<i8"), size=(4,), stride=(3,)),
        "empty": Tensor(np.zeros((0, 3), "<f4")),
        "scalar": Tensor(np.array(2.5, "<f4")),
    }
    bf = (base32.view("<u4") >> 16).astype("<u2")                   # bfloat16 bit patterns
    objs["bf16"] = Tensor(bf, storage="BFloat16Storage")
    for order in ("little", "big"):
        path = write(tmp_path, f"d_{order}.pt", torch_zip(objs, byteorder=order))
        t = read_tensors(path).tensors
        assert np.array_equal(t["f64"], a)
        assert np.array_equal(t["f32_T"], base32.T)
        assert np.array_equal(t["f16_view"], a.astype("<f2")[1:3, 2:5])
        assert np.array_equal(t["i64_step"], np.arange(10)[::3])
        assert t["empty"].shape == (0, 3) and t["scalar"].shape == ()
        assert np.array_equal(t["bf16"], (bf.astype(np.uint32) << 16).view(np.float32))
        assert t["bf16"].dtype == np.float32 and t["f16_view"].dtype == np.float16


def test_state_dict_trainer_dict_dataparallel_and_archive_name(tmp_path):
    w = {"a.weight": np.ones((2, 3), "<f4"), "a.bias": np.zeros(2, "<f4")}
    p = write(tmp_path, "sd.pt", torch_zip(state_dict_obj(w), archive="my_model"))
    r = read_tensors(p)
    assert r.format == "torch zip: state_dict" and set(r.tensors) == set(w)
    trainer = {"state_dict": state_dict_obj({"module." + k: v for k, v in w.items()}),
               "optimizer": {"state": {0: {"step": Tensor(np.array(3.0, "<f4")),
                                           "exp_avg": Tensor(np.ones((2, 3), "<f4"))}},
                             "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999),
                                               "amsgrad": False, "params": [0, 1]}]},
               "global_step": 1000, "global_epoch": 3}
    p = write(tmp_path, "trainer.pth", torch_zip(trainer))
    r = read_tensors(p)
    assert set(r.tensors) == set(w)                 # 'module.' stripped, optimizer ignored
    assert any("module." in n for n in r.notes) and any("optimizer" in n for n in r.notes)


def test_whole_model_placeholders_never_import(tmp_path):
    conv = Obj(Global("torch.nn.modules.conv", "Conv1d"), {
        "training": False,
        "_parameters": Call(Global("collections", "OrderedDict"),
                            ([("weight", Tensor(np.ones((2, 3, 1), "<f4"), param=True)),
                              ("bias", None)],)),
        "_buffers": {}, "_non_persistent_buffers_set": Call(Global("__builtin__", "set"), ([],)),
        "_modules": {}, "in_channels": 3})
    model = Obj(Global("no_such_pkg_c1.model", "Net"), {
        "_parameters": {}, "_buffers": {"running": Tensor(np.zeros(3, "<f4"))},
        "_modules": {"convs": Obj(Global("torch.nn.modules.container", "ModuleList"),
                                  {"_parameters": {}, "_buffers": {},
                                   "_modules": {"0": conv}})},
        "layers": 4, "dilations": [(1, 1), (2, 1)], "dtype": Global("torch", "FloatTensor"),
        "device": Call(Global("torch", "device"), ("cpu",))})
    p = write(tmp_path, "whole.pt", torch_zip(model))
    before = set(sys.modules)
    r = read_tensors(p)
    assert set(r.tensors) == {"convs.0.weight", "running"}
    assert r.attrs["layers"] == 4 and r.attrs["dilations"] == [(1, 1), (2, 1)]
    assert "no_such_pkg_c1" not in sys.modules and "torch" not in sys.modules
    assert not {m for m in set(sys.modules) - before if m.startswith(("torch", "no_such"))}


# -- refusals ---------------------------------------------------------------------------------
class _Payload:
    """Unpickling this with the stock pickle would run ``func(arg)``."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def _marker_cmd(marker):
    return f"touch {marker}"


@pytest.mark.parametrize("func_name", ["os.system", "posix.system", "subprocess.call",
                                       "builtins.eval", "builtins.exec"])
def test_reduce_payload_refused_and_not_run(tmp_path, func_name):
    marker = tmp_path / "PWNED"
    mod, name = func_name.split(".")
    if mod == "posix" and os.name != "posix":
        pytest.skip("posix only")
    func = getattr(__import__(mod), name)
    arg = (_marker_cmd(marker) if mod != "builtins"
           else f"open({str(marker)!r}, 'w').close()")
    if mod == "subprocess":
        arg = ["touch", str(marker)]
    evil = pickle.dumps({"w": _Payload(func, arg)}, protocol=2)
    p = write(tmp_path, "evil.pt", torch_zip(pickle_bytes=evil))
    with pytest.raises(CheckpointError) as e:
        read_tensors(p)
    msg = str(e.value)
    assert p in msg and "refusing" in msg and name in msg
    assert "\n" not in msg
    assert not marker.exists()


def test_getattr_gadget_and_inst_opcode_refused(tmp_path):
    marker = tmp_path / "PWNED2"
    # builtins.getattr(os-module-ish, 'system') — a classic gadget chain
    gadget = (b"\x80\x02c__builtin__\ngetattr\n(cos\npath\nX\x06\x00\x00\x00existstR.")
    p = write(tmp_path, "g.pt", torch_zip(pickle_bytes=gadget))
    with pytest.raises(CheckpointError, match=r"refusing unsafe global builtins\.getattr"):
        read_tensors(p)
    inst = f"(S'touch {marker}'\nios\nsystem\n.".encode()       # protocol 0 INST
    p = write(tmp_path, "inst.pt", torch_zip(pickle_bytes=inst))
    with pytest.raises(CheckpointError, match=r"os\.system"):
        read_tensors(p)
    assert not marker.exists()


def test_calling_an_unknown_class_is_refused(tmp_path):
    # an unknown global may only be instantiated inertly (NEWOBJ); a REDUCE call is code
    obj = Call(Global("innocent_looking.module", "run"), ("rm -rf /",))
    p = write(tmp_path, "call.pt", torch_zip({"x": obj}))
    with pytest.raises(CheckpointError, match=r"refusing to call innocent_looking\.module\.run"):
        read_tensors(p)
    # and torch internals other than the tensor rebuilders are never stubbed
    obj = Call(Global("torch", "load"), ("/etc/passwd",))
    p = write(tmp_path, "tl.pt", torch_zip({"x": obj}))
    with pytest.raises(CheckpointError, match=r"torch\.load"):
        read_tensors(p)


def test_legacy_stream_read_and_checked(tmp_path):
    a = np.arange(12, dtype="<f4").reshape(3, 4)
    p = write(tmp_path, "old.pt", legacy_stream(state_dict_obj({"w": a, "b": a[0] * 2})))
    r = read_tensors(p)
    assert r.format == "legacy torch (< 1.6): state_dict"
    assert np.array_equal(r.tensors["w"], a) and np.array_equal(r.tensors["b"], a[0] * 2)
    # torch 0.3 rebuilt tensors with the 4-argument _rebuild_tensor
    from converters.checkpoints.torch_zip import StorageRef, _RestrictedUnpickler
    up = _RestrictedUnpickler(io.BytesIO(b"\x80\x02N."), None, allow_objects=False)
    ref = up._rebuild_tensor(StorageRef("0", "<f4", 12), 0, (3, 4), (4, 1))
    assert ref.shape == (3, 4)
    # short storage data, truncated file, wrong element count, bad magic
    good = legacy_stream({"w": Tensor(a)})
    with pytest.raises(CheckpointError, match="truncated"):
        read_tensors(write(tmp_path, "t.pt", good[:-5]))
    with pytest.raises(CheckpointError, match="holds 11 elements, expected 12"):
        read_tensors(write(tmp_path, "c.pt", legacy_stream({"w": Tensor(a)}, counts=[11])))
    with pytest.raises(CheckpointError, match="big-endian"):
        read_tensors(write(tmp_path, "be.pt", legacy_stream({"w": Tensor(a)},
                                                             sys_info={"little_endian": False})))
    # a payload inside the legacy header or main pickle is refused like in the zip format
    marker = tmp_path / "PWNED3"
    evil = pickle.dumps(_Payload(os.system, f"touch {marker}"), protocol=2)
    stream = good[:good.index(b"\x80\x02", 4)] + evil        # magic, then the payload
    with pytest.raises(CheckpointError, match="refusing unsafe global posix.system|os.system"):
        read_tensors(write(tmp_path, "e.pt", stream))
    assert not marker.exists()


def test_raw_pickle_and_torchscript_refused(tmp_path):
    p = write(tmp_path, "raw.pkl", pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="raw pickle"):
        read_tensors(p)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/constants.pkl", b"\x80\x02).")
        z.writestr("m/code/m.py", "def forward(self): pass")
    p = write(tmp_path, "script.pt", buf.getvalue())
    with pytest.raises(CheckpointError, match="TorchScript"):
        read_tensors(p)


def test_storage_bounds_and_missing_entries(tmp_path):
    # a view reaching past its storage
    t = Tensor(np.zeros(4, "<f4"), size=(3,), stride=(2,))
    p = write(tmp_path, "oob.pt", torch_zip({"w": t}))
    with pytest.raises(CheckpointError, match="exceeds its storage"):
        read_tensors(p)
    # a storage entry shorter than its declared element count
    w = Writer()
    w.emit({"w": Tensor(np.zeros(8, "<f4"))})
    w.out += b"."
    p = write(tmp_path, "short.pt", torch_zip(pickle_bytes=bytes(w.out),
                                              storages={"0": b"\0" * 12}))
    with pytest.raises(CheckpointError, match="holds 12 bytes"):
        read_tensors(p)
    p = write(tmp_path, "missing.pt", torch_zip(pickle_bytes=bytes(w.out), storages={}))
    with pytest.raises(CheckpointError, match="missing from the archive"):
        read_tensors(p)
    # unknown storage type / malformed persistent id
    p = write(tmp_path, "st.pt", torch_zip({"w": Tensor(np.zeros(2, "<f4"),
                                                        storage="ComplexFloatStorage")}))
    with pytest.raises(CheckpointError):
        read_tensors(p)


def test_zip_bomb_refused_quickly(tmp_path):
    # 64 MiB of zeros deflates to ~64 KiB: a storage claiming that many bytes is refused
    n = 16 << 20
    w = Writer()
    w.emit({"w": Tensor(np.zeros(1, "<f4"))})
    w.out = w.out.replace(b"J\x01\x00\x00\x00", b"J" + struct.pack("<i", n), 1)
    w.out += b"."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", bytes(w.out))
        z.writestr("archive/data/0", b"\0" * (4 * n))
    p = write(tmp_path, "bomb.pt", buf.getvalue())
    assert os.path.getsize(p) < 1 << 20
    with pytest.raises(CheckpointError, match="zip bomb"):
        read_tensors(p)


def test_not_a_state_dict(tmp_path):
    p = write(tmp_path, "list.pt", torch_zip([1, 2, 3]))
    with pytest.raises(CheckpointError, match="not a state_dict"):
        read_tensors(p)
    p = write(tmp_path, "meta.pt", torch_zip({"epoch": 3, "lr": 0.1}))
    with pytest.raises(CheckpointError, match="state_dict"):
        read_tensors(p)
    p = write(tmp_path, "empty.pt", b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_tensors(p)
    with pytest.raises(CheckpointError, match="no such file"):
        read_tensors(tmp_path / "nope.pt")


def test_pickle_cannot_tamper_with_built_tensors(tmp_path):
    # BUILD (setstate) on a tensor we built would bypass its checks: refused
    w = Writer()
    w.out += b"}(X\x01\x00\x00\x00w"
    w.emit(Tensor(np.zeros(4, "<f4")))
    w.out += b"N}(X\x04\x00\x00\x00size(J\x00\xca\x9a;tX\x06\x00\x00\x00stride(J\x00\x00\x00\x00tu\x86bu."
    p = write(tmp_path, "tamper.pt", torch_zip(pickle_bytes=bytes(w.out), storages=w.storages))
    with pytest.raises(CheckpointError, match="modify a tensor"):
        read_tensors(p)
    # a stride-0 view expanding 4 elements to 10^9 (a memory bomb) is refused
    t = Tensor(np.zeros(4, "<f4"), size=(10 ** 9,), stride=(0,))
    p = write(tmp_path, "expand.pt", torch_zip({"w": t}))
    with pytest.raises(CheckpointError, match="tensor view of 1000000000 elements"):
        read_tensors(p)
    # a legitimate small expand() view is read
    t = Tensor(np.arange(3, dtype="<f4"), size=(4, 3), stride=(0, 1))
    r = read_tensors(write(tmp_path, "ok.pt", torch_zip({"w": t})))
    assert np.array_equal(r.tensors["w"], np.tile(np.arange(3, dtype=np.float32), (4, 1)))


def test_torch03_parameter_pickling(tmp_path):
    # torch 0.3: REDUCE(torch.nn.parameter.Parameter, (tensor,)) + BUILD((requires_grad,
    # volatile, hooks)) and the 4-argument torch._utils._rebuild_tensor
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    w = Writer(legacy=True)
    w.out += b"}(X\x01\x00\x00\x00w"
    w.out += b"ctorch.nn.parameter\nParameter\n("
    w.out += b"ctorch._utils\n_rebuild_tensor\n(("
    w.emit("storage")
    w.emit(Global("torch", "FloatStorage"))
    w.emit("0")
    w.emit("cuda:0")
    w.emit(6)
    w.emit(None)
    w.out += b"tQ"
    w.emit(0)
    w.emit((2, 3))
    w.emit((3, 1))
    w.out += b"tRtR"
    w.emit((True, False, Call(Global("collections", "OrderedDict"), ())))
    w.out += b"bu."
    w.storages["0"] = a.tobytes()
    w.itemsize["0"] = 4
    head = pickle.dumps(LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"little_endian": True}, protocol=2)
    body = bytes(w.out) + pickle.dumps(["0"], protocol=2) + (6).to_bytes(8, "little") + a.tobytes()
    r = read_tensors(write(tmp_path, "t03.pt", head + body))
    assert np.array_equal(r.tensors["w"], a)
