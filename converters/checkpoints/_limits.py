"""Bounded reads of zip members (torch archives and .npz): no zip bombs, no short reads."""

from __future__ import annotations

import zipfile
import zlib

from wavenet_edge.errors import CheckpointError

# a single tensor of a WaveNet checkpoint is far below this
MAX_MEMBER_BYTES = 4 << 30
# weights barely compress; a member this much larger than its compressed form is a bomb
_MAX_RATIO = 200
_RATIO_FLOOR = 16 << 20


def check_zip_member(info: zipfile.ZipInfo, *, path, limit: int = MAX_MEMBER_BYTES) -> None:
    """Refuse a member whose declared size is absurd or whose compression ratio is a bomb's."""
    if info.file_size > limit:
        raise CheckpointError(f"zip member {info.filename} declares {info.file_size} bytes "
                              f"(limit {limit})", path=path)
    if (info.compress_type != zipfile.ZIP_STORED and info.file_size > _RATIO_FLOOR
            and info.file_size > _MAX_RATIO * max(info.compress_size, 1)):
        raise CheckpointError(f"zip member {info.filename} expands {info.file_size} bytes from "
                              f"{info.compress_size} (a zip bomb?)", path=path)


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, path,
                limit: int = MAX_MEMBER_BYTES) -> bytes:
    """All bytes of ``info``; never more than its declared size, CRC checked by zipfile."""
    check_zip_member(info, path=path, limit=max(limit, 0))
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as e:
        raise CheckpointError(f"corrupt zip member {info.filename} ({e})", path=path) from None
    if len(data) != info.file_size:
        raise CheckpointError(f"zip member {info.filename} is truncated "
                              f"({len(data)} of {info.file_size} bytes)", path=path)
    return data


def open_zip(path, fileobj=None) -> zipfile.ZipFile:
    """Open ``path`` as a zip archive or raise :class:`CheckpointError`."""
    try:
        return zipfile.ZipFile(fileobj if fileobj is not None else path)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, OverflowError) as e:
        raise CheckpointError(f"corrupt or truncated zip archive ({e})", path=path) from None
