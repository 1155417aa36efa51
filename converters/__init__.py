"""converters: the host toolchain.

Front door: :func:`convert` (float WaveNet or checkpoint → one int8 ``.tflite``),
:func:`load_checkpoint` (our ``.npz``, PyTorch ``.pt``/``.pth`` without torch, safetensors,
TF checkpoints / ``.npz`` dumps; the layouts of the popular open implementations), :func:`train`
(numpy training with a hand-written backward pass) and :func:`builtin_signals`.
Heavy modules load on first use so that importing the package stays cheap.
"""

from __future__ import annotations

import importlib

__all__ = ["convert", "ConversionResult", "load_checkpoint", "inspect_checkpoint",
           "import_checkpoint", "LAYOUT_NAMES", "train", "builtin_signals",
           "layer_frequency_response", "quickstart"]

_WHERE = {
    "convert": ".convert", "ConversionResult": ".convert",
    "load_checkpoint": ".checkpoints", "inspect_checkpoint": ".checkpoints",
    "import_checkpoint": ".checkpoints", "LAYOUT_NAMES": ".checkpoints",
    "train": ".train", "builtin_signals": ".signals",
    "layer_frequency_response": ".explain", "quickstart": ".quickstart",
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module 'converters' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
