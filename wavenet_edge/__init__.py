"""wavenet_edge: the on-device runtime (numpy + numba only).

Front door: :class:`Engine` (the bit-exact int8 ring-buffer engine for a wavenet-edge
``.tflite``), :class:`FloatWaveNet` (float reference), :class:`WaveNetConfig` and presets, mu-law
helpers, audio I/O, :func:`read_tflite` / :func:`load_model` (the one normalizer of a path, bytes
or parsed model), the profile names (:data:`PROFILES`) and the one exception hierarchy.
"""

from .audio import load_wav, resample, write_wav
from .config import PRESETS, WaveNetConfig, preset
from .engine import Engine
from .errors import (AudioError, CheckpointError, ConcurrentUseError, ConfigError,
                     ConversionError, MismatchError, ModelFileError, UnknownProfileError,
                     WaveNetEdgeError)
from .float_model import FloatWaveNet
from .mel_recipe import MelRecipe
from .mulaw import CONVENTIONS, decode_classes, encode_classes, mu_compress, mu_expand
from .sampling import Sampler
from .profiles import PROFILES
from .tflite_file import load_model, read_tflite

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "WaveNetConfig", "PRESETS", "preset", "MelRecipe",
    "FloatWaveNet", "Engine", "Sampler", "read_tflite", "load_model", "PROFILES",
    "mu_compress", "mu_expand", "encode_classes", "decode_classes", "CONVENTIONS",
    "load_wav", "write_wav", "resample",
    "WaveNetEdgeError", "ConfigError", "AudioError", "CheckpointError", "ModelFileError",
    "ConversionError", "MismatchError", "UnknownProfileError", "ConcurrentUseError",
]
