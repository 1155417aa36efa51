"""Structural rules of the step graph that more than one package must follow (docs/step-graph.md)."""

from __future__ import annotations

__all__ = ["MAX_CONCAT_INPUTS", "concat_tree"]

#: TFLM's CONCATENATION takes at most this many inputs.
MAX_CONCAT_INPUTS = 10


def concat_tree(items, merge):
    """Fold ``items`` into one with CONCATENATION operators of ≤ :data:`MAX_CONCAT_INPUTS` inputs.

    Rounds group consecutive items by ten (a lone leftover passes through) until at most ten
    remain, which one last operator joins.  ``merge(chunk, final) -> item`` is called once per
    operator, in creation order (``final`` True for the last); the last result is returned.
    """
    items = list(items)
    while len(items) > MAX_CONCAT_INPUTS:
        grouped = []
        for g in range(0, len(items), MAX_CONCAT_INPUTS):
            chunk = items[g:g + MAX_CONCAT_INPUTS]
            grouped.append(chunk[0] if len(chunk) == 1 else merge(chunk, False))
        items = grouped
    return merge(items, True)
