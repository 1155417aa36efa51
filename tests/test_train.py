"""Trainer: the hand-written backward pass against finite differences of FloatWaveNet.forward,
thread-split batches, a short real training run, budgets, checkpoints and option errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from converters.signals import builtin_signals
from converters.train import _batch_loss_and_grads, loss_and_grads, train
from wavenet_edge import FloatWaveNet, WaveNetConfig, encode_classes
from wavenet_edge.errors import AudioError, ConfigError


def _reference_loss(model, x, t, spk):
    """Mean CE (nats) of the scored rows, computed by the float model's zero-padded forward."""
    rf = model.config.receptive_field
    total, count = 0.0, 0
    for b in range(x.shape[0]):
        lg = model.forward(x[b], speaker=int(spk[b]) if model.config.has_gc else None)[rf - 1:]
        m = lg.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(lg - m).sum(1))
        total += float((lse - lg[np.arange(lg.shape[0]), t[b]]).sum())
        count += lg.shape[0]
    return total / count


def _random_model(cfg, seed):
    model = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for name, w in model.weights.items():
        # non-zero biases and embeddings everywhere so every term of the backward is exercised
        model.weights[name] = w + rng.normal(0.0, 0.2, w.shape)
    return model


GRAD_CASES = [
    dict(kernel_size=2, initial_filter_width=1, gc=False),
    dict(kernel_size=3, initial_filter_width=1, gc=True),
    dict(kernel_size=2, initial_filter_width=3, gc=True),
    dict(kernel_size=3, initial_filter_width=2, gc=False),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: "k{kernel_size}-w{initial_filter_width}"
                         "-gc{gc}".format(**c))
def test_backward_matches_finite_differences(case):
    gc = case["gc"]
    cfg = WaveNetConfig(dilations=(1, 2, 1, 3), kernel_size=case["kernel_size"],
                        residual_channels=3, dilation_channels=4, skip_channels=5, end_channels=6,
                        initial_filter_width=case["initial_filter_width"], residual_scale=0.7,
                        skip_scale=1.3, gc_cardinality=3 if gc else 0, gc_channels=2 if gc else 0)
    model = _random_model(cfg, seed=case["kernel_size"] * 10 + case["initial_filter_width"])
    rng = np.random.default_rng(0)
    rf = cfg.receptive_field
    B, T = 3, 4
    # a narrow code range so that table rows are hit repeatedly (and by several taps)
    x = rng.integers(120, 132, (B, rf - 1 + T))
    t = rng.integers(120, 132, (B, T))
    spk = np.array([0, 2, 1])
    loss, grads = loss_and_grads(model.weights, cfg, x, t, spk)
    assert loss == pytest.approx(_reference_loss(model, x, t, spk), rel=1e-12, abs=1e-12)
    assert set(grads) == set(model.weights)

    eps = 1e-6
    for name, w in model.weights.items():
        g = grads[name]
        assert g.shape == w.shape and g.dtype == np.float64
        flat, gflat = w.reshape(-1), g.reshape(-1)
        if name == "initial/table":
            # rows of codes that occur, plus a few that do not (gradient exactly 0)
            rows = np.unique(x)
            cand = np.array([(j * 256 + r) * cfg.residual_channels + c
                             for j in range(cfg.initial_filter_width) for r in rows[:4]
                             for c in range(cfg.residual_channels)] + [7, 300])
        else:
            cand = rng.choice(flat.size, min(flat.size, 12), replace=False)
        num = np.empty(cand.size)
        for n, i in enumerate(cand):
            old = flat[i]
            flat[i] = old + eps
            lp = _reference_loss(model, x, t, spk)
            flat[i] = old - eps
            lm = _reference_loss(model, x, t, spk)
            flat[i] = old
            num[n] = (lp - lm) / (2 * eps)
        ana = gflat[cand]
        scale = max(np.abs(num).max(), 1e-3)
        err = np.abs(ana - num).max() / scale
        assert err < 2e-5, f"{name}: relative error {err:.2e}"


def test_last_residual_gradient_is_zero_and_thread_split_agrees():
    cfg = WaveNetConfig(dilations=(1, 2, 4), residual_channels=4, dilation_channels=4,
                        skip_channels=4, end_channels=4)
    model = _random_model(cfg, seed=3)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (5, cfg.receptive_field + 6))
    t = rng.integers(0, 256, (5, 7))
    loss, g = loss_and_grads(model.weights, cfg, x, t)
    assert not np.any(g["layers/2/residual/w"]) and not np.any(g["layers/2/residual/b"])
    with ThreadPoolExecutor(2) as pool:
        loss2, g2 = _batch_loss_and_grads(model.weights, cfg, x, t, None, pool,
                                          chunk_rows=2 * x.shape[1])
    assert loss2 == pytest.approx(loss, rel=1e-12)
    for k in g:
        np.testing.assert_allclose(g2[k], g[k], rtol=1e-10, atol=1e-14)


SMALL = WaveNetConfig(dilations=(1, 2, 4, 8, 16, 32), residual_channels=8, dilation_channels=8,
                      skip_channels=16, end_channels=16)


def test_short_run_learns_and_is_deterministic(tmp_path):
    clips = builtin_signals(split="train", n_clips=16, seconds=0.25)
    held = builtin_signals(split="heldout", n_clips=4, seconds=0.25)
    ck = tmp_path / "ck.npz"
    kw = dict(steps=150, batch_size=8, lr=2e-2, window=SMALL.receptive_field + 255, seed=5,
              progress=False, heldout=held)
    model, h = train(SMALL, clips, checkpoint=ck, checkpoint_every=50, **kw)
    lb = np.array(h["loss_bits"])
    assert h["steps"] == 150 and lb.shape == (150,)
    # measured: 8.1 -> 5.4 bits (train), held-out 8.1 -> 5.5 bits, order-0 entropy 7.06 bits
    assert lb[-10:].mean() < lb[:10].mean() - 1.5, (lb[:10].mean(), lb[-10:].mean())
    assert h["heldout_bits_after"] < h["heldout_bits_before"] - 2.0
    assert h["heldout_bits_after"] < h["heldout_order0_bits"] - 1.0
    codes = [encode_classes(y) for y in held]
    assert h["heldout_order0_bits"] > 5.0 and len(codes) == 4
    # the checkpoint is the final model, loadable
    back = FloatWaveNet.load(ck)
    for k, w in model.weights.items():
        np.testing.assert_array_equal(back.weights[k], w)
    # same seed and step budget -> the same model
    model2, _ = train(SMALL, clips, **kw)
    for k, w in model.weights.items():
        np.testing.assert_array_equal(model2.weights[k], w)


def test_fine_tuning_keeps_input_and_frozen_biases():
    cfg = SMALL.replace(use_biases=False)
    base = FloatWaveNet.initialize(cfg, seed=1)
    before = {k: v.copy() for k, v in base.weights.items()}
    clips = builtin_signals(n_clips=2, seconds=0.1)
    model, h = train(base, clips, steps=3, progress=False, batch_size=2)
    for k in before:
        np.testing.assert_array_equal(base.weights[k], before[k])   # input untouched
        if k.endswith("/b") or k == "initial/bias":
            assert not np.any(model.weights[k]), k
    assert not np.array_equal(model.weights["end2/w"], before["end2/w"])
    assert h["heldout_bits_before"] is None and h["steps"] == 3


def test_seconds_budget_and_gc_speakers():
    cfg = SMALL.replace(gc_cardinality=2, gc_channels=3)
    clips = builtin_signals(n_clips=2, seconds=0.1)
    model, h = train(cfg, clips, seconds=0.5, progress=False, speakers=[0, 1],
                     heldout=clips, heldout_speakers=[1, 0])
    assert h["steps"] >= 1 and h["seconds"] < 5.0
    assert h["heldout_bits_after"] is not None
    with pytest.raises(ConfigError, match="speaker"):
        train(cfg, clips, steps=1, progress=False, speakers=[0, 2])


@pytest.mark.parametrize("kw, exc, match", [
    (dict(steps=0), ConfigError, "steps"),
    (dict(seconds=-1.0), ConfigError, "seconds"),
    (dict(window=10), ConfigError, "window"),
    (dict(lr=float("nan")), ConfigError, "lr"),
    (dict(batch_size=0), ConfigError, "batch_size"),
    (dict(checkpoint="/no/such/dir/x.npz"), ConfigError, "does not exist"),
])
def test_option_errors(kw, exc, match):
    with pytest.raises(exc, match=match):
        train(SMALL, builtin_signals(n_clips=1, seconds=0.1), progress=False, **{"steps": 1, **kw})


def test_audio_errors():
    with pytest.raises(AudioError, match="too short"):
        train(SMALL, [np.zeros(20, np.float32)], steps=1, progress=False)
    with pytest.raises(AudioError, match=r"\[-1, 1\]"):
        train(SMALL, [np.full(1000, 1.5, np.float32)], steps=1, progress=False)
    with pytest.raises(AudioError, match="no training audio"):
        train(SMALL, [], steps=1, progress=False)
    with pytest.raises(ConfigError, match="preset"):
        train("no-such-preset", [np.zeros(1000)], steps=1, progress=False)


def test_single_threaded_blas_restores_the_thread_count():
    from converters.train import _openblas_libs, single_threaded_blas
    libs = _openblas_libs()
    before = [get() for _, get in libs]
    with single_threaded_blas():
        assert all(get() == 1 for _, get in libs)
    assert [get() for _, get in libs] == before
