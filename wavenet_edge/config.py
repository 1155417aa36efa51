"""WaveNet hyper-parameters: one dataclass, validation, JSON round-trip, named presets."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from .errors import ConfigError
from .mel_recipe import MelRecipe
from .mulaw import CONVENTIONS

__all__ = ["WaveNetConfig", "PRESETS", "preset", "UPSAMPLERS"]

UPSAMPLERS = ("none", "plain", "conv-in")


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

    Local conditioning (a vocoder: features such as a mel spectrogram steer every layer):

    cin_channels : feature channels (0 = none); each layer adds ``c_up[t] @ Wc`` (r9y9's
        ``conv1x1c``, no bias) to its filter and gate pre-activations at every sample t
    upsampler : how frame-rate features reach sample rate — ``"none"`` (the features are given
        per sample), ``"plain"`` (r9y9 ``UpsampleNetwork``: per scale a nearest repeat then a
        linear (F, 2s+1) 2-D conv; ``cin_pad·hop`` samples trimmed at each end) or ``"conv-in"``
        (``ConvInUpsampleNetwork``: first a valid (cin → cin, 2·cin_pad+1) conv over frames)
    upsample_scales : the scales s (their product is the hop)
    cin_pad : frames of context on each side: n samples take ``n/hop + 2·cin_pad`` frames
    freq_axis_kernel_size : F, the upsampler kernel's extent across feature channels (odd)
    mel : the feature recipe (:class:`~wavenet_edge.mel_recipe.MelRecipe`) or None
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
    cin_channels: int = 0
    upsampler: str = "none"
    upsample_scales: tuple = ()
    cin_pad: int = 0
    freq_axis_kernel_size: int = 1
    mel: MelRecipe | None = None

    def __post_init__(self):
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        try:
            object.__setattr__(self, "upsample_scales", tuple(self.upsample_scales))
        except TypeError:
            raise ConfigError(f"upsample_scales must be a list of integers, "
                              f"got {self.upsample_scales!r}") from None
        if isinstance(self.mel, dict):
            object.__setattr__(self, "mel", MelRecipe.from_dict(self.mel))
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
        self._validate_conditioning()

    def _validate_conditioning(self):
        def nonneg_int(name):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {v!r}")
        nonneg_int("cin_channels")
        nonneg_int("cin_pad")
        if self.upsampler not in UPSAMPLERS:
            raise ConfigError(f"unknown upsampler {self.upsampler!r}; known: {', '.join(UPSAMPLERS)}")
        F = self.freq_axis_kernel_size
        if not isinstance(F, int) or isinstance(F, bool) or F < 1 or F % 2 == 0:
            raise ConfigError(f"freq_axis_kernel_size must be a positive odd integer, got {F!r}")
        for s in self.upsample_scales:
            if not isinstance(s, int) or isinstance(s, bool) or s < 1:
                raise ConfigError(f"upsample_scales must be positive integers, got "
                                  f"{list(self.upsample_scales)}")
        if self.mel is not None and not isinstance(self.mel, MelRecipe):
            raise ConfigError("mel must be a MelRecipe, a JSON object or null")
        if self.cin_channels == 0:
            if self.upsampler != "none" or self.upsample_scales or self.cin_pad or F != 1 or \
                    self.mel is not None:
                raise ConfigError("upsampler, upsample_scales, cin_pad, freq_axis_kernel_size and "
                                  "mel need local conditioning (cin_channels > 0)")
            return
        if self.upsampler == "none":
            if self.upsample_scales or self.cin_pad or F != 1:
                raise ConfigError("upsample_scales, cin_pad and freq_axis_kernel_size need an "
                                  "upsampler (plain or conv-in); without one the features are "
                                  "given per sample")
        elif not self.upsample_scales:
            raise ConfigError(f"upsampler {self.upsampler} needs upsample_scales")
        if self.mel is not None:
            if self.mel.n_mels != self.cin_channels:
                raise ConfigError(f"mel.n_mels ({self.mel.n_mels}) must equal cin_channels "
                                  f"({self.cin_channels})")
            if self.upsampler != "none" and self.mel.hop_length != self.hop:
                raise ConfigError(f"mel.hop_length ({self.mel.hop_length}) must equal the product "
                                  f"of upsample_scales ({self.hop})")
            self.mel.check_sample_rate(self.sample_rate)

    # -- derived properties -------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.dilations)

    @property
    def has_gc(self) -> bool:
        return self.gc_cardinality > 0

    @property
    def has_cond(self) -> bool:
        """Local conditioning (``cin_channels > 0``)."""
        return self.cin_channels > 0

    @property
    def hop(self) -> int:
        """Samples per feature frame: the product of ``upsample_scales`` (1 without upsampler)."""
        return int(math.prod(self.upsample_scales)) if self.upsampler != "none" else 1

    def frames_for(self, n_samples: int) -> int:
        """Feature frames (rows of ``cond``) that ``n_samples`` samples take: ``n/hop + 2·cin_pad``
        with an upsampler (n a multiple of hop), n without."""
        return int(n_samples) // self.hop + 2 * self.cin_pad

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
        if self.has_cond:
            n += self.n_layers * 2 * self.cin_channels * G
            if self.upsampler == "conv-in":
                n += (2 * self.cin_pad + 1) * self.cin_channels ** 2
            n += sum(self.freq_axis_kernel_size * (2 * s + 1) for s in self.upsample_scales)
        return n

    def macs_breakdown(self) -> dict:
        """MACs split by rate.

        ``step``: the unconditioned network per sample; ``cond_per_sample``: the per-layer
        ``conv1x1c`` projections of the upsampled features, per sample (L·2G·cin);
        ``upsampler_per_frame``: the conv-in layer and the upsampling convs, per feature frame
        (scale i produces Π_{j≤i} s_j rows of cin·F·(2s_i+1) MACs each); ``per_sample``: all of it
        per generated sample (the frame work divided by hop).
        """
        L, G, C = self.n_layers, self.dilation_channels, self.cin_channels
        step = self._step_macs()
        cond = L * 2 * G * C
        frame = 0
        if self.has_cond and self.upsampler != "none":
            if self.upsampler == "conv-in":
                frame += (2 * self.cin_pad + 1) * C * C
            rows = 1
            for s in self.upsample_scales:
                rows *= s
                frame += rows * C * self.freq_axis_kernel_size * (2 * s + 1)
        return {"step": step, "cond_per_sample": cond, "upsampler_per_frame": frame,
                "per_sample": step + cond + frame / self.hop}

    def macs_per_frame(self) -> int:
        """MACs of the frame-rate work (the upsampler) per feature frame; 0 without."""
        return self.macs_breakdown()["upsampler_per_frame"]

    def macs_per_sample(self) -> int:
        """Multiply-accumulates per generated sample in the fast (queue) algorithm, the frame-rate
        conditioning work included pro rata (see :meth:`macs_breakdown`).

        The initial layer is a lookup (its input is one-hot); the last layer's residual output is
        never read, so it is not computed.
        """
        return int(round(self.macs_breakdown()["per_sample"]))

    def _step_macs(self) -> int:
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
        d["upsample_scales"] = list(self.upsample_scales)
        d["mel"] = None if self.mel is None else self.mel.to_dict()
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
        except (TypeError, ValueError) as e:
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


# vocoder-tiny's feature normalisation: per-band mean / std of the log10 mel over 264 s of
# espeak-ng / flite speech (benchmarks/vocoder_quality.py's training sentences).  Centred features
# made the conditioning count: held-out 3.889 vs 4.012 bits/sample raw after 800 steps (tiny
# unconditioned: 4.024).
_VT_MEAN = (-1.57, -1.78, -1.91, -2.27, -2.64, -2.85, -2.87, -2.89, -2.90, -2.93, -2.96, -2.91,
            -2.70, -2.71, -2.70, -2.76, -3.01, -3.31, -3.32, -3.13)
_VT_STD = (1.28, 1.25, 1.25, 1.24, 1.19, 1.12, 1.08, 1.09, 1.08, 1.03, 0.99, 0.94, 0.98, 0.96,
           0.97, 0.95, 0.85, 0.88, 0.87, 0.83)

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
    # vocoders (mel in, speech out): a microcontroller-sized one at 16 kHz with 20 mel bands every
    # 8 ms, and a small one on r9y9's mulaw256 feature recipe (22.05 kHz, 80 bands, hop 256)
    "vocoder-tiny": WaveNetConfig(dilations=_octaves(128, 2), residual_channels=16,
                                  dilation_channels=16, skip_channels=32, end_channels=32,
                                  cin_channels=20, upsampler="conv-in", upsample_scales=(4, 4, 8),
                                  cin_pad=1, mel=MelRecipe(n_mels=20, n_fft=512, hop_length=128,
                                                           win_length=512, fmin=50.0, fmax=7600.0,
                                                           normalization="meanvar",
                                                           mean=_VT_MEAN, std=_VT_STD)),
    "vocoder-small": WaveNetConfig(dilations=_octaves(512, 2), kernel_size=3,
                                   residual_channels=32, dilation_channels=32, skip_channels=64,
                                   end_channels=64, sample_rate=22050, cin_channels=80,
                                   upsampler="conv-in", upsample_scales=(4, 4, 4, 4), cin_pad=2,
                                   mel=MelRecipe()),
}


def preset(name: str) -> WaveNetConfig:
    """The named preset (``tiny``, ``small``, ``tensorflow-wavenet``, ``vocoder-tiny``,
    ``vocoder-small``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
