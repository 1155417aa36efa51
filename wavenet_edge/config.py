"""WaveNet hyper-parameters: one dataclass, validation, JSON round-trip, named presets."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from .errors import ConfigError
from .mulaw import CONVENTIONS

__all__ = ["WaveNetConfig", "PRESETS", "preset"]


def _octaves(top: int, blocks: int) -> tuple:
    return tuple(2**i for i in range(int(math.log2(top)) + 1)) * blocks


@dataclass(frozen=True)
class WaveNetConfig:
    """Hyper-parameters of a WaveNet.

    dilations : per dilated layer, in samples (e.g. ``(1, 2, …, 512) × blocks``)
    kernel_size : taps per dilated convolution (≥ 2); tap ``j`` sees ``h[t - (k-1-j)·d]``
    residual_channels, dilation_channels, skip_channels, end_channels : widths R, G, S, E
    quantization_channels : softmax classes Q (256 for 8-bit mu-law)
    initial_filter_width : width of the initial causal layer on the one-hot input
        (1 = a 1×1 lookup; tensorflow-wavenet uses 32)
    use_biases : whether the convolutions carry biases
    residual_scale : ``h[l+1] = (h[l] + residual) · residual_scale`` (wavenet_vocoder: √0.5)
    skip_scale : the skip sum is multiplied by this before the output stack (wavenet_vocoder: √(1/L))
    gc_cardinality, gc_channels : global conditioning (speaker embedding); 0 = none
    sample_rate : Hz
    mulaw : mu-law convention of the model's classes (see :mod:`wavenet_edge.mulaw`)
    """

    dilations: tuple = field(default_factory=lambda: _octaves(128, 1))
    kernel_size: int = 2
    residual_channels: int = 16
    dilation_channels: int = 16
    skip_channels: int = 32
    end_channels: int = 32
    quantization_channels: int = 256
    initial_filter_width: int = 1
    use_biases: bool = True
    residual_scale: float = 1.0
    skip_scale: float = 1.0
    gc_cardinality: int = 0
    gc_channels: int = 0
    sample_rate: int = 16000
    mulaw: str = "wavenet-edge"

    def __post_init__(self):
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        self.validate()

    # -- validation ---------------------------------------------------------------------------
    def validate(self):
        """Raise :class:`ConfigError` naming the first bad value."""
        if len(self.dilations) == 0:
            raise ConfigError("dilations must not be empty")
        for d in self.dilations:
            if d <= 0:
                raise ConfigError(f"dilation must be > 0, got {d}")
        if self.kernel_size < 2:
            raise ConfigError(f"kernel_size must be >= 2, got {self.kernel_size}")
        for name in ("residual_channels", "dilation_channels", "skip_channels", "end_channels",
                     "initial_filter_width", "sample_rate"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.quantization_channels != 256:
            raise ConfigError(
                f"quantization_channels must be 256 (8-bit mu-law), got {self.quantization_channels}")
        for name in ("residual_scale", "skip_scale"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive finite number, got {v!r}")
        if self.gc_cardinality < 0 or self.gc_channels < 0:
            raise ConfigError("gc_cardinality and gc_channels must be >= 0")
        if (self.gc_cardinality == 0) != (self.gc_channels == 0):
            raise ConfigError("global conditioning needs both gc_cardinality and gc_channels > 0")
        if self.mulaw not in CONVENTIONS:
            raise ConfigError(f"unknown mu-law convention {self.mulaw!r}; known: {', '.join(CONVENTIONS)}")

    # -- derived properties -------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.dilations)

    @property
    def has_gc(self) -> bool:
        return self.gc_cardinality > 0

    @property
    def receptive_field(self) -> int:
        """Samples of input (including the current one) that can influence one prediction."""
        return (self.kernel_size - 1) * sum(self.dilations) + self.initial_filter_width

    def parameter_count(self) -> int:
        """Trainable parameters (the last layer's residual conv included, as checkpoints hold it)."""
        R, G, S, E, Q = (self.residual_channels, self.dilation_channels, self.skip_channels,
                         self.end_channels, self.quantization_channels)
        b = 1 if self.use_biases else 0
        n = self.initial_filter_width * Q * R + b * R
        per = 2 * (self.kernel_size * R * G + b * G) + (G * R + b * R) + (G * S + b * S)
        if self.has_gc:
            per += 2 * self.gc_channels * G
        n += per * self.n_layers
        n += S * E + b * E + E * Q + b * Q
        if self.has_gc:
            n += self.gc_cardinality * self.gc_channels
        return n

    def macs_per_sample(self) -> int:
        """Multiply-accumulates per generated sample in the fast (queue) algorithm.

        The initial layer is a lookup (its input is one-hot); the last layer's residual output is
        never read, so it is not computed.
        """
        R, G, S, E, Q = (self.residual_channels, self.dilation_channels, self.skip_channels,
                         self.end_channels, self.quantization_channels)
        L = self.n_layers
        gc = self.gc_channels if self.has_gc else 0
        n = L * 2 * (self.kernel_size * R + gc) * G     # filter and gate
        n += (L - 1) * G * R                             # residual 1x1
        n += L * G * S                                   # skip 1x1
        n += S * E + E * Q                               # output stack
        if self.initial_filter_width > 1:
            n += self.initial_filter_width * R           # summing the taps of the initial layer
        return n

    def delay_line_bytes(self) -> int:
        """int8 SRAM for the queues: Σ (k-1)·d·R over layers, plus the initial layer's taps."""
        n = sum((self.kernel_size - 1) * d for d in self.dilations) * self.residual_channels
        n += sum(range(self.initial_filter_width)) * self.residual_channels
        return n

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: dict) -> "WaveNetConfig":
        if not isinstance(d, dict):
            raise ConfigError("config must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ConfigError(f"bad config: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> "WaveNetConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON ({e.msg} at line {e.lineno})") from None
        return cls.from_dict(d)

    @classmethod
    def from_file(cls, path) -> "WaveNetConfig":
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(f"cannot read config ({e.strerror})", path=path) from None
        try:
            return cls.from_json(text)
        except ConfigError as e:
            raise ConfigError(str(e), path=path) from None

    def replace(self, **changes) -> "WaveNetConfig":
        return dataclasses.replace(self, **changes)


PRESETS = {
    # fits a Cortex-M4 with room to spare: 2 blocks of 8 layers, 16 channels
    "tiny": WaveNetConfig(dilations=_octaves(128, 2), residual_channels=16, dilation_channels=16,
                          skip_channels=32, end_channels=32),
    "small": WaveNetConfig(dilations=_octaves(512, 2), residual_channels=32, dilation_channels=32,
                           skip_channels=64, end_channels=64),
    # ibab/tensorflow-wavenet's published wavenet_params.json
    "tensorflow-wavenet": WaveNetConfig(dilations=_octaves(512, 5), residual_channels=32,
                                        dilation_channels=32, skip_channels=512, end_channels=512,
                                        initial_filter_width=32, mulaw="tensorflow-wavenet"),
}


def preset(name: str) -> WaveNetConfig:
    """The named preset (``tiny``, ``small``, ``tensorflow-wavenet``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
