"""converters: the host toolchain.

Front door: :func:`convert` (float WaveNet or checkpoint → one int8 ``.tflite``),
:func:`load_checkpoint` (our ``.npz``, PyTorch ``.pt``/``.pth`` without torch, safetensors,
TF checkpoints / ``.npz`` dumps; the layouts of the popular open implementations), :func:`train`
(numpy training with a hand-written backward pass), :func:`builtin_signals` and
:func:`layer_frequency_response`; :class:`ContractHost` and :func:`make_runner` drive the real
interpreters (LiteRT, TFLM) through the delay-line contract.  The whole-pipeline ``quickstart``
sits on top of both host packages, in :mod:`firmware_sim.quickstart`.  :func:`mel_features` /
:func:`vocoder_inputs` compute a vocoder's conditioning features from audio; :func:`vocode`
turns audio or mel frames into speech with the int8 engine.

The functions are bound eagerly: ``convert`` and ``train`` are also the names of their modules,
and a lazily bound package attribute would be replaced by the module on its first import.
"""

from .checkpoints import LAYOUT_NAMES, import_checkpoint, inspect_checkpoint, load_checkpoint
from .convert import ConversionResult, convert
from .explain import layer_frequency_response
from .features import mel_features, vocoder_inputs
from .host import ContractHost
from .interpreters import RUNTIMES, make_runner
from .signals import builtin_signals
from .train import train
from .vocode import vocode

__all__ = ["convert", "ConversionResult", "load_checkpoint", "inspect_checkpoint",
           "import_checkpoint", "LAYOUT_NAMES", "train", "builtin_signals",
           "layer_frequency_response", "mel_features", "vocoder_inputs", "ContractHost",
           "make_runner", "RUNTIMES", "vocode"]
