"""Engine vs the real interpreters (TFLM, LiteRT builtin/reference/default): every graph output
(probs, logits, every delay-line write) identical at every step, teacher-forced and free-running."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converters.host import ContractHost
from test_engine_helpers import model_bytes, speech
from wavenet_edge import encode_classes
from wavenet_edge.engine import Engine
from wavenet_edge.errors import ConfigError, ModelFileError
from wavenet_edge.sampling import Sampler

RUNTIME = {"tflm": "tflm", "litert": "litert", "litert-ref": "litert-ref",
           "xnnpack": "litert-default"}


def _codes(cfg, n, which="b"):
    return encode_classes(speech(which, n), convention=cfg.mulaw)


def _compare_run(data, profile, codes, *, speaker=None):
    """Teacher-forced: every output of the interpreter vs the engine's trace, step by step."""
    host = ContractHost(data, RUNTIME[profile])
    names = list(host.output_names)
    eng = Engine.from_bytes(data, profile=profile)
    if speaker is not None:
        eng.speaker = speaker
    ref = host.run(codes, speaker=speaker, outputs=names)
    got = eng.trace(codes, names)
    for name in names:
        a = ref[name].reshape(len(codes), -1)
        b = got[name]
        if not np.array_equal(a, b):
            bad = np.flatnonzero(np.any(a != b, axis=1))
            pytest.fail(f"{profile}: {name} differs at {bad.size} of {len(codes)} steps "
                        f"(first at step {bad[0]})")
    return names


@pytest.mark.parametrize("profile", ["tflm", "litert"])
@pytest.mark.parametrize("name", ["k2", "k3", "wide", "odd", "skip68"])
def test_teacher_forced_matches_interpreter(name, profile):
    data = model_bytes(name)
    eng = Engine.from_bytes(data)
    n = 5000 if name == "k2" else 2500
    names = _compare_run(data, profile, _codes(eng.config, n))
    assert "probs" in names and "logits" in names and len(names) > 2


@pytest.mark.parametrize("profile", ["tflm", "litert"])
def test_tiny_preset_matches_interpreter(profile):
    data = model_bytes("tiny")
    eng = Engine.from_bytes(data)
    _compare_run(data, profile, _codes(eng.config, 1200, "c"))


@pytest.mark.parametrize("profile", ["tflm", "litert"])
def test_gc_matches_interpreter_per_speaker(profile):
    data = model_bytes("gc")
    eng = Engine.from_bytes(data)
    codes = _codes(eng.config, 1500)
    for spk in (0, 2):
        _compare_run(data, profile, codes, speaker=spk)


@pytest.mark.parametrize("profile", ["litert-ref", "xnnpack"])
def test_other_profiles_match_their_runtime(profile):
    data = model_bytes("odd")
    eng = Engine.from_bytes(data)
    _compare_run(data, profile, _codes(eng.config, 1500))


@pytest.mark.parametrize("profile", ["tflm", "litert"])
def test_free_running_matches_interpreter(profile):
    """The engine's own sampled codes fed to the interpreter: identical outputs at every step,
    and the interpreter's logits re-sampled with the same seed give the same codes."""
    data = model_bytes("k2")
    eng = Engine.from_bytes(data, profile=profile)
    n = 2000
    gen = eng.generate(n, seed=1234)
    assert gen.shape == (n,) and gen.dtype == np.int64
    assert len(np.unique(gen)) > 5
    fed = np.concatenate([[eng.silence_code()], gen[:-1]])
    host = ContractHost(data, RUNTIME[profile])
    ref = host.run(fed, outputs=("probs", "logits"))
    fresh = Engine.from_bytes(data, profile=profile)
    np.testing.assert_array_equal(fresh.process(fed), ref["probs"].reshape(n, 256))
    s = Sampler(1234, logits_scale=fresh.program.logits_scale)
    again = [s.sample(q) for q in ref["logits"].reshape(n, 256)]
    np.testing.assert_array_equal(again, gen)


def test_free_running_with_temperature_and_prime():
    data = model_bytes("k3")
    eng = Engine.from_bytes(data)
    prime = _codes(eng.config, 300, "c")
    gen = eng.generate(500, seed=7, temperature=0.8, prime=prime)
    eng2 = Engine.from_bytes(data)
    lg = eng2.process(np.concatenate([prime, gen[:-1]]), logits=True)[len(prime) - 1:]
    s = Sampler(7, temperature=0.8, logits_scale=eng.program.logits_scale)
    np.testing.assert_array_equal([s.sample(q) for q in lg], gen)
    greedy = Engine.from_bytes(data).generate(50, seed=0, temperature=0.0, prime=prime)
    lg = Engine.from_bytes(data).process(np.concatenate([prime, greedy[:-1]]),
                                         logits=True)[len(prime) - 1:]
    np.testing.assert_array_equal(np.argmax(lg, axis=1), greedy)


def test_generation_is_reproducible_and_seeded():
    data = model_bytes("k2")
    a = Engine.from_bytes(data).generate(300, seed=5)
    b = Engine.from_bytes(data).generate(300, seed=5)
    c = Engine.from_bytes(data).generate(300, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_score_matches_dequantized_interpreter_logits():
    data = model_bytes("k2")
    eng = Engine.from_bytes(data)
    y = speech("a", 3000)
    bits = eng.score(y)
    codes = encode_classes(y, convention=eng.config.mulaw)
    ref = ContractHost(data, "tflm").run(codes[:-1], outputs=("logits",))["logits"].reshape(-1, 256)
    lg = (ref.astype(np.float64) - eng.program.logits_zero_point) * eng.program.logits_scale
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    expect = (lse - lg[np.arange(len(lg)), codes[1:]]).mean() / np.log(2)
    assert bits == pytest.approx(expect, rel=1e-12)
    assert 0 < bits < 8.5
    assert eng.score(y) == bits   # score resets: same value again


def test_program_layout_concat_is_free():
    eng = Engine.from_bytes(model_bytes("k3"))
    p = eng.program
    from wavenet_edge.lowered import OpKind
    assert not np.any(p.ops["kind"] == OpKind.COPY)
    offs = p.tensor_offsets
    # taps = [input@2d, input@d, input] contiguous inside layer01/taps
    o_taps = offs["layer01/taps"][0]
    d = eng.config.dilations[1]
    assert offs[f"layer01/input@{2 * d}"][0] == o_taps
    assert offs[f"layer01/input@{d}"][0] == o_taps + 8
    assert offs["layer01/input"][0] == o_taps + 16
    assert p.macs_per_sample == eng.config.macs_per_sample()


def test_every_fc_mode_is_exercised():
    """The oracle tests above cover each dot-product path the engine has on this CPU."""
    from wavenet_edge._engine_kernels import HAS_VNNI, vnni_mode
    from wavenet_edge.lowered import OpKind
    modes = set()
    for name in ("k2", "k3", "wide", "odd", "skip68", "tiny"):
        for r in Engine.from_bytes(model_bytes(name))._shared.consts.ops:
            if r["kind"] == OpKind.FC:
                modes.add(int(vnni_mode(r["n"], r["cols"])))
            elif r["kind"] == OpKind.FC2:
                modes.add(int(vnni_mode(r["n"] + r["n2"], r["cols"])))
    assert modes == ({0, 1, 2} if HAS_VNNI else {0})


def test_errors():
    data = model_bytes("k2")
    with pytest.raises(ConfigError):
        Engine.from_bytes(data, profile="nope")
    with pytest.raises(ConfigError):
        Engine.from_bytes(data, batch=0)
    eng = Engine.from_bytes(data)
    with pytest.raises(ConfigError):
        eng.process(np.array([0, 256]))
    with pytest.raises(ConfigError):
        eng.process(np.zeros((2, 3), np.int64))
    with pytest.raises(ConfigError):
        eng.speaker = 1
    with pytest.raises(ModelFileError):
        Engine.from_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        Engine.from_bytes(b"not a model at all")
    gc = Engine.from_bytes(model_bytes("gc"))
    with pytest.raises(ConfigError):
        gc.speaker = 3


@settings(max_examples=60)
@given(st.floats(0.002, 0.5), st.integers(0, 2**31 - 1))
def test_softmax_lookup_equals_int8_softmax(in_scale, seed):
    """The engine's table-driven fixed-point SOFTMAX is the int8 module's, value for value."""
    from test_engine_helpers import softmax_cases
    from wavenet_edge._engine_kernels import softmax_fixed_lut

    for x, ref, exps in softmax_cases(in_scale, seed):
        arena = np.concatenate([x, np.zeros(256, np.int8)])
        softmax_fixed_lut(arena, 0, 256, 256, exps)
        np.testing.assert_array_equal(arena[256:], ref)
