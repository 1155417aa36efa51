"""wavenet_edge.contract is the one reader of the delay-line contract: the engine, ContractHost,
the op counter and simulate accept and refuse the same files, with the same message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters.host import ContractHost
from firmware_sim.opcount import count_ops
from firmware_sim.simulate import simulate
from firmware_sim.targets import builtin_targets
from test_engine_helpers import model_bytes
from wavenet_edge.contract import (FORMAT_VERSION, METADATA_NAME, Contract, DelayLine,
                                   parse_contract, read_contract)
from wavenet_edge.engine import Engine
from wavenet_edge.errors import ModelFileError
from wavenet_edge.tflite_file import read_tflite


@pytest.fixture(scope="module")
def good():
    return model_bytes("k2")


def _with_metadata(data: bytes, new: bytes, pad: bytes = b" ") -> bytes:
    """``data`` with its contract bytes replaced in place by ``new`` (at most as long; padded
    with ``pad``, JSON whitespace by default, so the flatbuffer layout is unchanged)."""
    old = read_tflite(data).metadata[METADATA_NAME]
    assert data.count(old) == 1 and len(new) <= len(old)
    return data.replace(old, new.ljust(len(old), pad))


def _meta(data):
    return json.loads(read_tflite(data).metadata[METADATA_NAME])


def _compact(meta) -> bytes:
    return json.dumps(meta, separators=(",", ":")).encode()


TARGET = next(iter(builtin_targets()))

# every reader of the contract, each returning something comparable
READERS = {
    "read_contract": lambda d: read_contract(read_tflite(d)).delay_lines,
    "engine": lambda d: tuple(DelayLine(x["read"], x["write"], x["delay"])
                              for x in Engine.from_bytes(d).metadata["delay_lines"]),
    "contract_host": lambda d: ContractHost(d, "litert").delay_lines,
    "count_ops": lambda d: count_ops(read_tflite(d)).delay_reads,
    "simulate": lambda d: simulate(d, targets=[TARGET], check_bitexact=False,
                                   seconds=0.05).delay_lines,
}


def test_contract_record(good):
    c = read_contract(read_tflite(good))
    assert isinstance(c, Contract)
    meta = _meta(good)
    assert c.metadata == meta and c.metadata["format_version"] == FORMAT_VERSION
    assert c.inputs.sample == meta["sample_input"]["name"] and c.inputs.speaker is None
    assert c.outputs.probabilities == meta["outputs"]["probabilities"]
    assert c.delay_lines == tuple(DelayLine(**x) for x in meta["delay_lines"])
    assert c.config is not None and c.config.dilations == (1, 2, 4, 8, 16)
    # one ring per distinct write, as long as its longest delay
    assert c.writes == tuple(dict.fromkeys(x["write"] for x in meta["delay_lines"]))
    for w in c.writes:
        assert c.ring_length(w) == max(x["delay"] for x in meta["delay_lines"] if x["write"] == w)


def test_trailing_nul_bytes_are_accepted_by_every_reader(good):
    padded = _with_metadata(good, _compact(_meta(good)), pad=b"\0")
    assert read_tflite(padded).metadata[METADATA_NAME].endswith(b"\0")
    for name, read in READERS.items():
        assert read(padded) == read(good), name
    # and they compute the same: the engine against the host on the padded file
    codes = np.random.default_rng(3).integers(0, 256, 40)
    eng = Engine.from_bytes(padded, profile="litert")
    got = eng.process(codes, logits=True)
    want = ContractHost(padded, "litert").run(codes, outputs=("logits",))["logits"]
    np.testing.assert_array_equal(got, want)


def _broken(meta, how):
    m = json.loads(json.dumps(meta))
    if how == "version":
        m["format_version"] = 2
        return _compact(m)
    if how == "not-json":
        return b"\xff" + _compact(m)[1:]
    if how == "not-object":
        return b"[1, 2]"
    if how == "delay":
        m["delay_lines"][1]["delay"] = 0
    elif how == "unknown-read":
        m["delay_lines"][0]["read"] = "nope"
    elif how == "write-not-output":
        m["delay_lines"][0]["write"] = m["sample_input"]["name"]
    elif how == "missing-key":
        del m["outputs"]
    elif how == "unfed-input":
        del m["delay_lines"][-1]
    elif how == "config":
        m["config"]["dilations"] = [0]
    return _compact(m)


@pytest.mark.parametrize("how, match", [
    ("version", "format_version 2"), ("not-json", "not UTF-8 JSON"),
    ("not-object", "not a JSON object"), ("delay", "not a positive integer"),
    ("unknown-read", "'nope' is not a graph input"), ("write-not-output", "not a graph output"),
    ("missing-key", "lacks 'outputs'"), ("unfed-input", "neither the sample"),
    ("config", "metadata config"),
])
def test_malformed_metadata_is_refused_by_every_reader_with_one_message(good, how, match):
    bad = _with_metadata(good, _broken(_meta(good), how))
    messages = {}
    for name, read in READERS.items():
        with pytest.raises(ModelFileError, match=match) as e:
            read(bad)
        messages[name] = str(e.value)
    assert len(set(messages.values())) == 1, messages
    assert next(iter(messages.values())).startswith("<bytes>: delay-line contract: ")


def test_missing_metadata_entry(good):
    data = good.replace(METADATA_NAME.encode(), b"wavenet_edgX")
    for name, read in READERS.items():
        with pytest.raises(ModelFileError, match="no 'wavenet_edge' metadata"):
            read(data)


def test_engine_needs_a_wavenet_config(good):
    m = _meta(good)
    del m["config"]
    data = _with_metadata(good, _compact(m))
    assert read_contract(read_tflite(data)).config is None     # a host can drive it
    with pytest.raises(ModelFileError, match="no 'config'"):
        parse_contract(read_tflite(data))
