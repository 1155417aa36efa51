"""Built-in signal set (determinism, splits, range), user audio loading, order-0 entropy."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from converters import signals
from converters.signals import (SPLITS, builtin_signals, load_training_audio, order0_entropy_bits,
                                split_tail)
from wavenet_edge import encode_classes, write_wav
from wavenet_edge.errors import AudioError, ConfigError


@pytest.mark.parametrize("split", SPLITS)
def test_shape_dtype_range_and_determinism(split):
    a = builtin_signals(split=split, n_clips=5, seconds=0.2, sr=16000, seed=3)
    b = builtin_signals(split=split, n_clips=5, seconds=0.2, sr=16000, seed=3)
    assert len(a) == 5
    for x, y in zip(a, b):
        assert x.dtype == np.float32 and x.shape == (3200,)
        assert np.all(np.isfinite(x)) and np.abs(x).max() <= 1.0
        assert 0.05 < np.abs(x).max() < 0.95          # peak normalised to 0.3 … 0.9 plus noise
        np.testing.assert_array_equal(x, y)
    # extending the list does not change the first clips; another seed changes them
    longer = builtin_signals(split=split, n_clips=7, seconds=0.2, seed=3)
    for x, y in zip(a, longer):
        np.testing.assert_array_equal(x, y)
    other = builtin_signals(split=split, n_clips=5, seconds=0.2, seed=4)
    assert not any(np.array_equal(x, y) for x, y in zip(a, other))


def test_defaults_and_sample_rate():
    clips = builtin_signals()
    assert len(clips) == 512 and clips[0].shape == (16000,)
    assert len(builtin_signals(split="heldout")) == 8
    assert builtin_signals(split="calibration", n_clips=1, seconds=0.5, sr=8000)[0].shape == (4000,)


def test_splits_are_disjoint():
    clips = {s: builtin_signals(split=s, n_clips=16, seconds=0.1) for s in SPLITS}
    for s1 in SPLITS:
        for s2 in SPLITS:
            if s1 < s2:
                for x in clips[s1]:
                    assert not any(np.allclose(x, y, atol=0.01) for y in clips[s2])


@given(seed=st.integers(0, 2**32 - 1), split_id=st.integers(0, 2))
def test_component_frequencies_lie_in_the_split_bands(seed, split_id):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        f = signals._band_frequency(rng, split_id, signals._F_HI)
        band = int(np.floor(signals._BANDS_PER_OCTAVE * np.log2(f / signals._F_LO)))
        assert band % 3 == split_id and signals._F_LO <= f < signals._F_HI


def test_entropy_of_the_set_is_high_enough_to_be_a_baseline():
    codes = [encode_classes(y) for y in builtin_signals(split="heldout")]
    h = order0_entropy_bits(codes)
    assert 6.0 < h < 8.0


def test_order0_entropy():
    assert order0_entropy_bits(np.arange(256)) == pytest.approx(8.0)
    assert order0_entropy_bits(np.full(10, 7)) == 0.0
    assert order0_entropy_bits([np.array([0, 1]), np.array([0, 1])]) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        order0_entropy_bits(np.array([], dtype=int))
    with pytest.raises(ConfigError):
        order0_entropy_bits(np.array([-1, 2]))


@pytest.mark.parametrize("kw", [dict(split="test"), dict(n_clips=0), dict(seconds=0.0),
                                dict(sr=10)])
def test_bad_arguments(kw):
    with pytest.raises(ConfigError):
        builtin_signals(**kw)


def _tone(n, sr, f=440.0):
    return 0.5 * np.sin(2 * np.pi * f * np.arange(n) / sr)


def test_load_training_audio_resamples_stereo_and_reads_directories(tmp_path, caplog):
    write_wav(tmp_path / "a.wav", np.stack([_tone(8000, 8000), _tone(8000, 8000, 300)]), 8000)
    write_wav(tmp_path / "b.wav", _tone(1600, 16000), 16000)
    lines = []
    clips = load_training_audio([tmp_path / "a.wav", tmp_path / "b.wav"], sr=16000,
                                log_fn=lines.append)
    assert [c.shape for c in clips] == [(16000,), (1600,)]
    assert all(c.dtype == np.float32 and np.abs(c).max() <= 1.0 for c in clips)
    assert len(lines) == 1 and "8000 Hz -> 16000 Hz" in lines[0] and "a.wav" in lines[0]
    # a directory means its .wav files, sorted; the default log goes to the module logger
    with caplog.at_level(logging.INFO, logger="converters.signals"):
        again = load_training_audio(tmp_path, sr=16000)
    assert len(again) == 2 and "resampling" in caplog.text
    np.testing.assert_array_equal(again[1], clips[1])


def test_load_training_audio_errors(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_training_audio([tmp_path / "missing.wav"], sr=16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(AudioError, match="bad.wav"):
        load_training_audio([bad], sr=16000)
    write_wav(tmp_path / "silent.wav", np.zeros(100), 16000)
    with pytest.raises(AudioError, match="silence"):
        load_training_audio([tmp_path / "silent.wav"], sr=16000)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AudioError, match="no .wav"):
        load_training_audio([empty], sr=16000)


def test_split_tail():
    a, b = np.arange(100.0), np.arange(5.0)
    train, held = split_tail([a, b], fraction=0.1)
    np.testing.assert_array_equal(train[0], a[:90])
    np.testing.assert_array_equal(held[0], a[90:])
    np.testing.assert_array_equal(train[1], b)          # too short to split: kept whole
    assert len(held) == 1
    with pytest.raises(AudioError):
        split_tail([b], fraction=0.1)
    with pytest.raises(ConfigError):
        split_tail([a], fraction=1.5)


def test_malformed_chunk_header_is_an_audio_error(tmp_path):
    # the stdlib wave module raises a bare RuntimeError on this one
    bad = tmp_path / "bad2.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really a wav file")
    with pytest.raises(AudioError, match="bad2.wav"):
        load_training_audio([bad], sr=16000)
