"""Measured held-out bits/sample of shrunk shapes (``shrink_quality.json``, written by
``benchmarks/shrink_quality.py``): what the shrink planner states as a plan's expected cost.

Only measured rows are quoted; a shape that was not measured is reported as such (no
interpolation).  See the table's ``about`` for exactly what the number is.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

__all__ = ["QUALITY_FILE", "shape_key", "quality_table", "measured_bits"]

QUALITY_FILE = Path(__file__).with_name("shrink_quality.json")


def shape_key(cfg) -> str:
    """The shape of a config as the table indexes it (everything the trained size depends on)."""
    return (f"R{cfg.residual_channels} G{cfg.dilation_channels} S{cfg.skip_channels} "
            f"E{cfg.end_channels} k{cfg.kernel_size} i{cfg.initial_filter_width} "
            f"d{','.join(str(d) for d in cfg.dilations)}")


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def quality_table(path=None) -> dict:
    """The table document (``{}`` when missing or unreadable)."""
    return _load(str(QUALITY_FILE if path is None else path))


def measured_bits(cfg, path=None) -> dict | None:
    """``{"heldout_bits_per_sample", "train_steps", "measured_by", ...}`` for ``cfg``'s shape,
    or None when the shape was not measured (the table is for the built-in signal set at the
    ``tiny`` preset's sample rate, unconditioned, without global conditioning)."""
    doc = quality_table(path)
    if cfg.has_gc or getattr(cfg, "cin_channels", 0) or cfg.sample_rate != 16000:
        return None
    key = shape_key(cfg)
    for r in doc.get("rows", []):
        if r.get("key") == key:
            return {"heldout_bits_per_sample": r["heldout_bits_per_sample"],
                    "train_steps": doc.get("steps"), "measured_by": doc.get("measured_by"),
                    "heldout_order0_bits": doc.get("heldout_order0_bits")}
    return None
