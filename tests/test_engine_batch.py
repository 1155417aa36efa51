"""Batched streams: B=16 (and B=3, B=20: lanes of 8, a partial group of 16) ≡ B single streams on
every tensor at every step, in every FC mode (VNNI lanes GEMM on interleaved and row-major
weights, the plain stream loop); streams of a batch ≡ the real interpreters; ``threads=T`` ≡
``threads=1`` (each thread its own stream-minor state; one-stream ranges on the B=1 path)."""

from __future__ import annotations

import numpy as np
import pytest

from test_engine_helpers import model_bytes, speech
from wavenet_edge import encode_classes
from wavenet_edge.engine import Engine
from wavenet_edge.errors import ConfigError


def _batch_codes(cfg, B, n):
    """B different streams: speech clips, shifted and reversed."""
    base = [encode_classes(speech(w, n + 37 * B), convention=cfg.mulaw) for w in "abc"]
    rows = []
    for b in range(B):
        c = base[b % 3][37 * b:37 * b + n]
        rows.append(c[::-1] if (b // 3) % 2 else c)
    return np.ascontiguousarray(np.stack(rows))


def _fc_modes(eng):
    """The FC modes the engine's schedule runs, and the largest FC (weights)."""
    from wavenet_edge._kernels_fc import vnni_mode
    from wavenet_edge.lowered.kinds import OpKind

    ops = eng._shared.consts.ops
    fcs = ops[(ops["kind"] == OpKind.FC) | (ops["kind"] == OpKind.FC2)]
    rows = fcs["n"] + np.where(fcs["kind"] == OpKind.FC2, fcs["n2"], 0)
    return {int(vnni_mode(r, c)) for r, c in zip(rows, fcs["cols"])}, int((rows * fcs["cols"]).max())


@pytest.mark.parametrize("profile", ["tflm", "litert", "xnnpack"])
@pytest.mark.parametrize("name,B", [("odd", 16), ("skip68", 16), ("small", 16), ("gc", 3),
                                    ("k3", 20)])
def test_batch_equals_single_streams_on_every_tensor(name, B, profile, monkeypatch):
    # B=3 too as one stream-minor set (by default fewer than 6 streams run as single streams)
    monkeypatch.setattr(Engine, "MIN_SET_STREAMS", 2)
    data = model_bytes(name)
    one = Engine.from_bytes(data, profile=profile)
    many = Engine.from_bytes(data, profile=profile, batch=B)
    codes = _batch_codes(one.config, B, 160)
    speakers = np.arange(B) % max(1, one.config.gc_cardinality)
    if one.config.has_gc:
        many.speaker = speakers
    names = sorted(one.program.tensor_offsets)
    got = many.trace(codes, names)
    for b in range(B):
        one.reset()
        if one.config.has_gc:
            one.speaker = int(speakers[b])
        want = one.trace(codes[b], names)
        for n in names:
            assert np.array_equal(got[n][b], want[n]), (b, n)


def test_the_batch_tests_cover_every_fc_mode():
    """The models above run FCs in each mode this CPU has, and one matrix large enough for the
    blocked path (> 16384 weights), so a batched kernel none of them used cannot hide."""
    from wavenet_edge._cpu import HAS_VNNI
    modes, big = set(), 0
    for name in ("odd", "skip68", "small", "gc"):
        m, b = _fc_modes(Engine.from_bytes(model_bytes(name)))
        modes |= m
        big = max(big, b)
    assert modes == ({0, 1, 2} if HAS_VNNI else {0})
    assert big > 16384


@pytest.mark.parametrize("profile", ["tflm", "litert"])
def test_streams_of_a_batch_match_the_interpreter(profile):
    from converters.host import ContractHost

    data = model_bytes("skip68")
    B = 16
    eng = Engine.from_bytes(data, profile=profile, batch=B)
    codes = _batch_codes(eng.config, B, 700)
    host = ContractHost(data, {"tflm": "tflm", "litert": "litert"}[profile])
    names = list(host.output_names)
    got = eng.trace(codes, names)
    for b in (0, 7, 15):
        host.reset()
        ref = host.run(codes[b], outputs=names)
        for n in names:
            assert np.array_equal(ref[n].reshape(codes.shape[1], -1), got[n][b]), (b, n)


@pytest.mark.parametrize("B,threads", [(3, 2), (16, 2), (5, 3), (2, 4)])
def test_threads_give_the_same_streams(B, threads, monkeypatch):
    monkeypatch.setattr(Engine, "MIN_SET_STREAMS", 2)   # sets of 2 streams too
    data = model_bytes("odd")
    one = Engine.from_bytes(data, batch=B)
    par = Engine.from_bytes(data, batch=B, threads=threads)
    assert par.threads == min(threads, B)
    codes = _batch_codes(one.config, B, 300)
    names = sorted(one.program.tensor_offsets)
    a, b = one.trace(codes[:, :200], names), par.trace(codes[:, :200], names)
    for n in names:
        assert np.array_equal(a[n], b[n]), n
    # streaming on, logits-only runs, single steps and generation
    assert np.array_equal(one.process(codes[:, 200:], logits=True),
                          par.process(codes[:, 200:], logits=True))
    assert np.array_equal(one.step(codes[:, 5]), par.step(codes[:, 5]))
    assert np.array_equal(one.generate(120, seed=4, temperature=0.7),
                          par.generate(120, seed=4, temperature=0.7))
    one.reset()
    par.reset()
    assert np.array_equal(one.generate(60, seed=1), par.generate(60, seed=1))


def _as_set(monkeypatch, data, B, one_set, **kw):
    """Engine of B streams as one stream-minor set (``one_set``) or as B single-stream states."""
    monkeypatch.setattr(Engine, "MIN_SET_STREAMS", 2 if one_set else B + 1)
    eng = Engine(data, batch=B, **kw)
    assert len(eng._parts) == (1 if one_set else B)
    return eng


def test_small_batches_as_one_set_or_single_streams(monkeypatch):
    """B=3 as one stream-minor set and as three single-stream states (the default below
    ``MIN_SET_STREAMS``): the same tensors at every step, logits, state and generation."""
    data = model_bytes("k2")
    a, b = (_as_set(monkeypatch, data, 3, s) for s in (True, False))
    codes = _batch_codes(a.config, 3, 150)
    names = sorted(a.program.tensor_offsets)
    ta, tb = a.trace(codes[:, :100], names), b.trace(codes[:, :100], names)
    for n in names:
        assert np.array_equal(ta[n], tb[n]), n
        assert np.array_equal(a.tensor(n), b.tensor(n)), n
    assert np.array_equal(a.process(codes[:, 100:], logits=True),
                          b.process(codes[:, 100:], logits=True))
    assert np.array_equal(a.generate(60, seed=3, temperature=0.8),
                          b.generate(60, seed=3, temperature=0.8))


def test_vocoder_batch_as_one_set_equals_single_streams(monkeypatch):
    """Conditioned steps (cond rows written into the stream-minor arena, the sampler reading
    gathered logits): one set of 2 streams ≡ two single-stream states, ≡ B=1 engines."""
    from test_engine_cond import two_streams, vocoder_bytes

    data = vocoder_bytes()
    codes, cond = two_streams(data)
    c1, c2 = cond
    got = _as_set(monkeypatch, data, 2, True).process(codes, cond=cond)
    for b, cc in enumerate((c1, c2)):
        np.testing.assert_array_equal(got[b], Engine(data).process(codes[b], cond=cc))
    gen = [_as_set(monkeypatch, data, 2, s).generate(512, cond=cond, seed=5)
           for s in (True, False)]
    np.testing.assert_array_equal(gen[0], gen[1])


def test_threads_argument_is_checked():
    data = model_bytes("k2")
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="threads"):
            Engine.from_bytes(data, batch=2, threads=bad)
    assert Engine.from_bytes(data, threads=4).threads == 1      # one stream: one thread


def test_split_streams_covers_the_batch():
    from wavenet_edge._stream_threads import StreamThreads, split_streams

    for B in range(1, 20):
        for T in range(1, 6):
            parts = split_streams(B, T)
            assert len(parts) == min(B, T)
            assert parts[0][0] == 0 and parts[-1][1] == B
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            sizes = [b1 - b0 for b0, b1 in parts]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    seen = []

    def work(i, b0, b1):
        seen.append((i, b0, b1))
        if i == 2:
            raise ValueError("stream range 2 failed")

    st = StreamThreads(7, 3)
    with pytest.raises(ValueError, match="range 2"):
        st.run(work)
    assert sorted(seen) == [(0, 0, 3), (1, 3, 5), (2, 5, 7)]
    st.close()
