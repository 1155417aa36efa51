"""Instructions per sample of the exported C engine on Cortex-M4, M7 and M55 (QEMU), per kernel
variant, with the per-class cycle ESTIMATE, for the ``tiny``, ``small`` and ``vocoder-tiny``
presets.

    python benchmarks/bench_mcu.py [--presets tiny small vocoder-tiny] [--steps 12] [--json out.json]

A vocoder runs whole hops (at least two, so that one steady frame call is counted) on
deterministic features (firmware_sim.emulate.default_features); its rows add the frame program
(wn_frame, once per hop): instructions per call, per sample (/ hop) and step + frames.

Each model is a randomly initialized preset converted to int8 (the instruction counts depend on
the shape, not on the weights).  Every run is checked bit-exact against the Numba engine at every
step.  Instruction counts are exact (QEMU); cycles are ESTIMATES: "CPI" = instructions x the flat
assumed CPI of firmware_sim.emulate, "classes" = executed instructions classified and priced per
class from the cores' technical reference manuals (firmware_sim.cycles).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def model_file(cfg, path: Path) -> Path:
    """``cfg`` randomly initialized (seed 0, biases N(0, 0.1) so that no requantization is
    degenerate), converted to int8 by min/max and written to ``path``: the instruction counts
    depend on the shape, not on the weights."""
    import numpy as np

    from converters.convert import convert
    from wavenet_edge.float_model import FloatWaveNet
    m = FloatWaveNet.initialize(cfg, seed=0)
    rng = np.random.default_rng(11)
    for k, a in m.weights.items():
        if k.endswith("/b") or k == "initial/bias":
            m.weights[k] = rng.normal(0.0, 0.1, a.shape)
    path.write_bytes(convert(m, method="minmax", progress=False, evaluate_quality=False).tflite)
    return path


def _model(preset_name: str, out: Path) -> Path:
    from wavenet_edge.config import preset
    return model_file(preset(preset_name), out / f"{preset_name}.tflite")


def _frame_state(prog) -> int:
    from firmware_sim.c_export import frame_state_bytes
    return frame_state_bytes(prog)


def main(argv=None) -> int:
    from firmware_sim.c_export import exported_program, flash_bytes
    from firmware_sim.emulate import emulate
    from firmware_sim.qemu import toolchain_status
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "vocoder-tiny"])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--json", default=None, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    missing = toolchain_status()
    if missing:
        print(f"bench_mcu: {missing}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-mcu-") as tmp:
        for name in args.presets:
            path = _model(name, Path(tmp))
            prog = exported_program(path)
            steps = args.steps
            if prog["cond"] is not None and prog["cond"]["frames"] is not None:
                steps = max(steps, 2 * prog["cond"]["hop"] + 1)
            rep = emulate(path, steps=steps, kernels="all",
                          profile_ops=False, repeat_check=False, progress=True)
            for r in rep.runs:
                cc = r.cycle_classes
                rows.append(dict(preset=name, core=r.core, kernels=r.kernels,
                                 macs=r.macs_per_sample,
                                 instructions=round(r.instructions_per_sample, 1),
                                 instr_per_mac=round(r.instructions_per_mac_whole_step, 3),
                                 fc_instr_per_mac=round(r.fc_instructions_per_mac, 3),
                                 cycles_cpi_ESTIMATE=round(r.cycles_per_sample_estimate),
                                 cycles_classes_ESTIMATE=round(cc.get("cycles_ESTIMATE", 0)),
                                 softmax_on_demand=r.softmax_instructions,
                                 sample_logits=r.sample_logits_instructions,
                                 generated=round(r.generated_sample_instructions, 1),
                                 bitexact=f"{r.bitexact_steps}/{r.steps}",
                                 const_bytes=flash_bytes(prog, r.kernels if r.kernels in
                                                         ("dsp", "mve") else "auto"),
                                 classes={k: v[0] for k, v in cc.get("by_class", {}).items()},
                                 frame_macs=r.frame_macs, hop=r.hop,
                                 frame_instr_per_call=r.frame_instructions_per_call,
                                 frame_instr_steady_call=r.frame_instructions_steady,
                                 frame_instr_per_sample=round(r.frame_instructions_per_sample, 1),
                                 step_plus_frames=round(r.total_instructions_per_sample, 1),
                                 frame_state_bytes=(0 if prog["cond"] is None else
                                                    _frame_state(prog))))
    print(f"{'preset':6s} {'core':10s} {'kernels':6s} {'MACs':>6s} {'instr/sample':>12s} "
          f"{'instr/MAC':>9s} {'FC i/MAC':>8s} {'cyc EST CPI':>11s} {'cyc EST cls':>11s} "
          f"{'softmax':>7s} {'sample':>7s} {'step+smp':>9s} {'const kB':>8s} bit-exact")
    for r in rows:
        print(f"{r['preset']:6s} {r['core']:10s} {r['kernels']:6s} {r['macs']:6d} "
              f"{r['instructions']:12.1f} {r['instr_per_mac']:9.2f} {r['fc_instr_per_mac']:8.2f} "
              f"{r['cycles_cpi_ESTIMATE']:11d} {r['cycles_classes_ESTIMATE']:11d} "
              f"{r['softmax_on_demand']:7d} {r['sample_logits']:7.0f} {r['generated']:9.0f} "
              f"{r['const_bytes'] / 1000:8.1f} {r['bitexact']}")
    print("instr/sample: wn_step without the SOFTMAX (probabilities on demand, 'softmax' "
          "column, not needed for sampling); sample: one wn_sample on the logits (T = 1 weight "
          "table, mean of 8 draws); step+smp: a free-running generated sample; const kB: the "
          "model's const data in that build (the DSP kernels keep FC weights as int16 pairs: "
          "c_export.flash_bytes(..., 'dsp')).  Cycles are ESTIMATES.")
    voc = [r for r in rows if r["hop"]]
    if voc:
        print(f"\n{'preset':12s} {'core':10s} {'kernels':6s} {'step':>8s} {'frame/call':>10s} "
              f"{'steady':>7s} {'hop':>4s} {'frame/smp':>9s} {'step+frames':>11s} "
              f"{'frame MACs':>10s} {'frame RAM':>9s}")
        for r in voc:
            print(f"{r['preset']:12s} {r['core']:10s} {r['kernels']:6s} {r['instructions']:8.0f} "
                  f"{r['frame_instr_per_call']:10.0f} {r['frame_instr_steady_call']:7d} "
                  f"{r['hop']:4d} {r['frame_instr_per_sample']:9.1f} "
                  f"{r['step_plus_frames']:11.1f} {r['frame_macs']:10d} "
                  f"{r['frame_state_bytes']:9d}")
        print("vocoders: step = wn_step_cond (the cond row gathered from the block, its per-layer "
              "QUANTIZE as table rows); frame/call = one wn_frame call (mean over the run; "
              "steady = one call after the start); frame/smp = frame/call / hop; frame RAM = "
              "sizeof(wn_frame_state); const kB includes the frame program's arrays.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
