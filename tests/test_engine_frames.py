"""The engine's lowered frame graph (conv-in + upsampler FIR, run per feature frame) against the
real interpreters driving the same flatbuffer (converters.frame_graph.run_frame_graph), and its
streaming: frames fed in any chunks give the rows of one call, released no earlier than the
look-ahead allows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converters.frame_graph import build_frame_graph, frame_plan, run_frame_graph
from converters.interpreters import make_runner
from test_frame_graph import CASES, _model
from wavenet_edge._cond_stream import CondStream
from wavenet_edge.errors import ModelFileError
from wavenet_edge.lowered.frames import lower_frames
from wavenet_edge.program import schedule

_CACHE = {}


def _setup(case, profile):
    key = (case, profile)
    if key not in _CACHE:
        m, clips = _model(case)
        plan = frame_plan(m, clips)
        fb = build_frame_graph(m, plan)
        cfg = m.config
        fp = lower_frames(fb, profile=profile, cin_pad=cfg.cin_pad, upsampler=cfg.upsampler)
        _CACHE[key] = (m, plan, fb, fp, schedule(fp.program), clips)
    return _CACHE[key]


def _stream(fp, consts, cfg, batch=1):
    return CondStream((fp, consts), batch=batch, channels=cfg.cin_channels, hop=cfg.hop,
                      cin_pad=cfg.cin_pad, scale=fp.feature_scale,
                      zero_point=fp.feature_zero_point)


def _one_call(fp, consts, cfg, x):
    s = _stream(fp, consts, cfg)
    s.feed(x[None])
    s.end()
    return s.take(s.available)[0]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("profile", ["tflm", "litert"])
def test_frame_program_equals_the_interpreter(case, profile):
    m, plan, fb, fp, consts, clips = _setup(case, profile)
    for clip in clips[:2]:
        want = run_frame_graph(make_runner(fb, profile), m, plan, clip)
        got = _one_call(fp, consts, m.config, clip)
        assert got.shape == want.shape == ((clip.shape[0] - 2 * m.config.cin_pad) * m.config.hop,
                                           6)
        np.testing.assert_array_equal(got, want)


@settings(max_examples=25, deadline=None)
@given(case=st.sampled_from(list(CASES)), cuts=st.lists(st.integers(0, 16), max_size=6))
def test_frames_in_any_chunks_equal_one_call(case, cuts):
    m, plan, fb, fp, consts, clips = _setup(case, "tflm")
    cfg, x = m.config, clips[2]
    want = _one_call(fp, consts, cfg, x)
    s = _stream(fp, consts, cfg)
    got, k = [], 0
    for c in sorted(cuts) + [x.shape[0]]:
        c = min(c, x.shape[0])
        if c > k:
            s.feed(x[None, k:c])
            k = c
        # rows are released only for frames that are certainly inside the utterance
        assert s.consumed + s.available <= max(0, k - 2 * cfg.cin_pad) * cfg.hop
        got.append(s.take(s.available)[0])
    s.end()
    got.append(s.take(s.available)[0])
    np.testing.assert_array_equal(np.concatenate(got), want)


@pytest.mark.parametrize("case", list(CASES))
def test_lookahead_frames(case):
    """Frame f's samples become available exactly when padded frame f + cin_pad + lookahead
    has been fed (as long as the frames are inside the utterance)."""
    m, plan, fb, fp, consts, clips = _setup(case, "tflm")
    cfg, x = m.config, clips[0]
    p, la = cfg.cin_pad, fp.lookahead_frames
    # conv-in reaches cin_pad frames ahead, then the FIR its own ``ahead`` stage frames
    assert la == fp.ahead + (p if cfg.upsampler == "conv-in" else 0) >= 1
    s = _stream(fp, consts, cfg)
    for k in range(1, x.shape[0] + 1):
        s.feed(x[None, k - 1:k])
        ready = max(0, min(k - p - la, k - 2 * p))       # frames f with f + p + la < k
        assert s.available == ready * cfg.hop, (k, s.available)


def test_frame_contract_refusals():
    m, plan, fb, fp, consts, clips = _setup("conv-in", "tflm")
    with pytest.raises(ModelFileError, match="frames_per_call 3 does not fit a plain"):
        lower_frames(fb, cin_pad=1, upsampler="plain")
    with pytest.raises(ModelFileError, match="no 'wavenet_edge_frames' metadata"):
        from test_engine_helpers import model_bytes
        lower_frames(model_bytes("tiny"), cin_pad=1, upsampler="conv-in")
