"""wavenet_edge: the on-device runtime (numpy + numba only).

Front door: :class:`WaveNetConfig`, :class:`FloatWaveNet`, mu-law helpers, audio I/O, errors;
the int8 engine is added by :mod:`wavenet_edge.engine`.
"""

from .audio import load_wav, resample, write_wav
from .config import PRESETS, WaveNetConfig, preset
from .errors import (AudioError, CheckpointError, ConfigError, ConversionError, MismatchError,
                     ModelFileError, WaveNetEdgeError)
from .float_model import FloatWaveNet
from .mulaw import CONVENTIONS, decode_classes, encode_classes, mu_compress, mu_expand

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "WaveNetConfig", "PRESETS", "preset",
    "FloatWaveNet",
    "mu_compress", "mu_expand", "encode_classes", "decode_classes", "CONVENTIONS",
    "load_wav", "write_wav", "resample",
    "WaveNetEdgeError", "ConfigError", "AudioError", "CheckpointError", "ModelFileError",
    "ConversionError", "MismatchError",
]
