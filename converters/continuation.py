"""Continuing held-out audio with the int8 engine, and how close the continuation comes.

A WaveNet predicts the next sample from what it has heard.  The plainest demonstration: prime it
with the first part of a clip it never saw, let it generate the rest free-running, and compare
that continuation with the clip's real continuation.  Waveforms cannot be compared (phases drift
after a few periods), magnitude spectrograms can: the distance used is the spectral convergence
``‖|S_gen| − |S_ref|‖_F / ‖|S_ref|‖_F`` over the continuation's frames — 0 for the original
itself, exactly 1 for silence, above 1 for energy where the original has none (noise, a wrong
tone).  It is measured for a range of sampling temperatures (the engine's integer temperature
table); the smallest mean distance picks the temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wavenet_edge.errors import ConfigError
from wavenet_edge.mulaw import encode_classes

__all__ = ["TEMPERATURES", "spectral_convergence", "ContinuationResult", "continue_clips"]

TEMPERATURES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
N_FFT, HOP = 512, 128


def _magnitudes(y) -> np.ndarray:
    """|STFT| (frames, N_FFT//2 + 1), Hann window, no padding: float64."""
    y = np.asarray(y, np.float64)
    if y.shape[0] < N_FFT:
        raise ConfigError(f"need at least {N_FFT} samples for a spectrogram, got {y.shape[0]}")
    frames = 1 + (y.shape[0] - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    return np.abs(np.fft.rfft(y[idx] * np.hanning(N_FFT), axis=1))


def spectral_convergence(generated, reference) -> float:
    """``‖|S_g| − |S_r|‖_F / ‖|S_r|‖_F`` of two equally long float signals (see module doc)."""
    g, r = np.asarray(generated), np.asarray(reference)
    if g.shape != r.shape or g.ndim != 1:
        raise ConfigError(f"signals must be 1-D and equally long, got {g.shape} and {r.shape}")
    A, B = _magnitudes(g), _magnitudes(r)
    den = float(np.linalg.norm(B))
    if den == 0.0:
        raise ConfigError("the reference continuation is silent")
    return float(np.linalg.norm(A - B)) / den


@dataclass
class ContinuationResult:
    """Outcome of :func:`continue_clips`.

    distance : {temperature: mean spectral convergence over clips and seeds}
    per_clip : {temperature: (clips,) mean over seeds}
    baselines : {"silence": 1.0, "other clip": mean distance of another held-out clip's
        continuation (a plausible tone, but the wrong one)}
    best : the temperature with the smallest mean distance
    prime : samples of each clip fed teacher-forced
    audio : {temperature: (clips, n - prime) float32} continuations of seed 0
    """

    distance: dict
    per_clip: dict
    baselines: dict
    best: float
    prime: int
    seeds: int
    audio: dict = field(repr=False)

    def table(self) -> str:
        rows = [f"  {'temperature':>11}  {'spectral distance':>17}  (1.0 = silence, "
                f"{self.baselines['other clip']:.2f} = another clip's continuation)"]
        for t, d in self.distance.items():
            rows.append(f"  {t:>11.1f}  {d:>17.3f}" + ("  <- best" if t == self.best else ""))
        return "\n".join(rows)

    def to_dict(self) -> dict:
        return {"prime_samples": self.prime, "seeds": self.seeds, "best_temperature": self.best,
                "spectral_distance": {f"{t:g}": d for t, d in self.distance.items()},
                "per_clip": {f"{t:g}": [float(x) for x in v] for t, v in self.per_clip.items()},
                "baselines": self.baselines}


def continue_clips(engine, clips, *, prime: int, temperatures=TEMPERATURES, seeds: int = 2,
                   progress: bool = False) -> ContinuationResult:
    """Prime ``engine`` with the first ``prime`` samples of each clip and generate the rest.

    engine : a :class:`wavenet_edge.Engine` (batch 1); clips : float (n,) arrays in [-1, 1] at the
    engine's rate, each longer than ``prime + N_FFT``; temperatures : > 0 (0 = greedy is allowed);
    seeds : generations per clip and temperature (distances are averaged over them).
    """
    clips = [np.asarray(c, np.float64) for c in clips]
    if not clips:
        raise ConfigError("no clips to continue")
    if prime < 1 or any(c.shape[0] < prime + N_FFT for c in clips):
        raise ConfigError(f"every clip needs more than prime + {N_FFT} samples")
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    from tqdm.auto import tqdm
    conv = engine.config.mulaw
    per_clip, audio = {}, {}
    with tqdm(total=len(temperatures) * len(clips) * seeds, desc="continuing", unit="clip",
              disable=not progress, leave=False) as bar:
        for t in temperatures:
            d = np.zeros(len(clips))
            outs = []
            for i, y in enumerate(clips):
                codes = encode_classes(np.clip(y, -1.0, 1.0), convention=conv)
                for s in range(seeds):
                    engine.reset()
                    g = engine.decode(engine.generate(y.shape[0] - prime, seed=s, temperature=t,
                                                      prime=codes[:prime]))
                    d[i] += spectral_convergence(g, y[prime:]) / seeds
                    if s == 0:
                        outs.append(g)
                    bar.update()
            per_clip[float(t)] = d
            audio[float(t)] = outs
    engine.reset()
    distance = {t: float(v.mean()) for t, v in per_clip.items()}
    other = [spectral_convergence(clips[(i + 1) % len(clips)][prime:][:c.shape[0] - prime],
                                  c[prime:]) if clips[(i + 1) % len(clips)].shape[0] >= c.shape[0]
             else np.nan for i, c in enumerate(clips)]
    best = min(distance, key=distance.get)
    return ContinuationResult(distance=distance, per_clip=per_clip,
                              baselines={"silence": 1.0, "other clip": float(np.nanmean(other))},
                              best=best, prime=int(prime), seeds=int(seeds), audio=audio)
