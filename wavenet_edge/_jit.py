"""The one place where JIT options live.

Every jitted kernel in wavenet-edge is decorated with :data:`kernel`: njit (nopython), cached on disk
(first-call compile time matters to CLI users), no fastmath (bit-exactness: no reassociation, no
approximate division), bounds checks off.
"""

from __future__ import annotations

import numba

JIT_OPTIONS = dict(cache=True, fastmath=False, nogil=True, boundscheck=False)

kernel = numba.njit(**JIT_OPTIONS)
