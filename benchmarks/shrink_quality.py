"""Held-out bits/sample of shrunk WaveNet shapes after a short, fixed training budget: the table
``firmware_sim/shrink_quality.json`` that ``simulate``'s shrink planner quotes for its plans.

    nice -n 19 python benchmarks/shrink_quality.py [--steps 500] [--out firmware_sim/shrink_quality.json]

What the number is: each shape (residual = dilation channels C, skip = end channels S, the dilation
cycles) is trained from the same seed on the built-in signal set (converters.signals, split
"train") for a fixed number of optimizer steps (default 500, batch 8, the trainer's defaults
otherwise) and then scored on the built-in held-out split (8 clips x 0.5 s, from silence): the
float model's mean cross-entropy of the next mu-law class, in bits per sample.  It is a
SHORT-TRAINING proxy of what a shape can learn (the presets are trained far longer), measured on
synthetic tones, not on speech.  ``seed_check`` repeats the first shape with the next seed
(initialization and window order), as a measure of how much of a difference between shapes is
noise.  The script only ever adds or replaces rows for the shapes it trains.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "firmware_sim" / "shrink_quality.json"

#: (channels, skip/end channels, blocks, top dilation of each block)
GRID = [(c, 2 * c, b, top) for c in (16, 12, 8, 4) for b, top in ((2, 128), (1, 128), (2, 32),
                                                                     (1, 32))]
GRID += [(16, 16, 2, 128), (16, 8, 2, 128), (8, 8, 1, 128), (8, 16, 1, 64), (8, 16, 2, 16)]


def shape_config(base, channels, skip, blocks, top):
    dil = tuple(2 ** i for i in range(int(math.log2(top)) + 1)) * blocks
    return base.replace(dilations=dil, residual_channels=channels, dilation_channels=channels,
                        skip_channels=skip, end_channels=skip)


def planned_shapes(base, sr) -> list:
    """The configs the planner picks for ``base`` on the built-in targets (stored costs)."""
    from firmware_sim.latency import c_engine_core
    from firmware_sim.planner import plan_target
    from firmware_sim.targets import load_registry
    targets, cores = load_registry()
    out = []
    for t in targets.values():
        core = c_engine_core(t, cores)
        if core is None or core.fused is None:
            continue
        p = plan_target(base, t, core, sr=sr, fifo=256)
        if p.achieved and all(p.config != c for c in out):
            out.append(p.config)
    return out


def main(argv=None) -> int:
    from converters.signals import builtin_signals, order0_entropy_bits
    from converters.train import train
    from firmware_sim.quality import shape_key
    from wavenet_edge.config import preset
    from wavenet_edge.mulaw import encode_classes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--only", type=int, default=None, help="train only the first N shapes")
    ap.add_argument("--plans", action="store_true",
                    help="instead of the grid: the shapes simulate's planner picks for the tiny "
                         "preset on the built-in targets (stored C-engine costs), if not "
                         "measured yet")
    args = ap.parse_args(argv)
    base = preset("tiny")
    train_audio = builtin_signals(split="train", sr=base.sample_rate, seed=args.seed)
    heldout = builtin_signals(split="heldout", sr=base.sample_rate, seed=args.seed)
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    rows = {r["key"]: r for r in doc.get("rows", [])}
    held_codes = [encode_classes(y, convention=base.mulaw) for y in heldout]
    import numpy as np
    order0 = order0_entropy_bits(np.concatenate(held_codes))
    grid = [shape_config(base, *g) for g in (GRID[:args.only] if args.only else GRID)]
    if args.plans:
        grid = [c for c in planned_shapes(base, base.sample_rate) if shape_key(c) not in rows]
    for i, cfg in enumerate(grid):
        c, s = cfg.residual_channels, cfg.skip_channels
        t0 = time.perf_counter()
        _, hist = train(cfg, train_audio, steps=args.steps, seed=args.seed, heldout=heldout,
                        progress=False)
        key = shape_key(cfg)
        from firmware_sim.planner import shape_text
        rows[key] = {"key": key, "channels": c, "skip_end_channels": s,
                     "shape": shape_text(cfg), "layers": cfg.n_layers,
                     "receptive_field": cfg.receptive_field,
                     "parameters": cfg.parameter_count(), "macs_per_sample": cfg.macs_per_sample(),
                     "heldout_bits_per_sample": round(float(hist["heldout_bits_after"]), 4),
                     "heldout_bits_untrained": round(float(hist["heldout_bits_before"]), 4),
                     "train_steps": int(hist["steps"]), "train_seconds": round(hist["seconds"], 1)}
        print(f"[{i + 1}/{len(grid)}] {rows[key]['shape']}: "
              f"{hist['heldout_bits_after']:.3f} bits/sample ({time.perf_counter() - t0:.0f} s)",
              flush=True)
        doc = {"about": __doc__.split("\n\n")[2].replace("\n", " "),
               "measured_by": "benchmarks/shrink_quality.py", "steps": args.steps,
               "batch_size": 8, "seed": args.seed, "base_preset": "tiny",
               "heldout": "converters.signals.builtin_signals(split='heldout'): 8 clips x 0.5 s",
               "heldout_order0_bits": round(float(order0), 4),
               "rows": sorted(rows.values(), key=lambda r: -r["macs_per_sample"])}
        if "seed_check" in (prev := json.loads(out.read_text()) if out.exists() else {}):
            doc["seed_check"] = prev["seed_check"]
        _write(out, doc)
    if args.plans:
        return 0
    cfg = grid[0]
    _, hist = train(cfg, train_audio, steps=args.steps, seed=args.seed + 1, heldout=heldout,
                    progress=False)
    doc["seed_check"] = {"key": shape_key(cfg), "seed": args.seed + 1,
                         "heldout_bits_per_sample": round(float(hist["heldout_bits_after"]), 4)}
    print(f"seed check {shape_key(cfg)} seed {args.seed + 1}: "
          f"{hist['heldout_bits_after']:.3f} bits/sample", flush=True)
    _write(out, doc)
    return 0


def _write(out, doc):
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    sys.exit(main())
