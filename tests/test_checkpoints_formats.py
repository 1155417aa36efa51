"""safetensors and .npz readers (against the reference ``safetensors`` package and numpy), and
fuzzing: truncated or bit-flipped checkpoints of every container raise CheckpointError only."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converters.checkpoints import load_checkpoint, read_tensors
from converters.checkpoints.npz_io import read_npz
from converters.checkpoints.safetensors_io import read_safetensors, write_safetensors
from test_checkpoints_layouts import _model, to_pytorch_wavenet, to_tensorflow_wavenet
from test_checkpoints_torchzip import legacy_stream, state_dict_obj, torch_zip
from wavenet_edge.errors import CheckpointError

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"a/f64": rng.normal(size=(3, 4)), "b.f32": rng.normal(size=(5,)).astype(np.float32),
            "c_f16": rng.normal(size=(2, 2, 2)).astype(np.float16),
            "d_i64": np.arange(7, dtype=np.int64), "e_u8": np.arange(3, dtype=np.uint8),
            "scalar": np.array(1.5, np.float32), "empty": np.zeros((0, 4), np.float32)}


# -- safetensors ------------------------------------------------------------------------------
def test_safetensors_reads_reference_writer(tmp_path):
    arrays = _arrays()
    p = str(tmp_path / "ref.safetensors")
    safetensors_numpy.save_file(arrays, p, metadata={"k": "v"})
    got, meta = read_safetensors(p)
    assert meta == {"k": "v"} and set(got) == set(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and np.array_equal(got[k], a)


def test_safetensors_writer_read_by_reference(tmp_path):
    arrays = _arrays(1)
    p = str(tmp_path / "ours.safetensors")
    write_safetensors(p, arrays, metadata={"x": "1"})
    ref = safetensors_numpy.load_file(p)
    for k, a in arrays.items():
        # (safetensors.numpy 0.8 hands 0-d tensors back as shape (1,))
        assert np.array_equal(ref[k].reshape(a.shape), a) and ref[k].dtype == a.dtype
    got, meta = read_safetensors(p)
    assert meta == {"x": "1"} and all(np.array_equal(got[k], arrays[k]) for k in arrays)


def test_safetensors_bfloat16(tmp_path):
    # bf16 written by hand: the top 16 bits of float32 values that bf16 represents exactly
    vals = np.array([1.0, -2.5, 0.15625, 3.0e38], np.float32)
    bits = (vals.view(np.uint32) >> 16).astype("<u2")
    header = json.dumps({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}).encode()
    p = tmp_path / "bf.safetensors"
    p.write_bytes(len(header).to_bytes(8, "little") + header + bits.tobytes())
    got, _ = read_safetensors(str(p))
    assert got["w"].dtype == np.float32
    assert np.array_equal(got["w"], (bits.astype(np.uint32) << 16).view(np.float32))


@pytest.mark.parametrize("header,msg", [
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, "do not hold"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, "do not hold"),
    ({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, "unsupported dtype"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "bad shape"),
    ({"w": {"dtype": "F32", "shape": [1]}}, "malformed"),
    ({"__metadata__": {"a": 1}}, "__metadata__"),
    ([1, 2], "not a JSON object"),
])
def test_safetensors_bad_headers(tmp_path, header, msg):
    h = json.dumps(header).encode()
    p = tmp_path / "bad.safetensors"
    p.write_bytes(len(h).to_bytes(8, "little") + h + b"\0" * 16)
    with pytest.raises(CheckpointError, match=msg):
        read_safetensors(str(p))


# -- npz --------------------------------------------------------------------------------------
def test_npz_round_trip_and_fortran(tmp_path):
    arrays = _arrays(2)
    arrays["fortran"] = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    p = str(tmp_path / "a.npz")
    np.savez_compressed(p, **arrays)
    got = read_npz(p)
    assert set(got) == set(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and np.array_equal(got[k], a)


def test_npz_refuses_objects_and_lying_headers(tmp_path):
    p = str(tmp_path / "obj.npz")
    np.savez(p, o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="pickled objects"):
        read_npz(p)
    # a header claiming 10^12 elements over 8 bytes of data: refused before any allocation
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10 ** 12,)})
    raw = b"\x93NUMPY\x01\x00" if not buf.getvalue().startswith(b"\x93NUMPY") else b""
    raw += buf.getvalue() + b"\0" * 8
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w") as z:
        z.writestr("w.npy", raw)
    q = tmp_path / "lie.npz"
    q.write_bytes(zb.getvalue())
    with pytest.raises(CheckpointError, match="holds 8"):
        read_npz(str(q))
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("w.npy", b"\0" * (64 << 20))
    q.write_bytes(zb.getvalue())
    with pytest.raises(CheckpointError, match="zip bomb"):
        read_npz(str(q))
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w") as z:
        z.writestr("notes.txt", "hello")
    q.write_bytes(zb.getvalue())
    with pytest.raises(CheckpointError, match="neither a torch.save file nor an .npz"):
        read_tensors(str(q))


# -- fuzzing ----------------------------------------------------------------------------------
def _valid_files():
    m = _model(dilations=(1, 2, 4), residual_channels=3, dilation_channels=3, skip_channels=4,
               end_channels=4)
    files = {}
    files["torch"] = (torch_zip(state_dict_obj(to_pytorch_wavenet(m))), {"layers": 3})
    files["torch_legacy"] = (legacy_stream(state_dict_obj(to_pytorch_wavenet(m))),
                             {"layers": 3})
    b = io.BytesIO()
    np.savez(b, **to_tensorflow_wavenet(m))
    files["npz_tf"] = (b.getvalue(), {"dilations": [1, 2, 4]})
    return m, files


_M, _FILES = _valid_files()


def _ours_bytes(tmp_path_factory):
    d = tmp_path_factory.mktemp("fz")
    _M.save(str(d / "o.npz"))
    from converters.checkpoints import save_safetensors
    save_safetensors(_M, str(d / "o.safetensors"))
    return {"ours_npz": ((d / "o.npz").read_bytes(), None),
            "ours_st": ((d / "o.safetensors").read_bytes(), None)}


@pytest.fixture(scope="module")
def all_files(tmp_path_factory):
    f = dict(_FILES)
    f.update(_ours_bytes(tmp_path_factory))
    return f


def _try(tmp_path, data, cfg, name):
    p = tmp_path / name
    p.write_bytes(data)
    try:
        load_checkpoint(str(p), config=cfg)
    except CheckpointError as e:
        assert "\n" not in str(e) and str(p) in str(e)


@pytest.mark.parametrize("kind", ["torch", "torch_legacy", "npz_tf", "ours_npz", "ours_st"])
def test_valid_fuzz_seeds_load(all_files, tmp_path, kind):
    data, cfg = all_files[kind]
    p = tmp_path / "ok.bin"
    p.write_bytes(data)
    m = load_checkpoint(str(p), config=cfg)
    assert m.config.n_layers == 3


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["torch", "torch_legacy", "npz_tf", "ours_npz", "ours_st"]),
       cut=st.floats(0, 1, exclude_max=True),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                      min_size=0, max_size=4))
def test_fuzz_truncated_or_flipped_raise_checkpoint_error_only(all_files, tmp_path_factory,
                                                              kind, cut, flips):
    data, cfg = all_files[kind]
    tmp = tmp_path_factory.mktemp("f")
    if not flips:
        _try(tmp, data[: int(cut * len(data))], cfg, "trunc.bin")
        return
    b = bytearray(data)
    for pos, bit in flips:
        b[int(pos * len(b))] ^= 1 << bit
    _try(tmp, bytes(b), cfg, "flip.bin")


# -- TensorFlow checkpoint bundles ------------------------------------------------------------
_TF_FX = Path(__file__).parent / "data" / "peers" / "tensorflow-wavenet" / "k3_nobias"


@pytest.mark.skipif(not (_TF_FX / "model.ckpt-1.index").exists(), reason="no ibab fixture")
@settings(max_examples=40, deadline=None)
@given(which=st.sampled_from(["index", "data"]), cut=st.floats(0, 1, exclude_max=True),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                      min_size=0, max_size=3))
def test_fuzz_tf_bundle(tmp_path_factory, which, cut, flips):
    d = tmp_path_factory.mktemp("tfb")
    files = {"index": "model.ckpt-1.index", "data": "model.ckpt-1.data-00000-of-00001"}
    for f in files.values():
        shutil.copy(_TF_FX / f, d / f)
    target = d / files[which]
    b = bytearray(target.read_bytes())
    if flips:
        for pos, bit in flips:
            b[int(pos * len(b))] ^= 1 << bit
    else:
        b = b[: int(cut * len(b))]
    target.write_bytes(bytes(b))
    cfg = str(_TF_FX / "config.json")
    try:
        m = load_checkpoint(str(d / "model.ckpt-1"), config=cfg)
    except CheckpointError as e:
        assert "\n" not in str(e)
    else:
        # checksums guard every byte that matters: whatever loads is the original model
        ref = load_checkpoint(str(_TF_FX / "variables.npz"), config=cfg)
        assert all(np.array_equal(m.weights[k], ref.weights[k]) for k in ref.weights)
