"""Which layout a flat tensor dict is, from its key names alone."""

from __future__ import annotations

from wavenet_edge.errors import CheckpointError

from .layouts import LAYOUTS

__all__ = ["layout_scores", "detect_layout"]

_MIN_SCORE = 3


def layout_scores(keys) -> dict:
    """layout name → score (higher: more of that layout's signature keys present)."""
    keys = list(keys)
    return {name: mod.score(keys) for name, mod in LAYOUTS.items()}


def detect_layout(keys, *, path=None) -> str:
    """The single layout whose signature the keys carry, or :class:`CheckpointError`."""
    keys = list(keys)
    scores = layout_scores(keys)
    best = max(scores.values())
    winners = [n for n, s in scores.items() if s == best]
    if best < _MIN_SCORE:
        sample = ", ".join(sorted(keys)[:4]) + (" …" if len(keys) > 4 else "")
        raise CheckpointError(f"unknown checkpoint layout (keys: {sample or 'none'}); known "
                              f"layouts: {', '.join(LAYOUTS)}", path=path)
    if len(winners) > 1:
        raise CheckpointError(f"ambiguous checkpoint layout ({' / '.join(winners)}); pass "
                              "layout= explicitly", path=path)
    return winners[0]
