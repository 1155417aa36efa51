"""The conditioning stream of a vocoder engine: feature frames in, int8 ``cond`` rows out.

A locally conditioned step graph takes one int8 row of sample-rate features per step (its
``cond`` input, contract section ``cond_input``).  With an upsampler those rows come from the
frame graph (:mod:`wavenet_edge.lowered.frames`), run once per feature frame as frames arrive;
without one the features are at sample rate and only quantized.  :class:`CondStream` keeps, per
stream of a batch, the frame graph's state, the last ``K − 1`` quantized frames and the rows
produced but not yet consumed, so that frames fed in any chunks yield exactly the rows of one
call over all of them (the frame graph is causal in its calls; the end of the stream adds the
zero-point calls the look-ahead needs).
"""

from __future__ import annotations

import numpy as np

from . import _cond_kernels as _ck
from .errors import ConfigError
from .program import new_state

__all__ = ["CondStream", "check_frames"]


def check_frames(frames, batch: int, channels: int, what: str = "cond") -> np.ndarray:
    """float features ``(k, C)`` (batch 1) or ``(B, k, C)`` -> float64 (B, k, C), checked:
    a numeric array of the right rank and band count, finite."""
    a = np.asarray(frames)
    if a.dtype.kind not in "fiu":
        raise ConfigError(f"{what} must be a float array of feature frames, got dtype {a.dtype}")
    want = f"(frames, {channels})" if batch == 1 else f"({batch}, frames, {channels})"
    if batch == 1 and a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] != batch:
        raise ConfigError(f"{what} must have shape {want}, got {np.shape(frames)}")
    if a.shape[2] != channels:
        hint = " (transposed? expected frames x bands)" if a.shape[1] == channels else ""
        raise ConfigError(f"{what} has {a.shape[2]} bands but the model takes {channels}{hint}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ConfigError(f"{what} contains NaN or Inf (first at frame {bad[1]}, band {bad[2]})")
    return a


class CondStream:
    """Frames -> cond rows for ``batch`` streams.  ``frames``: the shared frame program and its
    schedule ``(FrameProgram, Consts)``, or None (features at sample rate, quantized with
    ``scale``/``zero_point``)."""

    def __init__(self, frames, *, batch: int, channels: int, hop: int, cin_pad: int,
                 scale: float, zero_point: int):
        self.frames, self.batch, self.C, self.hop, self.cin_pad = frames, batch, channels, hop, cin_pad
        self.scale, self.zero_point = float(scale), int(zero_point)
        self.reset()

    def reset(self):
        """No frames seen: a new utterance."""
        B, C = self.batch, self.C
        self.known = 0            # padded frames fed
        self.calls = 0            # frame-graph calls done
        self.ended = False
        self.consumed = 0         # rows handed to the step graph
        self._rows = np.zeros((B, 0, C), np.int8)
        self._produced = 0        # rows computed (consumed + pending)
        if self.frames is not None:
            fp, consts = self.frames
            self._states = [new_state(consts, 1) for _ in range(B)]
            self._tail = np.zeros((B, 0, C), np.int8)

    @property
    def started(self) -> bool:
        return self.known > 0 or self.ended

    # -- geometry ---------------------------------------------------------------------------
    @property
    def lookahead_frames(self) -> int:
        return 0 if self.frames is None else self.frames[0].lookahead_frames

    def _limit(self) -> int:
        """Rows the step graph may take now: before the end only rows of frames certainly
        inside the utterance (the end may still come right after the frames known)."""
        if self.frames is None:
            return self._produced
        if self.ended:
            return self._produced
        return min(self._produced, max(0, self.known - 2 * self.cin_pad) * self.hop)

    @property
    def available(self) -> int:
        """Samples that can be stepped now."""
        return self._limit() - self.consumed

    # -- input ------------------------------------------------------------------------------
    def quantize(self, x) -> np.ndarray:
        q = np.round(np.asarray(x, np.float64) / self.scale) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def feed(self, frames):
        """Append frames (checked float64 (B, k, C)) and run every frame call they complete."""
        if self.ended:
            raise ConfigError("the conditioning stream has ended; reset() starts a new one")
        q = self.quantize(frames)
        self.known += q.shape[1]
        if self.frames is None:
            self._append(q)
            return
        fp = self.frames[0]
        buf = np.concatenate([self._tail, q], axis=1)     # padded frames calls .. known-1
        K = fp.frames_per_call
        n = buf.shape[1] - K + 1
        if n > 0:
            win = np.stack([buf[:, g:g + K].reshape(self.batch, K * self.C) for g in range(n)],
                           axis=1)
            self._calls(np.ascontiguousarray(win))
            buf = buf[:, n:]
        self._tail = np.ascontiguousarray(buf)

    def end(self):
        """End of the utterance: the look-ahead calls on zero-point frames, rows past the last
        frame's samples dropped."""
        if self.ended:
            return
        if self.frames is not None:
            fp = self.frames[0]
            n_stage = self.known - (fp.frames_per_call - 1)
            extra = max(0, n_stage + fp.ahead - self.calls)
            if extra:
                win = np.full((self.batch, extra, fp.frames_per_call * self.C),
                              fp.feature_zero_point, np.int8)
                self._calls(win)
            total = max(0, self.known - 2 * self.cin_pad) * self.hop
            if self._produced > total:
                cut = self._produced - total
                self._rows = self._rows[:, :self._rows.shape[1] - cut]
                self._produced = total
        self.ended = True

    def _calls(self, win):
        fp, consts = self.frames
        n = win.shape[1]
        B, C, hop = self.batch, self.C, self.hop
        # a frame call is a step of the frame program whose extra input is the window: the
        # conditioned step kernel runs it (one compiled kernel less for a cold numba cache)
        blocks = np.empty((1, n, C * hop), np.int8)
        out = np.empty((B, n, hop, C), np.int8)
        codes = np.zeros((1, n), np.int32)
        offs = np.array([fp.block_off], np.int64)
        sizes = np.array([C * hop], np.int64)
        for b in range(B):
            _ck.process_cond(consts, self._states[b], 1, np.int64(self.calls), codes,
                             np.ascontiguousarray(win[b][None]), np.int64(fp.frames_off),
                             blocks, offs, sizes)
            out[b] = blocks[0].reshape(n, C, hop).transpose(0, 2, 1)   # channel-major -> rows
        # calls before block_delay belong to frames before 0: they only fill the delay lines
        skip = max(0, fp.block_delay - self.calls)
        self.calls += n
        if skip < n:
            self._append(out[:, skip:].reshape(self.batch, -1, self.C))

    def _append(self, rows):
        self._rows = np.concatenate([self._rows, rows], axis=1)
        self._produced += rows.shape[1]

    # -- output -----------------------------------------------------------------------------
    def take(self, n: int) -> np.ndarray:
        """The next ``n`` rows, int8 (B, n, C) C-contiguous (``n <= available``)."""
        rows = np.ascontiguousarray(self._rows[:, :n])
        self._rows = self._rows[:, n:]
        self.consumed += n
        return rows
