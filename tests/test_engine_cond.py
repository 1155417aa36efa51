"""A vocoder in the engine (frame graph + conditioned step graph) against the real interpreters
driven by the contract (converters.host.ContractHost with features): every graph output at every
step teacher-forced, free-running codes, for the tflm and litert profiles; streaming frames in
any chunks ≡ one call; batches; the one-line errors for bad features."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converters.features import vocoder_inputs
from converters.host import ContractHost
from test_engine_helpers import speech
from wavenet_edge import FloatWaveNet, WaveNetConfig
from wavenet_edge.config import preset
from wavenet_edge.engine import Engine
from wavenet_edge.errors import ConfigError
from wavenet_edge.sampling import Sampler

#: small vocoders: vocoder-tiny's features and upsampler (conv-in, hop 128 = 4·4·8, 20 mels)
#: on 8 thin layers; a plain upsampler; features at sample rate
VARIANTS = {
    "conv-in": {},
    "plain": dict(upsampler="plain", upsample_scales=[4, 4, 8], cin_pad=1),
    "none": dict(upsampler="none", upsample_scales=[], cin_pad=0),
    # r9y9's band-mixing UpsampleNetwork kernels (F = 3, reach 3 bands): the band-window
    # frame graph on vocoder-tiny's 20 bands
    "conv-in-F3": dict(freq_axis_kernel_size=3),
}


@functools.lru_cache(maxsize=None)
def vocoder_bytes(variant: str = "conv-in") -> bytes:
    from converters.convert import convert

    d = preset("vocoder-tiny").to_dict()
    d.update(dilations=[1, 2, 4, 8, 1, 2, 4, 8], residual_channels=8, dilation_channels=8,
             skip_channels=16, end_channels=16, **VARIANTS[variant])
    cfg = WaveNetConfig.from_dict(d)
    m = FloatWaveNet.initialize(cfg, seed=0)
    rng = np.random.default_rng(7)
    for k, a in m.weights.items():
        if k.endswith("/b") or k == "initial/bias":
            m.weights[k] = rng.normal(0.0, 0.1, a.shape)
        if k.startswith("upsample/") or "cond" in k:
            m.weights[k] = rng.normal(0.0, 0.3, a.shape)   # conditioning that matters
    cal = [speech("a", 8000).astype(np.float64), speech("b", 8000).astype(np.float64)]
    return convert(m, calibration=cal, method="minmax", progress=False,
                   evaluate_quality=False).tflite


def _inputs(cfg, frames=6, which="c"):
    hop = cfg.hop if cfg.upsampler != "none" else 128
    y, cond = vocoder_inputs(speech(which, hop * frames), sr=cfg.sample_rate, config=cfg)
    return y, cond


def _codes(eng, y):
    return eng.encode(np.clip(y, -1, 1))


RUNTIME = {"tflm": "tflm", "litert": "litert", "litert-ref": "litert-ref",
           "xnnpack": "litert-default"}


def _compare(data, profile, codes, cond):
    host = ContractHost(data, RUNTIME[profile])
    names = list(host.output_names)
    ref = host.run(codes, cond=cond, outputs=names)
    got = Engine(data, profile=profile).trace(codes, names, cond=cond)
    for name in names:
        a, b = ref[name].reshape(len(codes), -1), got[name]
        if not np.array_equal(a, b):
            bad = np.flatnonzero(np.any(a != b, axis=1))
            pytest.fail(f"{profile}: {name} differs at {bad.size} of {len(codes)} steps "
                        f"(first at step {bad[0]})")
    return names


@pytest.mark.parametrize("profile", ["tflm", "litert", "litert-ref", "xnnpack"])
def test_teacher_forced_every_output_matches_interpreter(profile):
    data = vocoder_bytes()
    eng = Engine(data)
    y, cond = _inputs(eng.config)
    names = _compare(data, profile, _codes(eng, y), cond)
    assert "probs" in names and len(names) > 2


@pytest.mark.parametrize("variant", ["plain", "none", "conv-in-F3"])
def test_other_upsamplers_match_interpreter(variant):
    data = vocoder_bytes(variant)
    eng = Engine(data)
    y, cond = _inputs(eng.config, frames=4)
    _compare(data, "tflm", _codes(eng, y), cond)


@pytest.mark.parametrize("profile, variant", [("tflm", "conv-in"), ("litert", "conv-in"),
                                              ("litert", "conv-in-F3")])
def test_free_running_matches_interpreter(profile, variant):
    """The engine's codes generated with cond, fed to the interpreter with the same features:
    identical probabilities at every step, and re-sampled with the same seed, the same codes."""
    data = vocoder_bytes(variant)
    eng = Engine(data, profile=profile)
    _, cond = _inputs(eng.config, frames=5)
    n = (cond.shape[0] - 2 * eng.config.cin_pad) * eng.hop
    gen = eng.generate(n, cond=cond, seed=99)
    assert gen.shape == (n,) and len(np.unique(gen)) > 5
    fed = np.concatenate([[eng.silence_code()], gen[:-1]])
    ref = ContractHost(data, profile).run(fed, cond=cond, outputs=("probs", "logits"))
    s = Sampler(99, logits_scale=eng.program.logits_scale)
    again = [s.sample(q) for q in ref["logits"].reshape(n, 256)]
    np.testing.assert_array_equal(again, gen)
    fresh = Engine(data, profile=profile)
    np.testing.assert_array_equal(fresh.process(fed, cond=cond), ref["probs"].reshape(n, 256))


def test_conditioning_changes_the_output():
    """A test that could not fail otherwise: other features, other probabilities."""
    data = vocoder_bytes()
    eng = Engine(data)
    y, cond = _inputs(eng.config)
    codes = _codes(eng, y)
    a = eng.process(codes, cond=cond)
    eng.reset()
    b = eng.process(codes, cond=cond[::-1].copy())
    assert (a != b).any(axis=1).mean() > 0.5


@settings(max_examples=12, deadline=None)
@given(frame_cuts=st.lists(st.integers(0, 9), max_size=4),
       step_cuts=st.lists(st.integers(0, 900), max_size=4), generate=st.booleans())
def test_streaming_frames_equal_one_call(frame_cuts, step_cuts, generate):
    """Frames fed in random chunks, steps taken in random chunks as far as the frames allow,
    then the end of the stream: the same probabilities (or generated codes) as one call."""
    data = vocoder_bytes()
    one = Engine(data)
    y, cond = _inputs(one.config, frames=7)
    codes = _codes(one, y)
    n = codes.shape[0]
    want = one.generate(n, cond=cond, seed=3) if generate else one.process(codes, cond=cond)
    eng = one.stream()
    got, done, k = [], 0, 0
    cuts = sorted(set(frame_cuts)) + [cond.shape[0], None]
    steps = sorted(step_cuts)
    for c in cuts:
        if c is None:
            eng.end_frames()
        elif c > k:
            eng.feed_frames(cond[k:c])
            k = c
        assert done + eng.cond_available <= n
        while eng.cond_available:
            take = min([s - done for s in steps if s > done] + [eng.cond_available])
            if generate:
                got.append(eng.generate(take, seed=3))
            else:
                got.append(eng.process(codes[done:done + take]))
            done += take
    assert done == n
    np.testing.assert_array_equal(np.concatenate(got), want)


def test_lookahead_and_release():
    data = vocoder_bytes()
    eng = Engine(data)
    cfg = eng.config
    assert eng.hop == cfg.hop == 128
    # conv-in (cin_pad 1) plus the FIR's frames ahead
    assert eng.lookahead_frames >= cfg.cin_pad + 1
    assert eng.lookahead_samples == eng.lookahead_frames * 128
    _, cond = _inputs(cfg, frames=8)
    p, la = cfg.cin_pad, eng.lookahead_frames
    for k in range(cond.shape[0]):
        eng.feed_frames(cond[k:k + 1])
        ready = max(0, min(k + 1 - p - la, k + 1 - 2 * p))
        assert eng.cond_available == ready * 128, k
    assert eng.end_frames() == (cond.shape[0] - 2 * p) * 128


def two_streams(data):
    """Codes (2, n) and features (2, frames, cin) of clips c and d for a batch of two."""
    one = Engine(data)
    y1, c1 = _inputs(one.config, frames=4, which="c")
    y2, c2 = _inputs(one.config, frames=4, which="d")
    return np.stack([_codes(one, y1), _codes(one, y2)]), np.stack([c1, c2])


def test_batch_with_cond_equals_single_streams():
    data = vocoder_bytes()
    codes, cond = two_streams(data)
    c1, c2 = cond
    eng = Engine(data, batch=2)
    got = eng.process(codes, cond=cond)
    for b, (cd, cc) in enumerate(((codes[0], c1), (codes[1], c2))):
        np.testing.assert_array_equal(got[b], Engine(data).process(cd, cond=cc))
    threaded = Engine(data, batch=2, threads=2)
    np.testing.assert_array_equal(threaded.process(codes, cond=cond), got)
    gen = Engine(data, batch=2).generate(512, cond=cond, seed=5)
    assert gen.shape == (2, 512)
    np.testing.assert_array_equal(Engine(data, batch=2, threads=2).generate(512, cond=cond,
                                                                             seed=5), gen)


def test_score_with_features_matches_the_interpreter():
    data = vocoder_bytes()
    eng = Engine(data)
    y, cond = _inputs(eng.config, frames=4)
    bits = eng.score(y, cond=cond)
    codes = _codes(eng, y)
    host = ContractHost(data, "tflm")
    host.set_features(cond)
    ref = host.run(codes[:-1], outputs=("logits",))
    lg = ((ref["logits"].reshape(-1, 256).astype(np.float64) - eng.program.logits_zero_point)
          * eng.program.logits_scale)
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    assert bits == pytest.approx((lse - lg[np.arange(len(lg)), codes[1:]]).mean() / np.log(2),
                                 rel=1e-12)
    assert eng.score(y, cond=cond) == bits
    with pytest.raises(ConfigError, match="locally conditioned"):
        eng.score(y)


def test_bad_features_one_line_errors():
    data = vocoder_bytes()
    eng = Engine(data)
    cfg = eng.config
    y, cond = _inputs(cfg, frames=4)
    codes = _codes(eng, y)
    with pytest.raises(ConfigError, match=r"cond has 5 frames but 512 samples need 6"):
        eng.process(codes, cond=cond[:5])
    with pytest.raises(ConfigError, match=r"has 19 bands but the model takes 20"):
        eng.process(codes, cond=cond[:, :19])
    bad = cond.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ConfigError, match=r"NaN or Inf \(first at frame 2, band 3\)"):
        eng.generate(512, cond=bad)
    with pytest.raises(ConfigError, match="must have shape"):
        eng.process(codes, cond=cond[0])
    with pytest.raises(ConfigError, match="not a multiple of hop 128"):
        eng.process(codes[:500], cond=cond)
    with pytest.raises(ConfigError, match="512 samples asked but the conditioning frames fed "
                                          "allow 0"):
        eng.process(codes)
    eng.feed_frames(cond[:3])
    with pytest.raises(ConfigError, match="while a frame stream is in progress"):
        eng.process(codes, cond=cond)
    assert eng.t == 0                         # refused calls change nothing
    eng.reset()
    with pytest.raises(ConfigError, match="continues this stream's generation"):
        eng.feed_frames(cond)
        eng.generate(128, seed=1)
        eng.generate(128, seed=2)


def test_info_reports_the_frame_graph():
    """`info` of a vocoder states the frame graph's work: vocoder-tiny's conv-in [4, 4, 8] with
    F = 3 reaches 3 bands, 83,120 MACs per frame (649 per sample); F = 1 has no reach."""
    from wavenet_edge.commands import info_text
    text = info_text(Engine(vocoder_bytes("conv-in-F3")))
    assert "F 3, reach 3 bands); frame graph 83,120 MACs/frame = 649/sample" in text
    one = info_text(Engine(vocoder_bytes()))
    assert "F 1); frame graph 14,000 MACs/frame = 109/sample, look-ahead 3 frames" in one
