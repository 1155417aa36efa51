"""WAV input/output (16-bit PCM) with librosa/soundfile conventions: ``y`` float32 in [-1, 1]."""

from __future__ import annotations

import struct
import wave

import numpy as np

from ._fileio import atomic_write
from .errors import AudioError

__all__ = ["load_wav", "write_wav", "resample"]


def resample(y, orig_sr: int, target_sr: int):
    """Band-limited resampling by FFT (numpy only).  ``y``: (n,) float → (round(n·target/orig),)."""
    y = np.asarray(y, dtype=np.float64)
    if orig_sr == target_sr or y.size == 0:
        return y.astype(np.float32)
    n_out = int(round(y.shape[0] * target_sr / orig_sr))
    Y = np.fft.rfft(y)
    n_bins = n_out // 2 + 1
    Z = np.zeros(n_bins, dtype=complex)
    m = min(n_bins, Y.shape[0])
    Z[:m] = Y[:m]
    out = np.fft.irfft(Z, n_out) * (n_out / y.shape[0])
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def load_wav(path, *, sr: int | None = None, mono: bool = True):
    """Read a PCM WAV file (8/16/24/32-bit integer).

    Returns ``(y, sr)``: ``y`` float32 in [-1, 1], shape (n,) (channels averaged when ``mono``) or
    (channels, n).  With ``sr`` given, resamples to it (FFT, band-limited).  Errors name the file.
    """
    try:
        with wave.open(str(path), "rb") as w:
            nch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except FileNotFoundError:
        raise AudioError("no such file", path=path) from None
    except IsADirectoryError:
        raise AudioError("is a directory, not a WAV file", path=path) from None
    except (wave.Error, EOFError, RuntimeError, ValueError, struct.error) as e:
        # the stdlib reader raises several types on malformed chunk headers
        why = str(e) or type(e).__name__
        raise AudioError(f"unsupported or corrupt WAV ({why}); need integer PCM", path=path) from None
    except OSError as e:
        raise AudioError(f"cannot read ({e.strerror or e})", path=path) from None
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16))
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        data = v.astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = (np.frombuffer(raw, "<i4").astype(np.float64) / 2.0**31).astype(np.float32)
    else:
        raise AudioError(f"unsupported sample width {width} bytes", path=path)
    usable = (data.shape[0] // nch) * nch
    data = data[:usable].reshape(-1, nch).T
    if data.shape[1] == 0:
        raise AudioError("contains no audio frames", path=path)
    y = data.mean(axis=0) if mono else data
    if sr is not None and sr != rate:
        if y.ndim == 1:
            y = resample(y, rate, sr)
        else:
            y = np.stack([resample(c, rate, sr) for c in y])
        rate = sr
    return np.ascontiguousarray(y, dtype=np.float32), rate


def write_wav(path, y, sr: int) -> None:
    """Write ``y`` (float in [-1, 1], (n,) or (channels, n)) as 16-bit PCM, atomically."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[None, :]
    if not np.all(np.isfinite(y)):
        raise AudioError("audio contains NaN or Inf", path=path)
    pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2").T.copy()
    with atomic_write(path) as f:
        with wave.open(f, "wb") as w:
            w.setnchannels(pcm.shape[1])
            w.setsampwidth(2)
            w.setframerate(int(sr))
            w.writeframes(pcm.tobytes())
