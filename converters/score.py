"""``wavenet-edge score MODEL AUDIO...``: teacher-forced bits/sample of audio under the int8 model.

The runtime's own ``score`` (:mod:`wavenet_edge.commands`) scores unconditioned and
speaker-conditioned models; a vocoder also needs the features of each file (the model's mel
recipe, :func:`converters.features.vocoder_inputs`), which live in the host toolchain, so the
command is registered from here and conditions each file on its own features.
"""

from __future__ import annotations

import sys

__all__ = ["register_score", "score_audio"]


def score_audio(engine, y, *, speaker=None) -> tuple:
    """``(bits/sample, samples scored)`` of float audio ``y`` at ``engine.sr`` under the int8
    engine, from silence.  A vocoder is conditioned on the features of ``y`` itself (whole
    frames: ``y`` is cut to ``N·hop`` samples, as ``train`` and ``convert`` cut it)."""
    import numpy as np

    if not engine.config.has_cond:
        y = np.clip(np.asarray(y, np.float64), -1.0, 1.0)
        return engine.score(y, speaker=speaker), y.shape[0]
    from wavenet_edge.errors import ConfigError

    from .features import vocoder_inputs
    y, cond = vocoder_inputs(np.asarray(y, np.float64), sr=engine.sr, config=engine.config)
    codes = engine.encode(np.clip(y, -1.0, 1.0))
    if codes.shape[0] < 2:
        raise ConfigError("need at least two samples to score")
    if speaker is not None:
        engine.speaker = speaker
    engine.reset()
    q = engine.process(codes, logits=True, cond=cond)[:-1]
    prog = engine.program
    lg = (q.astype(np.float64) - prog.logits_zero_point) * prog.logits_scale
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    nll = lse - lg[np.arange(lg.shape[0]), codes[1:]]
    return float(nll.mean() / np.log(2.0)), int(codes.shape[0])


def register_score(subparsers):
    """The runtime's ``score`` parser, with a handler that also scores vocoders."""
    from wavenet_edge.commands import register_score as register
    p = register(subparsers)
    p.description += (" A vocoder (locally conditioned model) is conditioned on each file's own "
                      "features (the model's mel recipe), whole frames of it.")
    p.set_defaults(func=_run_score)
    return p


def _run_score(args) -> int:
    from wavenet_edge.audio import load_wav
    from wavenet_edge.engine import Engine

    eng = Engine.from_file(args.model, profile=args.profile)
    clips = [(path, load_wav(path, sr=eng.sr)[0]) for path in args.audio]
    width = max(len(str(p)) for p, _ in clips)
    for path, y in clips:
        bits, n = score_audio(eng, y, speaker=args.speaker)
        print(f"{str(path):<{width}}  {bits:.4f} bits/sample  ({n:,} samples)")
        sys.stdout.flush()
    return 0
