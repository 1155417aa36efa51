"""The delay-line contract of a wavenet-edge step graph (``docs/step-graph.md``).

A ``.tflite`` written by :mod:`converters` carries one JSON object in
``Model.metadata["wavenet_edge"]``: the sample (and speaker) input, the two outputs and every delay
line (a graph input ``read`` that must hold what the graph output ``write`` produced ``delay`` steps
earlier).  This module is the one place that decodes and validates it; the engine, the contract
host that drives the real interpreters, the op counter and the reports all call it, so a file is
accepted or refused by all of them alike, with the same message.

Two levels:

* :func:`read_contract` checks the contract against the graph (any step graph a host can drive:
  names, dtypes, shapes, quantization, every input fed) and returns a :class:`Contract`.
* :func:`parse_contract` adds what the WaveNet runtime needs on top (a valid ``config``, int8
  delay lines, 256-class outputs, a speaker input exactly when the config has one, a
  ``cond_input`` exactly when it has local conditioning).

A vocoder's contract has a ``cond_input`` (:class:`CondInput`): one more int8 graph input set
each step, and, with an upsampler, a second flatbuffer (the frame graph, :class:`FrameGraph`)
stored in another metadata entry and checked here too (its tensors, delay lines, and that its
block output is quantized exactly like ``cond``, since the host copies the bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .config import WaveNetConfig
from .errors import ConfigError, ModelFileError

__all__ = ["METADATA_NAME", "FORMAT_VERSION", "DelayLine", "Inputs", "Outputs", "FrameGraph",
           "CondInput", "Contract", "decode_metadata", "read_contract", "parse_contract"]

#: name of the ``Model.metadata`` entry that holds the contract
METADATA_NAME = "wavenet_edge"
#: the contract format this package reads and writes
FORMAT_VERSION = 1


class DelayLine(NamedTuple):
    """Before step t, graph input ``read`` holds graph output ``write`` of step t - ``delay``
    (the read tensor's zero point, i.e. real 0.0, for t < ``delay``)."""

    read: str
    write: str
    delay: int


class Inputs(NamedTuple):
    """The graph inputs the host sets each step (tensor names); ``speaker`` is None (and
    ``speaker_cardinality`` 0) for a model without global conditioning."""

    sample: str
    speaker: str | None
    speaker_cardinality: int


class Outputs(NamedTuple):
    """Tensor names of the two per-step results: int8 class probabilities and logits."""

    probabilities: str
    logits: str


class FrameGraph(NamedTuple):
    """The frame-rate entry point of a vocoder: a second flatbuffer (its own subgraph 0) stored
    in the step graph's ``Model.metadata[entry]``, run once per feature frame.

    Call g sets ``frames_input`` (int8 [1, frames_per_call·channels]) to the padded, quantized
    feature rows g … g + frames_per_call − 1 (the feature zero point beyond the last row) and
    its delay lines; ``block_output`` (int8 [channels, hop], channel-major) then holds the
    ``cond`` rows of the samples of frame g − ``block_delay``: column r is sample
    (g − block_delay)·hop + r.  ``model`` is the parsed flatbuffer.
    """

    entry: str
    model: object
    frames_input: str
    frames_per_call: int
    block_output: str
    block_delay: int
    delay_lines: tuple
    metadata: dict


class CondInput(NamedTuple):
    """Local conditioning (a vocoder): before step t the host sets graph input ``name`` (int8
    [1, channels]) to the conditioning row of sample t — column t mod hop of the frame graph's
    block of frame t div hop, or, without ``frames`` (features given at sample rate), row t of
    the quantized features.  Features are model-ready float rows (frames = n/hop + 2·cin_pad
    for n samples), quantized ``q = clamp(round(x / feature_scale) + feature_zero_point)``.
    ``beta``: ``cond`` holds the upsampled features divided by beta (informative)."""

    name: str
    channels: int
    hop: int
    cin_pad: int
    upsampler: str
    beta: float
    feature_scale: float
    feature_zero_point: int
    mel: dict | None
    frames: FrameGraph | None


@dataclass(frozen=True)
class Contract:
    """A validated delay-line contract.

    ``metadata`` is the decoded JSON object as written (``producer``, ``sample_rate``, ``mulaw``,
    ``calibration``, …); ``config`` the parsed :class:`WaveNetConfig` when the metadata has one;
    ``cond`` the local-conditioning input (None for a model without one).
    """

    inputs: Inputs
    outputs: Outputs
    delay_lines: tuple
    config: WaveNetConfig | None
    metadata: dict
    cond: CondInput | None = None

    @property
    def writes(self) -> tuple:
        """Distinct ``write`` tensors in contract order."""
        return tuple(dict.fromkeys(dl.write for dl in self.delay_lines))

    def ring_length(self, write: str) -> int:
        """Slots a host keeps for ``write``: the longest delay among the lines reading it."""
        return max(dl.delay for dl in self.delay_lines if dl.write == write)


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def decode_metadata(model, *, name=None) -> dict:
    """The contract's JSON object of a parsed model (:class:`~wavenet_edge.tflite_file.TFLiteModel`),
    decoded but not checked against the graph.

    Trailing NUL bytes are dropped before decoding (flatbuffer writers may pad a buffer).  Raises
    :class:`ModelFileError` naming the file when the entry is missing, not UTF-8 JSON, not an
    object or of another format version.
    """
    label = name or getattr(model, "name", None)
    raw = model.metadata.get(METADATA_NAME)
    if raw is None:
        raise ModelFileError(f"not a wavenet-edge step graph (no {METADATA_NAME!r} metadata)",
                             path=label)
    try:
        meta = json.loads(bytes(raw).rstrip(b"\0").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"delay-line contract: metadata is not UTF-8 JSON ({e})",
                             path=label) from None
    if not isinstance(meta, dict):
        raise ModelFileError("delay-line contract: metadata is not a JSON object", path=label)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"delay-line contract: unsupported format_version "
                             f"{meta.get('format_version')!r} (expected {FORMAT_VERSION})",
                             path=label)
    return meta


def read_contract(model, *, name=None) -> Contract:
    """Decode the contract of a parsed model and check it against the graph.

    Checked: the sample input (and the speaker input, if any) is a one-element int32 graph input;
    both outputs are graph outputs; each delay line reads a graph input (once) and writes a graph
    output of the same dtype, shape and quantization, with a positive integer delay; every graph
    input is fed by the host; ``config``, when present, is a valid :class:`WaveNetConfig`.
    Raises :class:`ModelFileError` naming the file and the first problem.
    """
    label = name or getattr(model, "name", None)
    meta = decode_metadata(model, name=label)

    def bad(msg):
        return ModelFileError(f"delay-line contract: {msg}", path=label)

    by_name = {t.name: t for t in model.tensors}
    in_names = [model.tensors[i].name for i in model.inputs]
    out_names = [model.tensors[i].name for i in model.outputs]

    def field(obj, key, where):
        if not isinstance(obj, dict) or key not in obj:
            raise bad(f"{where} lacks {key!r}")
        return obj[key]

    def scalar_input(name, what):
        if not isinstance(name, str) or name not in in_names:
            raise bad(f"{what} input {name!r} is not a graph input")
        t = by_name[name]
        if t.dtype != np.int32 or int(np.prod(t.shape, dtype=np.int64)) != 1:
            raise bad(f"{what} input {name!r} is {t.dtype}{list(t.shape)}, expected one int32")
        return name

    sample = field(meta, "sample_input", "metadata")
    sample_name = scalar_input(field(sample, "name", "sample_input"), "sample")
    if sample.get("encoding", "class_index") != "class_index":
        raise bad(f"unsupported sample encoding {sample.get('encoding')!r}")
    speaker = meta.get("speaker_input")
    spk_name, card = None, 0
    if speaker is not None:
        spk_name = scalar_input(field(speaker, "name", "speaker_input"), "speaker")
        card = field(speaker, "cardinality", "speaker_input")
        if not _is_count(card):
            raise bad(f"speaker cardinality {card!r} is not a positive integer")
    outputs = field(meta, "outputs", "metadata")
    out = []
    for key in ("probabilities", "logits"):
        oname = field(outputs, key, "outputs")
        if not isinstance(oname, str) or oname not in out_names:
            raise bad(f"output {key} {oname!r} is not a graph output")
        out.append(oname)

    lines = _check_delay_lines(field(meta, "delay_lines", "metadata"), "", in_names, out_names,
                               by_name, bad, field)
    seen_reads = {dl.read for dl in lines}
    cond = None
    if meta.get("cond_input") is not None:
        cond = _check_cond_input(model, meta["cond_input"], in_names, by_name, bad, field)
    fed = {sample_name} | seen_reads | ({spk_name} if spk_name is not None else set())
    if cond is not None:
        if cond.name in fed:
            raise bad(f"cond input {cond.name!r} is also fed as another input")
        fed.add(cond.name)
    for n in in_names:
        if n not in fed:
            raise bad(f"graph input {n!r} is neither the sample, the speaker, the cond input "
                      "nor a delay-line read")

    cfg = None
    if meta.get("config") is not None:
        try:
            cfg = WaveNetConfig.from_dict(meta["config"])
        except ConfigError as e:
            raise bad(f"metadata config: {e}") from None
    return Contract(inputs=Inputs(sample_name, spk_name, card), outputs=Outputs(*out),
                    delay_lines=tuple(lines), config=cfg, metadata=meta, cond=cond)


def _check_delay_lines(lines_raw, prefix, in_names, out_names, by_name, bad, field) -> list:
    if not isinstance(lines_raw, list):
        raise bad(f"{prefix}delay_lines is not a list")
    lines, seen_reads = [], set()
    for k, entry in enumerate(lines_raw):
        where = f"{prefix}delay_lines[{k}]"
        read, write, delay = (field(entry, key, where) for key in ("read", "write", "delay"))
        if not _is_count(delay):
            raise bad(f"{where}: delay {delay!r} is not a positive integer")
        if not isinstance(read, str) or read not in in_names:
            raise bad(f"{where}: read {read!r} is not a graph input")
        if not isinstance(write, str) or write not in out_names:
            raise bad(f"{where}: write {write!r} is not a graph output")
        if read in seen_reads:
            raise bad(f"{where}: read {read!r} is filled by more than one delay line")
        seen_reads.add(read)
        r, w = by_name[read], by_name[write]
        if tuple(r.shape) != tuple(w.shape) or r.dtype != w.dtype:
            raise bad(f"{where}: read {read!r} is {r.dtype}{list(r.shape)} but write {write!r} "
                      f"is {w.dtype}{list(w.shape)}")
        if not _same_quant(r, w):
            raise bad(f"{where}: read {read!r} and write {write!r} are quantized differently "
                      f"(scale {r.scale.tolist()} vs {w.scale.tolist()}, zero point "
                      f"{r.zero_point.tolist()} vs {w.zero_point.tolist()})")
        lines.append(DelayLine(read, write, delay))
    return lines


def _same_quant(a, b) -> bool:
    return np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point)


def _int8_of(t, n: int) -> bool:
    return t.dtype == np.int8 and int(np.prod(t.shape, dtype=np.int64)) == n


def _check_cond_input(model, ci, in_names, by_name, bad, field) -> CondInput:
    where = "cond_input"
    if not isinstance(ci, dict):
        raise bad("cond_input is not a JSON object")
    name = field(ci, "name", where)
    C = field(ci, "channels", where)
    hop = field(ci, "hop", where)
    pad = field(ci, "cin_pad", where)
    if not _is_count(C):
        raise bad(f"cond_input channels {C!r} is not a positive integer")
    if not _is_count(hop):
        raise bad(f"cond_input hop {hop!r} is not a positive integer")
    if not (isinstance(pad, int) and not isinstance(pad, bool) and pad >= 0):
        raise bad(f"cond_input cin_pad {pad!r} is not a non-negative integer")
    if not isinstance(name, str) or name not in in_names:
        raise bad(f"cond input {name!r} is not a graph input")
    t = by_name[name]
    if not _int8_of(t, C) or t.scale.size != 1:
        raise bad(f"cond input {name!r} is {t.dtype}{list(t.shape)}, expected int8 [1, {C}] "
                  "quantized per tensor")
    feats = field(ci, "features", where)
    fs, fz = field(feats, "scale", where + ".features"), field(feats, "zero_point",
                                                               where + ".features")
    if isinstance(fs, bool) or not isinstance(fs, (int, float)) or not np.isfinite(fs) or fs <= 0:
        raise bad(f"cond_input feature scale {fs!r} is not a positive number")
    if isinstance(fz, bool) or not isinstance(fz, int) or not -128 <= fz <= 127:
        raise bad(f"cond_input feature zero point {fz!r} is not an integer in -128..127")
    mel = feats.get("mel")
    if mel is not None and not isinstance(mel, dict):
        raise bad("cond_input features.mel is not a JSON object")
    beta = ci.get("beta", 1.0)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise bad(f"cond_input beta {beta!r} is not a positive number")
    up = ci.get("upsampler", "none")
    entry = ci.get("frame_graph")
    frames = None
    if entry is None:
        if hop != 1 or pad != 0:
            raise bad(f"cond_input has hop {hop} and cin_pad {pad} but no frame_graph (features "
                      "at sample rate need hop 1, cin_pad 0)")
    else:
        frames = _check_frame_graph(model, entry, ci, t, C, hop, bad)
    return CondInput(name, C, hop, pad, str(up), float(beta), float(fs), int(fz), mel, frames)


def _check_frame_graph(model, entry, ci, cond_t, C, hop, bad) -> FrameGraph:
    from .tflite_file import read_tflite

    if not isinstance(entry, str) or entry not in model.metadata:
        raise bad(f"cond_input frame_graph {entry!r} is not a metadata entry of the file")
    try:
        fm = read_tflite(bytes(model.metadata[entry]), name=f"{model.name}[{entry}]")
    except ModelFileError as e:
        raise bad(f"frame graph {entry!r} is not a valid flatbuffer ({e})") from None
    raw = fm.metadata.get(entry)
    if raw is None:
        raise bad(f"frame graph {entry!r} has no {entry!r} contract")
    try:
        meta = json.loads(bytes(raw).rstrip(b"\0").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad(f"frame graph {entry!r}: contract is not UTF-8 JSON") from None
    where = f"frame graph {entry!r}"

    def fbad(msg):
        return bad(f"{where}: {msg}")

    def ffield(obj, key, w):
        if not isinstance(obj, dict) or key not in obj:
            raise fbad(f"{w} lacks {key!r}")
        return obj[key]

    by_name = {x.name: x for x in fm.tensors}
    in_names = [fm.tensors[i].name for i in fm.inputs]
    out_names = [fm.tensors[i].name for i in fm.outputs]
    K = ffield(meta, "frames_per_call", "contract")
    delay = ffield(meta, "block_delay", "contract")
    if not _is_count(K):
        raise fbad(f"frames_per_call {K!r} is not a positive integer")
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise fbad(f"block_delay {delay!r} is not a non-negative integer")
    fin = ffield(meta, "frames_input", "contract")
    if not isinstance(fin, str) or fin not in in_names:
        raise fbad(f"frames input {fin!r} is not a graph input")
    if not _int8_of(by_name[fin], K * C):
        raise fbad(f"frames input {fin!r} is {by_name[fin].dtype}{list(by_name[fin].shape)}, "
                   f"expected int8 with {K}·{C} elements")
    ft = by_name[fin]
    if (ft.scale.size != 1 or float(ft.scale[0]) != float(np.float32(ci["features"]["scale"]))
            or int(ft.zero_point[0]) != ci["features"]["zero_point"]):
        raise fbad(f"frames input {fin!r} is not quantized like cond_input.features")
    blk = ffield(meta, "block_output", "contract")
    if not isinstance(blk, str) or blk not in out_names:
        raise fbad(f"block output {blk!r} is not a graph output")
    bt = by_name[blk]
    if bt.dtype != np.int8 or tuple(bt.shape) != (C, hop):
        raise fbad(f"block output {blk!r} is {bt.dtype}{list(bt.shape)}, expected int8 "
                   f"[{C}, {hop}] (channels x hop)")
    if meta.get("block_layout", "channels x hop") != "channels x hop":
        raise fbad(f"unsupported block_layout {meta.get('block_layout')!r}")
    if not _same_quant(bt, cond_t):
        raise fbad(f"block output {blk!r} is not quantized like the cond input (its bytes are "
                   "copied into it)")
    lines = _check_delay_lines(ffield(meta, "delay_lines", "contract"), f"{where}: ", in_names,
                               out_names, by_name, bad, ffield)
    fed = {fin} | {dl.read for dl in lines}
    for n in in_names:
        if n not in fed:
            raise fbad(f"graph input {n!r} is neither the frames input nor a delay-line read")
    return FrameGraph(entry, fm, fin, int(K), blk, int(delay), tuple(lines), meta)


def parse_contract(model) -> dict:
    """The contract of a WaveNet step graph, as the engine consumes it: :func:`read_contract`'s
    checks plus a ``config`` (parsed, under ``"config_obj"``), int8 delay lines, int8 outputs of
    256 classes, a speaker input exactly when the config has global conditioning and a
    ``cond_input`` (channels, hop, cin_pad, frame graph) exactly when it has local conditioning
    (the parsed :class:`CondInput` is ``read_contract(model).cond``).

    Returns the metadata dict with the :class:`WaveNetConfig` added under ``"config_obj"``.
    Raises :class:`ModelFileError`.
    """
    c = read_contract(model)

    def bad(msg):
        return ModelFileError(f"delay-line contract: {msg}", path=model.name)

    cfg = c.config
    if cfg is None:
        raise bad("metadata has no 'config' (the WaveNet hyper-parameters)")
    if cfg.has_gc:
        if c.inputs.speaker is None:
            raise bad("config has global conditioning but metadata has no speaker_input")
        if c.inputs.speaker_cardinality != cfg.gc_cardinality:
            raise bad(f"speaker_input cardinality {c.inputs.speaker_cardinality} disagrees with "
                      f"the config's {cfg.gc_cardinality}")
    elif c.inputs.speaker is not None:
        raise bad("metadata has a speaker_input but the config has no global conditioning")
    if cfg.has_cond:
        if c.cond is None:
            raise bad("config has local conditioning but metadata has no cond_input")
        for what, got, want in (("channels", c.cond.channels, cfg.cin_channels),
                                ("hop", c.cond.hop, cfg.hop), ("cin_pad", c.cond.cin_pad,
                                                               cfg.cin_pad)):
            if got != want:
                raise bad(f"cond_input {what} {got} disagrees with the config's {want}")
        if (c.cond.frames is None) != (cfg.upsampler == "none"):
            raise bad(f"cond_input frame_graph {c.cond.frames and c.cond.frames.entry!r} does "
                      f"not fit the config's upsampler {cfg.upsampler!r}")
    elif c.cond is not None:
        raise bad("metadata has a cond_input but the config has no local conditioning")
    for key, oname in c.outputs._asdict().items():
        t = model.tensor(oname)
        if t.dtype != np.int8 or int(np.prod(t.shape, dtype=np.int64)) != 256:
            raise bad(f"{key} output {oname!r} must be an int8 graph output with 256 elements")
    for dl in c.delay_lines:
        if model.tensor(dl.read).dtype != np.int8:
            raise bad(f"delay line {dl.read!r} <- {dl.write!r} must be int8")
    return dict(c.metadata, config_obj=cfg)
