"""Training with local conditioning: the window features equal the whole-clip upsampler, the
hand-written backward through conv1x1c and the upsampler against finite differences of the
float model's own forward, chunked batches, and a short run on speech-like audio."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from converters._cond_train import cond_loss_and_grads, window_features
from converters.train import train
from wavenet_edge import FloatWaveNet, WaveNetConfig
from wavenet_edge.errors import AudioError

CASES = {
    "convin_F3_pad1_gc": dict(kernel_size=2, cin_channels=3, upsampler="conv-in",
                              upsample_scales=(2, 3), cin_pad=1, freq_axis_kernel_size=3,
                              gc_cardinality=2, gc_channels=2),
    "plain_F3_pad1": dict(kernel_size=3, cin_channels=4, upsampler="plain",
                          upsample_scales=(3, 2), cin_pad=1, freq_axis_kernel_size=3),
    "plain_F1_pad0": dict(kernel_size=2, cin_channels=2, upsampler="plain",
                          upsample_scales=(4,), cin_pad=0),
    "sample_rate": dict(kernel_size=2, cin_channels=3),
}


def _model(case, seed=0):
    cfg = WaveNetConfig(dilations=(1, 2, 1, 3), residual_channels=3, dilation_channels=4,
                        skip_channels=5, end_channels=6, residual_scale=0.7, skip_scale=1.3,
                        **CASES[case])
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for name, w in m.weights.items():
        m.weights[name] = w + rng.normal(0.0, 0.3, w.shape)
    return m


def _clips(cfg, n_clips=2, n=None, seed=0):
    rng = np.random.default_rng(seed)
    n = n or 8 * cfg.hop + 3 * cfg.receptive_field
    n -= n % cfg.hop
    codes = [rng.integers(120, 136, n) for _ in range(n_clips)]
    frames = [rng.normal(0, 1, (cfg.frames_for(n), cfg.cin_channels)) for _ in range(n_clips)]
    return codes, frames


def _reference_loss(model, codes, frames, picks, n0, spk):
    """Mean CE (nats) of the scored rows from the float model's whole-clip forward."""
    rf = model.config.receptive_field
    total, count = 0.0, 0
    for b, (i, t0) in enumerate(picks):
        sp = int(spk[b]) if model.config.has_gc else None
        lg = model.forward(codes[i], speaker=sp, cond=frames[i])[t0 + rf - 1:t0 + n0]
        tg = codes[i][t0 + rf:t0 + n0 + 1]
        m = lg.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(lg - m).sum(1))
        total += float((lse - lg[np.arange(lg.shape[0]), tg]).sum())
        count += lg.shape[0]
    return total / count


def _batch(cfg, codes, T=4, seed=1):
    rng = np.random.default_rng(seed)
    rf = cfg.receptive_field
    n0 = rf - 1 + T
    picks = [(0, 0), (1, len(codes[1]) - n0 - 1), (0, int(rng.integers(1, len(codes[0]) - n0 - 1))),
             (1, int(rng.integers(1, len(codes[1]) - n0 - 1)))]
    xb = np.stack([codes[i][t0:t0 + n0] for i, t0 in picks])
    yb = np.stack([codes[i][t0 + rf:t0 + n0 + 1] for i, t0 in picks])
    return picks, xb, yb, n0


@pytest.mark.parametrize("case", list(CASES))
def test_window_features_equal_the_whole_clip_upsampler(case):
    m = _model(case)
    codes, frames = _clips(m.config)
    full = m.upsampled_cond(frames[0], len(codes[0]))
    for t0 in (0, 1, m.config.hop - 1, len(codes[0]) // 2, len(codes[0]) - 9):
        cu, _ = window_features(m.config, m.weights, frames[0], t0, 9, dtype=np.float64)
        np.testing.assert_array_equal(cu, full[t0:t0 + 9])


@pytest.mark.parametrize("case", list(CASES))
def test_cond_backward_matches_finite_differences(case):
    m = _model(case, seed=len(case))
    cfg = m.config
    codes, frames = _clips(cfg)
    picks, xb, yb, n0 = _batch(cfg, codes)
    spk = np.array([0, 1, 1, 0])
    sb = spk if cfg.has_gc else None
    loss, grads = cond_loss_and_grads(m.weights, cfg, xb, yb, sb, frames, picks)
    assert loss == pytest.approx(_reference_loss(m, codes, frames, picks, n0, spk), rel=1e-12)
    assert set(grads) == set(m.weights)
    rng = np.random.default_rng(0)
    eps = 1e-6
    names = [n for n in m.weights if "cond_" in n or n.startswith("upsample/")]
    names += ["layers/0/filter/w", "end2/b"]
    assert any(n.startswith("upsample/") for n in names) == (cfg.upsampler != "none")
    for name in names:
        w, g = m.weights[name], grads[name]
        flat, gflat = w.reshape(-1), g.reshape(-1)
        cand = rng.choice(flat.size, min(flat.size, 10), replace=False)
        num = np.empty(cand.size)
        for k, i in enumerate(cand):
            old = flat[i]
            flat[i] = old + eps
            lp = _reference_loss(m, codes, frames, picks, n0, spk)
            flat[i] = old - eps
            lm = _reference_loss(m, codes, frames, picks, n0, spk)
            flat[i] = old
            num[k] = (lp - lm) / (2 * eps)
        err = np.abs(gflat[cand] - num).max() / max(np.abs(num).max(), 1e-3)
        assert err < 2e-5, f"{name}: relative error {err:.2e}"


def test_cond_thread_split_agrees():
    m = _model("convin_F3_pad1_gc")
    cfg = m.config
    codes, frames = _clips(cfg)
    picks, xb, yb, n0 = _batch(cfg, codes)
    spk = np.array([0, 1, 1, 0])
    loss, g = cond_loss_and_grads(m.weights, cfg, xb, yb, spk, frames, picks)
    with ThreadPoolExecutor(2) as pool:
        loss2, g2 = cond_loss_and_grads(m.weights, cfg, xb, yb, spk, frames, picks, pool,
                                        chunk_rows=2 * n0)
    assert loss2 == pytest.approx(loss, rel=1e-12)
    for k in g:
        np.testing.assert_allclose(g2[k], g[k], rtol=1e-10, atol=1e-14)


def _speechlike(sr, seconds, seed):
    """Bursts of a harmonic tone separated by silences: the envelope is what the mel carries."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    env = (np.sin(2 * np.pi * 2.5 * t + rng.uniform(0, 6)) > 0.2).astype(float)
    f0 = rng.uniform(120, 220)
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5))
    return (0.4 * env * y + 0.003 * rng.normal(size=n)).astype(np.float32)


def test_short_vocoder_run_learns_and_uses_the_features():
    cfg = WaveNetConfig(dilations=(1, 2, 4, 8, 16, 32), residual_channels=8, dilation_channels=8,
                        skip_channels=16, end_channels=16, cin_channels=8, upsampler="conv-in",
                        upsample_scales=(4, 8), cin_pad=1,
                        mel=dict(n_mels=8, n_fft=128, hop_length=32, win_length=128,
                                 fmin=0.0, fmax=4000.0))
    audio = [_speechlike(16000, 1.0, s) for s in range(3)]
    held = [_speechlike(16000, 0.5, 9)]
    model, hist = train(cfg, audio, steps=60, batch_size=4, lr=5e-3, seed=0, progress=False,
                        heldout=held)
    assert hist["heldout_bits_after"] < hist["heldout_bits_before"] - 0.5
    again, hist2 = train(cfg, audio, steps=60, batch_size=4, lr=5e-3, seed=0, progress=False,
                         heldout=held)
    assert hist2["heldout_bits_after"] == hist["heldout_bits_after"]
    assert np.any(model.weights["upsample/0/w"] != FloatWaveNet.initialize(cfg).weights[
        "upsample/0/w"])
    with pytest.raises(AudioError, match="training clip 0: .* shorter than one FFT|too short"):
        train(cfg, [np.zeros(40, np.float32)], steps=1, progress=False)
