"""safetensors files read and written with numpy alone (the package is not needed at runtime).

Layout: 8 bytes little-endian ``N``, an ``N``-byte UTF-8 JSON header ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the byte buffer; offsets are
relative to the buffer start, little-endian, C order.  Every header field is validated before any
byte is interpreted: offsets inside the buffer, ``end - begin`` = element count × item size.
"""

from __future__ import annotations

import json
import os

import numpy as np

from wavenet_edge.errors import CheckpointError

__all__ = ["read_safetensors", "write_safetensors", "looks_like_safetensors"]

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "bf16", "I64": "<i8",
           "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
           "U16": "<u2", "U32": "<u4", "U64": "<u8"}
_NP_TO_ST = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64",
             "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
_MAX_HEADER = 100 << 20


def looks_like_safetensors(head: bytes) -> bool:
    """True when the first bytes are a plausible safetensors header length + ``{``."""
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= _MAX_HEADER and head[8:9] == b"{"


def read_safetensors(path):
    """``(tensors, metadata)``: name → array (bfloat16 widened to float32), str → str."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError("truncated safetensors file (no header length)", path=path)
            n = int.from_bytes(head, "little")
            if n > min(_MAX_HEADER, size - 8):
                raise CheckpointError(f"safetensors header length {n} exceeds the file",
                                      path=path)
            header_bytes = f.read(n)
            buf = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read ({e.strerror})", path=path) from None
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"safetensors header is not valid JSON ({type(e).__name__})",
                              path=path) from None
    if not isinstance(header, dict):
        raise CheckpointError("safetensors header is not a JSON object", path=path)
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise CheckpointError("safetensors __metadata__ must map strings to strings", path=path)
    out = {}
    for name, spec in header.items():
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"safetensors entry {name!r} is malformed", path=path)
        dt, shape, offs = spec["dtype"], spec["shape"], spec["data_offsets"]
        if dt not in _DTYPES:
            raise CheckpointError(f"safetensors entry {name!r} has unsupported dtype {dt!r}",
                                  path=path)
        if (not isinstance(shape, list) or not all(type(v) is int and v >= 0 for v in shape)
                or not isinstance(offs, list) or len(offs) != 2
                or not all(type(v) is int and v >= 0 for v in offs)):
            raise CheckpointError(f"safetensors entry {name!r} has a bad shape or offsets",
                                  path=path)
        b, e = offs
        item = 2 if dt == "BF16" else np.dtype(_DTYPES[dt]).itemsize
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if e < b or e > len(buf) or e - b != count * item:
            raise CheckpointError(f"safetensors entry {name!r}: offsets {offs} do not hold "
                                  f"{count} × {item} bytes within a {len(buf)}-byte buffer",
                                  path=path)
        raw = np.frombuffer(buf, dtype="<u2" if dt == "BF16" else _DTYPES[dt], count=count,
                            offset=b)
        arr = raw.reshape(shape).astype(raw.dtype.newbyteorder("="))
        if dt == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr
    return out, dict(meta)


def write_safetensors(path, tensors: dict, *, metadata: dict | None = None) -> None:
    """Write ``tensors`` (name → array) atomically as a safetensors file (C order, LE)."""
    from wavenet_edge._fileio import atomic_write
    header, chunks, pos = {}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        a = np.ascontiguousarray(a).reshape(a.shape)      # (ascontiguousarray makes 0-d 1-d)
        key = _NP_TO_ST.get(a.dtype.name)
        if key is None:
            raise CheckpointError(f"cannot store dtype {a.dtype} of {name!r} in safetensors",
                                  path=path)
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": key, "shape": list(a.shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)     # the reference writer pads the header to 8 bytes
    with atomic_write(path) as f:
        f.write(len(hb).to_bytes(8, "little"))
        f.write(hb)
        for c in chunks:
            f.write(c)
