"""Which CPU the jitted kernels are compiled for, as numba sees it.

Numba compiles for the host CPU unless ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` say otherwise
(``NUMBA_CPU_NAME=generic`` is the portable build a phone or a Raspberry Pi effectively runs, and
what numba's own cache uses for code that must run anywhere).  Kernels that emit instruction-set
specific intrinsics (AVX-512 VNNI ``vpdpbusd``, VBMI ``vpermi2b``) must ask *the target*, not the
host CPUID: an intrinsic the target lacks makes LLVM abort the process ("Do not know how to split
the result of this operator!").

:func:`target_features` mirrors numba's ``CPUCodegen._get_host_cpu_features``: the explicit
``NUMBA_CPU_FEATURES`` string when set (empty for ``generic``), else the host's features (with
numba's ``NUMBA_ENABLE_AVX`` masking).  A feature counts only when that string enables it
explicitly; features a named CPU merely implies (``NUMBA_CPU_NAME=skylake-avx512`` with empty
features) are not assumed, so such a target gets the portable code paths, which are correct
everywhere.
"""

from __future__ import annotations

from numba.core import config as _config

__all__ = ["target_cpu_name", "target_features", "HAS_VNNI", "HAS_VBMI"]


def target_cpu_name() -> str:
    """The CPU name numba compiles for (``NUMBA_CPU_NAME``, else LLVM's host CPU name)."""
    if _config.CPU_NAME is not None:
        return str(_config.CPU_NAME)
    import llvmlite.binding as llvm
    return llvm.get_host_cpu_name()


def target_features() -> frozenset:
    """Names of the CPU features enabled for numba's compilation target (no ``+`` prefix)."""
    features = _config.CPU_FEATURES
    if features is None:
        from numba.core.codegen import get_host_cpu_features
        try:
            features = get_host_cpu_features()
        except Exception:  # pragma: no cover - exotic hosts: assume nothing
            features = ""
    enabled: dict = {}
    for item in str(features).split(","):
        item = item.strip()
        if len(item) > 1 and item[0] in "+-":
            enabled[item[1:]] = item[0] == "+"  # LLVM: the last mention wins
    return frozenset(k for k, on in enabled.items() if on)


_FEATURES = target_features()

#: AVX-512 VNNI on the target: FCs may use ``vpdpbusd`` (see ``_engine_kernels.vnni_mode``).
HAS_VNNI = "avx512vnni" in _FEATURES and "avx512f" in _FEATURES
#: AVX-512 VBMI on the target: 256-entry int8 tables may be read with ``vpermi2b``.
HAS_VBMI = "avx512vbmi" in _FEATURES and "avx512bw" in _FEATURES
