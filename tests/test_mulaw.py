import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from wavenet_edge import AudioError, mu_compress, mu_expand, encode_classes, decode_classes, CONVENTIONS

unit = st.floats(-1.0, 1.0, allow_nan=False)


@given(arrays(np.float64, st.integers(1, 200), elements=unit))
def test_codes_in_range_and_sign_preserving(x):
    q = mu_compress(x)
    assert q.min() >= -128 and q.max() <= 127
    assert np.all(q[x > 0.01] >= 0) and np.all(q[x < -0.01] < 0)


@given(unit, unit)
def test_monotonic(a, b):
    lo, hi = min(a, b), max(a, b)
    assert mu_compress(lo) <= mu_compress(hi)
    assert mu_compress(lo, quantize=False) <= mu_compress(hi, quantize=False)


@given(arrays(np.float64, st.integers(1, 100), elements=unit))
def test_continuous_roundtrip(x):
    y = mu_compress(x, quantize=False)
    np.testing.assert_allclose(mu_expand(y, quantize=False), x, atol=1e-9)


@given(arrays(np.float64, st.integers(1, 100), elements=unit))
def test_quantized_roundtrip_error_bound(x):
    # in the companded domain decode∘encode is off by less than one bin (2/mu wide)
    mu = 255
    xr = mu_expand(mu_compress(x))
    fx = mu_compress(x, quantize=False)
    fr = mu_compress(xr, quantize=False)
    assert np.all(np.abs(fx - fr) <= 2.0 / mu + 1e-12)
    # in the signal domain: slope of F⁻¹ is at most (1+mu)·ln(1+mu)/mu
    bound = (1 + mu) * np.log1p(mu) / mu * (2.0 / mu) + 1e-12
    assert np.all(np.abs(xr - x) <= bound)


def test_matches_librosa_definition():
    x = np.linspace(-1, 1, 1001)
    mu = 255
    f = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    expect = np.digitize(f, np.linspace(-1, 1, num=mu + 1), right=True) - 128  # librosa's code
    assert np.array_equal(mu_compress(x), expect)
    assert np.array_equal(mu_compress(np.array([-1.0, 0.0, 1.0])), [-128, 0, 127])
    c = np.arange(-128, 128)
    g = c * 2.0 / 256
    np.testing.assert_allclose(mu_expand(c), np.sign(g) * ((1 + mu) ** np.abs(g) - 1) / mu)


def test_out_of_range_is_error_not_clipped():
    with pytest.raises(AudioError):
        mu_compress(np.array([0.0, 1.0001]))
    with pytest.raises(AudioError):
        mu_compress(np.array([np.nan]))
    with pytest.raises(AudioError):
        mu_expand(np.array([128]))


def test_keyword_only():
    with pytest.raises(TypeError):
        mu_compress(np.zeros(3), 255)


@pytest.mark.parametrize("conv", CONVENTIONS)
def test_conventions_roundtrip_classes(conv):
    q = np.arange(256)
    x = decode_classes(q, convention=conv)
    assert np.all(np.abs(x) <= 1) and np.all(np.diff(x) > 0)
    back = encode_classes(x, convention=conv)
    if conv in ("pytorch-wavenet", "wavenet_vocoder"):  # truncating encoders: a decoded class sits on a bin edge
        assert np.max(np.abs(back - q)) <= 1
    else:
        assert np.array_equal(back, q)


def test_peer_conventions_differ_by_one_step():
    x = np.random.default_rng(0).uniform(-1, 1, 10000)
    a = encode_classes(x, convention="tensorflow-wavenet")
    b = encode_classes(x, convention="pytorch-wavenet")
    assert np.max(np.abs(a - b)) == 1 and np.mean(a != b) > 0.2
    mu = 255
    f = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    assert np.array_equal(a, ((f + 1) / 2 * mu + 0.5).astype(int))
    f256 = np.sign(x) * np.log1p(256 * np.abs(x)) / np.log1p(256)
    assert np.array_equal(b, np.digitize(f256, np.linspace(-1, 1, 256)) - 1)
    c = encode_classes(x, convention="wavenet_vocoder")
    assert np.array_equal(c, ((f + 1) / 2 * mu).astype(int))
