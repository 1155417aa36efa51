"""Helpers every engine kernel module uses: the inlining decorator, borrowed array views,
unsigned copies and ring slots."""

from __future__ import annotations

import numpy as np
from numba import types as _nt
from numba.core import cgutils as _cg
from numba.extending import intrinsic as _intrinsic

from ._jit import jit

__all__ = ["inline_kernel", "borrow", "borrow_all", "copy_bytes",
           "copy_streams", "ring_slot"]

# Per-op helpers are inlined at the numba IR level: a numba call with array arguments costs
# tens of nanoseconds (argument marshalling and reference counting), as much as a small FC.
inline_kernel = jit(inline="always")


def _borrowed(context, builder, ty, value):
    src = context.make_array(ty)(context, builder, value)
    dst = context.make_array(ty)(context, builder)
    for name in ("data", "nitems", "itemsize", "shape", "strides"):
        setattr(dst, name, getattr(src, name))
    dst.meminfo = _cg.get_null_value(dst.meminfo.type)
    dst.parent = _cg.get_null_value(dst.parent.type)
    return dst._getvalue()


@_intrinsic
def borrow(typingctx, arr):
    """The same array without its memory-info pointer (a borrowed view, like ``numba.carray``).

    Numba reference-counts every array it copies or passes to an inlined helper; each count
    is an atomic add, which on x86 also drains the store buffer — tens of cycles, and the
    engine's ops write their outputs just before.  Views without a meminfo make those counts
    no-ops.  Only for arrays whose owner outlives the call (the kernel arguments)."""
    def codegen(context, builder, sig, args):
        return _borrowed(context, builder, sig.args[0], args[0])

    return arr(arr), codegen


@_intrinsic
def borrow_all(typingctx, tup):
    """:func:`borrow` applied to every array of a (named) tuple; other members unchanged."""
    def codegen(context, builder, sig, args):
        vals = []
        for i, ty in enumerate(sig.args[0]):
            v = builder.extract_value(args[0], i)
            vals.append(_borrowed(context, builder, ty, v) if isinstance(ty, _nt.Array) else v)
        return context.make_tuple(builder, sig.return_type, vals)

    return tup(tup), codegen


@inline_kernel
def copy_bytes(dst, d0, src, s0, n):
    """``dst[d0:d0+n] = src[s0:s0+n]`` with unsigned indices (vectorized, no wraparound select)."""
    ud = np.uint64(d0)
    us = np.uint64(s0)
    for i in range(np.uint64(n)):
        dst[ud + i] = src[us + i]


@inline_kernel
def copy_streams(dst, d0, dstride, src, s0, sstride, nb, n):
    """:func:`copy_bytes` for each of ``nb`` streams: stream ``b`` copies ``n`` bytes from
    ``src[b·sstride + s0:]`` to ``dst[b·dstride + d0:]``."""
    for b in range(nb):
        copy_bytes(dst, b * dstride + d0, src, b * sstride + s0, n)


@inline_kernel
def ring_slot(s, length):
    """``s mod length`` for ``s >= 0``: a mask when the length is a power of two (every ring of
    a kernel-size-2 WaveNet), else an unsigned division (no sign fix-up)."""
    us = np.uint64(s)
    ul = np.uint64(length)
    if ul & (ul - np.uint64(1)) == 0:
        return np.int64(us & (ul - np.uint64(1)))
    return np.int64(us % ul)
