"""int8 vs float of a trained vocoder on held-out speech: Δ bits/sample per calibration method.

Calibrates once on the features of the calibration WAVs (as ``convert`` does), builds the step
graph + frame graph for every range method, with and without the softmax-aware (KL-tuned) logits
range, and scores every held-out WAV teacher-forced (each conditioned on its own features, from
silence) under the float model and under the int8 graph (the Numba engine, bit-exact with LiteRT's
builtin kernels; ``--runner litert`` runs the real interpreter through ContractHost instead).

    python benchmarks/vocoder_int8.py vocoder-tiny.npz --calibration train/*.wav \
        --heldout held/*.wav [--steps 8000] [--runner engine|litert]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--calibration", nargs="+", required=True)
    ap.add_argument("--heldout", nargs="+", required=True)
    ap.add_argument("--steps", type=int, default=8000, help="scored samples per held-out file")
    ap.add_argument("--runner", default="engine", choices=["engine", "litert"])
    args = ap.parse_args(argv)

    from converters import calibrate
    from converters.canonical import canonicalize
    from converters.convert import _with_features
    from converters.export import build_step_graph
    from converters.frame_graph import frame_plan
    from converters.quantize import activation_plan
    from converters.report import contract_host_runner, engine_runner, evaluate
    from wavenet_edge import FloatWaveNet
    from wavenet_edge.audio import load_wav
    from wavenet_edge.mulaw import encode_classes

    m = FloatWaveNet.load(args.model)
    cfg = m.config
    canon = canonicalize(m)
    cal = [np.asarray(load_wav(p, sr=cfg.sample_rate)[0], np.float64) for p in args.calibration]
    cal, conds = _with_features(cal, cfg, "calibration")
    codes = [encode_classes(np.clip(y, -1, 1), convention=cfg.mulaw) for y in cal]
    t0 = time.time()
    stats = calibrate.collect_statistics(canon, codes, conds=conds, progress=False)
    fplan = frame_plan(canon, conds) if cfg.upsampler != "none" else None
    print(f"calibrated on {len(cal)} files ({sum(map(len, cal)):,} samples) in "
          f"{time.time() - t0:.0f} s")

    clips, hconds = [], []
    for p in args.heldout:
        y = np.asarray(load_wav(p, sr=cfg.sample_rate)[0], np.float64)
        (y,), (c,) = _with_features([y], cfg, "held-out")
        n_fr = max(1, min(args.steps, y.shape[0]) // cfg.hop)
        clips.append(encode_classes(np.clip(y[:n_fr * cfg.hop], -1, 1), convention=cfg.mulaw))
        hconds.append(c[:n_fr + 2 * cfg.cin_pad])
    runner = engine_runner("litert") if args.runner == "engine" else contract_host_runner("litert")
    print(f"held-out: {len(clips)} files, {sum(map(len, clips)):,} samples, runner {runner.__name__}")
    print(f"{'method':<12}{'KL logits':>10}{'float b/s':>11}{'int8 b/s':>10}{'Δ b/s':>9}"
          f"{'± se':>8}{'top-1':>7}{'beta':>7}")
    for method in calibrate.METHODS:
        for kl in (True, False):
            plan = activation_plan(cfg, calibrate.choose_ranges(stats, method, softmax_aware=kl))
            data = build_step_graph(canon, plan, frame_plan=fplan)
            q = evaluate(m, data, clips, logits_qparams=plan["logits"], runner=runner,
                         conds=hconds)
            print(f"{method:<12}{'yes' if kl else 'no':>10}{q['float_bits']:>11.4f}"
                  f"{q['int8_bits']:>10.4f}{q['delta_bits']:>+9.4f}{q['delta_bits_se']:>8.4f}"
                  f"{q['top1_agreement']:>7.3f}{plan['cond'].beta:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
