"""converters.interpreters and converters.host on small hand-built graphs, with expected
values computed by hand and the real interpreters (TFLM, LiteRT) as the runtimes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters.tflite_writer import GraphBuilder
from converters.host import ContractHost
from converters.interpreters import RUNTIMES, find_arena_size, make_runner
from wavenet_edge.errors import ConfigError, ModelFileError, UnknownProfileError, WaveNetEdgeError

R = 4  # channels
ZP_X, ZP_H, ZP_P = 5, -3, 2


def _table():
    """int8 [256, R], scale 1, zero point ZP_X: real values in -3..3."""
    c = np.arange(256)[:, None]
    j = np.arange(R)[None, :]
    return ((c * 7 + j * 3) % 7 - 3 + ZP_X).astype(np.int8)


def _delay_graph(*, lines=None, mutate=None, metadata=True, speaker=False):
    """x = GATHER(table, sample); logits = x + x@3; h = logits + h@2; probs = h + x@6.

    Every scale is 1.0, so each ADD is exact integer arithmetic on the real values."""
    b = GraphBuilder()
    q = lambda name, zp: b.add_tensor(name, (1, R), np.int8, scale=1.0, zero_point=zp)  # noqa: E731
    sample = b.add_tensor("sample", (1,), np.int32)
    table = b.add_tensor("table", (256, R), np.int8, data=_table(), scale=1.0, zero_point=ZP_X)
    x = q("x", ZP_X)
    x3 = q("x@3", ZP_X)
    x6 = q("x@6", ZP_X if not (mutate == "zp") else ZP_X + 1)
    h2 = q("h@2", ZP_H)
    logits = q("logits", 0)
    h = q("h", ZP_H)
    probs = q("probs", ZP_P)
    ins = [sample]
    if speaker:
        spk = b.add_tensor("speaker", (1,), np.int32)
        ins.append(spk)
    b.add_operator("GATHER", [table, sample], [x], axis=0, batch_dims=0)
    b.add_operator("ADD", [x, x3], [logits])
    b.add_operator("ADD", [logits, h2], [h])
    b.add_operator("ADD", [h, x6], [probs])
    b.set_inputs(ins + [x3, x6, h2])
    b.set_outputs([probs, logits, x, h])
    if lines is None:
        lines = [{"read": "x@3", "write": "x", "delay": 3},
                 {"read": "x@6", "write": "x", "delay": 6},
                 {"read": "h@2", "write": "h", "delay": 2}]
    meta = {"format_version": 1, "producer": "test", "sample_rate": 16000,
            "sample_input": {"name": "sample", "encoding": "class_index", "dtype": "int32"},
            "speaker_input": {"name": "speaker", "cardinality": 3} if speaker else None,
            "outputs": {"probabilities": "probs", "logits": "logits"},
            "delay_lines": lines}
    if metadata:
        b.add_metadata("wavenet_edge", json.dumps(meta).encode())
    return b.build(description="delay-line test graph")


def _expected(codes):
    """Hand computation of the graph above (real values, then quantized)."""
    x = _table()[codes].astype(np.int64) - ZP_X  # (n, R) real
    n = len(codes)
    past = lambda a, d, t: a[t - d] if t >= d else np.zeros(R, np.int64)  # noqa: E731
    logits = np.array([x[t] + past(x, 3, t) for t in range(n)])
    h = np.zeros((n, R), np.int64)
    for t in range(n):
        h[t] = logits[t] + past(h, 2, t)
    probs = np.array([h[t] + past(x, 6, t) for t in range(n)])
    assert np.abs(probs + ZP_P).max() <= 127 and np.abs(h + ZP_H).max() <= 127
    return {"logits": logits.astype(np.int8), "probs": (probs + ZP_P).astype(np.int8),
            "h": (h + ZP_H).astype(np.int8), "x": (x + ZP_X).astype(np.int8)}


@pytest.fixture(scope="module")
def graph():
    return _delay_graph()


CODES = np.random.default_rng(7).integers(0, 256, 25)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_contract_host_matches_hand_computation(graph, runtime):
    host = ContractHost(graph, runtime)
    exp = _expected(CODES)
    got = host.run(CODES)
    assert set(got) == {"probs", "logits"}
    assert got["probs"].shape == (len(CODES), R) and got["probs"].dtype == np.int8
    np.testing.assert_array_equal(got["logits"], exp["logits"])
    np.testing.assert_array_equal(got["probs"], exp["probs"])
    # reset restores the zero-point history; step returns every graph output of the step
    host.reset()
    for t in range(8):
        out = host.step(int(CODES[t]))
        assert set(out) == {"probs", "logits", "x", "h"}
        for name in out:
            np.testing.assert_array_equal(out[name].reshape(R), exp[name][t])


def test_tflm_and_litert_identical_and_resumable(graph):
    a = ContractHost(graph, "tflm").run(CODES, outputs=("probs", "logits", "h"))
    b = ContractHost(graph, "litert").run(CODES, outputs=("probs", "logits", "h"))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    # running in two halves continues the same state
    host = ContractHost(graph, "tflm")
    first = host.run(CODES[:11])
    second = host.run(CODES[11:])
    np.testing.assert_array_equal(np.concatenate([first["probs"], second["probs"]]), a["probs"])


def test_initial_reads_are_zero_points(graph):
    host = ContractHost(graph, "litert")
    out = host.step(0)
    x0 = _table()[0].astype(np.int64) - ZP_X
    np.testing.assert_array_equal(out["logits"].reshape(R), x0)  # x@3 read as real 0
    np.testing.assert_array_equal(out["h"].reshape(R), x0 + ZP_H)  # h@2 read as real 0


def test_host_from_path(tmp_path, graph):
    p = tmp_path / "g.tflite"
    p.write_bytes(graph)
    host = ContractHost(p, "tflm")
    np.testing.assert_array_equal(host.run(CODES[:6])["probs"], _expected(CODES[:6])["probs"])


def test_speaker_validation():
    g = _delay_graph(speaker=True)
    host = ContractHost(g, "litert")
    with pytest.raises(ConfigError, match="speaker"):
        host.step(3)
    with pytest.raises(ConfigError, match="speaker id"):
        host.step(3, speaker=3)
    host.step(3, speaker=2)
    plain = ContractHost(_delay_graph(), "litert")
    with pytest.raises(ConfigError, match="no speaker"):
        plain.step(3, speaker=0)
    with pytest.raises(ConfigError, match="0..255"):
        plain.step(256)
    with pytest.raises(ConfigError, match="not an integer"):
        plain.step("a")
    with pytest.raises(ConfigError, match="0..255"):
        plain.run([1, -1])
    with pytest.raises(ConfigError, match="not an output"):
        plain.run([1], outputs=("nope",))


@pytest.mark.parametrize("kwargs, match", [
    (dict(metadata=False), "no 'wavenet_edge' metadata"),
    (dict(lines=[{"read": "x@3", "write": "x", "delay": 0},
                 {"read": "x@6", "write": "x", "delay": 6},
                 {"read": "h@2", "write": "h", "delay": 2}]), "not a positive integer"),
    (dict(lines=[{"read": "x@3", "write": "x", "delay": 3},
                 {"read": "x@6", "write": "x", "delay": 6}]), "neither the sample"),
    (dict(lines=[{"read": "x@3", "write": "x", "delay": 3},
                 {"read": "x@6", "write": "x", "delay": 6},
                 {"read": "h@2", "write": "nope", "delay": 2}]), "not a graph output"),
    (dict(lines=[{"read": "x@3", "write": "x", "delay": 3},
                 {"read": "x@6", "write": "x", "delay": 6},
                 {"read": "h@2", "write": "x", "delay": 2}]), "quantized differently"),
    (dict(lines=[{"read": "x@3", "write": "x", "delay": 3},
                 {"read": "x@6", "write": "x"},
                 {"read": "h@2", "write": "h", "delay": 2}]), "lacks 'delay'"),
    (dict(mutate="zp"), "quantized differently"),
])
def test_contract_validation(kwargs, match, tmp_path):
    p = tmp_path / "bad.tflite"
    p.write_bytes(_delay_graph(**kwargs))
    with pytest.raises(ModelFileError, match=match) as e:
        ContractHost(p, "litert")
    assert str(p) in str(e.value)


def test_contract_shape_mismatch():
    b = GraphBuilder()
    s = b.add_tensor("sample", (1,), np.int32)
    r = b.add_tensor("r", (1, 3), np.int8, scale=1.0, zero_point=0)
    w = b.add_tensor("w", (1, 4), np.int8, scale=1.0, zero_point=0)
    tab = b.add_tensor("tab", (256, 4), np.int8, data=np.zeros((256, 4)), scale=1.0, zero_point=0)
    b.add_operator("GATHER", [tab, s], [w], axis=0, batch_dims=0)
    b.set_inputs([s, r])
    b.set_outputs([w, w])
    b.add_metadata("wavenet_edge", json.dumps({
        "format_version": 1, "sample_input": {"name": "sample"}, "speaker_input": None,
        "outputs": {"probabilities": "w", "logits": "w"},
        "delay_lines": [{"read": "r", "write": "w", "delay": 1}]}).encode())
    with pytest.raises(ModelFileError, match=r"int8\[1, 3\].*int8\[1, 4\]"):
        ContractHost(b.build(), "litert")


# ---------------------------------------------------------------------------------------------
# interpreters
# ---------------------------------------------------------------------------------------------
def test_runner_names_and_errors(graph):
    for rt in RUNTIMES:
        r = make_runner(graph, rt)
        assert r.input_names == ("sample", "x@3", "x@6", "h@2")
        assert r.output_names == ("probs", "logits", "x", "h")
        with pytest.raises(WaveNetEdgeError, match="no input"):
            r.set_input("nope", np.zeros(1))
        with pytest.raises(WaveNetEdgeError, match="no output"):
            r.get_output("nope")
    with pytest.raises(UnknownProfileError, match="unknown profile 'onnx'; known: tflm"):
        make_runner(graph, "onnx")
    with pytest.raises(ModelFileError):
        make_runner(b"garbage!", "litert")


def test_tflm_arena_found_and_given(graph):
    size = find_arena_size(graph)
    assert 0 < size < 64 * 1024
    r = make_runner(graph, "tflm")
    assert r.arena_size == size
    with pytest.raises(ModelFileError, match="arena"):
        make_runner(graph, "tflm", arena_size=size - 16)  # minimal at 16-byte granularity
    r = make_runner(graph, "tflm", arena_size=size + 1024)
    assert r.arena_size == size + 1024


def test_runner_coerces_inputs_and_returns_copies(graph):
    for rt in RUNTIMES:
        r = make_runner(graph, rt)
        assert r.input_spec("x@3") == ((1, R), np.dtype(np.int8))
        r.set_input("sample", 7)  # scalar python int -> int32 [1]
        for name in ("x@3", "x@6"):
            r.set_input(name, [ZP_X] * R)  # list, flat -> int8 [1, R]
        r.set_input("h@2", np.full((1, R), ZP_H, np.int8))
        r.invoke()
        a = r.get_output("x")
        a[...] = 0  # a copy: the next read is unaffected
        np.testing.assert_array_equal(r.get_output("x").reshape(R), _table()[7])
        np.testing.assert_array_equal(r.bind_output("x")().reshape(R), _table()[7])
        r.reset()


@pytest.mark.parametrize("runtime, module", [("tflm", "tflite_micro.python.tflite_micro"),
                                             ("litert", "ai_edge_litert.interpreter")])
def test_missing_runtime_package_is_a_clear_error(graph, monkeypatch, runtime, module):
    monkeypatch.setitem(__import__("sys").modules, module, None)  # import now fails
    with pytest.raises(WaveNetEdgeError, match="pip install"):
        make_runner(graph, runtime, arena_size=64 * 1024)
