"""Golden log-mel features from librosa itself (the oracle for converters.mel_features).

Run OUTSIDE the project's venv, in one that has librosa (0.11.0 was used):
    /work/scratch/torchvenv/bin/python tests/data/features/make_librosa_golden.py tests/data/features
Writes, per recipe, the input signal (float32) and librosa's log-mel (frames × n_mels, float64).
The recipes mirror wavenet_edge.config presets vocoder-tiny and vocoder-small (r9y9 mulaw256).
"""
import json
import sys

import librosa
import numpy as np

OUT = sys.argv[1]
RECIPES = {
    "vocoder_tiny": dict(sr=16000, n_mels=20, n_fft=512, hop=128, win=512, fmin=50.0, fmax=7600.0,
                         power=1.0, pad_mode="reflect"),
    "r9y9_mulaw256": dict(sr=22050, n_mels=80, n_fft=1024, hop=256, win=1024, fmin=125.0,
                          fmax=7600.0, power=1.0, pad_mode="reflect"),
    "power_constant_nofmax": dict(sr=16000, n_mels=12, n_fft=256, hop=64, win=200, fmin=0.0,
                                  fmax=None, power=2.0, pad_mode="constant"),
}
for name, r in RECIPES.items():
    rng = np.random.default_rng(7)
    n = r["sr"] // 2 + 37
    t = np.arange(n) / r["sr"]
    y = (0.4 * np.sin(2 * np.pi * (200 + 1500 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
         + 0.05 * rng.normal(size=n)).astype(np.float32)
    S = librosa.feature.melspectrogram(y=y.astype(np.float64), sr=r["sr"], n_fft=r["n_fft"],
                                       hop_length=r["hop"], win_length=r["win"], window="hann",
                                       center=True, pad_mode=r["pad_mode"], power=r["power"],
                                       n_mels=r["n_mels"], fmin=r["fmin"], fmax=r["fmax"],
                                       htk=False, norm="slaney")
    logmel = np.log10(np.maximum(S, 1e-10)).T
    np.save(f"{OUT}/{name}_input.npy", y)
    np.save(f"{OUT}/{name}_logmel.npy", logmel)
    with open(f"{OUT}/{name}.json", "w") as f:
        json.dump(dict(r, librosa=librosa.__version__, frames=logmel.shape[0]), f, indent=1)
    print(name, y.shape, logmel.shape)
