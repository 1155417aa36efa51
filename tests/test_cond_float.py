"""Local conditioning in the float model: upsamplers and conv1x1c against the naive reference,
the step form, frame-count and feature errors, the look-ahead, MACs by rate."""

import numpy as np
import pytest

from wavenet_edge import ConfigError, FloatWaveNet, WaveNetConfig, preset
from wavenet_edge.float_model import weight_shapes
from wavenet_edge.upsample import lookahead_samples, upsample
from reference_float import naive_logits, naive_upsample

COND_CASES = {
    # conditioning given at sample rate, kernel 3, with a speaker embedding
    "sample_rate_gc": dict(kernel_size=3, cin_channels=3, gc_cardinality=2, gc_channels=2),
    # r9y9 UpsampleNetwork with F = 3 and cin_pad trimming
    "plain_F3_pad1": dict(kernel_size=2, cin_channels=4, upsampler="plain",
                          upsample_scales=(2, 3), cin_pad=1, freq_axis_kernel_size=3),
    # ConvInUpsampleNetwork, F = 1, cin_pad 2
    "convin_F1_pad2": dict(kernel_size=3, cin_channels=3, upsampler="conv-in",
                           upsample_scales=(2, 2), cin_pad=2),
    "convin_F3_pad0": dict(kernel_size=2, cin_channels=5, upsampler="conv-in",
                           upsample_scales=(3,), cin_pad=0, freq_axis_kernel_size=3),
}


def _model(seed=0, **kw):
    cfg = WaveNetConfig(dilations=(1, 2, 4, 1), residual_channels=4, dilation_channels=5,
                        skip_channels=6, end_channels=7, **kw)
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for name in m.weights:  # non-trivial biases and upsampler kernels so every term counts
        if name.endswith("/b") or name == "initial/bias":
            m.weights[name] = rng.normal(0, 0.3, m.weights[name].shape)
        elif name.startswith("upsample/"):
            m.weights[name] = rng.normal(0, 0.5, m.weights[name].shape)
    return m


def _inputs(m, n, seed=5):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, n)
    cond = rng.normal(0, 1, (m.config.frames_for(n), m.config.cin_channels))
    sp = 1 if m.config.has_gc else None
    return codes, cond, sp


@pytest.mark.parametrize("case", list(COND_CASES))
def test_cond_logits_equal_naive_reference(case):
    m = _model(**COND_CASES[case])
    n = 36
    codes, cond, sp = _inputs(m, n)
    np.testing.assert_allclose(m.logits(codes, speaker=sp, cond=cond),
                               naive_logits(m.config, m.weights, codes, sp, cond),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", list(COND_CASES))
def test_cond_step_form_equals_full_form(case):
    m = _model(**COND_CASES[case])
    codes, cond, sp = _inputs(m, 48, seed=6)
    full = m.logits(codes, speaker=sp, cond=cond)
    st = m.stepper(speaker=sp, cond=cond, n=len(codes))
    step = np.stack([st.step(c) for c in codes])
    assert np.max(np.abs(full - step)) <= 1e-9 * np.max(np.abs(full))
    with pytest.raises(ConfigError, match="exhausted"):
        st.step(0)


def test_conditioning_changes_the_output():
    m = _model(**COND_CASES["plain_F3_pad1"])
    codes, cond, _ = _inputs(m, 36)
    a = m.logits(codes, cond=cond)
    b = m.logits(codes, cond=cond + 0.5)
    assert np.max(np.abs(a - b)) > 1e-2


@pytest.mark.parametrize("case", ["plain_F3_pad1", "convin_F1_pad2"])
def test_future_frames_reach_only_the_stated_lookahead(case):
    """Changing frame f moves sample rows no earlier than f·hop - cin_pad·hop - lookahead."""
    m = _model(**COND_CASES[case])
    cfg = m.config
    n = 12 * cfg.hop
    codes, cond, _ = _inputs(m, n)
    base = m.upsampled_cond(cond, n)
    reach = lookahead_samples(cfg)
    for f in range(cond.shape[0]):
        c2 = cond.copy()
        c2[f] += 1.0
        moved = np.nonzero(np.any(np.abs(m.upsampled_cond(c2, n) - base) > 1e-12, axis=1))[0]
        if moved.size:
            # the frame's first own sample is (f - cin_pad)·hop in the output's time axis
            assert moved.min() >= (f - cfg.cin_pad) * cfg.hop - reach


def test_lookahead_of_r9y9_mulaw256_upsampler():
    cfg = WaveNetConfig(cin_channels=80, upsampler="conv-in", upsample_scales=(4, 4, 4, 4),
                        cin_pad=0)
    assert lookahead_samples(cfg) == 340


def test_projection_commutes_with_the_upsampler_only_for_F1():
    rng = np.random.default_rng(0)
    for F, commutes in ((1, True), (3, False)):
        cfg = WaveNetConfig(cin_channels=6, upsampler="plain", upsample_scales=(2, 4),
                            freq_axis_kernel_size=F)
        W = {f"upsample/{i}/w": rng.normal(size=(F, 2 * s + 1))
             for i, s in enumerate(cfg.upsample_scales)}
        x = rng.normal(size=(9, 6))
        P = rng.normal(size=(6, 6))           # a per-layer projection, square so U applies twice
        d = np.max(np.abs(upsample(cfg, W, x) @ P - upsample(cfg, W, x @ P)))
        assert (d < 1e-12) == commutes


def test_naive_upsampler_matches_vectorised():
    m = _model(**COND_CASES["plain_F3_pad1"])
    _, cond, _ = _inputs(m, 24)
    np.testing.assert_allclose(upsample(m.config, m.weights, cond),
                               naive_upsample(m.config, m.weights, cond), atol=1e-12)


def test_frame_count_and_feature_errors_name_the_numbers():
    m = _model(**COND_CASES["convin_F1_pad2"])   # hop 4, cin_pad 2
    codes = np.zeros(16, int)
    good = np.zeros((8, 3))
    m.logits(codes, cond=good)
    with pytest.raises(ConfigError, match=r"cond has 9 frames but 16 samples need 8"):
        m.logits(codes, cond=np.zeros((9, 3)))
    with pytest.raises(ConfigError, match=r"not a multiple of the hop \(4"):
        m.logits(np.zeros(15, int), cond=good)
    with pytest.raises(ConfigError, match=r"shape \(frames, 3\), got \(8, 4\)"):
        m.logits(codes, cond=np.zeros((8, 4)))
    bad = good.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        m.logits(codes, cond=bad)
    with pytest.raises(ConfigError, match="cond .* is required"):
        m.logits(codes)
    plain = _model()
    with pytest.raises(ConfigError, match="no local conditioning"):
        plain.logits(codes, cond=good)
    sr = _model(**COND_CASES["sample_rate_gc"])
    with pytest.raises(ConfigError, match="cond has 15 frames but 16 samples need 16"):
        sr.logits(codes, cond=np.zeros((15, 3)), speaker=0)


@pytest.mark.parametrize("bad, msg", [
    (dict(upsampler="plain", upsample_scales=(4,)), "need local conditioning"),
    (dict(cin_channels=4, upsampler="wavy", upsample_scales=(4,)), "unknown upsampler"),
    (dict(cin_channels=4, upsampler="plain"), "needs upsample_scales"),
    (dict(cin_channels=4, upsample_scales=(4,)), "need an upsampler"),
    (dict(cin_channels=4, upsampler="plain", upsample_scales=(4,), freq_axis_kernel_size=2), "odd"),
    (dict(cin_channels=4, upsampler="plain", upsample_scales=(4, 0)), "positive integers"),
    (dict(cin_channels=-1), "cin_channels"),
    (dict(cin_channels=4, upsampler="plain", upsample_scales=(4,),
          mel=dict(n_mels=5, hop_length=4, n_fft=8, win_length=8)), "n_mels"),
    (dict(cin_channels=4, upsampler="plain", upsample_scales=(4,),
          mel=dict(n_mels=4, hop_length=8, n_fft=8, win_length=8)), "hop_length"),
    (dict(cin_channels=4, upsampler="plain", upsample_scales=(4,),
          mel=dict(n_mels=4, hop_length=4, n_fft=8, win_length=8, fmax=9000.0)), "Nyquist"),
    (dict(cin_channels=4, mel=dict(n_mels=4, normalization="meanvar")), "mean and std"),
])
def test_conditioning_validation(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        WaveNetConfig(**bad)


@pytest.mark.parametrize("name", ["vocoder-tiny", "vocoder-small"])
def test_vocoder_presets_roundtrip_and_macs(name):
    cfg = preset(name)
    assert WaveNetConfig.from_json(cfg.to_json()) == cfg
    assert cfg.mel.hop_length == cfg.hop and cfg.mel.n_mels == cfg.cin_channels
    m = cfg.macs_breakdown()
    base = cfg.replace(cin_channels=0, upsampler="none", upsample_scales=(), cin_pad=0, mel=None)
    assert m["step"] == base.macs_per_sample()
    assert m["cond_per_sample"] == cfg.n_layers * 2 * cfg.dilation_channels * cfg.cin_channels
    assert cfg.macs_per_sample() == round(m["step"] + m["cond_per_sample"]
                                          + m["upsampler_per_frame"] / cfg.hop)
    assert cfg.parameter_count() == sum(int(np.prod(s)) for s in weight_shapes(cfg).values())


def test_macs_by_rate_by_hand():
    cfg = WaveNetConfig(dilations=(1, 2), residual_channels=2, dilation_channels=3,
                        skip_channels=4, end_channels=5, cin_channels=2, upsampler="conv-in",
                        upsample_scales=(2, 3), cin_pad=1, freq_axis_kernel_size=3)
    m = cfg.macs_breakdown()
    assert m["cond_per_sample"] == 2 * 2 * 3 * 2
    # conv-in 3·2·2; scale 2: 2 rows × 2 ch × 3·5; scale 3: 6 rows × 2 ch × 3·7
    assert m["upsampler_per_frame"] == 12 + 2 * 2 * 15 + 6 * 2 * 21
    assert cfg.frames_for(12) == 12 // 6 + 2


def test_save_load_roundtrip_with_conditioning(tmp_path):
    m = _model(**COND_CASES["plain_F3_pad1"])
    m.save(tmp_path / "v.npz")
    m2 = FloatWaveNet.load(tmp_path / "v.npz")
    assert m2.config == m.config
    codes, cond, _ = _inputs(m, 24)
    np.testing.assert_array_equal(m.logits(codes, cond=cond), m2.logits(codes, cond=cond))


def _fir_apply(cfg, W, cond):
    """Frame-rate FIR form (zero frames beyond the ends), as a device frame graph computes it."""
    from wavenet_edge.upsample import frame_fir, stage_input
    taps, left = frame_fir(cfg, W)
    x = stage_input(cfg, W, cond)
    width, hop = taps.shape[1], cfg.hop
    shift = 0 if cfg.upsampler == "conv-in" else cfg.cin_pad
    xp = np.concatenate([np.zeros((width, x.shape[1])), x, np.zeros((width, x.shape[1]))])
    n = (cond.shape[0] - 2 * cfg.cin_pad) * hop
    y = np.zeros((n, x.shape[1]))
    for t in range(n):
        f, r = t // hop + shift, t % hop
        y[t] = taps[r] @ xp[f - left + width:f - left + width + taps.shape[1]]
    return y, taps, left


@pytest.mark.parametrize("kind, pad, edge", [("conv-in", 2, 84), ("plain", 2, 0), ("plain", 0, 84)])
def test_frame_fir_equals_the_chain_except_at_the_stated_edges(kind, pad, edge):
    """r9y9's [4, 4, 4, 4]: one FIR of 5 frames (2 back, 2 ahead) per hop phase reproduces the
    stretch/conv chain; the chain's zero padding of its inner stages at the sequence ends
    differs from zero frames only on the first and last 4·16 + 4·4 + 4 = 84 samples, which the
    plain upsampler's cin_pad = 2 trim removes."""
    cfg = WaveNetConfig(cin_channels=3, upsampler=kind, upsample_scales=(4, 4, 4, 4), cin_pad=pad)
    m = FloatWaveNet.initialize(cfg, seed=1)
    rng = np.random.default_rng(0)
    for k in m.weights:
        if k.startswith("upsample/") and k != "upsample/conv_in/w":
            m.weights[k] = rng.normal(size=m.weights[k].shape)
    cond = rng.normal(size=(10 + 2 * pad, 3))
    y = upsample(cfg, m.weights, cond)
    yf, taps, left = _fir_apply(cfg, m.weights, cond)
    assert taps.shape == (256, 5) and left == 2
    d = np.abs(yf - y).max(axis=1) > 1e-9
    assert not d[edge:len(d) - edge].any()
    if edge:
        assert d[edge - 1] and d[len(d) - edge] and not d[edge]
