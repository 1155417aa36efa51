"""Samples per second of the int8 engine against the real interpreters and a float32 numpy stepper.

Usage::

    python benchmarks/bench_engine.py --preset small            # converts a random-init model
    python benchmarks/bench_engine.py --model MODEL.tflite --samples 4000

Everything runs in this one process, pinned to one core, on the same ``.tflite``:

* engine B=1 and B=16 (``Engine.process``: the sample loop runs inside numba),
* LiteRT default (XNNPACK delegate) and LiteRT builtin kernels, TFLM: per step the host sets
  ``sample`` and every delay-line read, invokes, reads the outputs and pushes the writes
  (``firmware_sim.host.ContractHost``, exactly what a firmware integrator does),
* a float32 numpy queue implementation of the same network (``FloatStepper`` in float32).

Each row is the best of ``--repeats`` timed runs (wall clock and process CPU time); the machine
may be shared, so CPU time is also shown.  Prints a table, ratios and the real-time factor at the
model's sample rate.  Not a test: targets are checked by reading the numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def _build(preset_name: str, seed: int = 0) -> bytes:
    from converters.convert import convert
    from wavenet_edge import FloatWaveNet, load_wav, preset

    cfg = preset(preset_name)
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed + 7)
    for k, a in m.weights.items():
        if k.endswith("/b") or k == "initial/bias":
            m.weights[k] = rng.normal(0.0, 0.1, a.shape)
    n = cfg.receptive_field + 4096
    try:
        y, _ = load_wav("/work/shared/audio/speech_a.16k.wav", sr=cfg.sample_rate)
        cal = [np.asarray(y[:n], np.float64)]
    except Exception:
        t = np.arange(n) / cfg.sample_rate
        cal = [0.4 * np.sin(2 * np.pi * 220 * t)]
    if sum(c.shape[0] for c in cal) < n:
        cal.append(0.3 * np.sin(2 * np.pi * 330 * np.arange(n) / cfg.sample_rate))
    return convert(m, calibration=cal, method="minmax", progress=False,
                   evaluate_quality=False).tflite


class Float32Stepper:
    """The queue form of the float model in float32 numpy (one matrix-vector product per conv)."""

    def __init__(self, model):
        cfg, W = model.config, model.weights
        f = np.float32
        self.cfg = cfg
        self.table = W["initial/table"].astype(f)
        self.b0 = W["initial/bias"].astype(f)
        k = cfg.kernel_size
        self.layers = []
        for l, d in enumerate(cfg.dilations):
            p = f"layers/{l}/"
            wfg = np.concatenate([W[p + "filter/w"], W[p + "gate/w"]], axis=2)  # (k, R, 2G)
            self.layers.append(dict(
                d=d, wfg=wfg.reshape(k * cfg.residual_channels, -1).astype(f),
                bfg=np.concatenate([W[p + "filter/b"], W[p + "gate/b"]]).astype(f),
                wr=W[p + "residual/w"].astype(f), br=W[p + "residual/b"].astype(f),
                ws=W[p + "skip/w"].astype(f), bs=W[p + "skip/b"].astype(f),
                q=np.zeros(((k - 1) * d, cfg.residual_channels), f), pos=0))
        self.w1, self.b1 = W["end1/w"].astype(f), W["end1/b"].astype(f)
        self.w2, self.b2 = W["end2/w"].astype(f), W["end2/b"].astype(f)
        self.codes = [-1] * (cfg.initial_filter_width - 1)
        self.G = cfg.dilation_channels

    def step(self, code):
        cfg = self.cfg
        hist = self.codes + [int(code)]
        h = self.b0.copy()
        for j, c in enumerate(hist):
            if c >= 0:
                h += self.table[j, c]
        if cfg.initial_filter_width > 1:
            self.codes = hist[1:]
        k, G = cfg.kernel_size, self.G
        s = np.zeros(cfg.skip_channels, np.float32)
        for L in self.layers:
            q, pos, d = L["q"], L["pos"], L["d"]
            n = q.shape[0]
            taps = [q[(pos - (k - 1 - j) * d) % n] for j in range(k - 1)] + [h]
            z = np.concatenate(taps) @ L["wfg"] + L["bfg"]
            q[pos] = h
            L["pos"] = (pos + 1) % n
            a = np.tanh(z[:G]) * (1.0 / (1.0 + np.exp(-z[G:])))
            s += a @ L["ws"] + L["bs"]
            h = h + a @ L["wr"] + L["br"]
        u = np.maximum(np.maximum(s, 0) @ self.w1 + self.b1, 0)
        return u @ self.w2 + self.b2


def _time(fn, repeats):
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best_wall, best_cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--preset", default="small", help="tiny, small, tensorflow-wavenet (default small)")
    g.add_argument("--model", help="an existing wavenet-edge .tflite")
    ap.add_argument("--samples", type=int, default=4000, help="samples per engine run (default 4000)")
    ap.add_argument("--interp-samples", type=int, default=None,
                    help="samples per interpreter / float run (default: samples // 4)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row, best kept")
    ap.add_argument("--profile", default="tflm", help="engine int8 profile (default tflm)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    args = ap.parse_args(argv)

    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from firmware_sim.host import ContractHost
    from wavenet_edge.engine import Engine

    if args.model:
        with open(args.model, "rb") as f:
            data = f.read()
        label, float_model = os.path.basename(args.model), None
    else:
        t = time.perf_counter()
        data = _build(args.preset)
        label = args.preset
        print(f"converted preset {args.preset} in {time.perf_counter() - t:.1f} s "
              f"({len(data):,} bytes)", file=sys.stderr)
        from converters.canonical import canonicalize
        from wavenet_edge import FloatWaveNet, preset
        m = FloatWaveNet.initialize(preset(args.preset), seed=0)
        float_model = canonicalize(m)

    n = args.samples
    ni = args.interp_samples or max(200, n // 4)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, n)
    eng = Engine.from_bytes(data, profile=args.profile, name=label)
    sr = eng.sample_rate
    t = time.perf_counter()
    eng.step(int(codes[0]))
    first = time.perf_counter() - t
    rows = []

    def run_engine(B):
        e = Engine.from_bytes(data, profile=args.profile, batch=B, name=label)
        cs = np.ascontiguousarray(np.broadcast_to(codes, (B, n))) if B > 1 else codes
        e.process(cs[..., :8])

        def go():
            e.reset()
            e.process(cs)
        w, c = _time(go, args.repeats)
        rows.append((f"engine B={B} ({args.profile})", n * B / w, n * B / c))

    run_engine(1)
    run_engine(16)
    for rt, name in (("litert-default", "LiteRT default (XNNPACK)"), ("litert", "LiteRT builtin"),
                     ("tflm", "TFLM")):
        try:
            host = ContractHost(data, rt)
        except Exception as e:  # pragma: no cover - depends on installed runtimes
            print(f"{name}: unavailable ({e})", file=sys.stderr)
            continue
        c_ = codes[:ni]

        def go(host=host, c_=c_):
            host.reset()
            host.run(c_, outputs=("probs",))
        host.run(c_[:10], outputs=("probs",))
        w, c = _time(go, args.repeats)
        rows.append((name, ni / w, ni / c))
    if float_model is not None:
        fs = Float32Stepper(float_model)

        def go():
            for x in codes[:ni]:
                fs.step(x)
        w, c = _time(go, args.repeats)
        rows.append(("float32 numpy queue", ni / w, ni / c))

    cfg = eng.config
    print(f"\nmodel {label}: {cfg.n_layers} layers, R={cfg.residual_channels} "
          f"G={cfg.dilation_channels} S={cfg.skip_channels} E={cfg.end_channels}, "
          f"{eng.program.macs_per_sample:,} MACs/sample, {sr} Hz; one core; "
          f"first engine step {first * 1e3:.0f} ms (numba cache {'warm' if first < 2 else 'cold'})")
    print(f"{'runtime':<28}{'samples/s':>12}{'(cpu)':>12}{'x real time':>13}{'GMAC/s':>9}")
    for name, sw, sc in rows:
        print(f"{name:<28}{sw:>12,.0f}{sc:>12,.0f}{sw / sr:>13.2f}"
              f"{sw * eng.program.macs_per_sample / 1e9:>9.2f}")
    wall = {name: sw for name, sw, _ in rows}
    cpu = {name: sc for name, _, sc in rows}
    key = f"engine B=1 ({args.profile})"
    for other in ("LiteRT default (XNNPACK)", "LiteRT builtin", "TFLM", "float32 numpy queue"):
        if other in wall and key in wall:
            print(f"engine B=1 / {other}: {wall[key] / wall[other]:.1f}x wall, "
                  f"{cpu[key] / cpu[other]:.1f}x cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
