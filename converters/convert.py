"""Front door of the converter: float WaveNet → calibrated int8 step graph (``.tflite``).

``convert(model)`` canonicalizes the float model (folds residual/skip scales), runs it
teacher-forced on calibration audio to collect statistics of every activation tensor, chooses
activation ranges by a method, quantizes weights/biases/activations, emits the one step graph
(``docs/step-graph.md``) and measures int8-vs-float quality on held-out audio.  With
``method="auto"`` every range method is tried and the one with the lowest int8 cross-entropy on the
held-out audio wins (chosen by measurement, not by proxy).

Which audio is held out: ``heldout`` when given; otherwise, when the caller gives calibration
audio, the last ``heldout_fraction`` (10 %) of every calibration clip — the same tail that
``wavenet-edge train`` holds out of each training file — so that quality and the method choice
are measured on audio of the user's kind that neither calibration nor (with the same files)
training has seen; with neither, the built-in held-out split (the built-in calibration set's
counterpart).  The report's ``heldout`` entry says which.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from wavenet_edge.errors import AudioError, ConfigError, ConversionError
from wavenet_edge.float_model import FloatWaveNet
from wavenet_edge.mulaw import encode_classes

from . import calibrate
from .canonical import canonicalize
from .export import build_step_graph
from .quantize import activation_plan
from .report import evaluate, format_table, model_facts, write_report

__all__ = ["convert", "ConversionResult", "METHODS", "HELDOUT_FRACTION"]

METHODS = ("auto",) + calibrate.METHODS
HELDOUT_FRACTION = 0.1


@dataclass
class ConversionResult:
    """Outcome of :func:`convert`.

    tflite : the step graph (bytes)
    path : where it was written (None without ``out``)
    method : the calibration method used for ``tflite``
    report : JSON-able dict (model facts, calibration, per-method quality)
    plan : ``{tensor name: QParams}`` of every int8 activation
    model : the canonical float model that was quantized
    """

    tflite: bytes
    path: str | None
    method: str
    report: dict
    plan: dict = field(repr=False)
    model: FloatWaveNet = field(repr=False)

    @property
    def quality(self) -> dict | None:
        """The chosen method's held-out quality (None when not evaluated)."""
        return (self.report.get("methods") or {}).get(self.method)

    def table(self) -> str:
        """The printed report."""
        return format_table(self.report)


def _load_model(model) -> FloatWaveNet:
    if isinstance(model, FloatWaveNet):
        return model
    if isinstance(model, (str, os.PathLike)):
        try:
            from .checkpoints import load_checkpoint
        except ImportError:     # checkpoint importers not installed: our own .npz format only
            return FloatWaveNet.load(model)
        return load_checkpoint(model)
    raise ConfigError("model must be a FloatWaveNet or a checkpoint path, "
                      f"got {type(model).__name__}")


def _describe(names) -> str:
    return ", ".join(names[:4]) + (f", … ({len(names)} files)" if len(names) > 4 else "")


def _audio_clips(source, sr: int, *, split: str, what: str):
    """``(list of float audio (n,), names or None, description)`` from None (built-in split),
    paths or arrays; ``names`` is None for the built-in split."""
    if source is None:
        from .signals import builtin_signals
        clips = [np.asarray(c, np.float64) for c in builtin_signals(split=split, sr=sr)]
        return clips, None, f"builtin:{split} ({len(clips)} clips)"
    if isinstance(source, (str, os.PathLike, np.ndarray)):
        source = [source]
    from wavenet_edge.audio import load_wav
    clips, names = [], []
    for item in source:
        if isinstance(item, (str, os.PathLike)):
            paths = ([os.path.join(item, f) for f in sorted(os.listdir(item))
                      if f.lower().endswith(".wav")] if os.path.isdir(item) else [item])
            if not paths:
                raise AudioError(f"no .wav files in {what} directory", path=item)
            for p in paths:
                y, _ = load_wav(p, sr=sr)
                clips.append(np.asarray(y, np.float64))
                names.append(os.path.basename(os.fspath(p)))
        else:
            y = np.asarray(item, np.float64)
            if y.ndim != 1:
                raise AudioError(f"{what} audio arrays must be 1-D, got shape {y.shape}")
            clips.append(y)
            names.append(f"array[{y.shape[0]}]")
    if not clips:
        raise ConversionError(f"no {what} audio given")
    return clips, names, _describe(names)


def _hold_out_tails(clips, names, fraction: float, min_tail: int):
    """Split each calibration clip into (head, tail): tails of at least ``min_tail`` samples are
    held out for the quality report, shorter clips stay whole in calibration.  Returns
    ``(heads, tails, description of the calibration part, description of the held-out part)``."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"heldout_fraction must lie in (0, 1), got {fraction!r}")
    heads, tails, held_names = [], [], []
    for y, name in zip(clips, names):
        n_tail = int(y.shape[0] * fraction)
        if n_tail >= min_tail:
            heads.append(y[:-n_tail])
            tails.append(y[-n_tail:])
            held_names.append(name)
        else:
            heads.append(y)
    if not tails:
        longest = max(y.shape[0] for y in clips)
        raise ConversionError(
            f"calibration audio too short to hold out its last {fraction:.0%} for the quality "
            f"report (longest clip {longest} samples, a held-out tail needs {min_tail}); give "
            "held-out audio (--heldout) or longer calibration audio")
    pct = f"{fraction:.0%}"
    return (heads, tails, f"{_describe(names)} (first {100 - round(100 * fraction)}% of each)",
            f"last {pct} of {_describe(held_names)} (calibration audio held out)")


def _with_features(audio, cfg, what: str, given=None):
    """``(audio cut to whole frames, model-ready features)`` of each clip for a locally
    conditioned model (:func:`converters.features.vocoder_inputs`), or with ``given`` features
    (one array per clip, model-ready) the audio cut to the samples they cover."""
    from .features import check_features, vocoder_inputs

    if given is not None:
        if len(given) != len(audio):
            raise ConfigError(f"{len(given)} {what} feature arrays for {len(audio)} clips")
        cut, conds = [], []
        for i, (y, c) in enumerate(zip(audio, given)):
            c = check_features(c, cfg, what=f"{what} features [{i}]").astype(np.float64)
            n = (c.shape[0] - 2 * cfg.cin_pad) * cfg.hop
            if n < 1 or n > y.shape[0]:
                raise ConfigError(f"{what} features [{i}] have {c.shape[0]} frames for "
                                  f"{max(n, 0)} samples but the clip has {y.shape[0]}")
            cut.append(np.asarray(y[:n], np.float64))
            conds.append(c)
        return cut, conds
    if cfg.mel is None:
        raise ConversionError("the model's config has no feature recipe (mel): convert cannot "
                              f"compute the features of the {what} audio")
    cut, conds = [], []
    for y in audio:
        if y.shape[0] < cfg.hop:
            continue
        y2, c = vocoder_inputs(y, sr=cfg.sample_rate, config=cfg)
        cut.append(np.asarray(y2, np.float64))
        conds.append(np.asarray(c, np.float64))
    if not cut:
        raise ConversionError(f"{what} audio shorter than one feature frame ({cfg.hop} samples)")
    return cut, conds


def _speaker_plan(n_clips: int, cardinality: int):
    """(clip index, speaker) pairs covering every clip and every speaker at least once."""
    if cardinality == 0:
        return [(i, None) for i in range(n_clips)]
    pairs = [(i, i % cardinality) for i in range(n_clips)]
    pairs += [(s % n_clips, s) for s in range(n_clips, cardinality)]
    return pairs


def convert(model, *, calibration=None, out=None, method: str = "auto", report=None,
            progress: bool = True, heldout=None, eval_steps: int = 4000, runner=None,
            evaluate_quality: bool = True,
            heldout_fraction: float = HELDOUT_FRACTION, features=None,
            heldout_features=None) -> ConversionResult:
    """Quantize a float WaveNet to the int8 step graph.

    model : :class:`FloatWaveNet` or a checkpoint path (loaded by ``converters.checkpoints``)
    calibration : None (the built-in calibration split), WAV path(s)/directories (read at the
        model's rate), or 1-D float arrays in [-1, 1] at the model's rate
    out : ``.tflite`` path to write atomically (its directory must exist), or None
    method : ``"auto"`` (try every method, keep the best held-out int8 bits/sample), ``"minmax"``,
        ``"percentile"`` or ``"mse"``
    report : path of a JSON report to write, or None
    heldout : held-out audio like ``calibration``.  Default: with calibration audio given, the
        last ``heldout_fraction`` of each calibration clip (calibration then uses the rest); with
        neither, the built-in held-out split.  ``report["heldout"]`` says which.
    eval_steps : steps of the int8 graph run for the quality report (split over the first two
        held-out clips, each from silence)
    runner : ``runner(tflite_bytes, codes, speaker) -> int8 logits (n, 256)``; default LiteRT
        (builtin kernels) through ``converters.host.ContractHost``
    evaluate_quality : measure quality (always done for ``method="auto"``)
    heldout_fraction : share of each calibration clip held out when ``heldout`` is None and
        calibration audio is given (default 0.1, the tail ``train`` holds out of each file)
    features, heldout_features : locally conditioned models: per calibration (held-out) clip its
        model-ready features (frames, cin) float, instead of computing them from the audio by
        the model's mel recipe (for checkpoints without one).  With ``features`` the held-out
        audio is not cut from the calibration clips: give ``heldout`` and ``heldout_features``
        (or ``evaluate_quality=False`` with a fixed method).

    A locally conditioned model (a vocoder) is calibrated on its calibration audio's features
    (``converters.vocoder_inputs``: mel by the config's recipe, whole frames, ``cin_pad`` edge
    frames), the built-in calibration set's when no audio is given, and the frame graph is built
    with the step graph (F > 1: the band-window FIR of docs/step-graph.md, "The frame graph").
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    for p, what in ((out, "output"), (report, "report")):
        if p is not None:
            d = os.path.dirname(os.path.abspath(os.fspath(p)))
            if not os.path.isdir(d):
                raise ConversionError(f"{what} directory {d} does not exist", path=p)
    float_model = _load_model(model)
    cfg = float_model.config
    canon = canonicalize(float_model)

    # calibration audio → class indices in the model's own mu-law convention
    audio, names, cal_desc = _audio_clips(calibration, cfg.sample_rate, split="calibration",
                                          what="calibration")
    measure = evaluate_quality or method == "auto"
    held_audio, held_desc = None, None
    if (features is not None or heldout_features is not None) and not cfg.has_cond:
        raise ConfigError("features are for locally conditioned models (cin_channels > 0)")
    if features is not None and measure and heldout_features is None:
        raise ConfigError("with explicit calibration features give heldout audio and "
                          "heldout_features too (or evaluate_quality=False and a fixed method)")
    if heldout_features is not None and heldout is None:
        raise ConfigError("heldout_features need the held-out audio (heldout)")
    if measure and heldout is None and names is not None and features is None:
        # the user's own kind of audio: hold out a tail of each clip rather than judging the
        # model (and choosing the method) on the built-in sine set
        audio, held_audio, cal_desc, held_desc = _hold_out_tails(
            audio, names, heldout_fraction, min_tail=max(2, min(2048, cfg.receptive_field + 1)))
    conds = None
    if cfg.has_cond:
        # a vocoder calibrates on the features of its calibration audio (whole frames)
        audio, conds = _with_features(audio, cfg, "calibration", features)
    codes = [encode_classes(np.clip(y, -1.0, 1.0), convention=cfg.mulaw) for y in audio]
    total = sum(c.shape[0] for c in codes)
    need = calibrate.min_calibration_samples(cfg)
    if total < need:
        raise ConversionError(
            f"calibration audio too short: {total} samples, need at least {need} "
            f"(receptive field {cfg.receptive_field} + 2048)")
    pairs = _speaker_plan(len(codes), cfg.gc_cardinality)
    stats = calibrate.collect_statistics(
        canon, [codes[i] for i, _ in pairs], speakers=[s for _, s in pairs],
        conds=None if conds is None else [conds[i] for i, _ in pairs], progress=progress)
    fplan = None
    if cfg.has_cond and cfg.upsampler != "none":
        from .frame_graph import frame_plan
        fplan = frame_plan(canon, conds)

    # held-out clips for the measurement
    candidates = list(calibrate.METHODS) if method == "auto" else [method]
    eval_clips, eval_spk, eval_cond = [], [], []
    if measure:
        if held_audio is not None:
            h_audio = held_audio
        else:
            h_audio, _, held_desc = _audio_clips(heldout, cfg.sample_rate, split="heldout",
                                                 what="held-out")
        # two clips: long enough runs to pass the receptive-field warm-up, two signals
        n_use = min(2, len(h_audio))
        per = max(2, int(eval_steps) // n_use)
        for i, y in enumerate(h_audio[:n_use]):
            if cfg.has_cond:
                # features of the whole clip (the STFT needs its context), then the whole
                # frames within the step budget; the cin_pad frames after them stay real
                given = None if heldout_features is None else [heldout_features[i]]
                (y,), (c,) = _with_features([np.asarray(y)], cfg, "held-out", given)
                n_fr = max(1, min(per, y.shape[0]) // cfg.hop)
                y = y[:n_fr * cfg.hop]
                eval_cond.append(c[:n_fr + 2 * cfg.cin_pad] if cfg.upsampler != "none"
                                 else c[:y.shape[0]])
            y = np.asarray(y)[:per]
            eval_clips.append(encode_classes(np.clip(y, -1.0, 1.0), convention=cfg.mulaw))
            eval_spk.append(i % cfg.gc_cardinality if cfg.has_gc else None)

    from tqdm.auto import tqdm
    built, qualities = {}, {}
    for m in tqdm(candidates, desc="quantizing", unit="method", disable=not progress, leave=False):
        ranges = calibrate.choose_ranges(stats, m)
        plan = activation_plan(cfg, ranges)
        data = build_step_graph(canon, plan, calibration={"method": m, "audio": cal_desc},
                                frame_plan=fplan)
        built[m] = (data, plan)
        if measure:
            qualities[m] = evaluate(float_model, data, eval_clips, logits_qparams=plan["logits"],
                                    runner=runner, speakers=eval_spk,
                                    conds=eval_cond if cfg.has_cond else None)
    chosen = (min(candidates, key=lambda m: (qualities[m]["int8_bits"], qualities[m]["kl_bits"]))
              if method == "auto" else method)
    data, plan = built[chosen]

    rep = {
        "model": {"config": cfg.to_dict(), **model_facts(cfg, data)},
        "method": chosen,
        "calibration": {"audio": cal_desc, "samples": int(total), "method_requested": method},
        "heldout": held_desc,
        "methods": qualities,
    }
    if out is not None:
        from .tflite_writer import write_tflite
        write_tflite(out, data)
    if report is not None:
        write_report(report, rep)
    return ConversionResult(tflite=data, path=None if out is None else os.fspath(out),
                            method=chosen, report=rep, plan=plan, model=canon)
