"""Small converted step graphs shared by the engine tests (built once per session, cached)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from wavenet_edge import FloatWaveNet, WaveNetConfig, load_wav, preset

# one second per clip, committed (tests/data/clips/make.sh cuts them from espeak-ng speech)
SPEECH = str(Path(__file__).resolve().parent / "data" / "clips" / "speech_{}.wav")


def _audio(n, seed, freqs=(220.0, 347.0), sr=16000):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    y = sum(0.35 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)
    return np.clip(y + 0.01 * rng.standard_normal(n), -1, 1)


def speech(which="a", n=None):
    """The first ``n`` samples of committed speech clip ``which`` ("a" … "d"): float32 in [-1, 1],
    16 kHz.  A missing clip or one too short is an error, never replaced by something else."""
    y, sr = load_wav(SPEECH.format(which))
    assert sr == 16000, sr
    if n is not None and n > y.size:
        raise ValueError(f"speech clip {which!r} has {y.size} samples, {n} asked for")
    return y if n is None else y[:n]


CONFIGS = {
    "k2": dict(dilations=(1, 2, 4, 8, 16), residual_channels=8, dilation_channels=8,
               skip_channels=16, end_channels=16),
    "k3": dict(dilations=(1, 2, 4, 1, 2, 4), kernel_size=3, residual_channels=8,
               dilation_channels=12, skip_channels=16, end_channels=24),
    "gc": dict(dilations=(1, 2, 4, 8), residual_channels=8, dilation_channels=8,
               skip_channels=16, end_channels=16, gc_cardinality=3, gc_channels=4),
    "wide": dict(dilations=(1, 2, 4, 8), residual_channels=8, dilation_channels=8,
                 skip_channels=16, end_channels=16, initial_filter_width=4,
                 mulaw="tensorflow-wavenet"),
    # skip FC with 68 inputs and 20 outputs: the per-row VNNI dot product (engine mode 1)
    "skip68": dict(dilations=(1, 2, 4, 8), residual_channels=8, dilation_channels=17,
                   skip_channels=20, end_channels=24),
    # 17 channels: LiteRT's SIMD blocks of 16 plus a scalar tail in ADD/MUL
    "odd": dict(dilations=(1, 3, 9), residual_channels=17, dilation_channels=17,
                skip_channels=20, end_channels=18, residual_scale=0.7, skip_scale=0.5),
}


def config(name) -> WaveNetConfig:
    if name in CONFIGS:
        return WaveNetConfig(**CONFIGS[name])
    return preset(name)


@functools.lru_cache(maxsize=None)
def model_bytes(name: str, seed: int = 0) -> bytes:
    """Convert a randomly initialised (non-zero biases) float model of config ``name``."""
    from converters.convert import convert

    cfg = config(name)
    m = FloatWaveNet.initialize(cfg, seed=seed)
    rng = np.random.default_rng(seed + 7)
    for k, a in m.weights.items():
        if k.endswith("/b") or k == "initial/bias":
            m.weights[k] = rng.normal(0.0, 0.1, a.shape)
    n = max(4000, cfg.receptive_field + 2100)
    cal = [speech("a", n).astype(np.float64), _audio(n, 2, (260.0, 410.0))]
    res = convert(m, calibration=cal, method="minmax", progress=False, evaluate_quality=False)
    return res.tflite


def softmax_cases(in_scale, seed):
    """``(x int8 (256,), ref int8 (256,), exps)`` for profiles tflm and litert-ref and input spreads
    4, 40, 255: ``ref`` is :func:`wavenet_edge.int8.softmax_int8`, ``exps`` the engine's table."""
    from wavenet_edge.int8 import softmax_int8, softmax_params
    from wavenet_edge.int8 import softmax_exp_table as _softmax_exps

    rng = np.random.default_rng(seed)
    for profile in ("tflm", "litert-ref"):
        sp = softmax_params(np.float32(in_scale), 1.0, profile)
        exps = _softmax_exps(sp.multiplier, sp.left_shift, sp.diff_min)
        for spread in (4, 40, 255):
            x = np.clip(rng.integers(-128, 128) + rng.integers(-spread, spread + 1, 256),
                        -128, 127).astype(np.int8)
            ref = np.empty(256, np.int8)
            softmax_int8(x, sp.multiplier, sp.left_shift, sp.diff_min, sp.table, sp.out_scale,
                         sp.profile, ref)
            yield x, ref, exps
