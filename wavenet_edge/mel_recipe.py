"""The feature recipe a locally conditioned WaveNet (a vocoder) expects: a log-mel spectrogram.

Only the *description* lives here (it travels inside :class:`~wavenet_edge.WaveNetConfig` and its
JSON); the host computes the features with :func:`converters.mel_features`.  The recipe follows
librosa's conventions (the ones r9y9/wavenet_vocoder's ``audio.logmelspectrogram`` uses):

* STFT with a periodic ``window`` of ``win_length`` samples zero-padded to ``n_fft``, hop
  ``hop_length``; with ``center`` the signal is padded by ``n_fft // 2`` on both sides
  (``pad_mode`` "reflect" or "constant"), giving ``1 + n // hop_length`` frames for n samples;
* magnitude (``power`` 1) or power (2) spectrum;
* a Slaney-style mel filterbank (librosa ``htk=False``, ``norm="slaney"``) of ``n_mels`` bands
  from ``fmin`` to ``fmax`` Hz (None = Nyquist);
* compression ``log10`` / ``ln`` of ``max(S, floor)``, or ``none``;
* normalisation ``none`` or ``meanvar`` (``(S - mean) / std`` per band; ``mean``/``std`` tuples
  of ``n_mels`` values, e.g. from r9y9's ``compute-meanvar-stats.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["MelRecipe", "WINDOWS", "COMPRESSIONS", "NORMALIZATIONS"]

WINDOWS = ("hann", "hamming", "rect")
COMPRESSIONS = ("log10", "ln", "none")
NORMALIZATIONS = ("none", "meanvar")


@dataclass(frozen=True)
class MelRecipe:
    """Log-mel features (frames × n_mels, float32); see the module docstring for each field."""

    n_mels: int = 80
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    window: str = "hann"
    fmin: float = 125.0
    fmax: float | None = 7600.0
    center: bool = True
    pad_mode: str = "reflect"
    power: float = 1.0
    compression: str = "log10"
    floor: float = 1e-10
    normalization: str = "none"
    mean: tuple = ()
    std: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        self.validate()

    def validate(self):
        for name in ("n_mels", "n_fft", "hop_length", "win_length"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"mel.{name} must be a positive integer, got {v!r}")
        if self.win_length > self.n_fft:
            raise ConfigError(f"mel.win_length ({self.win_length}) exceeds mel.n_fft ({self.n_fft})")
        if self.window not in WINDOWS:
            raise ConfigError(f"mel.window {self.window!r}; known: {', '.join(WINDOWS)}")
        if self.pad_mode not in ("reflect", "constant"):
            raise ConfigError(f"mel.pad_mode must be reflect or constant, got {self.pad_mode!r}")
        if self.power not in (1, 2, 1.0, 2.0):
            raise ConfigError(f"mel.power must be 1 (magnitude) or 2 (power), got {self.power!r}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"mel.compression {self.compression!r}; known: "
                              f"{', '.join(COMPRESSIONS)}")
        if not (isinstance(self.floor, (int, float)) and self.floor > 0):
            raise ConfigError(f"mel.floor must be > 0, got {self.floor!r}")
        if not (isinstance(self.fmin, (int, float)) and math.isfinite(self.fmin) and self.fmin >= 0):
            raise ConfigError(f"mel.fmin must be a number >= 0, got {self.fmin!r}")
        if self.fmax is not None and not (isinstance(self.fmax, (int, float))
                                          and self.fmax > self.fmin):
            raise ConfigError(f"mel.fmax must exceed mel.fmin ({self.fmin}), got {self.fmax!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"mel.normalization {self.normalization!r}; known: "
                              f"{', '.join(NORMALIZATIONS)}")
        if self.normalization == "meanvar":
            if len(self.mean) != self.n_mels or len(self.std) != self.n_mels:
                raise ConfigError(f"mel.normalization meanvar needs mean and std of {self.n_mels} "
                                  f"values each, got {len(self.mean)} and {len(self.std)}")
            if not all(math.isfinite(v) for v in self.mean) or \
                    not all(math.isfinite(v) and v > 0 for v in self.std):
                raise ConfigError("mel.mean must be finite and mel.std finite and > 0")
        elif self.mean or self.std:
            raise ConfigError("mel.mean / mel.std given but mel.normalization is 'none'")

    def check_sample_rate(self, sample_rate: int):
        if self.fmax is not None and self.fmax > sample_rate / 2:
            raise ConfigError(f"mel.fmax {self.fmax} Hz exceeds the Nyquist frequency "
                              f"{sample_rate / 2:g} Hz")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d) -> "MelRecipe":
        if isinstance(d, MelRecipe):
            return d
        if not isinstance(d, dict):
            raise ConfigError("mel must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown mel key(s): {', '.join(unknown)}")
        return cls(**d)
