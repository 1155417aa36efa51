"""Import checkpoints of the popular WaveNet implementations, safely and without torch.

``load_checkpoint(path, layout="auto", config=None) -> FloatWaveNet`` and
``inspect_checkpoint(path, ...) -> dict`` (what was detected, inferred and assumed).
Containers: torch zip (restricted unpickler, nothing executed), safetensors, ``.npz``.
Layouts: ``wavenet-edge``, ``pytorch-wavenet``, ``wavenet_vocoder``, ``tensorflow-wavenet``.
"""

from .load import (LAYOUT_NAMES, import_checkpoint, inspect_checkpoint, load_checkpoint,
                   read_tensors, save_safetensors)

__all__ = ["load_checkpoint", "inspect_checkpoint", "import_checkpoint", "read_tensors",
           "save_safetensors", "LAYOUT_NAMES"]
