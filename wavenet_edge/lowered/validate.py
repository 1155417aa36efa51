"""Checks a parsed step graph against what the lowered program can express."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFileError

__all__ = ["SUPPORTED_OPS", "FRAME_OPS", "GraphInputs", "validate_graph", "validate_frame_graph",
           "check_operators", "size", "qparams"]

SUPPORTED_OPS = ("FULLY_CONNECTED", "ADD", "MUL", "TANH", "LOGISTIC", "SOFTMAX", "CONCATENATION",
                 "GATHER", "RESHAPE", "QUANTIZE")
#: what a vocoder's frame graph (conv-in + upsampler FIR) may contain (SLICE: the band windows
#: of F > 1)
FRAME_OPS = ("FULLY_CONNECTED", "CONCATENATION", "RESHAPE", "SLICE")
_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def size(t) -> int:
    """Element count of a tensor."""
    return int(np.prod(t.shape)) if len(t.shape) else 1


def qparams(t, path):
    """(scale, zero point) of a per-tensor quantized tensor; ModelFileError otherwise."""
    if not t.is_quantized or t.per_channel:
        raise ModelFileError(f"tensor {t.name!r} must be quantized per tensor", path=path)
    return float(t.scale[0]), int(t.zero_point[0])


@dataclass(frozen=True)
class GraphInputs:
    """Tensor indices of the sample and speaker inputs (speaker −1 without conditioning; both
    −1 in a frame graph), the local-conditioning input ``cond`` (−1 without; an activation the
    host fills) and the operator counts by opcode name, as written in the file."""

    sample: int
    speaker: int
    op_counts: dict
    cond: int = -1

    def is_activation(self, model, i) -> bool:
        """True for a tensor the arena holds: computed at run time, not a graph index input."""
        return i >= 0 and model.tensors[i].data is None and i not in (self.sample, self.speaker)


def validate_graph(model, contract) -> GraphInputs:
    """Every graph input is the sample, the speaker or a delay-line read; every operator is
    supported, has one int8 output produced once, and a supported fused activation."""
    path = model.name
    T = model.tensors
    sample = model.tensor(contract["sample_input"]["name"]).index
    spk = contract.get("speaker_input")
    speaker = model.tensor(spk["name"]).index if spk else -1
    ci = contract.get("cond_input")
    cond = model.tensor(ci["name"]).index if ci else -1
    reads = {model.tensor(dl["read"]).index for dl in contract["delay_lines"]}
    for i in model.inputs:
        if i not in reads and i not in (sample, speaker, cond):
            raise ModelFileError(f"graph input {T[i].name!r} is neither the sample, the speaker, "
                                 f"the conditioning input nor a delay-line read", path=path)
    if cond >= 0 and T[cond].dtype != np.int8:
        raise ModelFileError(f"conditioning input {T[cond].name!r} must be int8", path=path)
    return GraphInputs(sample, speaker, check_operators(model, SUPPORTED_OPS), cond)


def validate_frame_graph(model, contract) -> GraphInputs:
    """A frame graph: its graph inputs are the frames input and delay-line reads; operators
    FRAME_OPS only, each with one int8 output."""
    path = model.name
    T = model.tensors
    frames = model.tensor(contract["frames_input"]).index
    reads = {model.tensor(dl["read"]).index for dl in contract["delay_lines"]}
    for i in model.inputs:
        if i not in reads and i != frames:
            raise ModelFileError(f"frame graph input {T[i].name!r} is neither the frames input "
                                 f"nor a delay-line read", path=path)
    if T[frames].dtype != np.int8:
        raise ModelFileError(f"frames input {T[frames].name!r} must be int8", path=path)
    return GraphInputs(-1, -1, check_operators(model, FRAME_OPS))


def check_operators(model, supported) -> dict:
    """Every operator is in ``supported``, has one int8 output produced once and a supported
    fused activation; returns the operator counts by opcode name."""
    path = model.name
    T = model.tensors
    produced = set()
    counts = {}
    for op in model.operators:
        what = f"operator {op.index} ({op.opcode})"
        if op.opcode not in supported:
            raise ModelFileError(f"{what} is not supported by the engine (supported: "
                                 f"{', '.join(supported)})", path=path)
        counts[op.opcode] = counts.get(op.opcode, 0) + 1
        if len(op.outputs) != 1:
            raise ModelFileError(f"{what} must have one output", path=path)
        o = op.outputs[0]
        if o in produced:
            raise ModelFileError(f"tensor {T[o].name!r} is produced twice", path=path)
        produced.add(o)
        if T[o].dtype != np.int8:
            raise ModelFileError(f"{what} output {T[o].name!r} is not int8", path=path)
        act = op.options.get("fused_activation_function", "NONE")
        if act not in _ACTIVATIONS:
            raise ModelFileError(f"{what} has unsupported fused activation {act}", path=path)
        if op.opcode == "CONCATENATION" and act != "NONE":
            raise ModelFileError(f"operator {op.index} (CONCATENATION) with a fused activation "
                                 f"is not supported", path=path)
    return counts
