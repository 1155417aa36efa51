"""One audio-rate name across the front doors: librosa's ``sr`` (``sample_rate=`` is deprecated)."""

import inspect
import warnings

import pytest

from converters import builtin_signals
from firmware_sim import simulate
from wavenet_edge import load_wav
from wavenet_edge.errors import ConfigError


@pytest.mark.parametrize("fn", [load_wav, builtin_signals, simulate])
def test_front_doors_call_the_audio_rate_sr(fn):
    params = inspect.signature(fn).parameters
    assert "sr" in params


@pytest.fixture(scope="module")
def tflite():
    from converters import convert
    from wavenet_edge import FloatWaveNet, WaveNetConfig
    cfg = WaveNetConfig(dilations=(1, 2, 4), residual_channels=4, dilation_channels=4,
                        skip_channels=8, end_channels=8)
    return convert(FloatWaveNet.initialize(cfg, seed=0), method="minmax", progress=False,
                   evaluate_quality=False).tflite


def test_simulate_sr_and_its_deprecated_spelling(tflite):
    kw = dict(check_bitexact=False, seconds=0.05)
    a = simulate(tflite, sr=8000, **kw)
    assert a.sample_rate == 8000
    with pytest.warns(DeprecationWarning, match="use sr="):
        b = simulate(tflite, sample_rate=8000, **kw)
    assert b.sample_rate == 8000
    assert [r.latency.real_time_factor(b.sample_rate) for r in b.results] == \
        [r.latency.real_time_factor(a.sample_rate) for r in a.results]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigError, match="disagree"):
            simulate(tflite, sr=8000, sample_rate=16000, **kw)


def test_engine_sr_and_its_deprecated_spelling(tflite):
    from wavenet_edge import Engine
    eng = Engine.from_bytes(tflite)
    assert eng.sr == 16000 and eng.stream().sr == 16000
    with pytest.warns(DeprecationWarning, match="Engine.sr"):
        assert eng.sample_rate == 16000
