"""Vocoding speed of the int8 engine: real-time factor of ``vocode`` and first-call compile time.

Usage::

    taskset -c 1 python benchmarks/bench_vocode.py                      # vocoder-tiny and -small
    python benchmarks/bench_vocode.py --models vocoder-tiny --seconds 4 --rounds 5
    python benchmarks/bench_vocode.py --model VOC.tflite                # a converted vocoder

For each model (``--models``: presets converted from a random initialisation with the
conditioning weights scaled up; speed does not depend on what the weights are): the features of
``--seconds`` of committed speech are vocoded with ``Engine.generate(n, cond=frames)`` (frame
graph + conditioned step graph, integer sampler) ``--rounds`` times, the models interleaved;
reported are medians of CPU-time samples/s, the real-time factor (samples/s over the sample
rate) and the frame graph's share (``feed_frames`` + ``end_frames`` timed alone).  Then the
first-call compile: a child process with an empty ``NUMBA_CACHE_DIR`` loads the model and runs
``Engine.warmup()`` (every kernel a vocoder uses: frame calls, conditioned process and
generate), and a second child with the now-filled cache does the same (cache load).  Not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLIPS = os.path.join(ROOT, "tests", "data", "clips")


def speech_clip(seconds, sr=16000):
    from wavenet_edge.audio import load_wav
    ys = [load_wav(os.path.join(CLIPS, f"speech_{w}.wav"), sr=sr)[0] for w in "abcd"]
    y = np.concatenate(ys)
    reps = int(np.ceil(seconds * sr / y.size))
    return np.tile(y, reps)[:int(seconds * sr)].astype(np.float64)


def random_vocoder(name: str) -> bytes:
    """A converted random-init preset (biases and conditioning weights non-trivial)."""
    from converters.convert import convert
    from wavenet_edge import FloatWaveNet
    from wavenet_edge.config import preset
    cfg = preset(name)
    m = FloatWaveNet.initialize(cfg, seed=0)
    rng = np.random.default_rng(7)
    for k, a in m.weights.items():
        if k.endswith("/b") or k == "initial/bias":
            m.weights[k] = rng.normal(0.0, 0.1, a.shape)
        if k.startswith("upsample/") or "cond" in k:
            m.weights[k] = rng.normal(0.0, 0.3, a.shape)
    cal = [speech_clip(1.0, cfg.sample_rate)]
    return convert(m, calibration=cal, method="minmax", progress=False,
                   evaluate_quality=False).tflite


def frames_of(eng, seconds):
    from converters.features import vocoder_inputs
    y = speech_clip(seconds, eng.sr)
    _, frames = vocoder_inputs(y, sr=eng.sr, config=eng.config)
    n = (frames.shape[0] - 2 * eng.config.cin_pad) * eng.config.hop
    return frames, n


def one_round(eng, frames, n):
    """(CPU seconds of generate with cond, CPU seconds of the frame stream alone)."""
    eng.reset()
    t0 = time.process_time()
    eng.generate(n, cond=frames, seed=1)
    gen = time.process_time() - t0
    s = eng.stream()
    t0 = time.process_time()
    s.feed_frames(frames)
    s.end_frames()
    return gen, time.process_time() - t0


_CHILD = r"""
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
from wavenet_edge.engine import Engine
eng = Engine(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()
eng.warmup()
t2, c2 = time.perf_counter(), time.process_time()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {c1 - c0:.3f} {c2 - c1:.3f}")
"""


def compile_times(path):
    """(load s, warm-up s, load CPU s, warm-up CPU s) with a cold numba cache, then with that
    cache filled."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = []
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", _CHILD, path], env=env, cwd=tempfile.gettempdir(),
                               capture_output=True, text=True, check=True)
            out.append(tuple(float(v) for v in r.stdout.split()[-4:]))
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["vocoder-tiny", "vocoder-small"])
    ap.add_argument("--model", nargs="+", default=None, help="converted vocoder .tflite files")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", default="tflm")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold-compile children")
    ap.add_argument("--no-speed", action="store_true", help="only the cold-compile children")
    args = ap.parse_args(argv)
    from wavenet_edge.engine import Engine

    tmp = tempfile.mkdtemp(prefix="bench-vocode-")
    paths = {}
    for p in args.model or []:
        paths[os.path.basename(p)] = p
    if not args.model:
        for name in args.models:
            path = os.path.join(tmp, f"{name}.tflite")
            with open(path, "wb") as f:
                f.write(random_vocoder(name))
            paths[name] = path
    if args.no_speed:
        engines = {}
    else:
        engines = {k: Engine(p, profile=args.profile) for k, p in paths.items()}
    work = {}
    for k, eng in engines.items():
        eng.warmup()
        work[k] = frames_of(eng, args.seconds)
    res = {k: [] for k in engines}
    for r in range(args.rounds if engines else 0):
        order = list(engines)[r % len(engines):] + list(engines)[:r % len(engines)]
        for k in order:
            res[k].append(one_round(engines[k], *work[k]))
    if engines:
        print(f"vocode, profile {args.profile}, {args.seconds:g} s of speech features, "
              f"{args.rounds} interleaved rounds (CPU time, medians; min-max in brackets)")
    for k, eng in engines.items():
        n = work[k][1]
        sps = np.array([n / g for g, _ in res[k]])
        share = np.array([f / g for g, f in res[k]])
        cfg = eng.config
        print(f"  {k:14s} L={cfg.n_layers} R={cfg.residual_channels} cin={cfg.cin_channels} "
              f"hop={cfg.hop} sr={eng.sr}: {np.median(sps):,.0f} samples/s "
              f"[{sps.min():,.0f}-{sps.max():,.0f}] = {np.median(sps) / eng.sr:.2f}x real time; "
              f"frame graph {100 * np.median(share):.1f} % of it; look-ahead "
              f"{eng.lookahead_frames} frames = {eng.lookahead_samples} samples")
    if not args.no_compile:
        for k, p in paths.items():
            (l0, w0, cl0, cw0), (l1, w1, cl1, cw1) = compile_times(p)
            print(f"  {k:14s} cold numba cache: load {l0:.1f} s + warm-up (compile) {w0:.1f} s "
                  f"wall (CPU {cl0:.1f} + {cw0:.1f} s); cached: load {l1:.1f} s + warm-up "
                  f"{w1:.2f} s wall (CPU {cl1:.1f} + {cw1:.2f} s)", flush=True)


if __name__ == "__main__":
    main()
