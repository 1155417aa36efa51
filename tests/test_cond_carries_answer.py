"""The conditioning path carries exactly what it is given, aligned as scored.

A synthetic "vocoder" task whose answer is in the features: each frame of ``hop`` samples holds
one random level, and the frame's feature vector is the one-hot of that level (r9y9's alignment:
frame f belongs to samples [f·hop, (f+1)·hop), cin_pad edge frames replicated).  From the samples
alone the level of a new frame cannot be known, so an unconditioned predictor pays log2(8) bits
at every frame's first sample (≥ 3/hop bits/sample); with the features it can pay ~0.  Training
windows (``window_features``), the upsampler backward and held-out scoring
(``FloatWaveNet.bits_per_sample``) all have to agree on the alignment for the held-out score to
get there; features shifted by two frames (beyond conv-in's ±1 frame of context) must not.
"""

import numpy as np
import pytest

from converters import train
from wavenet_edge import WaveNetConfig, decode_classes
from wavenet_edge.errors import ConfigError

CFG = WaveNetConfig(dilations=(1, 2, 4, 8), residual_channels=8, dilation_channels=8,
                    skip_channels=16, end_channels=16, cin_channels=8, upsampler="conv-in",
                    upsample_scales=(2, 4), cin_pad=1)
LEVELS = np.linspace(20, 235, 8).astype(np.int64)


def _clip(rng, n_frames, shift=0):
    hop = CFG.hop
    lv = rng.integers(0, 8, n_frames)
    y = decode_classes(np.repeat(LEVELS[lv], hop), convention=CFG.mulaw).astype(np.float32)
    f = np.eye(8, dtype=np.float32)[np.roll(lv, shift)]
    return y, np.concatenate([f[:1], f, f[-1:]])


def _run(shift):
    rng = np.random.default_rng(0)
    tr = [_clip(rng, 120, shift) for _ in range(6)]
    he = [_clip(rng, 60, shift) for _ in range(2)]
    _, hist = train(CFG, [t[0] for t in tr], features=[t[1] for t in tr],
                    heldout=[h[0] for h in he], heldout_features=[h[1] for h in he],
                    steps=200, batch_size=8, window=CFG.receptive_field + 63, lr=1e-2,
                    seed=0, progress=False)
    return hist


def test_features_that_hold_the_answer_are_learnt_and_scored_aligned():
    floor = 3.0 / CFG.hop          # an unconditioned model's cost of the unknown new levels
    good = _run(0)
    assert good["heldout_bits_after"] < 0.25 * floor
    late = _run(2)                 # each frame's features two frames late: the answer is gone
    assert late["heldout_bits_after"] > 0.8 * floor


def test_given_features_are_checked():
    rng = np.random.default_rng(1)
    y, f = _clip(rng, 30)
    with pytest.raises(ConfigError, match=r"training features 0 have 31 frames but the clip's "
                                          r"240 samples need 32 \(240/8 \+ 2·1\)"):
        train(CFG, [y], features=[f[:-1]], steps=1, progress=False)
    with pytest.raises(ConfigError, match="6 bands but the model takes 8"):
        train(CFG, [y], features=[f[:, :6]], steps=1, progress=False)
    with pytest.raises(ConfigError, match="1 arrays for 2 clips"):
        train(CFG, [y, y], features=[f], steps=1, progress=False)
    with pytest.raises(ConfigError, match="no local conditioning"):
        train("tiny", [y], features=[f], steps=1, progress=False)
