"""Threads: streams of one loaded model run concurrently and each gets exactly its
single-thread result; one stateful Engine used by two threads at once raises
ConcurrentUseError instead of silently mixing their steps."""

import threading

import numpy as np
import pytest

from test_engine_helpers import model_bytes
from wavenet_edge.engine import Engine
from wavenet_edge.errors import ConcurrentUseError, WaveNetEdgeError

N = 20_000


def _codes(seed):
    # a slowly wandering code sequence (audio-like), different per thread
    rng = np.random.default_rng(seed)
    return np.clip(128 + np.cumsum(rng.integers(-3, 4, N)), 0, 255).astype(np.int64)


def _in_threads(fns):
    """Run each fn in its own thread, all released together; return (results, errors)."""
    barrier = threading.Barrier(len(fns))
    res, err = [None] * len(fns), [None] * len(fns)

    def run(k):
        barrier.wait()
        try:
            res[k] = fns[k]()
        except Exception as e:  # noqa: BLE001 - reported to the test
            err[k] = e

    ts = [threading.Thread(target=run, args=(k,)) for k in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res, err


@pytest.fixture(scope="module")
def model():
    eng = Engine.from_bytes(model_bytes("tiny"))
    eng.warmup()
    codes = [_codes(1), _codes(2)]
    refs = [eng.stream().process(c) for c in codes]
    return eng, codes, refs


def test_streams_of_one_model_in_two_threads_are_exact(model):
    eng, codes, refs = model
    streams = [eng.stream(), eng.stream()]
    assert all(s.program is eng.program for s in streams)
    assert streams[0]._state.arena is not streams[1]._state.arena
    res, err = _in_threads([lambda k=k: streams[k].process(codes[k]) for k in range(2)])
    assert err == [None, None]
    for k in range(2):
        wrong = int(np.count_nonzero(np.any(res[k] != refs[k], axis=1)))
        assert wrong == 0, f"thread {k}: {wrong} of {N} steps differ"
        assert streams[k].t == N


def test_one_engine_in_two_threads_raises_or_serializes(model):
    eng, codes, refs = model
    shared = eng.stream()
    res, err = _in_threads([lambda k=k: shared.process(codes[k]) for k in range(2)])
    for e in err:
        assert e is None or isinstance(e, ConcurrentUseError), e
    ok = [k for k in range(2) if err[k] is None]
    assert ok, "the thread holding the engine must finish"
    if len(ok) == 1:
        # the other thread was refused before it touched the state: the first is exact
        assert np.array_equal(res[ok[0]], refs[ok[0]])
    else:
        # no overlap happened: one call ran after the other, continuing its state
        first = 0 if np.array_equal(res[0], refs[0]) else 1
        assert np.array_equal(res[first], refs[first])
        again = eng.stream()
        again.process(codes[first])
        assert np.array_equal(res[1 - first], again.process(codes[1 - first]))


def test_concurrent_use_is_detected_on_every_entry_point(model):
    eng, codes, _ = model
    busy = eng.stream()
    held, release = threading.Event(), threading.Event()

    def hold():   # another thread inside one of busy's calls
        with busy._exclusive():
            held.set()
            release.wait()

    t = threading.Thread(target=hold)
    t.start()
    held.wait()
    try:
        for call in (lambda: busy.process(codes[0][:10]), lambda: busy.step(3),
                     lambda: busy.generate(5), lambda: busy.reset(),
                     lambda: busy.tensor(next(iter(busy.program.tensor_offsets))),
                     lambda: busy.trace(codes[0][:3], []), busy.warmup):
            with pytest.raises(ConcurrentUseError, match="another thread") as ei:
                call()
            assert isinstance(ei.value, WaveNetEdgeError)
        assert busy.t == 0
        # other streams of the same model are unaffected
        assert np.array_equal(eng.stream().process(codes[0][:50]),
                              eng.stream().process(codes[0][:50]))
    finally:
        release.set()
        t.join()
    busy.process(codes[0][:10])   # free again
    assert busy.t == 10


def test_stream_batch_and_speakers_are_per_stream():
    gc = Engine.from_bytes(model_bytes("gc"))
    a, b = gc.stream(), gc.stream(batch=2)
    assert (a.batch, b.batch) == (1, 2)
    a.speaker = 1
    b.speaker = [0, 1]
    assert gc.speaker == 0 and a.speaker == 1
    codes = _codes(3)[:200]
    out = b.process(np.vstack([codes, codes]))
    assert np.array_equal(out[1], a.process(codes))
    assert not np.array_equal(out[0], out[1])
