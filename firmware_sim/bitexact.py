"""Bit-exactness of the Numba engine against a REAL interpreter, through the contract.

Both run the same ``.tflite``: the interpreter (TFLM by default; LiteRT with its builtin kernels
for ``runtime="litert"``) through :class:`converters.host.ContractHost` (the reference host
written from the delay-line contract alone) and :class:`wavenet_edge.engine.Engine` with the
matching arithmetic profile.  Two phases, each from silence:

* teacher-forced: ``steps`` class indices of audio (the built-in held-out signals of
  :mod:`converters.signals`, or a WAV resampled to the model's rate) fed to both;
* free-running: the engine's sampled codes fed to both (sampling with
  :class:`wavenet_edge.sampling.Sampler` on the engine's int8 outputs, seeded).

A vocoder (locally conditioned model) is conditioned in both phases on the features of the same
audio (:func:`converters.features.vocoder_inputs`: the model's mel recipe, whole frames, so the
phases run a whole number of frames: ``steps`` rounded up to a multiple of the hop): the engine
through ``process(cond=)`` / ``feed_frames``, the host through ``ContractHost.set_features``.

Compared every step: ``probs`` and ``logits`` (int8, all 256), plus every delay-line ``write``
in the free-running phase.  Any difference is a failure: :class:`BitExactResult` records the first
differing step, phase and tensor; :func:`check_bitexact` with ``raise_on_mismatch`` raises
:class:`~wavenet_edge.errors.MismatchError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wavenet_edge.errors import ConfigError, MismatchError

__all__ = ["BitExactResult", "check_bitexact", "teacher_codes"]

_RUNTIME_NAMES = {"tflm": "TFLM", "litert": "LiteRT (builtin kernels)",
                  "litert-ref": "LiteRT (reference kernels)", "xnnpack": "LiteRT (XNNPACK)",
                  "litert-arm64": "LiteRT aarch64 (builtin kernels, qemu)",
                  "xnnpack-arm64": "LiteRT aarch64 (XNNPACK, qemu)"}


@dataclass
class BitExactResult:
    """Counts of identical steps per phase; ``mismatch`` is None or a dict naming the first
    differing ``phase``, ``step``, ``tensor`` and how many of its elements differ."""

    teacher_forced_steps: int
    teacher_forced_identical: int
    free_running_steps: int
    free_running_identical: int
    audio: str
    seed: int
    mismatch: dict | None = None
    compared: list = field(default_factory=list)
    profile: str = "tflm"
    runtime: str = "tflm"
    # phase -> tensor -> [identical steps, different steps]
    per_tensor: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.mismatch is None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "runtime": f"{_RUNTIME_NAMES.get(self.runtime, self.runtime)} via ContractHost",
                "engine_profile": self.profile, "audio": self.audio, "seed": self.seed,
                "compared_tensors": list(self.compared),
                "teacher_forced": {"steps": self.teacher_forced_steps,
                                   "identical": self.teacher_forced_identical},
                "free_running": {"steps": self.free_running_steps,
                                 "identical": self.free_running_identical},
                "per_tensor": {ph: {n: {"identical": c[0], "different": c[1]}
                                    for n, c in d.items()}
                               for ph, d in self.per_tensor.items()},
                "first_mismatch": self.mismatch}

    def message(self) -> str:
        m = self.mismatch
        if m is None:
            return "bit-exact"
        rt = _RUNTIME_NAMES.get(self.runtime, self.runtime)
        return (f"engine (profile {self.profile}) and {rt} differ at {m['phase']} step {m['step']} in tensor "
                f"{m['tensor']!r} ({m['n_different']} of {m['size']} elements, first at index "
                f"{m['first_index']}: engine {m['engine']} vs {rt} {m['tflm']})")


def teacher_codes(engine, steps: int, *, wav=None, seed: int = 0) -> tuple:
    """``(codes int64 [steps], description)``: the built-in held-out audio, or ``wav``."""
    y, desc = _teacher_audio(engine, steps, wav=wav, seed=seed)
    return engine.encode(y).astype(np.int64), desc


def _teacher_audio(engine, steps: int, *, wav=None, seed: int = 0) -> tuple:
    """``(float32 audio [steps], description)`` (a short file is repeated)."""
    if wav is not None:
        from wavenet_edge.audio import load_wav
        y, _ = load_wav(wav, sr=engine.sr)
        desc = f"{wav} at {engine.sr} Hz"
    else:
        from converters.signals import builtin_signals
        sr = engine.sr
        per = max(1, int(round(0.5 * sr)))
        clips = builtin_signals(split="heldout", n_clips=max(1, -(-steps // per)), sr=sr,
                                seed=seed)
        y = np.concatenate(clips)
        desc = f"built-in held-out signals (seed {seed}) at {sr} Hz"
    y = np.asarray(y, np.float32).reshape(-1)
    if y.size == 0:
        raise ConfigError("teacher-forcing audio is empty", path=wav)
    if y.size < steps:
        y = np.resize(y, steps)
    return y[:steps], desc


def _first_diff(name, a, b, phase, step):
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    if a.shape == b.shape and np.array_equal(a, b):
        return None
    if a.shape != b.shape:
        return {"phase": phase, "step": int(step), "tensor": name, "n_different": -1,
                "size": int(max(a.size, b.size)), "first_index": -1,
                "engine": f"shape {a.shape}", "tflm": f"shape {b.shape}"}
    d = np.flatnonzero(a != b)
    i = int(d[0])
    return {"phase": phase, "step": int(step), "tensor": name, "n_different": int(d.size),
            "size": int(a.size), "first_index": i, "engine": int(a[i]), "tflm": int(b[i])}


def _step_both(engine, host, code, speaker, names):
    p = engine.step(int(code))
    out = host.step(int(code), speaker=speaker)
    eng = {"probs": p, "logits": engine.tensor("logits")[0]}
    for n in names:
        if n not in eng:
            eng[n] = engine.tensor(n)[0]
    return eng, out


def _restart(engine, host, feats):
    """Both sides back to silence; a vocoder's features fed again to both."""
    engine.reset()
    host.reset()
    if feats is not None:
        engine.feed_frames(feats)
        engine.end_frames()
        host.set_features(feats)


def cond_features(engine, steps: int, *, wav=None, seed: int = 0) -> tuple:
    """A vocoder's ``(codes, features, description)`` for ``steps`` samples rounded up to whole
    frames: the audio of :func:`teacher_codes` and its model-ready features."""
    from converters.features import vocoder_inputs
    cfg = engine.config
    hop = cfg.hop
    n = -(-max(int(steps), 1) // hop) * hop
    # the STFT wants context: features of the whole clip (at least n samples), then cut
    y, desc = _teacher_audio(engine, max(n, 4096), wav=wav, seed=seed)
    y, feats = vocoder_inputs(y, sr=engine.sr, config=cfg)
    codes = engine.encode(y[:n]).astype(np.int64)
    if cfg.upsampler == "none":
        return codes[:n], feats[:n], desc + ", conditioned on its features"
    return codes[:n], feats[:n // hop + 2 * cfg.cin_pad], desc + ", conditioned on its features"


def _localize(engine, host, codes, speaker, upto, phase, names, feats=None):
    """Replay ``codes[:upto+1]`` step by step from silence; the first (step, tensor) that differs,
    tensors in graph-output order (the delay-line writes are the layer inputs, in layer order)."""
    _restart(engine, host, feats)
    for t in range(upto + 1):
        eng, out = _step_both(engine, host, codes[t], speaker, names)
        firsts = [f for f in (_first_diff(n, eng[n], out[n], phase, t) for n in names) if f]
        if firsts:
            return firsts[0]
    return None


def check_bitexact(model, *, steps: int = 1000, free_steps: int | None = None, wav=None,
                   seed: int = 0, speaker: int | None = None, raise_on_mismatch: bool = False,
                   name: str | None = None, progress: bool = False,
                   profile: str | None = None, runtime: str = "tflm",
                   stop_at_first: bool = True) -> BitExactResult:
    """Run ``model`` (a ``.tflite`` path, its bytes, a parsed model or an Engine) in a real
    interpreter and in the engine side by side.

    ``runtime``: ``"tflm"`` (default), ``"litert"``, ``"litert-ref"`` or ``"xnnpack"``
    (:data:`converters.interpreters.RUNTIMES`; each the name of the profile it defines), or the
    aarch64 wheel under qemu, ``"litert-arm64"`` / ``"xnnpack-arm64"``.
    ``steps``: teacher-forced steps (``free_steps``, default the same, free-running ones).
    ``profile``: the engine's arithmetic profile, by default the one matching ``runtime``; a
    different one shows how a mismatch is reported.
    ``stop_at_first``: return at the first differing step (default); ``False`` runs both phases
    to the end and counts identical/different steps per tensor (``per_tensor``).
    """
    from converters.host import ContractHost
    from converters.interpreters import EMULATED_RUNTIMES, RUNTIMES
    from wavenet_edge.engine import Engine
    from wavenet_edge.profiles import resolve_profile
    from wavenet_edge.sampling import Sampler
    from wavenet_edge.tflite_file import load_model

    runtime = resolve_profile(runtime, known=RUNTIMES + EMULATED_RUNTIMES)
    profile = runtime if profile is None else resolve_profile(profile)

    if steps < 0 or (free_steps is not None and free_steps < 0):
        raise ConfigError("steps must be >= 0")
    free_steps = steps if free_steps is None else free_steps
    m = load_model(model, name=name)
    name = m.name
    engine = Engine(m, profile=profile)
    host = ContractHost(m, runtime=runtime)
    if engine.config.has_gc:
        speaker = 0 if speaker is None else int(speaker)
        engine.speaker = speaker
    else:
        speaker = None
    writes = []
    for dl in host.delay_lines:
        if dl.write not in writes:
            writes.append(dl.write)
    names = ["probs", "logits"] + [w for w in host.output_names if w in writes]
    res = BitExactResult(teacher_forced_steps=steps, teacher_forced_identical=0,
                         free_running_steps=free_steps, free_running_identical=0, audio="",
                         seed=seed, compared=names, profile=profile, runtime=runtime)

    # -- teacher-forced: whole-sequence runs on both sides, compared row by row
    cond = engine.config.has_cond
    feats = feats_free = None
    if cond:
        codes, feats, res.audio = cond_features(engine, max(steps, free_steps), wav=wav,
                                                seed=seed)
        hop, pad = engine.config.hop, engine.config.cin_pad
        steps = -(-steps // hop) * hop
        free_steps = -(-free_steps // hop) * hop
        res.teacher_forced_steps, res.free_running_steps = steps, free_steps
        span = (lambda n: n) if engine.config.upsampler == "none" else (lambda n: n // hop + 2 * pad)
        feats_free = feats[:span(free_steps)]
        feats = feats[:span(steps)]
        codes = codes[:steps]
    elif steps:
        codes, res.audio = teacher_codes(engine, steps, wav=wav, seed=seed)
    else:
        codes, res.audio = np.zeros(0, np.int64), "none"
    if steps:
        kw = {"cond": feats} if cond else {}
        e_probs = engine.process(codes, **kw)
        engine.reset()
        e_logits = engine.process(codes, logits=True, **kw)
        ref = host.run(codes, speaker=speaker, outputs=("probs", "logits"), progress=progress,
                       **kw)
        same_p = np.all(e_probs == ref["probs"], axis=1)
        same_l = np.all(e_logits == ref["logits"], axis=1)
        same = same_p & same_l
        res.per_tensor["teacher-forced"] = {
            "probs": [int(same_p.sum()), int((~same_p).sum())],
            "logits": [int(same_l.sum()), int((~same_l).sum())]}
        bad = np.flatnonzero(~same)
        res.teacher_forced_identical = int(same.sum())
        if bad.size:
            t = int(bad[0])
            res.mismatch = _localize(engine, host, codes, speaker, t, "teacher-forced", names,
                                     feats) or \
                _first_diff("probs", e_probs[t], ref["probs"][t], "teacher-forced", t)
            if raise_on_mismatch:
                raise MismatchError(res.message(), path=name)
            if stop_at_first:
                return res

    # -- free-running: the engine samples, both consume its codes, every step compared
    _restart(engine, host, feats_free)
    sampler = Sampler(seed, temperature=1.0, logits_scale=engine.program.logits_scale)
    code = engine.silence_code()
    fed = []
    it = range(free_steps)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="free-running", unit="step")
    counts = {n: [0, 0] for n in names}
    res.per_tensor["free-running"] = counts
    for t in it:
        fed.append(code)
        eng, out = _step_both(engine, host, code, speaker, names)
        step_ok = True
        for n in names:
            f = _first_diff(n, eng[n], out[n], "free-running", t)
            counts[n][f is not None] += 1
            if f:
                step_ok = False
                if res.mismatch is None:
                    res.mismatch = f
                    if raise_on_mismatch:
                        raise MismatchError(res.message(), path=name)
        if not step_ok and stop_at_first:
            return res
        res.free_running_identical += step_ok
        # both sides keep consuming the engine's codes, so later steps stay comparable
        code = sampler.sample(eng["logits"])
    return res
