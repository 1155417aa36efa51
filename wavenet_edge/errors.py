"""One exception hierarchy for user errors.

Everything a user can get wrong (a file, a config value, an audio format) raises a subclass of
:class:`WaveNetEdgeError`.  The CLI prints ``str(err)`` on one line and exits with ``err.exit_code``;
anything else escaping is a bug in wavenet-edge, not a user error.
"""

from __future__ import annotations

__all__ = [
    "WaveNetEdgeError",
    "ConfigError",
    "UnknownProfileError",
    "AudioError",
    "CheckpointError",
    "ModelFileError",
    "ConversionError",
    "MismatchError",
    "ConcurrentUseError",
]


class WaveNetEdgeError(Exception):
    """Base class of every error caused by user input; the message is one line."""

    exit_code = 2

    def __init__(self, message: str, *, path=None):
        self.path = None if path is None else str(path)
        text = message if self.path is None else f"{self.path}: {message}"
        super().__init__(text)


class ConfigError(WaveNetEdgeError, ValueError):
    """An out-of-range or inconsistent hyper-parameter or option."""


class UnknownProfileError(ConfigError):
    """A runtime / int8 arithmetic profile name that is not known (the message lists the known
    ones, :data:`wavenet_edge.profiles.PROFILES`)."""


class AudioError(WaveNetEdgeError, ValueError):
    """Unreadable or unsupported audio (format, sample width, values outside [-1, 1])."""


class CheckpointError(WaveNetEdgeError, ValueError):
    """A checkpoint that is corrupt, unsafe, of an unknown layout, or inconsistent."""


class ModelFileError(WaveNetEdgeError, ValueError):
    """A .tflite file that is corrupt, truncated, or not a wavenet-edge step graph."""


class ConversionError(WaveNetEdgeError, ValueError):
    """Quantization or export cannot proceed (e.g. calibration audio too short)."""


class MismatchError(WaveNetEdgeError):
    """Two runtimes that must agree bit for bit did not."""

    exit_code = 1


class ConcurrentUseError(WaveNetEdgeError, RuntimeError):
    """One stateful engine (one set of streams) was used by two threads at once.  Threads
    share a loaded model through ``Engine.stream()``: one stream object per thread."""
