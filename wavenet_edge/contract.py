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
  delay lines, 256-class outputs, a speaker input exactly when the config has one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .config import WaveNetConfig
from .errors import ConfigError, ModelFileError

__all__ = ["METADATA_NAME", "FORMAT_VERSION", "DelayLine", "Inputs", "Outputs", "Contract",
           "decode_metadata", "read_contract", "parse_contract"]

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


@dataclass(frozen=True)
class Contract:
    """A validated delay-line contract.

    ``metadata`` is the decoded JSON object as written (``producer``, ``sample_rate``, ``mulaw``,
    ``calibration``, …); ``config`` the parsed :class:`WaveNetConfig` when the metadata has one.
    """

    inputs: Inputs
    outputs: Outputs
    delay_lines: tuple
    config: WaveNetConfig | None
    metadata: dict

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

    lines_raw = field(meta, "delay_lines", "metadata")
    if not isinstance(lines_raw, list):
        raise bad("delay_lines is not a list")
    lines, seen_reads = [], set()
    for k, entry in enumerate(lines_raw):
        where = f"delay_lines[{k}]"
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
        if not (np.array_equal(r.scale, w.scale) and np.array_equal(r.zero_point, w.zero_point)):
            raise bad(f"{where}: read {read!r} and write {write!r} are quantized differently "
                      f"(scale {r.scale.tolist()} vs {w.scale.tolist()}, zero point "
                      f"{r.zero_point.tolist()} vs {w.zero_point.tolist()})")
        lines.append(DelayLine(read, write, delay))
    fed = {sample_name} | seen_reads | ({spk_name} if spk_name is not None else set())
    for n in in_names:
        if n not in fed:
            raise bad(f"graph input {n!r} is neither the sample, the speaker nor a delay-line read")

    cfg = None
    if meta.get("config") is not None:
        try:
            cfg = WaveNetConfig.from_dict(meta["config"])
        except ConfigError as e:
            raise bad(f"metadata config: {e}") from None
    return Contract(inputs=Inputs(sample_name, spk_name, card), outputs=Outputs(*out),
                    delay_lines=tuple(lines), config=cfg, metadata=meta)


def parse_contract(model) -> dict:
    """The contract of a WaveNet step graph, as the engine consumes it: :func:`read_contract`'s
    checks plus a ``config`` (parsed, under ``"config_obj"``), int8 delay lines, int8 outputs of
    256 classes and a speaker input exactly when the config has global conditioning.

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
    for key, oname in c.outputs._asdict().items():
        t = model.tensor(oname)
        if t.dtype != np.int8 or int(np.prod(t.shape, dtype=np.int64)) != 256:
            raise bad(f"{key} output {oname!r} must be an int8 graph output with 256 elements")
    for dl in c.delay_lines:
        if model.tensor(dl.read).dtype != np.int8:
            raise bad(f"delay line {dl.read!r} <- {dl.write!r} must be int8")
    return dict(c.metadata, config_obj=cfg)
