"""Samples per second of the int8 engine against the real interpreters, as ratios from interleaved runs.

Usage::

    taskset -c 1 python benchmarks/bench_engine.py --preset small     # converts a random-init model
    python benchmarks/bench_engine.py --model MODEL.tflite --rounds 9
    python benchmarks/bench_engine.py --preset small --breakdown       # cost per operator kind

The machine may be shared, so absolute figures drift; what this script reports is *ratios from
interleaved runs*: every contender runs once per round (the order rotating between rounds), each
run lasting about ``--seconds``, and a ratio is the median over rounds of the per-round ratio, with
its spread (min–max) so that the noise is visible.  Everything in the main table runs in this one
process, pinned to one core, on the same ``.tflite``:

* engine B=1 and B=16 (``Engine.process``: the sample loop runs inside numba),
* LiteRT default (XNNPACK delegate), LiteRT builtin kernels and TFLM: per step the host sets
  ``sample`` and every delay-line read, invokes, reads the outputs and pushes the writes
  (``ContractHost``, exactly what a firmware integrator does),
* a float32 numpy queue implementation of the same network (``--preset`` only).

Then, unless switched off: ``Engine(..., batch=B, threads=T)`` aggregate samples/s for T = 1 and 2
on every core of the machine (when the engine has ``threads``), and the portable path
(``NUMBA_CPU_NAME=generic``: no AVX-512, what an ARM phone's numba compiles to in spirit) in a
child process, again as interleaved ratios against LiteRT default in that process.

``--baseline DIR`` adds the engine of another checkout (``DIR/wavenet_edge``, e.g. main before a
change), imported under another package name into this same process, as two more contenders
(B=1 and B=16) of the same rounds: before/after ratios on one machine state.

``--breakdown`` times programs restricted to one operator kind (and the delay-line copies alone)
on a B=1 engine: what a step spends per kind.  Not a test: targets are checked by reading the
numbers.
"""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys
import time

import numpy as np

# names of the engine's schedule row kinds (wavenet_edge.lowered.OpKind)
_KIND_NAMES = {1: "GATHER", 2: "FULLY_CONNECTED", 3: "ADD", 4: "MUL", 5: "TANH/LOGISTIC",
               6: "SOFTMAX", 7: "COPY", 8: "FC pair (filter+gate)", 9: "gate (tanh, σ, MUL)"}


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

    def reset(self):
        for L in self.layers:
            L["q"][:] = 0
            L["pos"] = 0
        self.codes = [-1] * (self.cfg.initial_filter_width - 1)

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


# --------------------------------------------------------------------------------------------
# interleaved timing
# --------------------------------------------------------------------------------------------
class Runner:
    """A contender: ``run(n)`` processes ``n`` samples per stream from a reset state; ``streams``
    multiplies the samples into the aggregate rate.  ``n`` is calibrated so that one run lasts
    about the target time (all contenders of a round then see the same machine state)."""

    def __init__(self, name, run, streams=1, n_max=1 << 20):
        self.name, self._run, self.streams, self.n_max = name, run, streams, n_max
        self.n = 64
        self.rates = []        # aggregate samples/s per round, by process CPU time
        self.wall_rates = []   # the same by wall-clock time

    def calibrate(self, seconds):
        self._run(min(16, self.n_max))                 # compile / load the numba cache
        n = min(64, self.n_max)
        while True:
            t = time.perf_counter()
            self._run(n)
            dt = time.perf_counter() - t
            if dt > seconds / 4 or n >= self.n_max:
                break
            n = min(self.n_max, n * 4)
        self.n = int(max(16, min(self.n_max, n * seconds / max(dt, 1e-6))))

    def once(self):
        t, c = time.perf_counter(), time.process_time()
        self._run(self.n)
        dc, dt = time.process_time() - c, time.perf_counter() - t
        self.rates.append(self.n * self.streams / max(dc, 1e-9))
        self.wall_rates.append(self.n * self.streams / dt)


def interleave(runners, rounds, seconds, log=None):
    for r in runners:
        r.calibrate(seconds)
    for k in range(rounds):
        order = runners[k % len(runners):] + runners[:k % len(runners)]
        if k % 2:
            order = order[::-1]
        for r in order:
            r.once()
        if log:
            log(f"round {k + 1}/{rounds}")


def ratio(a: Runner, b: Runner, wall=False):
    """Median, min and max over rounds of a's rate / b's rate in the same round."""
    ra, rb = (a.wall_rates, b.wall_rates) if wall else (a.rates, b.rates)
    q = np.asarray(ra) / np.asarray(rb)
    return float(np.median(q)), float(q.min()), float(q.max())


def _fmt_ratio(a, b, wall=False):
    m, lo, hi = ratio(a, b, wall)
    return f"{m:.2f}x (rounds {lo:.2f}-{hi:.2f}, spread ±{50 * (hi - lo) / m:.0f} %)"


def _pin(core):
    if core is not None and hasattr(os, "sched_setaffinity"):
        avail = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core if core in avail else avail[-1]})


def _engine_runner(Engine, data, label, profile, B, codes, threads=None):
    kw = dict(profile=profile, batch=B, name=label)
    if threads is not None:
        kw["threads"] = threads
    e = Engine.from_bytes(data, **kw)
    cs = np.ascontiguousarray(np.stack([np.roll(codes, 97 * b) for b in range(B)]))

    def run(n):
        e.reset()
        e.process(cs[:, :n] if B > 1 else cs[0, :n], logits=False)

    name = f"engine B={B}" + (f" threads={threads}" if threads is not None else "")
    return Runner(name, run, streams=B, n_max=codes.size), e


def _host_runner(data, rt, name, codes):
    from converters.host import ContractHost
    host = ContractHost(data, rt)

    def run(n):
        host.reset()
        host.run(codes[:n], outputs=("probs",))
    return Runner(name, run, n_max=codes.size)


def _load(args):
    if args.model:
        with open(args.model, "rb") as f:
            return f.read(), os.path.basename(args.model), None
    t = time.perf_counter()
    data = _build(args.preset)
    print(f"converted preset {args.preset} in {time.perf_counter() - t:.1f} s "
          f"({len(data):,} bytes)", file=sys.stderr)
    from converters.canonical import canonicalize
    from wavenet_edge import FloatWaveNet, preset
    return data, args.preset, canonicalize(FloatWaveNet.initialize(preset(args.preset), seed=0))


def _baseline_engine(path):
    """``Engine`` of the checkout at ``path``, imported as package ``wavenet_edge_baseline``
    (a copy in a temporary directory: the runtime's imports are package-relative, so the copy
    runs as it is, with its own numba cache)."""
    import importlib
    import shutil
    import tempfile
    src = os.path.join(os.path.abspath(path), "wavenet_edge")
    if not os.path.isfile(os.path.join(src, "engine.py")):
        raise SystemExit(f"--baseline {path}: no wavenet_edge/engine.py there")
    root = os.path.join(tempfile.gettempdir(), f"wavenet_edge_baseline_{os.getuid()}")
    dst = os.path.join(root, "wavenet_edge_baseline")
    shutil.copytree(src, dst, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, root)
    return importlib.import_module("wavenet_edge_baseline.engine").Engine


def _print_rates(runners, sr, macs):
    print(f"{'runtime':<30}{'samples/s cpu':>14}{'(wall)':>10}{'x real time':>13}{'GMAC/s':>9}")
    for r in runners:
        s, w = float(np.median(r.rates)), float(np.median(r.wall_rates))
        print(f"{r.name:<30}{s:>14,.0f}{w:>10,.0f}{s / sr:>13.2f}{s * macs / 1e9:>9.2f}")


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------
def main_table(args, data, label, float_model, codes):
    from wavenet_edge.engine import Engine

    e1, eng = _engine_runner(Engine, data, label, args.profile, 1, codes)
    e16, _ = _engine_runner(Engine, data, label, args.profile, 16, codes)
    runners = [e1, e16]
    base = []
    if args.baseline:
        BaseEngine = _baseline_engine(args.baseline)
        for B in (1, 16):
            r, _ = _engine_runner(BaseEngine, data, label, args.profile, B, codes)
            r.name = "baseline " + r.name
            base.append(r)
    names = [("litert-default", "LiteRT default (XNNPACK)"), ("litert", "LiteRT builtin"),
             ("tflm", "TFLM")]
    if args.quick:
        names = names[:1]
    for rt, name in names:
        try:
            runners.append(_host_runner(data, rt, name, codes))
        except Exception as e:  # pragma: no cover - depends on installed runtimes
            print(f"{name}: unavailable ({e})", file=sys.stderr)
    if float_model is not None and not args.quick:
        fs = Float32Stepper(float_model)

        def run(n):
            fs.reset()
            for x in codes[:n]:
                fs.step(x)
        runners.append(Runner("float32 numpy queue", run, n_max=codes.size))
    runners += base
    interleave(runners, args.rounds, args.seconds,
               log=lambda s: print(s, file=sys.stderr, end="\r"))
    cfg, p = eng.config, eng.program
    print(f"\nmodel {label}: {cfg.n_layers} layers, R={cfg.residual_channels} "
          f"G={cfg.dilation_channels} S={cfg.skip_channels} E={cfg.end_channels}, "
          f"{p.macs_per_sample:,} MACs/sample, {eng.sr} Hz; profile {args.profile}; "
          f"one core; {args.rounds} interleaved rounds of ~{args.seconds} s per contender; "
          f"NUMBA_CPU_NAME={os.environ.get('NUMBA_CPU_NAME', 'host')}")
    _print_rates(runners, eng.sr, p.macs_per_sample)
    print("ratios (median over rounds of the same-round ratio; CPU time, then wall clock):")
    others = [o for o in runners[2:] if o not in base]
    pairs = [(e1, o) for o in others] + [(e16, e1)]
    if base:
        pairs += [(base[0], others[0]), (base[1], base[0]), (e1, base[0]), (e16, base[1])]
    for a, b in pairs:
        print(f"  {a.name} / {b.name}: {_fmt_ratio(a, b)}; wall {ratio(a, b, True)[0]:.2f}x")
    return {r.name: r for r in runners}


def threads_table(args, data, label, codes):
    from wavenet_edge.engine import Engine

    if "threads" not in inspect.signature(Engine.__init__).parameters:
        print("\nthreads: this engine has no threads= option")
        return
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    runners = []
    for B in args.thread_batches:
        for T in (1, 2):
            runners.append(_engine_runner(Engine, data, label, args.profile, B, codes, T)[0])
    interleave(runners, args.rounds, args.seconds)
    print(f"\nthreads ({ncpu} cores available, shared machine): aggregate samples/s by wall "
          f"clock (CPU time sums the threads)")
    print(f"{'runtime':<30}{'samples/s':>12}")
    for r in runners:
        print(f"{r.name:<30}{np.median(r.wall_rates):>12,.0f}")
    for i in range(0, len(runners), 2):
        a, b = runners[i + 1], runners[i]
        print(f"  {a.name} / {b.name}: {_fmt_ratio(a, b, wall=True)}")


def portable_table(args):
    """Re-run this script's main table (quick: engine and LiteRT default) under
    NUMBA_CPU_NAME=generic in a child process, pinned like this one."""
    cmd = [sys.executable, os.path.abspath(__file__), "--quick", "--no-threads", "--no-portable",
           "--rounds", str(args.rounds), "--seconds", str(args.seconds), "--profile", args.profile]
    cmd += ["--model", args.model] if args.model else ["--preset", args.preset]
    if args.core is not None:
        cmd += ["--core", str(args.core)]
    env = dict(os.environ, NUMBA_CPU_NAME="generic")
    print("\nportable path (child process, NUMBA_CPU_NAME=generic):", flush=True)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    out = r.stdout.strip().splitlines()
    print("\n".join("  " + s for s in out if s.strip()) if r.returncode == 0 else
          f"  failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")


def breakdown(args, data, label, codes):
    """Per-kind cost of one step of ``--breakdown-batch`` streams: the program restricted to the rows of one kind (the other
    rows skipped; activations are then stale, which changes no op's cost), the delay-line copies
    alone, and nothing (the per-call overhead), each timed in interleaved rounds."""
    from wavenet_edge.engine import Engine

    B = args.breakdown_batch
    eng = Engine.from_bytes(data, profile=args.profile, name=label, batch=B)
    sh = eng._shared                       # the engine's schedule (wavenet_edge.program.Consts)
    full, head = sh.consts, sh.head
    kind = full.ops["kind"]
    cs = np.ascontiguousarray(np.stack([np.roll(codes, 97 * b) for b in range(B)]))

    def variant(rows, with_dl):
        c = full._replace(ops=np.ascontiguousarray(full.ops[rows]))
        if not with_dl:
            c = c._replace(reads=full.reads[:0], writes=full.writes[:0])

        def run(n):
            sh.consts, sh.head = c, None
            eng.reset()
            eng.process(cs[:, :n] if B > 1 else codes[:n])
        return run

    runners = [Runner("full step", variant(np.arange(kind.size), True), n_max=codes.size),
               Runner("empty (call + output copy)", variant(np.zeros(0, int), False),
                      n_max=codes.size),
               Runner("delay lines only", variant(np.zeros(0, int), True), n_max=codes.size)]
    for k in sorted(set(int(k) for k in kind)):
        rows = np.flatnonzero(kind == k)
        runners.append(Runner(f"{_KIND_NAMES.get(k, k)} ×{rows.size}", variant(rows, False),
                              n_max=codes.size))
    interleave(runners, args.rounds, args.seconds)
    sh.consts, sh.head = full, head
    empty = 1e9 / np.median(runners[1].rates)
    total = 1e9 / np.median(runners[0].rates)
    print(f"\nB={B} step breakdown, {label} (profile {args.profile}, one core, "
          f"NUMBA_CPU_NAME={os.environ.get('NUMBA_CPU_NAME', 'host')}): ns/step, "
          f"minus the empty program's {empty:.0f} ns")
    parts = 0.0
    for r in runners:
        ns = 1e9 / np.median(r.rates)
        spread = 1e9 * (1 / min(r.rates) - 1 / max(r.rates))
        net = ns - empty if r is not runners[0] else ns
        if r not in runners[:2]:
            parts += net
        print(f"  {r.name:<34}{ns:>9.0f} ns  net {net:>7.0f} ns  ({100 * net / total:4.1f} %)"
              f"  spread {spread:.0f} ns")
    print(f"  sum of parts + empty = {parts + empty:.0f} ns vs full {total:.0f} ns")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--preset", default="small", help="tiny, small, tensorflow-wavenet (default small)")
    g.add_argument("--model", help="an existing wavenet-edge .tflite")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--seconds", type=float, default=0.4,
                    help="target duration of one contender's run (default 0.4)")
    ap.add_argument("--profile", default="tflm", help="engine int8 profile (default tflm)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also time the engine of the checkout DIR in the same rounds")
    ap.add_argument("--core", type=int, default=1, help="core to pin to (default 1)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    ap.add_argument("--quick", action="store_true",
                    help="main table with engine and LiteRT default only")
    ap.add_argument("--no-threads", action="store_true", help="skip the threads table")
    ap.add_argument("--thread-batches", type=int, nargs="+", default=[2, 16],
                    help="batch sizes of the threads table (default 2 16)")
    ap.add_argument("--no-portable", action="store_true", help="skip the portable-path child")
    ap.add_argument("--breakdown", action="store_true",
                    help="only the per-operator-kind cost of a step (ns per step of all streams)")
    ap.add_argument("--breakdown-batch", type=int, default=1, help="streams of --breakdown")
    args = ap.parse_args(argv)
    if args.no_pin:
        args.core = None
    _pin(args.core)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    data, label, float_model = _load(args)
    codes = np.random.default_rng(0).integers(0, 256, 1 << 16).astype(np.int32)
    if args.breakdown:
        breakdown(args, data, label, codes)
        return 0
    main_table(args, data, label, float_model, codes)
    if not args.no_portable:
        portable_table(args)
    if not args.no_threads:
        threads_table(args, data, label, codes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
