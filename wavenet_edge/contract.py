"""The delay-line contract of a wavenet-edge step graph (``docs/step-graph.md``).

A ``.tflite`` written by :mod:`converters` carries a JSON entry ``Model.metadata["wavenet_edge"]``
naming the sample (and speaker) input, the two outputs and every delay line (read input, write
output, delay in steps).  This module is the one place that decodes and validates it: the engine,
the contract host that drives the real interpreters, the op counter and the reports all call it.
"""

from __future__ import annotations

import json

import numpy as np

from .config import WaveNetConfig
from .errors import ConfigError, ModelFileError

__all__ = ["parse_contract"]


def parse_contract(model) -> dict:
    """Validate ``Model.metadata["wavenet_edge"]`` against the graph; return it as a dict with the
    parsed :class:`WaveNetConfig` under ``"config_obj"``.  Raises :class:`ModelFileError`."""
    path = model.name

    def bad(msg):
        return ModelFileError(msg, path=path)

    raw = model.metadata.get("wavenet_edge")
    if raw is None:
        raise bad("not a wavenet-edge step graph (no 'wavenet_edge' metadata entry)")
    try:
        meta = json.loads(bytes(raw).rstrip(b"\0").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"'wavenet_edge' metadata is not UTF-8 JSON ({e})") from None
    if not isinstance(meta, dict):
        raise bad("'wavenet_edge' metadata is not a JSON object")
    if meta.get("format_version") != 1:
        raise bad(f"unsupported contract format_version {meta.get('format_version')!r} (need 1)")
    try:
        cfg = WaveNetConfig.from_dict(meta.get("config"))
    except ConfigError as e:
        raise bad(f"metadata config: {e}") from None
    for key in ("sample_input", "outputs", "delay_lines"):
        if key not in meta:
            raise bad(f"metadata has no {key!r}")

    def tensor(name, what):
        if not isinstance(name, str) or not model.has_tensor(name):
            raise bad(f"{what} tensor {name!r} is not in the graph")
        return model.tensor(name)

    s = tensor(meta["sample_input"].get("name"), "sample input")
    if s.dtype != np.int32 or int(np.prod(s.shape)) != 1 or s.index not in model.inputs:
        raise bad(f"sample input {s.name!r} must be an int32 graph input with one element")
    spk = meta.get("speaker_input")
    if cfg.has_gc:
        if not spk:
            raise bad("config has global conditioning but metadata has no speaker_input")
        t = tensor(spk.get("name"), "speaker input")
        if t.dtype != np.int32 or int(np.prod(t.shape)) != 1 or t.index not in model.inputs:
            raise bad(f"speaker input {t.name!r} must be an int32 graph input with one element")
        if int(spk.get("cardinality", -1)) != cfg.gc_cardinality:
            raise bad("speaker_input cardinality disagrees with the config")
    elif spk:
        raise bad("metadata has a speaker_input but the config has no global conditioning")
    outs = meta["outputs"]
    for key in ("probabilities", "logits"):
        t = tensor(outs.get(key), f"{key} output")
        if t.dtype != np.int8 or int(np.prod(t.shape)) != 256 or t.index not in model.outputs:
            raise bad(f"{key} output {t.name!r} must be an int8 graph output with 256 elements")
    dls = meta["delay_lines"]
    if not isinstance(dls, list):
        raise bad("delay_lines must be a list")
    seen_reads = set()
    for i, dl in enumerate(dls):
        if not isinstance(dl, dict):
            raise bad(f"delay_lines[{i}] is not an object")
        r = tensor(dl.get("read"), f"delay_lines[{i}] read")
        w = tensor(dl.get("write"), f"delay_lines[{i}] write")
        d = dl.get("delay")
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            raise bad(f"delay_lines[{i}] delay must be a positive integer, got {d!r}")
        if r.index not in model.inputs:
            raise bad(f"delay-line read {r.name!r} is not a graph input")
        if r.name in seen_reads:
            raise bad(f"delay-line read {r.name!r} appears twice")
        seen_reads.add(r.name)
        if r.dtype != np.int8 or w.dtype != np.int8 or int(np.prod(r.shape)) != int(np.prod(w.shape)):
            raise bad(f"delay line {r.name!r} <- {w.name!r}: both must be int8 of equal size")
    return dict(meta, config_obj=cfg)
