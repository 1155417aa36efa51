""".npz archives read member by member, without pickle and with validated sizes.

Used for our own checkpoints (``FloatWaveNet.save``) and for tensorflow-wavenet variables dumped
to ``.npz`` (one array per TF variable name, ``/`` kept in the member names).  Each ``.npy``
header is parsed first and its shape × item size checked against the member's size before a
single data byte is read: a lying header cannot make us allocate more than the file holds.
"""

from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np

from wavenet_edge.errors import CheckpointError

from ._limits import open_zip, read_member

__all__ = ["read_npz"]


def _parse_npy(name: str, raw: bytes, path) -> np.ndarray:
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, SyntaxError, TypeError, KeyError, OverflowError,
            UnicodeDecodeError, MemoryError) as e:
        raise CheckpointError(f".npz member {name} has a corrupt .npy header "
                              f"({str(e)[:60]})", path=path) from None
    if dtype.hasobject:
        raise CheckpointError(f".npz member {name} holds pickled objects (refused)", path=path)
    count = 1
    for n in shape:
        count *= int(n)
    body = len(raw) - f.tell()
    if count * dtype.itemsize != body:
        raise CheckpointError(f".npz member {name}: header says {shape} {dtype} "
                              f"({count * dtype.itemsize} bytes) but holds {body}", path=path)
    a = np.frombuffer(raw, dtype=dtype, count=count, offset=f.tell())
    order = "F" if fortran else "C"
    a = a.reshape(shape, order=order)
    return np.array(a, dtype=dtype.newbyteorder("="), order="C")


def read_npz(path) -> dict:
    """name → array of every ``.npy`` member of the ``.npz`` at ``path``."""
    zf = open_zip(path)
    out = {}
    with zf:
        try:
            infos = zf.infolist()
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError) as e:
            raise CheckpointError(f"corrupt .npz ({e})", path=path) from None
        for info in infos:
            if info.is_dir():
                continue
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f".npz member {info.filename} is not a .npy array",
                                      path=path)
            name = info.filename[:-4]
            if name in out:
                raise CheckpointError(f".npz holds {name} twice", path=path)
            out[name] = _parse_npy(name, read_member(zf, info, path=path), path)
    return out
