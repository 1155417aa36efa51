"""The one place where JIT options live.

Every jitted kernel in wavenet-edge is decorated with :data:`kernel` (or :func:`jit` for extra
numba options such as ``inline="always"``): njit (nopython), cached on disk (first-call compile
time matters to CLI users), no fastmath (bit-exactness: no reassociation, no approximate
division), bounds checks off.

Why not plain ``numba.njit(cache=True)``: numba validates a cache entry against the defining
file only, but a kernel's machine code also holds every jitted callee it inlined and every
global constant it read from *other* modules; editing ``int8/requant.py`` then left the engine
running the old arithmetic from ``_engine_kernels``' cache.  Here a cache entry is additionally
stamped with :func:`source_digest` of the kernel's file: a SHA-256 over that file and every
source file it can reach through package-relative or first-party absolute imports (followed
transitively, package ``__init__`` files included).  Any edit to one of those files makes the
index stale, so numba recompiles and overwrites it.  Numba keys each entry on the signature and
the codegen target as well (CPU name and features: a ``NUMBA_CPU_NAME=generic`` process and a
host process keep separate entries in the same index).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re

import numba
from numba.core import caching as _caching

__all__ = ["JIT_OPTIONS", "kernel", "jit", "source_digest"]

JIT_OPTIONS = dict(cache=True, fastmath=False, nogil=True, boundscheck=False)

# `from .x import a`, `from ..x.y import (a,`, `from pkg.x import a`, `import pkg.x`
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+\(?([\w ,\t]*)"
                     r"|import[ \t]+([\w.]+))", re.M)


@functools.lru_cache(maxsize=None)
def _module_file(root: str, dotted: str):
    """``root/a/b.py`` or ``root/a/b/__init__.py`` for module ``a.b``, or None."""
    base = os.path.join(root, *dotted.split("."))
    for cand in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(cand):
            return cand
    return None


@functools.lru_cache(maxsize=None)
def _package_of(path: str):
    """(root directory, dotted package name) of the top-level package holding ``path``."""
    parts = []
    d = os.path.dirname(path)
    while os.path.isfile(os.path.join(d, "__init__.py")):
        parts.append(os.path.basename(d))
        d = os.path.dirname(d)
    return d, ".".join(reversed(parts))


@functools.lru_cache(maxsize=None)
def _source(path: str):
    """(SHA-256 digest, text) of one source file, read once per process."""
    with open(path, "rb") as f:
        data = f.read()
    return hashlib.sha256(data).digest(), data.decode("utf-8", "replace")


@functools.lru_cache(maxsize=None)
def _imports(path: str, root: str, package: str) -> tuple:
    """Source files under ``root`` that ``path`` (in dotted ``package``) imports, with the
    ``__init__`` of every package on the way (importing ``a.b.c`` runs those too)."""
    text = _source(path)[1]
    names = []
    for dots, mod, what, plain in _IMPORT.findall(text):
        if plain:
            names.append(plain)
            continue
        if dots:
            base = package.split(".") if package else []
            base = base[:len(base) - (len(dots) - 1)]
            mod = ".".join(base + ([mod] if mod else []))
        if not mod:
            continue
        names.append(mod)
        # `from pkg import sub` may name a submodule
        names.extend(f"{mod}.{w.strip()}" for w in what.split(",") if w.strip().isidentifier())
    found = []
    for dotted in names:
        parts = dotted.split(".")
        for k in range(1, len(parts) + 1):
            f = _module_file(root, ".".join(parts[:k]))
            if f is not None:
                found.append(f)
    return tuple(found)


@functools.lru_cache(maxsize=None)
def source_digest(path) -> str:
    """SHA-256 (hex) over ``path`` and every first-party source file it reaches by imports.

    First-party: modules that resolve to a file under the directory holding ``path``'s top-level
    package (``wavenet_edge``, and ``converters``/``firmware_sim`` beside it).  Memoized per
    process: a process runs the code it imported, whatever happens to the files later."""
    path = os.path.abspath(os.fspath(path))
    root, _ = _package_of(path)
    seen, todo = set(), [path]
    while todo:
        p = os.path.abspath(todo.pop())
        if p in seen:
            continue
        seen.add(p)
        todo.extend(_imports(p, root, _package_of(p)[1]))
    h = hashlib.sha256()
    for p in sorted(seen):
        h.update(os.path.relpath(p, root).encode() + b"\0")
        h.update(_source(p)[0])
    return h.hexdigest()


def _forget_sources() -> None:
    """Drop the per-process memo of sources and digests (for tests that edit files)."""
    for f in (source_digest, _imports, _source, _module_file, _package_of):
        f.cache_clear()


class _DigestStampMixin:
    """A numba cache locator whose source stamp also covers the kernel's import closure."""

    def get_source_stamp(self):
        return super().get_source_stamp(), source_digest(self._py_file)


_LOCATORS = [type(f"Digest{c.__name__}", (_DigestStampMixin, c), {})
             for c in (_caching.UserProvidedCacheLocator, _caching.InTreeCacheLocator,
                       _caching.UserWideCacheLocator)]


class _DigestCacheImpl(_caching.CompileResultCacheImpl):
    _locator_classes = _LOCATORS


class DigestFunctionCache(_caching.FunctionCache):
    """numba's per-function cache, stale as soon as any source the kernel can reach changes."""

    _impl_class = _DigestCacheImpl


def jit(**options):
    """``numba.njit`` with :data:`JIT_OPTIONS` (overridable) and the digest-stamped cache."""
    opts = {**JIT_OPTIONS, **options}
    cache = opts.pop("cache")

    def decorate(fn):
        disp = numba.njit(**opts)(fn)
        if cache:
            disp._cache = DigestFunctionCache(disp.py_func)
        return disp

    return decorate


kernel = jit()
