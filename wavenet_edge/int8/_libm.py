"""The C library's float32 ``expf``/``tanhf``, which LiteRT's float lookup tables are built with.

LiteRT links glibc's libm dynamically, so calling the same functions through ctypes at load time
reproduces its tables bit for bit.  Without a loadable libm we fall back to a correctly rounded
float32 (float64 evaluation, one rounding); glibc's expf/tanhf differ from that by at most one
float32 ulp on rare inputs, which can move a table entry only when it sits on a rounding tie.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

__all__ = ["expf", "tanhf", "HAVE_LIBM"]


def _load():
    name = ctypes.util.find_library("m")
    for candidate in ([name] if name else []) + ["libm.so.6"]:
        try:
            lib = ctypes.CDLL(candidate)
            fe, ft = lib.expf, lib.tanhf
        except (OSError, AttributeError):
            continue
        for f in (fe, ft):
            f.restype = ctypes.c_float
            f.argtypes = [ctypes.c_float]
        return fe, ft
    return None, None


_EXPF, _TANHF = _load()
HAVE_LIBM = _EXPF is not None


def expf(x) -> np.float32:
    """float32 ``expf(x)`` of the platform C library (float32 in, float32 out)."""
    x = np.float32(x)
    if _EXPF is not None:
        return np.float32(_EXPF(float(x)))
    try:
        return np.float32(math.exp(float(x)))
    except OverflowError:
        return np.float32(np.inf)


def tanhf(x) -> np.float32:
    """float32 ``tanhf(x)`` of the platform C library."""
    x = np.float32(x)
    if _TANHF is not None:
        return np.float32(_TANHF(float(x)))
    return np.float32(math.tanh(float(x)))
