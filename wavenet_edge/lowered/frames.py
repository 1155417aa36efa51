"""The lowered frame graph of a vocoder: conv-in and the upsampler FIR, run once per frame.

A conditioned ``.tflite`` carries a second flatbuffer, the frame graph (its own subgraph 0,
docs/step-graph.md "The frame graph"), in ``Model.metadata["wavenet_edge_frames"]``; that
flatbuffer carries its own small contract under the same metadata name.  :func:`lower_frames`
turns it into a :class:`FrameProgram`: the same op records as a step graph (FC — one record per
row of the batched FIR —, COPY for the channel-major CONCATENATION and, F > 1, for the SLICEs of
the band windows, RESHAPE aliased) and the frame delay lines, plus the host semantics of the
frame stream:

* the host quantizes the padded features (:meth:`FrameProgram.quantize_features`), and call g
  takes padded frames ``g … g+K−1`` flattened (zero point beyond the end);
* call g returns the ``hop`` sample rows of output frame ``g − block_delay`` (channel-major
  in the arena; ``block_delay = ahead`` for conv-in, ``ahead + cin_pad`` for the plain
  upsampler, whose stage frames include the padding); calls for negative frames only fill the
  delay lines;
* output frame f (padded frame f + cin_pad) needs the padded frames up to
  ``f + cin_pad + lookahead_frames``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..errors import ModelFileError
from ..profiles import resolve_profile
from ..tflite_file import load_model
from .program import Program, assemble
from .validate import size, validate_frame_graph

__all__ = ["FRAMES_METADATA", "FrameProgram", "read_frame_contract", "lower_frames"]

#: metadata name of the frame flatbuffer in a step graph, and of its contract inside it
FRAMES_METADATA = "wavenet_edge_frames"


@dataclass(frozen=True, eq=False)
class FrameProgram:
    """A lowered frame graph and its stream geometry (all counts in frames unless noted).

    program : the op records (``probs_off``/``logits_off`` both name the block output)
    frames_off, frames_size : arena offset and bytes (K·C) of the frames input
    block_off : arena offset of the block output, int8 [C, hop] channel-major
    channels C, hop, frames_per_call K, width, left, ahead : the contract's fields
    cin_pad : padding frames at each end of the features; block_delay : calls before frame 0's
        block
    feature_scale, feature_zero_point : quantization of the features
    block_scale, block_zero_point : quantization of the sample-rate rows (the step graph's cond)
    """

    program: Program
    frames_off: int
    frames_size: int
    block_off: int
    channels: int
    hop: int
    frames_per_call: int
    width: int
    left: int
    ahead: int
    cin_pad: int
    block_delay: int
    feature_scale: float
    feature_zero_point: int
    block_scale: float
    block_zero_point: int
    contract: dict

    @property
    def lookahead_frames(self) -> int:
        """Frames beyond frame f (padded frame f + cin_pad) needed before its samples exist."""
        return self.block_delay + self.frames_per_call - 1 - self.cin_pad

    def quantize_features(self, x) -> np.ndarray:
        """float (n, C) features -> int8 (n, C): ``round(x / scale) + zp`` (float64, ties to
        even), saturated, as every host of the contract quantizes them."""
        q = np.round(np.asarray(x, np.float64) / self.feature_scale) + self.feature_zero_point
        return np.clip(q, -128, 127).astype(np.int8)


def _bad(path, msg):
    return ModelFileError(f"frame graph contract: {msg}", path=path)


def read_frame_contract(model) -> dict:
    """The decoded contract of a frame-graph flatbuffer, its fields checked against the graph."""
    path = model.name
    raw = model.metadata.get(FRAMES_METADATA)
    if raw is None:
        raise _bad(path, f"no {FRAMES_METADATA!r} metadata")
    try:
        c = json.loads(bytes(raw).rstrip(b"\0").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"metadata is not UTF-8 JSON ({e})") from None
    if not isinstance(c, dict) or c.get("format_version") != 1:
        raise _bad(path, "not a version-1 JSON object")
    ints = ("frames_per_call", "channels", "hop", "width", "left", "ahead")
    for k in ints:
        v = c.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or (v == 0 and k not in
                                                                    ("left", "ahead")):
            raise _bad(path, f"{k} {v!r} is not a valid count")
    if c["left"] + c["ahead"] != c["width"] - 1:
        raise _bad(path, f"left {c['left']} + ahead {c['ahead']} != width {c['width']} - 1")
    bd = c.get("block_delay", c["ahead"])
    if not isinstance(bd, int) or isinstance(bd, bool) or bd < 0:
        raise _bad(path, f"block_delay {bd!r} is not a valid count")
    if c.get("block_layout", "channels x hop") != "channels x hop":
        raise _bad(path, f"unsupported block_layout {c.get('block_layout')!r}")
    feats = c.get("features")
    if not isinstance(feats, dict) or not (isinstance(feats.get("scale"), (int, float))
                                           and feats["scale"] > 0
                                           and isinstance(feats.get("zero_point"), int)):
        raise _bad(path, "features needs a positive scale and an integer zero_point")
    names = {t.name for t in model.tensors}
    in_names = {model.tensors[i].name for i in model.inputs}
    out_names = {model.tensors[i].name for i in model.outputs}
    if c.get("frames_input") not in in_names:
        raise _bad(path, f"frames input {c.get('frames_input')!r} is not a graph input")
    if c.get("block_output") not in out_names:
        raise _bad(path, f"block output {c.get('block_output')!r} is not a graph output")
    for k, dl in enumerate(c.get("delay_lines", [])):
        if not (isinstance(dl, dict) and dl.get("read") in in_names
                and dl.get("write") in out_names and dl.get("read") in names
                and isinstance(dl.get("delay"), int) and dl["delay"] >= 1):
            raise _bad(path, f"delay_lines[{k}] is not a read input / write output / delay")
    C, K, hop = c["channels"], c["frames_per_call"], c["hop"]
    if size(model.tensor(c["frames_input"])) != K * C:
        raise _bad(path, f"frames input has {size(model.tensor(c['frames_input']))} elements, "
                         f"expected frames_per_call x channels = {K * C}")
    if size(model.tensor(c["block_output"])) != C * hop:
        raise _bad(path, f"block output has {size(model.tensor(c['block_output']))} elements, "
                         f"expected channels x hop = {C * hop}")
    c.setdefault("delay_lines", [])
    return c


def lower_frames(frame_model, *, profile: str = "tflm", cin_pad: int, upsampler: str,
                 name=None) -> FrameProgram:
    """Lower a frame-graph flatbuffer (path, bytes or parsed model) for ``profile``.

    ``cin_pad`` and ``upsampler`` (``"conv-in"`` / ``"plain"``) come from the step graph's
    config: they fix which call yields frame 0's samples."""
    profile = resolve_profile(profile)
    model = load_model(frame_model, name=name)
    c = read_frame_contract(model)
    if upsampler not in ("conv-in", "plain"):
        raise _bad(model.name, f"upsampler {upsampler!r}: expected conv-in or plain")
    K = c["frames_per_call"]
    if K != (2 * cin_pad + 1 if upsampler == "conv-in" else 1):
        raise _bad(model.name, f"frames_per_call {K} does not fit a {upsampler} upsampler with "
                               f"cin_pad {cin_pad}")
    inputs = validate_frame_graph(model, c)
    block = model.tensor(c["block_output"])
    prog = assemble(model, c, inputs, profile, block, block, n_classes=0)
    frames = model.tensor(c["frames_input"])
    feats = c["features"]
    return FrameProgram(
        program=prog, frames_off=prog.tensor_offsets[frames.name][0], frames_size=size(frames),
        block_off=prog.probs_off, channels=c["channels"], hop=c["hop"], frames_per_call=K,
        width=c["width"], left=c["left"], ahead=c["ahead"], cin_pad=int(cin_pad),
        block_delay=int(c.get("block_delay", c["ahead"] + (cin_pad if upsampler == "plain" else 0))),
        feature_scale=float(feats["scale"]), feature_zero_point=int(feats["zero_point"]),
        block_scale=prog.probs_scale, block_zero_point=prog.probs_zero_point, contract=c)
