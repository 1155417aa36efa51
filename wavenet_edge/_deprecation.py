"""Deprecated keyword spellings kept working for a while, with a warning."""

from __future__ import annotations

import warnings

from .errors import ConfigError


def sr_keyword(sr, sample_rate, where: str):
    """The audio rate from ``sr=`` or from the deprecated ``sample_rate=`` of ``where`` (both may
    not disagree).  librosa's ``sr`` is the name every front door uses."""
    if sample_rate is None:
        return sr
    warnings.warn(f"{where}(sample_rate=...) is deprecated; use sr=...", DeprecationWarning,
                  stacklevel=3)
    if sr is not None and sr != sample_rate:
        raise ConfigError(f"{where}: sr={sr!r} and sample_rate={sample_rate!r} disagree")
    return sample_rate
