"""Streaming ≡ one call ≡ step by step, bit for bit; batch B ≡ B single streams; reset."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from test_engine_helpers import model_bytes, speech
from wavenet_edge import encode_classes
from wavenet_edge.engine import Engine


def _codes(eng, n, which="a"):
    return encode_classes(speech(which, n), convention=eng.config.mulaw)


def _blocks(eng, codes, sizes, logits=False):
    out, i, k = [], 0, 0
    while i < len(codes):
        s = sizes[k % len(sizes)]
        out.append(eng.process(codes[i:i + s], logits=logits))
        i += s
        k += 1
    return np.concatenate(out)


def test_block_sizes_around_every_delay():
    data = model_bytes("k3")
    eng = Engine.from_bytes(data)
    codes = _codes(eng, 700)
    ref = eng.process(codes)
    delays = sorted({d * m for d in eng.config.dilations for m in (1, 2)})
    for d in delays:
        for s in (d - 1, d, d + 1):
            if s < 1:
                continue
            eng.reset()
            np.testing.assert_array_equal(_blocks(eng, codes, [s]), ref, err_msg=f"block {s}")
    eng.reset()
    steps = np.stack([eng.step(int(c)) for c in codes[:200]])
    np.testing.assert_array_equal(steps, ref[:200])


@settings(max_examples=15)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_any_split_gives_the_same_logits(sizes):
    data = model_bytes("wide")
    eng = Engine.from_bytes(data)
    codes = _codes(eng, 300, "c")
    ref = eng.process(codes, logits=True)
    eng.reset()
    np.testing.assert_array_equal(_blocks(eng, codes, sizes, logits=True), ref)


def test_batch_equals_single_streams():
    data = model_bytes("gc")
    single = Engine.from_bytes(data)
    n = 400
    codes = np.stack([_codes(single, n, w) for w in "abc"])
    batch = Engine.from_bytes(data, batch=3)
    batch.speaker = [0, 2, 1]
    got = batch.process(codes)
    assert got.shape == (3, n, 256)
    for b, spk in enumerate((0, 2, 1)):
        single.reset()
        single.speaker = spk
        np.testing.assert_array_equal(got[b], single.process(codes[b]))
    # batch streaming, and step() with one code per stream
    batch.reset()
    first = batch.process(codes[:, :150], logits=True)
    rest = batch.process(codes[:, 150:], logits=True)
    batch.reset()
    whole = batch.process(codes, logits=True)
    np.testing.assert_array_equal(np.concatenate([first, rest], axis=1), whole)
    batch.reset()
    p = batch.step(codes[:, 0])
    assert p.shape == (3, 256)


def test_batch_generate_equals_single_streams():
    data = model_bytes("k2")
    batch = Engine.from_bytes(data, batch=3)
    gen = batch.generate(200, seed=11)
    assert gen.shape == (3, 200)
    # stream b of a batch uses PCG32 sequence b: differs between streams, reproducible
    assert not np.array_equal(gen[0], gen[1])
    np.testing.assert_array_equal(Engine.from_bytes(data).generate(200, seed=11), gen[0])


def test_large_fc_blocks_with_batch():
    """Batch > 1 on a graph whose end stack exceeds one 16 KB weight block."""
    data = model_bytes("tiny")
    single = Engine.from_bytes(data)
    codes = np.stack([_codes(single, 120, w) for w in "ab"])
    got = Engine.from_bytes(data, batch=2).process(codes, logits=True)
    for b in range(2):
        single.reset()
        np.testing.assert_array_equal(got[b], single.process(codes[b], logits=True))


def test_reset_and_out_argument():
    data = model_bytes("k2")
    eng = Engine.from_bytes(data)
    codes = _codes(eng, 300)
    a = eng.process(codes)
    assert eng.t == 300
    eng.reset()
    out = np.empty((300, 256), np.int8)
    r = eng.process(codes, out=out)
    assert r.base is out or r is out
    np.testing.assert_array_equal(out, a)
    # probabilities: int8 with zero point -128 that sum to ~256
    s = out.astype(np.int64).sum(axis=1) + 128 * 256
    assert np.all(np.abs(s - 256) < 64)


def test_warmup_leaves_the_state_alone():
    eng = Engine.from_bytes(model_bytes("k2"))
    codes = _codes(eng, 100)
    a = eng.process(codes[:50])
    eng.warmup()
    b = eng.process(codes[50:])
    eng.reset()
    np.testing.assert_array_equal(np.concatenate([a, b]), eng.process(codes))
