"""``wavenet-edge vocode``: features in, speech out, with the bit-exact int8 engine.

The features come from audio (the model's own mel recipe, :func:`converters.mel_features`, numpy
only) or from a ``.npy`` array of frames × n_mels in the model's feature space, as a TTS front
end produces them; they are padded by ``cin_pad`` edge frames (:func:`converters.features.
pad_frames`), quantized by the contract and run through the frame graph and the step graph
(:meth:`wavenet_edge.Engine.generate` with ``cond=``).  The vocode logic lives here, in the host
toolchain, because the features do; the engine itself only takes frames.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from wavenet_edge.cli import float_arg, profile_arg

__all__ = ["VocodeResult", "vocode", "load_mel", "register_vocode"]


class VocodeResult(NamedTuple):
    """``y`` float32 (n,) vocoded audio at ``sr``; ``codes`` int64 (n,); ``frames`` the padded
    float features used (N + 2·cin_pad, cin); ``reference`` the audio the features came from
    (its first n samples) or None; ``seconds`` generation wall time, ``compile_seconds`` the
    kernels' compile / cache load before it."""

    y: object
    sr: int
    codes: object
    frames: object
    reference: object
    seconds: float
    compile_seconds: float

    @property
    def realtime_factor(self) -> float:
        """Audio seconds per wall-clock second of generation (> 1: faster than real time)."""
        return (self.y.shape[0] / self.sr) / self.seconds if self.seconds > 0 else float("inf")


def load_mel(path, config):
    """A (frames, n_mels) float ``.npy`` (no pickles), checked against the model: float32."""
    import numpy as np

    from wavenet_edge.errors import ConfigError

    from .features import check_features
    try:
        m = np.load(os.fspath(path), allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (ValueError, OSError) as e:
        raise ConfigError(f"{path}: not a numpy .npy array ({str(e).splitlines()[0]})") from None
    if not isinstance(m, np.ndarray):
        raise ConfigError(f"{path}: expected one array (.npy), got {type(m).__name__}")
    try:
        return check_features(m, config, what=f"{path}: mel frames")
    except ConfigError as e:
        raise ConfigError(str(e)) from None


def vocode(model, audio=None, *, mel=None, seed: int = 0, temperature: float = 1.0,
           profile: str = "tflm", progress=None) -> VocodeResult:
    """Vocode the features of ``audio`` (path or float array at the model's rate) or ``mel``
    (path of a .npy or an array, (frames, n_mels) in the model's feature space) with the int8
    engine.  ``model``: a conditioned ``.tflite`` (path, bytes, parsed) or an Engine.
    ``progress``: optional callable(k) after each chunk of k samples, or a tqdm bar (its
    ``total`` is set to the samples to generate, ``update(k)`` called)."""
    import numpy as np

    from wavenet_edge.audio import load_wav
    from wavenet_edge.engine import Engine
    from wavenet_edge.errors import ConfigError

    from .features import check_features, pad_frames, vocoder_inputs

    if (audio is None) == (mel is None):
        raise ConfigError("give either audio or mel features (not both)")
    eng = model if isinstance(model, Engine) else Engine(model, profile=profile)
    cfg = eng.config
    if not eng.has_cond:
        raise ConfigError(f"{eng.path}: not a vocoder (the model takes no conditioning "
                          f"features)")
    reference = None
    if audio is not None:
        if isinstance(audio, (str, os.PathLike)):
            y, _ = load_wav(audio, sr=eng.sr)
        else:
            y = np.asarray(audio, np.float64)
        reference, frames = vocoder_inputs(np.clip(y, -1.0, 1.0), sr=eng.sr, config=cfg)
    else:
        m = load_mel(mel, cfg) if isinstance(mel, (str, os.PathLike)) else check_features(
            mel, cfg, what="mel frames")
        if m.shape[0] < 1:
            raise ConfigError("mel frames: no frames")
        frames = pad_frames(m, cfg) if cfg.upsampler != "none" else m
    n = ((frames.shape[0] - 2 * cfg.cin_pad) * cfg.hop if cfg.upsampler != "none"
         else frames.shape[0])
    if progress is not None and hasattr(progress, "update"):
        bar = progress
        bar.total = n
        bar.refresh()
        progress = bar.update
    compile_s = eng.warmup()
    eng.reset()
    t0 = time.perf_counter()
    codes = eng.generate(n, cond=frames, seed=seed, temperature=temperature, progress=progress)
    dt = time.perf_counter() - t0
    return VocodeResult(eng.decode(codes), eng.sr, codes, frames, reference, dt, compile_s)


def plot_vocoded(result: VocodeResult, config, path) -> None:
    """PNG: the input's spectrogram (the audio's, or the mel frames given) above the vocoded
    output's, on one colour scale."""
    import numpy as np

    from .features import mel_features
    from .plots import _save, require_matplotlib, spectrogram_db

    plt = require_matplotlib()
    sr = result.sr
    if result.reference is not None:
        rows = [("input audio", spectrogram_db(result.reference)),
                ("vocoded (int8 engine)", spectrogram_db(result.y))]
        extent_y, ylabel = (0, sr / 2), "Hz"
    else:
        p = config.cin_pad if config.upsampler != "none" else 0
        given = result.frames[p:result.frames.shape[0] - p].T
        rows = [("input mel frames", given),
                ("vocoded: mel features of the output", mel_features(
                    np.clip(result.y, -1, 1), sr=sr, config=config).T)]
        extent_y, ylabel = (0, given.shape[0]), "mel band"
    hi = max(float(r.max()) for _, r in rows)
    lo = min(float(r.min()) for _, r in rows)
    if result.reference is not None:
        lo = max(lo, hi - 80)
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 3 * len(rows)), squeeze=False)
    dur = result.y.shape[0] / sr
    for ax, (name, S) in zip(axes[:, 0], rows):
        ax.imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi,
                  extent=(0, dur, *extent_y))
        ax.set_title(name)
        ax.set_ylabel(ylabel)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _default_output(args):
    src = args.audio if args.audio else args.mel
    stem = os.path.splitext(os.path.basename(os.fspath(src)))[0] or "vocoded"
    return f"{stem}-vocoded.wav"


def register_vocode(subparsers):
    """``wavenet-edge vocode MODEL AUDIO.wav | --mel FILE.npy [-o OUT.wav]``."""
    p = subparsers.add_parser(
        "vocode", help="vocode speech from features (audio or a mel .npy) with the int8 engine",
        description="Compute the model's conditioning features from AUDIO (its own mel recipe) "
                    "or read them from --mel (frames x n_mels, in the model's feature space, as "
                    "a TTS front end produces them), then generate the waveform with the "
                    "bit-exact int8 engine (frame graph + step graph, integer PCG32 sampler). "
                    "Prints the real-time factor.")
    p.add_argument("model", help="a vocoder .tflite (conditioned step graph)")
    p.add_argument("audio", nargs="?", default=None, metavar="AUDIO",
                   help="WAV whose features are vocoded (resampled to the model's rate)")
    p.add_argument("--mel", metavar="FILE.npy", default=None,
                   help="features instead of audio: a float .npy of frames x n_mels")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--temperature", type=float_arg(at_least=0.0), default=1.0,
                   help="1 = the model's probabilities (default), 0 = greedy")
    p.add_argument("--profile", type=profile_arg(), default="tflm",
                   help="int8 arithmetic of this runtime (default tflm)")
    p.add_argument("-o", "--output", default=None,
                   help="output WAV (default: <input name>-vocoded.wav)")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="also draw the input's and the output's spectrograms")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_vocode)
    return p


def _run_vocode(args) -> int:
    from wavenet_edge.audio import write_wav
    from wavenet_edge.engine import Engine
    from wavenet_edge.errors import ConfigError

    if (args.audio is None) == (args.mel is None):
        raise ConfigError("give AUDIO or --mel FILE.npy (exactly one)")
    out = args.output or _default_output(args)
    for target in [out] + ([args.plot] if args.plot else []):
        d = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(d):
            raise ConfigError(f"output directory {d} does not exist")
    eng = Engine.from_file(args.model, profile=args.profile)
    if args.plot:
        from .plots import require_matplotlib
        require_matplotlib()
    from tqdm.auto import tqdm
    with tqdm(unit="sample", unit_scale=True, desc="vocoding", disable=args.no_progress,
              leave=False) as bar:
        res = vocode(eng, args.audio, mel=args.mel, seed=args.seed,
                     temperature=args.temperature, progress=bar)
    write_wav(out, res.y, res.sr)
    if args.plot:
        plot_vocoded(res, eng.config, args.plot)
    n = res.y.shape[0]
    print(f"wrote {out}: {n:,} samples ({n / res.sr:.2f} s at {res.sr} Hz) from "
          f"{res.frames.shape[0]} frames in {res.seconds:.2f} s, {n / res.seconds:,.0f} "
          f"samples/s = {res.realtime_factor:.2f}x real time (profile {args.profile}, seed "
          f"{args.seed}; kernel load/compile {res.compile_seconds:.2f} s)"
          + (f"; plot {args.plot}" if args.plot else ""))
    return 0
