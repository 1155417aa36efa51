"""TensorFlow V2 checkpoints (``tf.train.Saver`` / ``tf.train.Checkpoint`` bundles) read without TF.

A bundle is ``<prefix>.index`` plus ``<prefix>.data-NNNNN-of-MMMMM`` shards.  The index is a
LevelDB-format table (blocks of prefix-compressed key/value entries, a block index, and a 48-byte
footer ending in the magic ``0xdb4775248b80fb57``); key ``""`` holds a ``BundleHeaderProto``
(num_shards, endianness), every other key names a variable and holds a ``BundleEntryProto``
(dtype, shape, shard_id, offset, size).  The data shards hold the raw tensor bytes.  Both protos
are decoded here from their wire format; block and tensor CRC-32C checksums are verified; only
numeric dtypes are read; sliced (partitioned) variables and compressed blocks are refused.
"""

from __future__ import annotations

import os
import re

import numpy as np

from wavenet_edge._jit import kernel
from wavenet_edge.errors import CheckpointError

__all__ = ["read_tf_bundle", "bundle_prefix", "TABLE_MAGIC"]

TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?",
           14: "bf16", 17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8"}
_MAX_INDEX = 256 << 20


class _Bad(Exception):
    pass


def _crc_table() -> np.ndarray:
    t = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t[i] = c
    return t


_CRC_TABLE = _crc_table()


@kernel
def _crc32c_kernel(data, table):
    crc = np.uint32(0xFFFFFFFF)
    for i in range(data.shape[0]):
        crc = table[(crc ^ np.uint32(data[i])) & np.uint32(0xFF)] ^ (crc >> np.uint32(8))
    return crc ^ np.uint32(0xFFFFFFFF)


def masked_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, masked the way TF/LevelDB store it."""
    crc = int(_crc32c_kernel(np.frombuffer(data, np.uint8), _CRC_TABLE))
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(b: bytes, i: int):
    shift = result = 0
    while True:
        if i >= len(b) or shift > 63:
            raise _Bad("truncated varint")
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, i
        shift += 7


def _proto_fields(b: bytes):
    """Yield (field number, wire type, value) of a protobuf message (bytes for wire type 2)."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            if i + 8 > len(b):
                raise _Bad("truncated fixed64")
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise _Bad("truncated length-delimited field")
            v, i = b[i:i + n], i + n
        elif wt == 5:
            if i + 4 > len(b):
                raise _Bad("truncated fixed32")
            v, i = b[i:i + 4], i + 4
        else:
            raise _Bad(f"unsupported wire type {wt}")
        yield field, wt, v


def _block(data: bytes, offset: int, size: int) -> bytes:
    if offset < 0 or size < 0 or offset + size + 5 > len(data):
        raise _Bad("block handle outside the index file")
    if data[offset + size] != 0:
        raise _Bad("compressed index blocks are not supported")
    stored = int.from_bytes(data[offset + size + 1:offset + size + 5], "little")
    if masked_crc32c(data[offset:offset + size + 1]) != stored:
        raise _Bad("index block checksum mismatch")
    return data[offset:offset + size]


def _block_entries(block: bytes):
    if len(block) < 4:
        raise _Bad("block too short")
    n_restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 - 4 * n_restarts
    if n_restarts < 1 or end < 0:
        raise _Bad("bad restart array")
    i, key = 0, b""
    while i < end:
        shared, i = _varint(block, i)
        non_shared, i = _varint(block, i)
        vlen, i = _varint(block, i)
        if shared > len(key) or i + non_shared + vlen > end:
            raise _Bad("bad block entry")
        key = key[:shared] + block[i:i + non_shared]
        i += non_shared
        yield key, block[i:i + vlen]
        i += vlen


def _read_table(data: bytes):
    if len(data) < _FOOTER or int.from_bytes(data[-8:], "little") != TABLE_MAGIC:
        raise _Bad("not a TensorFlow checkpoint index (bad footer magic)")
    foot = data[-_FOOTER:-8]
    _, i = _varint(foot, 0)             # metaindex handle (unused)
    _, i = _varint(foot, i)
    off, i = _varint(foot, i)
    size, i = _varint(foot, i)
    out = {}
    for _, handle in _block_entries(_block(data, off, size)):
        boff, j = _varint(handle, 0)
        bsize, _ = _varint(handle, j)
        for k, v in _block_entries(_block(data, boff, bsize)):
            out[k] = v
    return out


def _entry(v: bytes):
    e = {"dtype": None, "shape": [], "shard": 0, "offset": 0, "size": 0, "sliced": False,
         "crc": None}
    for f, wt, val in _proto_fields(v):
        if f == 1 and wt == 0:
            e["dtype"] = val
        elif f == 2 and wt == 2:
            for f2, wt2, dim in _proto_fields(val):
                if f2 == 2 and wt2 == 2:
                    size = 0
                    for f3, wt3, s in _proto_fields(dim):
                        if f3 == 1 and wt3 == 0:
                            size = s - (1 << 64) if s >= 1 << 63 else s
                    e["shape"].append(size)
                elif f2 == 3 and wt2 == 0 and val:
                    raise _Bad("tensor of unknown rank")
        elif f == 3 and wt == 0:
            e["shard"] = val
        elif f == 4 and wt == 0:
            e["offset"] = val
        elif f == 5 and wt == 0:
            e["size"] = val
        elif f == 6 and wt == 5:
            e["crc"] = int.from_bytes(val, "little")
        elif f == 7:
            e["sliced"] = True
    return e


def bundle_prefix(path) -> str | None:
    """The bundle prefix for ``path`` (``.index``, ``.data-…`` shard, prefix, or directory with
    a ``checkpoint`` file), or None when ``path`` is none of those."""
    path = os.fspath(path)
    if os.path.isdir(path):
        ck = os.path.join(path, "checkpoint")
        if not os.path.isfile(ck):
            return None
        with open(ck, encoding="utf-8", errors="replace") as f:
            m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', f.read(), re.M)
        if not m:
            return None
        p = m.group(1)
        return p if os.path.isabs(p) else os.path.join(path, p)
    if path.endswith(".index"):
        return path[: -len(".index")]
    m = re.match(r"(.*)\.data-\d{5}-of-\d{5}$", path)
    if m:
        return m.group(1)
    if os.path.isfile(path + ".index"):
        return path
    return None


def read_tf_bundle(prefix, *, path=None) -> dict:
    """name → array for every numeric variable of the bundle at ``prefix``."""
    where = path if path is not None else prefix
    index = prefix + ".index"
    try:
        if os.path.getsize(index) > _MAX_INDEX:
            raise CheckpointError("TensorFlow checkpoint index is implausibly large", path=where)
        with open(index, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"TensorFlow checkpoint index {index} not found", path=where) \
            from None
    except OSError as e:
        raise CheckpointError(f"cannot read {index} ({e.strerror})", path=where) from None
    try:
        table = _read_table(data)
        header = table.pop(b"", None)
        if header is None:
            raise _Bad("no bundle header")
        num_shards, big = 1, False
        for f, wt, v in _proto_fields(header):
            if f == 1 and wt == 0:
                num_shards = v
            elif f == 2 and wt == 0:
                big = v == 1
        entries = {k.decode("utf-8"): _entry(v) for k, v in table.items()}
    except (_Bad, UnicodeDecodeError) as e:
        raise CheckpointError(f"corrupt TensorFlow checkpoint index ({e})", path=where) from None
    if not 1 <= num_shards <= 100000:
        raise CheckpointError(f"TensorFlow checkpoint claims {num_shards} shards", path=where)
    shards = {}
    out = {}
    for name, e in sorted(entries.items()):
        if e["sliced"]:
            raise CheckpointError(f"variable {name} is partitioned (sliced); not supported",
                                  path=where)
        dt = _DTYPES.get(e["dtype"])
        if dt is None:
            continue        # strings, resources, …: never weights
        if any(s < 0 for s in e["shape"]) or e["shard"] >= num_shards:
            raise CheckpointError(f"variable {name} has a bad shape or shard", path=where)
        count = int(np.prod(e["shape"], dtype=object)) if e["shape"] else 1
        item = 2 if dt == "bf16" else np.dtype(dt).itemsize
        if e["size"] != count * item:
            raise CheckpointError(f"variable {name}: {e['size']} bytes for shape {e['shape']}",
                                  path=where)
        sid = e["shard"]
        if sid not in shards:
            shard = f"{prefix}.data-{sid:05d}-of-{num_shards:05d}"
            try:
                with open(shard, "rb") as f:
                    shards[sid] = f.read()
            except OSError as err:
                raise CheckpointError(f"cannot read data shard {os.path.basename(shard)} "
                                      f"({err.strerror})", path=where) from None
        buf = shards[sid]
        if e["offset"] + e["size"] > len(buf):
            raise CheckpointError(f"variable {name} lies beyond the end of its data shard "
                                  "(truncated?)", path=where)
        raw = buf[e["offset"]:e["offset"] + e["size"]]
        if e["crc"] is not None and masked_crc32c(raw) != e["crc"]:
            raise CheckpointError(f"variable {name}: data checksum mismatch (corrupt shard)",
                                  path=where)
        base = np.dtype("<u2" if dt == "bf16" else dt)
        if big:
            base = base.newbyteorder(">")
        a = np.frombuffer(raw, dtype=base, count=count)
        a = a.reshape(e["shape"]).astype(base.newbyteorder("="))
        if dt == "bf16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a
    if not out:
        raise CheckpointError("TensorFlow checkpoint holds no numeric variables", path=where)
    return out
