"""Fit the per-kernel cost model of our C engine (firmware_sim.c_costs) on several model shapes in
QEMU and store it in firmware_sim/c_engine_costs.json (one entry per measured core of
targets.json, ``<core>-wavenet-c-<kernels>``; firmware_sim.targets attaches it to that core).

    python benchmarks/fit_c_costs.py [--cores cortex-m4 cortex-m7 cortex-m55] [--dry-run]

For each core and its best kernel variant (firmware_sim.emulate.KERNELS_FOR_CORE), every shape
below is converted with random weights, run as firmware (teacher-forced, bit-exact with the
engine at every step) and profiled with a marker before every kernel (the FC-only benchmark's
inner loop is quoted beside the fit, not fitted: it is another code path).  The coefficients (instructions) are fitted by non-negative least squares per
kernel type over all shapes together; ``max_rel_error`` is the worst kernel of the fit,
``check`` the whole step of each shape predicted vs measured.  Cycles = instructions x the
per-class cycles-per-instruction ESTIMATE of the tiny shape (firmware_sim.cycles), stated as
``cpi``.  Run it after changing the C kernels (then commit c_engine_costs.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (residual = dilation channels, skip = end channels, blocks, top dilation)
SHAPES = [(16, 32, 2, 128), (8, 16, 2, 32), (12, 24, 1, 64), (4, 8, 1, 16), (20, 40, 1, 16)]


def _model(cfg, tmp: Path) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_mcu import model_file
    return model_file(cfg, tmp / f"m-{cfg.residual_channels}-{cfg.skip_channels}-"
                                 f"{cfg.n_layers}.tflite")


def fit_core(core: str, kernels: str, tmp: Path, log=print) -> dict:
    import numpy as np

    from firmware_sim import c_costs
    from firmware_sim.c_export import exported_program
    from firmware_sim.emulate import emulate
    from wavenet_edge.config import preset
    base = preset("tiny")
    eqs, checks, sample, softmax, cpi, bench_ipm = [], [], [], [], None, None
    bench = (64, 256)
    for c, s, b, top in SHAPES:
        dil = tuple(2 ** i for i in range(top.bit_length())) * b
        cfg = base.replace(dilations=dil, residual_channels=c, dilation_channels=c,
                           skip_channels=s, end_channels=s)
        path = _model(cfg, tmp)
        codes = np.random.default_rng(3).integers(100, 156, 6)
        rep = emulate(path, cores=(core,), kernels=kernels, steps=6, codes=codes,
                      repeat_check=False, cycle_classes=(c == 16), bench=bench)
        r = rep.runs[0]
        if not r.bitexact:
            raise SystemExit(f"{core} {kernels} {cfg}: not bit-exact")
        prog = exported_program(path)
        p = r.op_profile
        gr = c_costs.MAC_GRANULE[kernels]
        eqs += c_costs.profile_program(prog, p["per_op"], p["reads"], p["writes"], gr)
        # the FC-only benchmark calls wn_fc, not the step's FC kernels: quoted, not fitted
        bench_ipm = r.fc_instructions_per_mac if c == 16 else bench_ipm
        sample.append(r.sample_logits_instructions)
        softmax.append(r.softmax_instructions)
        if c == 16:
            cpi = r.cycles_per_sample_classes_estimate / r.instructions_per_sample
        feats = c_costs.program_features(prog["ops"], prog["reads"], prog["writes"], gr)
        feats["sample"] = 0
        checks.append(dict(shape=f"C={c} S=E={s} {b}x[1..{top}]", feats=feats,
                           measured=r.instructions_per_sample))
        log(f"  {core} {kernels} C={c} S=E={s} {b}x[1..{top}]: "
            f"{r.instructions_per_sample:.0f} instr/step")
    fit = c_costs.fit_fused_costs(eqs, sample=float(np.mean(sample)),
                                  softmax=float(np.mean(softmax)))
    check = []
    for ch in checks:
        pred = c_costs.predict_instructions(fit.instructions, ch["feats"])
        check.append({"shape": ch["shape"], "measured_instructions": round(ch["measured"], 1),
                      "predicted_instructions": round(pred, 1),
                      "rel_error": round((pred - ch["measured"]) / ch["measured"], 4)})
    bad = sorted(((abs(c_costs.predict_instructions(fit.instructions, f) - y) / y, str(f))
                  for f, y in eqs if y > 0), reverse=True)[:3]
    log("  worst kernels: " + "; ".join(f"{e:.1%} {f}" for e, f in bad))
    return {**fit.to_dict(), "cpi": round(float(cpi), 4), "mac_granule": gr,
            "fc_bench_instructions_per_mac": round(float(bench_ipm), 4),
            "cpi_source": "per-class cycle ESTIMATE / instructions of the tiny shape's step "
                          "(firmware_sim.cycles, TRM-priced instruction classes)",
            "measured_on": [x["shape"] for x in check], "check": check,
            "engine_c_sha256": c_costs.engine_source_hash(),
            "source": "benchmarks/fit_c_costs.py: QEMU instruction counts per kernel of the "
                      "exported C (profiling build), NNLS per kernel type over the shapes"}


def main(argv=None) -> int:
    from firmware_sim.emulate import KERNELS_FOR_CORE
    from firmware_sim.qemu import toolchain_status
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", nargs="+", default=list(KERNELS_FOR_CORE))
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the file")
    args = ap.parse_args(argv)
    missing = toolchain_status()
    if missing:
        print(f"fit_c_costs: {missing}", file=sys.stderr)
        return 2
    path = ROOT / "firmware_sim" / "c_engine_costs.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.setdefault("about", "Per-kernel cost model of the wavenet-edge C engine "
                   "(firmware_sim.c_costs), fitted by benchmarks/fit_c_costs.py; keys are "
                   "measured cores of targets.json. Instructions are exact QEMU counts; cycles = "
                   "instructions x cpi, an ESTIMATE.")
    doc.setdefault("cores", {})
    with tempfile.TemporaryDirectory(prefix="fit-c-costs-") as tmp:
        for core in args.cores:
            k = KERNELS_FOR_CORE[core][-1]
            name = f"{core}-wavenet-c-{k}"
            fused = fit_core(core, k, Path(tmp))
            print(f"{name}: max kernel error {fused['max_rel_error']:.1%}, steps "
                  + ", ".join(f"{c['shape']} {c['rel_error']:+.1%}" for c in fused["check"]),
                  flush=True)
            doc["cores"][name] = fused
            if not args.dry_run:
                tmp_path = path.with_suffix(".tmp")
                tmp_path.write_text(json.dumps(doc, indent=1) + "\n")
                tmp_path.replace(path)
    if args.dry_run:
        print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
