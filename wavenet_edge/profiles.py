"""The one vocabulary of runtimes and int8 arithmetic profiles.

A *profile* names the integer arithmetic of one real interpreter, and the same name is used for
the interpreter itself wherever one is run (``verify --against``, ``check_bitexact(runtime=)``,
``ContractHost``, ``make_runner``): the engine with profile ``litert`` reproduces the runtime
``litert`` bit for bit.  The names and their ids are defined in :mod:`wavenet_edge.int8.requant`.
"""

from __future__ import annotations

from .errors import UnknownProfileError
from .int8.requant import ARM64_PROFILES as _ARM64
from .int8.requant import PROFILES as _PROFILE_IDS

__all__ = ["PROFILES", "ALIASES", "DESCRIPTIONS", "resolve_profile"]

#: every profile the engine reproduces, in the order they are listed to users
PROFILES = tuple(_PROFILE_IDS) + tuple(_ARM64)

#: older names still accepted: LiteRT's default resolver applies the XNNPACK delegate
ALIASES = {"litert-default": "xnnpack"}

DESCRIPTIONS = {
    "tflm": "TensorFlow Lite Micro (its reference kernels, as on a microcontroller)",
    "litert": "LiteRT builtin optimized kernels, no delegate",
    "litert-ref": "LiteRT reference kernels",
    "xnnpack": "LiteRT default: the XNNPACK delegate applied",
    "litert-arm64": "LiteRT builtin kernels as built for aarch64 (phones, Raspberry Pi)",
    "xnnpack-arm64": "LiteRT default (XNNPACK) as built for aarch64",
}


def resolve_profile(name, *, known=PROFILES) -> str:
    """The canonical name of profile ``name`` (an alias is mapped to its profile).

    ``known``: the profiles the caller can serve (default: all).  Raises
    :class:`~wavenet_edge.errors.UnknownProfileError`, listing ``known``, for any other name.
    """
    canon = ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(canon, str) or canon not in known:
        raise UnknownProfileError(f"unknown profile {name!r}; known: {', '.join(known)}")
    return canon
