"""One module per checkpoint layout: ``NAME``, ``MULAW``, ``NATIVE_KEYS``, ``score``, ``convert``."""

from . import ours, pytorch_wavenet, tensorflow_wavenet, wavenet_vocoder

LAYOUTS = {m.NAME: m for m in (ours, pytorch_wavenet, wavenet_vocoder, tensorflow_wavenet)}

__all__ = ["LAYOUTS"]
