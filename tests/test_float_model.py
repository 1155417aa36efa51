import numpy as np
import pytest

from wavenet_edge import CheckpointError, FloatWaveNet, WaveNetConfig
from reference_float import naive_logits

CASES = {
    "k2": dict(kernel_size=2),
    "k3": dict(kernel_size=3),
    "gc_wide_scaled": dict(kernel_size=3, initial_filter_width=4, gc_cardinality=3, gc_channels=2,
                           residual_scale=0.5 ** 0.5, skip_scale=0.4),
}


def _model(seed=0, **kw):
    cfg = WaveNetConfig(dilations=(1, 2, 4, 1, 2), residual_channels=4, dilation_channels=5,
                        skip_channels=6, end_channels=7, **kw)
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for name in m.weights:  # non-zero biases so every term is exercised
        if name.endswith("/b") or name == "initial/bias":
            m.weights[name] = rng.normal(0, 0.3, m.weights[name].shape)
    return m


@pytest.mark.parametrize("case", list(CASES))
def test_step_form_equals_full_form(case):
    m = _model(**CASES[case])
    codes = np.random.default_rng(3).integers(0, 256, 80)
    sp = 2 if m.config.has_gc else None
    full = m.logits(codes, speaker=sp)
    st = m.stepper(speaker=sp)
    step = np.stack([st.step(c) for c in codes])
    assert np.max(np.abs(full - step)) <= 1e-9 * np.max(np.abs(full))


@pytest.mark.parametrize("case", list(CASES))
def test_full_form_equals_naive_reference(case):
    m = _model(**CASES[case])
    codes = np.random.default_rng(4).integers(0, 256, 40)
    sp = 1 if m.config.has_gc else None
    np.testing.assert_allclose(m.logits(codes, speaker=sp), naive_logits(m.config, m.weights, codes, sp),
                               rtol=1e-10, atol=1e-10)


def test_oldest_sample_of_receptive_field_matters_and_older_does_not():
    m = _model(kernel_size=2)
    rf = m.config.receptive_field
    codes = np.random.default_rng(5).integers(0, 256, rf + 5)
    # look at the last layer's gated output: the output stack's ReLUs may hide a change
    def last_gated(c):
        return m.forward(c, cache=True)[1]["a"][-1][-1]
    base = last_gated(codes)
    c2 = codes.copy()
    c2[-rf] = (c2[-rf] + 77) % 256
    assert np.max(np.abs(last_gated(c2) - base)) > 1e-9
    c3 = codes.copy()
    c3[-rf - 1] = (c3[-rf - 1] + 77) % 256
    assert np.array_equal(last_gated(c3), base)
    assert np.array_equal(m.logits(c3)[-1], m.logits(codes)[-1])


def test_save_load_roundtrip(tmp_path):
    m = _model(**CASES["gc_wide_scaled"])
    p = tmp_path / "m.npz"
    m.save(p)
    m2 = FloatWaveNet.load(p)
    assert m2.config == m.config
    codes = np.arange(50) % 256
    assert np.array_equal(m.logits(codes, speaker=0), m2.logits(codes, speaker=0))


def test_bad_weights_are_refused(tmp_path):
    m = _model()
    w = dict(m.weights)
    w["layers/0/filter/w"] = w["layers/0/filter/w"].copy()
    w["layers/0/filter/w"][0, 0, 0] = np.nan
    with pytest.raises(CheckpointError, match="NaN"):
        FloatWaveNet(m.config, w)
    w = dict(m.weights)
    del w["end2/b"]
    with pytest.raises(CheckpointError, match="missing"):
        FloatWaveNet(m.config, w)
    w = dict(m.weights)
    w["end2/b"] = np.zeros(3)
    with pytest.raises(CheckpointError, match="shape"):
        FloatWaveNet(m.config, w)
    p = tmp_path / "trunc.npz"
    m.save(p)
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="trunc.npz"):
        FloatWaveNet.load(p)
