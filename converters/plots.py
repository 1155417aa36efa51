"""PNG pictures people would rather look at than read (matplotlib: a host-side dependency)."""

from __future__ import annotations

import io

import numpy as np

from wavenet_edge._fileio import atomic_write
from wavenet_edge.errors import WaveNetEdgeError

__all__ = ["require_matplotlib", "plot_layer_response", "plot_audio", "plot_continuation",
           "spectrogram_db"]


def require_matplotlib():
    """Import matplotlib with the Agg backend, or explain how to get it."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise WaveNetEdgeError("plots need matplotlib (a dependency of wavenet-edge that is "
                               "missing here): pip install matplotlib") from None
    return plt


def _save(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def spectrogram_db(y, *, n_fft: int = 512, hop: int = 128):
    """Magnitude spectrogram in dB, shape (n_fft//2 + 1, frames), Hann window (numpy only)."""
    y = np.asarray(y, dtype=np.float64)
    if y.shape[0] < n_fft:
        y = np.pad(y, (0, n_fft - y.shape[0]))
    win = np.hanning(n_fft)
    frames = 1 + (y.shape[0] - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    S = np.abs(np.fft.rfft(y[idx] * win, axis=1)).T
    return 20 * np.log10(S + 1e-6)


def plot_layer_response(result: dict, path, *, title: str = "") -> None:
    """Heat maps layer × frequency: measured gated-output RMS next to analytic filter responses."""
    plt = require_matplotlib()
    freqs, d = result["freqs"], result["dilations"]
    L = d.shape[0]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.28 * L + 2.5), sharey=True)

    def rel_db(M):
        return 20 * np.log10(np.maximum(M, 1e-12) / np.maximum(M.max(axis=1, keepdims=True), 1e-12))

    # one colour range for both panels that shows the structure a model has, without inventing any
    lo = float(np.clip(min(np.percentile(rel_db(result[k]), 5) for k in ("measured", "analytic")),
                       -30.0, -6.0))
    for ax, key, name in ((axes[0], "measured", "measured: RMS of gated output (sine sweep)"),
                          (axes[1], "analytic", "analytic: ‖Σ_j W_j e^{-jω(k-1-j)d}‖")):
        M = rel_db(result[key])
        lf = np.log(freqs)
        mid = (lf[1:] + lf[:-1]) / 2
        edges = np.exp(np.concatenate([[2 * lf[0] - mid[0]], mid, [2 * lf[-1] - mid[-1]]]))
        mesh = ax.pcolormesh(edges, np.arange(L + 1), M, shading="flat", cmap="magma",
                             vmin=lo, vmax=0)
        ax.set_xscale("log")
        ax.plot(result["octave_hz"], np.arange(L) + 0.5, "c.", ms=5, label="fs/(2d)")
        ax.set_xlabel("frequency (Hz)")
        ax.set_title(name, fontsize=9)
    axes[0].set_yticks(np.arange(L) + 0.5)
    axes[0].set_yticklabels([f"{l} (d={int(x)})" for l, x in enumerate(d)], fontsize=7)
    axes[0].set_ylabel("layer (dilation)")
    axes[0].invert_yaxis()
    axes[0].legend(loc="lower left", fontsize=7)
    fig.colorbar(mesh, ax=axes, label="dB re. row maximum", shrink=0.6)
    fig.suptitle(title or "What each dilated layer responds to")
    _save(fig, path)
    plt.close(fig)


def plot_audio(generated, sr: int, path, *, reference=None, title: str = "") -> None:
    """Waveform and spectrogram of ``generated`` (and of ``reference`` beside it, if given)."""
    plt = require_matplotlib()
    cols = [("generated", np.asarray(generated))]
    if reference is not None:
        cols.append(("held-out reference", np.asarray(reference)))
    fig, axes = plt.subplots(2, len(cols), figsize=(6 * len(cols), 6), squeeze=False)
    for c, (name, y) in enumerate(cols):
        t = np.arange(y.shape[0]) / sr
        axes[0, c].plot(t, y, lw=0.5)
        axes[0, c].set_ylim(-1, 1)
        axes[0, c].set_title(name)
        axes[0, c].set_xlabel("time (s)")
        S = spectrogram_db(y)
        axes[1, c].imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=S.max() - 80,
                          extent=(0, y.shape[0] / sr, 0, sr / 2))
        axes[1, c].set_xlabel("time (s)")
        axes[1, c].set_ylabel("Hz")
    if title:
        fig.suptitle(title)
    _save(fig, path)
    plt.close(fig)


def plot_continuation(original, continued, sr: int, prime: int, path, *, distances=None,
                      baselines=None, best=None, title: str = "") -> None:
    """The original clip's spectrogram next to prime + continuation (a line where the model
    takes over), the waveforms just after that point, and the distance for each temperature.

    original, continued : float (n,) signals, equally long; the first ``prime`` samples of
    ``continued`` are the original's.  distances : {temperature: distance}; baselines :
    {name: distance} drawn as horizontal lines; best : the chosen temperature.
    """
    plt = require_matplotlib()
    original, continued = np.asarray(original), np.asarray(continued)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    S0 = spectrogram_db(original)
    top = S0.max()
    t_prime = prime / sr
    for ax, y, name in ((axes[0, 0], original, "original (held out, never trained on)"),
                        (axes[0, 1], continued, "prime + int8 engine continuation")):
        S = spectrogram_db(y)
        ax.imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                  extent=(0, y.shape[0] / sr, 0, sr / 2))
        ax.axvline(t_prime, color="c", ls="--", lw=1.2)
        ax.set_ylim(0, min(sr / 2, 4000))
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("Hz")
    axes[0, 1].text(t_prime, 0.97 * min(sr / 2, 4000), " model continues →", color="c",
                    va="top", fontsize=9)
    w = min(int(0.03 * sr), original.shape[0] - prime)
    t = (prime + np.arange(w)) / sr * 1000
    ax = axes[1, 0]
    ax.plot(t, original[prime:prime + w], lw=1.0, label="original")
    ax.plot(t, continued[prime:prime + w], lw=1.0, label="continuation")
    ax.set_xlabel("time (ms)")
    ax.set_title("the first 30 ms the model generates", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax = axes[1, 1]
    if distances:
        ts = sorted(distances)
        ax.plot(ts, [distances[k] for k in ts], "o-", label="continuation")
        for (name, v), ls in zip((baselines or {}).items(), ("--", ":", "-.")):
            ax.axhline(v, color="gray", ls=ls, lw=1, label=name)
        if best is not None:
            ax.plot([best], [distances[best]], "r*", ms=14, label=f"chosen T = {best:g}")
        ax.set_xlabel("sampling temperature T")
        ax.set_ylabel("spectral distance to the original (lower is closer)")
        ax.legend(fontsize=8)
        ax.set_title("distance of the continuation, mean over held-out clips", fontsize=10)
    else:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
