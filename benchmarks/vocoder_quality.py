"""Does the conditioning carry information?  vocoder-tiny vs an unconditioned tiny, same speech.

Makes its own speech (Debian's espeak-ng and flite voices, resampled with sox to 16 kHz),
sentences 1-16 for training and 17-20 held out (four voices each), trains ``vocoder-tiny`` and
``tiny`` with the same step budget, batch, window, learning rate and seed, and prints held-out
bits/sample before/after for both.  Then resynthesizes one held-out sentence with the float
vocoder (free-running, sampled at temperature 1, conditioned on that sentence's mel) and compares
its loudness envelope with the original's (20 ms RMS in dB: correlation, and how many of the
original's silent frames stay silent).

Then (``--analysis``) why the gap is what it is: the trained vocoder scored with wrong features
(all-mean features, frames shuffled in time, shifted by ±1/±2 frames: how much it relies on them
and that the alignment is centred), and the per-sample gain split by the original's loudness and
by how fast the mel changes (where the features tell what the past samples cannot).
With both models it also prints the paired per-clip gain on all 16 held-out clips (mean,
standard error, how many clips the vocoder wins).

    python benchmarks/vocoder_quality.py [--steps 2000] [--analysis] [--plot envelope.png]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A small microcontroller can run a neural network if the model is tiny enough.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "Every morning the train leaves the station at seven fifteen sharp.",
    "Numbers like four, eight, fifteen, sixteen, twenty three and forty two are easy to say.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The weather today is cloudy with a chance of light rain in the afternoon.",
    "Quantization maps real numbers onto a small set of integer levels.",
    "He walked slowly across the empty room and opened the window.",
    "Bright lights shone over the quiet harbour as the boats came home.",
    "My favourite colours are green, blue, and a deep shade of violet.",
    "The committee will meet again next Tuesday to discuss the budget.",
    "Water boils at one hundred degrees at sea level.",
    "They planted tomatoes, beans and carrots in the garden behind the house.",
    "Can you hear the difference between the original and the copy?",
    "The old clock on the wall struck midnight and everyone went quiet.",
    "Engineers measured the latency of every layer on the device.",
    "A gentle breeze moved the leaves of the tall oak tree.",
    "Reading a good book on a rainy day is a simple pleasure.",
    "The museum opens at nine and closes at five on weekdays.",
]
VOICES = [("espeak-ng", "en-us"), ("espeak-ng", "en-gb+f3"), ("flite", "slt"), ("flite", "rms")]
N_TRAIN = 16


def speak(text, engine, voice, out16k):
    raw = out16k + ".raw.wav"
    if engine == "espeak-ng":
        subprocess.run(["espeak-ng", "-v", voice, "-w", raw, text], check=True)
    else:
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", raw], check=True)
    subprocess.run(["sox", "-q", raw, "-r", "16000", "-c", "1", "-b", "16", out16k], check=True)
    os.remove(raw)


def make_speech(d):
    from wavenet_edge import load_wav
    train, held = [], []
    for i, text in enumerate(SENTENCES):
        for engine, voice in VOICES:
            p = os.path.join(d, f"{i:02d}_{voice.replace('+', '_')}.wav")
            speak(text, engine, voice, p)
            y, sr = load_wav(p)
            assert sr == 16000
            (train if i < N_TRAIN else held).append(y)
    return train, held


def envelope_db(y, frame=320):
    n = len(y) // frame
    rms = np.sqrt(np.mean(y[:n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-5))


def resynthesize(model, y, *, seed=0):
    """Free-running float generation conditioned on the mel of ``y`` (same length)."""
    from converters import vocoder_inputs
    from wavenet_edge import decode_classes
    cfg = model.config
    if cfg.has_cond:
        y2, cond = vocoder_inputs(y, sr=cfg.sample_rate, config=cfg)
        st = model.stepper(cond=cond, n=len(y2))
    else:                         # the unconditioned model: same length, nothing to follow
        y2 = y[:len(y) - len(y) % preset_hop()]
        st = model.stepper()
    rng = np.random.default_rng(seed)
    code = 127 if cfg.mulaw == "wavenet_vocoder" else 128
    out = np.empty(len(y2), np.int64)
    for t in range(len(y2)):
        lg = st.step(code)
        p = np.exp(lg - lg.max())
        p /= p.sum()
        code = int(rng.choice(256, p=p))
        out[t] = code
    return y2, decode_classes(out, convention=cfg.mulaw)


def preset_hop() -> int:
    from wavenet_edge import preset
    return preset("vocoder-tiny").hop


def envelope_report(name, y2, gen, seconds):
    e_o, e_g = envelope_db(y2), envelope_db(gen)
    r = float(np.corrcoef(e_o, e_g)[0, 1])
    silent = e_o < e_o.max() - 40
    loud = e_o > e_o.max() - 20
    print(f"{name}: resynthesis of held-out clip 0 ({len(y2) / 16000:.2f} s, {seconds:.0f} s): "
          f"20 ms loudness envelope correlation r = {r:.3f}; original's silent frames "
          f"(< max-40 dB, {silent.sum()}): generated median "
          f"{np.median(e_g[silent]) - e_o.max():.1f} dB re original max; loud frames "
          f"(> max-20 dB, {loud.sum()}): generated median {np.median(e_g[loud]) - e_o.max():.1f} dB",
          flush=True)
    return e_o, e_g


def heldout_inputs(cfg, held):
    """Per held-out clip ``(codes (n,) int64, cond)`` as training scores them."""
    from converters import vocoder_inputs
    from wavenet_edge import encode_classes
    out = []
    for y in held:
        y2, cond = vocoder_inputs(y, sr=cfg.sample_rate, config=cfg)
        out.append((encode_classes(y2, convention=cfg.mulaw).astype(np.int64), cond))
    return out


def sample_bits(model, codes, cond=None):
    """Teacher-forced bits of each of ``codes[1:]`` (zero history, as held-out scoring)."""
    lg = model.logits(codes, cond=cond)[:-1] if cond is not None else model.logits(codes[:-1])
    mx = lg.max(axis=1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(lg - mx).sum(axis=1))
    return (lse - lg[np.arange(lg.shape[0]), codes[1:]]) / np.log(2.0)


def _mean_bits(model, inputs, edit=lambda c: c):
    tot = [sample_bits(model, codes, edit(cond)) for codes, cond in inputs]
    return float(np.concatenate(tot).mean())


def paired_report(voc, tiny, held):
    """Per held-out clip, teacher-forced: tiny's minus vocoder-tiny's mean bits/sample (printed),
    with the mean over clips, its standard error and how many clips the vocoder wins."""
    inputs = heldout_inputs(voc.config, held)
    gains = np.array([sample_bits(tiny, codes).mean() - sample_bits(voc, codes, cond).mean()
                      for codes, cond in inputs])
    se = gains.std(ddof=1) / np.sqrt(len(gains)) if len(gains) > 1 else float("nan")
    print(f"paired per held-out clip ({len(gains)} clips, 4 voices): gain "
          f"{gains.mean():.3f} ± {se:.3f} (s.e.) bits/sample, min {gains.min():.3f}, "
          f"max {gains.max():.3f}; vocoder-tiny lower on {int((gains > 0).sum())} of "
          f"{len(gains)}", flush=True)
    print("  per clip: " + ", ".join(f"{g:.3f}" for g in gains), flush=True)
    return gains


def analysis(voc, tiny, held):
    """Why the gap is what it is (printed): feature ablations and where the gain lies."""
    from wavenet_edge import decode_classes
    inputs = heldout_inputs(voc.config, held)
    rng = np.random.default_rng(0)

    def shift(k):                 # k > 0: each sample sees the features of k frames earlier
        return lambda c: (np.concatenate([np.repeat(c[:1], k, 0), c[:-k]]) if k > 0 else
                          np.concatenate([c[-k:], np.repeat(c[-1:], -k, 0)]))
    true = _mean_bits(voc, inputs)
    print(f"ablation (the trained vocoder-tiny, held out): true features {true:.3f} bits/sample",
          flush=True)
    for name, edit in [("all-mean features (zeros)", np.zeros_like),
                       ("frames shuffled in time", lambda c: c[rng.permutation(c.shape[0])]),
                       ("features 1 frame late", shift(1)), ("features 1 frame early", shift(-1)),
                       ("features 2 frames late", shift(2)), ("features 2 frames early", shift(-2))]:
        b = _mean_bits(voc, inputs, edit)
        print(f"  {name:>26}: {b:.3f} ({b - true:+.3f})", flush=True)
    gain, loud, flux = [], [], []
    hop = voc.config.hop
    for codes, cond in inputs:
        g = sample_bits(tiny, codes) - sample_bits(voc, codes, cond)
        e = envelope_db(decode_classes(codes, convention=voc.config.mulaw))
        e = np.repeat(e - e.max(), 320)
        loud.append(np.pad(e, (0, max(0, g.size - e.size)), mode="edge")[:g.size])
        S = cond[voc.config.cin_pad:cond.shape[0] - voc.config.cin_pad]
        fl = np.r_[np.linalg.norm(np.diff(S, axis=0), axis=1), 0.0]   # frame f → f+1 change
        flux.append(np.repeat(fl, hop)[:g.size])
        gain.append(g)
    gain, loud, flux = map(np.concatenate, (gain, loud, flux))
    print(f"gain (tiny minus vocoder-tiny, bits/sample) {gain.mean():.3f}, split by the original's "
          "20 ms loudness re its max:")
    for lo, hi in [(-300, -40), (-40, -20), (-20, 1)]:
        m = (loud >= lo) & (loud < hi)
        print(f"  [{lo:4d}, {hi:3d}) dB: {m.mean():5.1%} of samples, gain {gain[m].mean():.3f}, "
              f"share of the total {gain[m].sum() / gain.size:.3f}")
    print("split by how much the mel changes to the next frame (quartiles; |ΔS| normalised units):")
    qs = np.quantile(flux, [0, 0.25, 0.5, 0.75, 1.0])
    for lo, hi in zip(qs[:-1], qs[1:]):
        m = (flux >= lo) & (flux <= hi)
        print(f"  |ΔS| [{lo:5.2f}, {hi:5.2f}]: gain {gain[m].mean():.3f}, share {gain[m].sum() / gain.size:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[2000],
                    help="step budgets; several = one pair of runs per budget (the gap vs steps)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heldout-clips", type=int, default=8,
                    help="held-out clips scored (of 16; default 8, two per voice)")
    ap.add_argument("--plot", default=None, help="PNG of the two loudness envelopes")
    ap.add_argument("--save-dir", default=None, help="also write the trained .npz and WAVs here")
    ap.add_argument("--models", nargs="+", default=["vocoder-tiny", "tiny"],
                    choices=["vocoder-tiny", "tiny"], help="which of the two to train")
    ap.add_argument("--analysis", action="store_true",
                    help="feature ablations and where the gain lies (last budget's models)")
    ap.add_argument("--no-resynthesis", action="store_true", help="skip the free-running part")
    ap.add_argument("--load-dir", default=None,
                    help="skip training: load vocoder-tiny.npz and tiny.npz written by --save-dir")
    args = ap.parse_args(argv)

    from converters import train
    from wavenet_edge import write_wav

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        clips, held = make_speech(d)
        print(f"speech: {len(clips)} training clips ({sum(map(len, clips)) / 16000:.1f} s), "
              f"{len(held)} held-out clips ({sum(map(len, held)) / 16000:.1f} s) "
              f"made in {time.perf_counter() - t0:.1f} s", flush=True)
    # two sentences × four voices, interleaved so every voice is scored
    held_all, held = held, held[:args.heldout_clips]
    results = {}
    gaps = []
    for steps in args.steps if args.load_dir is None else ():
        results = {}
        for name in args.models:
            model, h = train(name, clips, steps=steps, batch_size=args.batch_size,
                             seed=args.seed, heldout=held, progress=True,
                             log_fn=lambda m: print(m, file=sys.stderr))
            results[name] = (model, h)
            print(f"{name:>13}: held-out {h['heldout_bits_before']:.3f} -> "
                  f"{h['heldout_bits_after']:.3f} bits/sample after {h['steps']} steps "
                  f"({h['seconds']:.0f} s, {h['positions']:,} scored samples); order-0 entropy "
                  f"{h['heldout_order0_bits']:.3f}; training loss, last 10 %: "
                  f"{np.mean(h['loss_bits'][-max(1, steps // 10):]):.3f}", flush=True)
            if args.save_dir:
                os.makedirs(args.save_dir, exist_ok=True)
                model.save(os.path.join(args.save_dir, f"{name}.npz"))
        if len(results) == 2:
            gap = (results["tiny"][1]["heldout_bits_after"]
                   - results["vocoder-tiny"][1]["heldout_bits_after"])
            gaps.append((steps, gap))
            print(f"conditioning gain after {steps} steps: {gap:.3f} bits/sample "
                  "(tiny minus vocoder-tiny, held out)", flush=True)
    if len(gaps) > 1:
        print("gap vs steps: " + ", ".join(f"{s}: {g:.3f}" for s, g in gaps))
    if args.load_dir is None and len(results) < 2:
        return
    if args.load_dir is not None:
        from wavenet_edge import FloatWaveNet
        results = {n: (FloatWaveNet.load(os.path.join(args.load_dir, f"{n}.npz")), None)
                   for n in ("vocoder-tiny", "tiny")}
    paired_report(results["vocoder-tiny"][0], results["tiny"][0], held_all)
    if args.analysis:
        analysis(results["vocoder-tiny"][0], results["tiny"][0], held)

    if args.no_resynthesis:
        return
    y = held[0]
    envs = {}
    for name in ("vocoder-tiny", "tiny"):
        t0 = time.perf_counter()
        y2, gen = resynthesize(results[name][0], y, seed=args.seed)
        envs[name] = envelope_report(name, y2, gen, time.perf_counter() - t0)
        if args.save_dir:
            os.makedirs(args.save_dir, exist_ok=True)
            write_wav(os.path.join(args.save_dir, "heldout0_original.wav"), y2, 16000)
            write_wav(os.path.join(args.save_dir, f"heldout0_{name}.wav"), gen, 16000)
    e_o, e_g = envs["vocoder-tiny"]
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(9, 3))
        tt = np.arange(len(e_o)) * 0.02
        ax.plot(tt, e_o, label="original (held out)")
        ax.plot(tt, e_g, label="vocoder-tiny (mel-conditioned), float, sampled", alpha=0.8)
        ax.plot(tt, envs["tiny"][1], label="tiny (unconditioned), same steps", alpha=0.6,
                color="gray", lw=0.8)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("20 ms RMS (dB)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
