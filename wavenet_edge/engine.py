"""The int8 ring-buffer engine: runs a wavenet-edge ``.tflite`` step graph, bit-exact, fast.

:class:`Engine` loads the file (pure numpy + numba, see :mod:`wavenet_edge.tflite_file`), checks
the delay-line contract and that every operator is one the engine supports, lowers it to int8
records (:mod:`wavenet_edge.lowered`, the program the C export writes too) and schedules those
for the CPU (:mod:`wavenet_edge.program`).  A jitted kernel then executes
all operators for ``batch`` independent streams per step, with the delay lines kept as int8 ring
buffers; loops over samples run inside numba too.  The int8 arithmetic comes from
:mod:`wavenet_edge.int8` and ``profile`` chooses whose: ``"tflm"`` (TensorFlow Lite Micro
reference kernels) or ``"litert"`` (LiteRT builtin kernels), also ``"litert-ref"``.

State: the step counter and the delay lines.  ``step``/``process``/``generate`` continue from the
current state (streaming: any split of a sequence into blocks gives the same outputs as one call);
``reset()`` returns to silence (every delay-line read at its zero point, as the contract says).
The state belongs to one Engine object; :meth:`Engine.stream` gives another state over the same
loaded program (one per thread; concurrent use of one Engine raises ``ConcurrentUseError``).

Shapes: with ``batch == 1`` codes are (n,) and outputs (n, 256); with ``batch = B`` codes are
(B, n) and outputs (B, n, 256).  Outputs are int8: probabilities with scale 1/256 and zero point
−128 (``(q + 128)/256``), or logits (``logits_scale·(q − logits_zero_point)``).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import numpy as np

from . import _cond_kernels as _ck
from . import _engine_kernels as _k
from . import sampling as _s
from ._cond_stream import CondStream, check_frames
from ._stream_threads import StreamThreads
from .config import WaveNetConfig
from .contract import parse_contract
from .errors import ConcurrentUseError, ConfigError, ModelFileError
from .lowered import OpKind, Program, lower
from .lowered.frames import FrameProgram, lower_frames
from .program import Consts, new_state, schedule
from .tflite_file import load_model

__all__ = ["Engine"]


class _Shared:
    """What every stream of one loaded model shares, never written after construction: the
    lowered program and the engine's schedule of it (the full one, and without / only its
    final SOFTMAX for logits-only runs)."""

    def __init__(self, model, contract, profile):
        self.program: Program = lower(model, profile=profile, contract=contract)
        c = schedule(self.program)
        self.consts: Consts = c
        p = self.program
        # runs that do not ask for the probabilities skip the final SOFTMAX (≈ 10 % of a small
        # model's step): allowed when it is the last row and no delay line stores its output;
        # its arena range is then stale until recomputed (``_fresh_tail``) from the logits
        self.head = self.tail = None
        self.tail_range = (0, 0)
        last = c.ops[-1] if c.ops.shape[0] > 1 else None
        if last is not None and last["kind"] == OpKind.SOFTMAX:
            lo, hi = int(last["out"]), int(last["out"] + last["n"])
            if not any(int(w["src"]) < hi and lo < int(w["src"] + w["width"]) for w in p.writes):
                self.head = c._replace(ops=c.ops[:-1])
                self.tail = c._replace(ops=c.ops[-1:], reads=c.reads[:0], writes=c.writes[:0])
                self.tail_range = (lo, hi)
        self.cond_meta = self.cond_off = self.frames = None
        cfg = contract["config_obj"]
        if cfg.has_cond:
            self._conditioning(model, contract, cfg, profile)

    def _conditioning(self, model, contract, cfg, profile):
        """The ``cond`` input's arena offset and, with an upsampler, the lowered frame graph
        stored in the step graph's metadata (its schedule shared by every stream)."""
        ci = contract.get("cond_input")
        if not isinstance(ci, dict) or "name" not in ci:
            raise ModelFileError("locally conditioned model without a cond_input section in "
                                 "its contract (convert it again with this version)",
                                 path=model.name)
        self.cond_meta = ci
        off, width = self.program.tensor_offsets[ci["name"]]
        if width != cfg.cin_channels:
            raise ModelFileError(f"cond input {ci['name']!r} has {width} elements, the config "
                                 f"{cfg.cin_channels} channels", path=model.name)
        self.cond_off = off
        if cfg.upsampler == "none":
            return
        key = ci.get("frame_graph") or "wavenet_edge_frames"
        raw = model.metadata.get(key)
        if raw is None:
            raise ModelFileError(f"no frame graph (metadata {key!r}) for the {cfg.upsampler} "
                                 f"upsampler", path=model.name)
        fp: FrameProgram = lower_frames(bytes(raw), profile=profile, cin_pad=cfg.cin_pad,
                                        upsampler=cfg.upsampler, name=f"{model.name}:{key}")
        if (fp.channels, fp.hop) != (cfg.cin_channels, cfg.hop):
            raise ModelFileError(f"frame graph has {fp.channels} channels x hop {fp.hop}, the "
                                 f"config {cfg.cin_channels} x {cfg.hop}", path=model.name)
        self.frames = (fp, schedule(fp.program))


class Engine:
    """Bit-exact int8 WaveNet runtime for one ``.tflite`` step graph.

    Build with :meth:`from_file` / :meth:`from_bytes`.  Attributes: ``config``
    (:class:`WaveNetConfig`), ``metadata`` (the contract dict), ``sr`` (Hz; ``sample_rate`` is
    its deprecated spelling), ``batch``,
    ``profile``, ``program`` (the lowered :class:`~wavenet_edge.lowered.Program`), ``t``
    (samples since reset).

    Threads: an Engine is one set of ``batch`` streams with their state; using one Engine from
    two threads at once raises :class:`~wavenet_edge.errors.ConcurrentUseError`.  To run
    streams in several threads, load the model once and give each thread its own
    :meth:`stream` (same immutable program, own state; no recompilation).

    ``threads=T`` (batch ≥ 2): the engine itself cuts its ``batch`` streams into ``T`` contiguous
    ranges and steps them on ``T`` cores at once (the kernels release the GIL); results are
    identical to ``threads=1``.  ``threads`` is capped at ``batch``.
    """

    def __init__(self, model, *, profile: str = "tflm", batch: int = 1, threads: int = 1):
        """``model``: a ``.tflite`` path, its bytes, a parsed TFLiteModel or another Engine
        (:func:`wavenet_edge.tflite_file.load_model`, the front doors' one normalizer)."""
        _check_batch(batch)
        _check_threads(threads)
        model = load_model(model)
        contract = parse_contract(model)
        self.model = model
        self.path = model.name
        self.metadata = {k: v for k, v in contract.items() if k != "config_obj"}
        self.config: WaveNetConfig = contract["config_obj"]
        self.sr = int(self.metadata.get("sample_rate", self.config.sample_rate))
        mu = self.metadata.get("mulaw") or {}
        self.mulaw_convention = mu.get("convention", self.config.mulaw)
        self.mu = int(mu.get("mu", 255))
        self._shared = _Shared(model, contract, profile)
        self.program: Program = self._shared.program
        self.profile = self.program.profile
        self._new_state(batch, threads)

    def _new_state(self, batch, threads=1):
        self.batch = int(batch)
        # threads > 1: contiguous stream ranges, each its own state (a set of streams is laid
        # out stream-minor, so a range is not a slice of a larger set's arena); the speakers
        # are views of one array
        self._threads = StreamThreads(self.batch, threads)
        self.threads = len(self._threads.parts)
        self._speakers = np.zeros(self.batch, np.int32)
        # per thread its states: the range as one set, or, below MIN_SET_STREAMS streams (where
        # the batched kernels' vector lanes would stay mostly empty), one state per stream
        self._sets = []
        for b0, b1 in self._threads.parts:
            cuts = ([(b0, b1)] if b1 - b0 >= self.MIN_SET_STREAMS
                    else [(b, b + 1) for b in range(b0, b1)])
            self._sets.append([(new_state(self._shared.consts, c1 - c0)._replace(
                speakers=self._speakers[c0:c1]), c0, c1) for c0, c1 in cuts])
        self._parts = [g for sets in self._sets for g in sets]
        self._state = self._parts[0][0] if len(self._parts) == 1 else None
        self._A = int(self.program.arena_size)
        self._tail_stale = False
        self._guard = threading.RLock()
        self.t = 0
        self._cond = None
        self._free = None      # a conditioned stream's generation in progress (generate)
        sh = self._shared
        if sh.cond_meta is not None:
            cfg, ci = self.config, sh.cond_meta
            feats = ci.get("features") or {}
            fp = sh.frames[0] if sh.frames is not None else None
            scale = fp.feature_scale if fp is not None else feats.get("scale")
            zp = fp.feature_zero_point if fp is not None else feats.get("zero_point")
            if scale is None or zp is None:
                raise ModelFileError("cond_input.features lacks scale / zero_point",
                                     path=self.path)
            self._cond = CondStream(sh.frames, batch=self.batch, channels=cfg.cin_channels,
                                    hop=cfg.hop if cfg.upsampler != "none" else 1,
                                    cin_pad=cfg.cin_pad if cfg.upsampler != "none" else 0,
                                    scale=scale, zero_point=zp)

    @property
    def sample_rate(self) -> int:
        """Deprecated spelling of :attr:`sr`."""
        import warnings
        warnings.warn("Engine.sample_rate is deprecated; use Engine.sr", DeprecationWarning,
                      stacklevel=2)
        return self.sr

    def stream(self, *, batch: int | None = None, threads: int | None = None) -> "Engine":
        """A new, silent set of streams of the same loaded model (``batch`` and ``threads``
        default to this engine's): it shares the immutable program with this engine (no
        recompilation, no copy of the weights) and has its own state, so each thread can own
        one."""
        _check_batch(self.batch if batch is None else batch)
        _check_threads(self.threads if threads is None else threads)
        new = object.__new__(Engine)
        for k in ("model", "path", "metadata", "config", "sr", "mulaw_convention", "mu",
                  "profile", "_shared", "program"):
            setattr(new, k, getattr(self, k))
        new._new_state(self.batch if batch is None else batch,
                       self.threads if threads is None else threads)
        return new

    @contextmanager
    def _exclusive(self):
        """This engine's state for the calling thread only: a second thread gets an error
        instead of interleaving its steps with the first's (which would corrupt both)."""
        if not self._guard.acquire(blocking=False):
            raise ConcurrentUseError(
                f"{self.path}: this Engine is being used by another thread; give each thread "
                f"its own engine.stream()")
        try:
            yield
        finally:
            self._guard.release()

    #: fewer steps than this in one call run in the calling thread alone (handing work to
    #: the pool costs tens of microseconds, about one step of 16 small streams)
    THREAD_MIN_STEPS = 8

    #: a set of fewer streams than this runs as single streams (small measured B=2: 0.43x
    #: the B=1 aggregate as one stream-minor set, B=4 0.62x, B=8 1.42x)
    MIN_SET_STREAMS = 6

    def _split(self, steps, run):
        """``run(state, b0, b1)`` over the sets of streams, the threads' in parallel when
        ``threads > 1`` and the call is long enough; every stream computes the same either way."""
        if self.threads == 1 or steps < self.THREAD_MIN_STEPS:
            for st, b0, b1 in self._parts:
                run(st, b0, b1)
            return
        sets = self._sets

        def work(i, b0, b1):
            for st, c0, c1 in sets[i]:
                run(st, c0, c1)
        self._threads.run(work)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path, *, profile: str = "tflm", batch: int = 1,
                  threads: int = 1) -> "Engine":
        """Load ``path`` (a wavenet-edge ``.tflite``).  Raises :class:`ModelFileError`."""
        return cls(os.fspath(path), profile=profile, batch=batch, threads=threads)

    @classmethod
    def from_bytes(cls, data: bytes, *, profile: str = "tflm", batch: int = 1, name="<bytes>",
                   threads: int = 1):
        return cls(load_model(bytes(data), name=name), profile=profile, batch=batch,
                   threads=threads)

    def warmup(self) -> float:
        """Compile (or load from numba's on-disk cache) the step kernels now, leaving the state
        untouched; returns the seconds it took.  The first call of a fresh install compiles for
        ~10-20 s; later processes load the cache in well under a second."""
        import time
        t0 = time.perf_counter()
        with self._exclusive():
            self._fresh_tail()
            saved = ([(st.arena.copy(), st.ring.copy()) for st, _, _ in self._parts], self.t)
            c = np.full((self.batch, 1), self.silence_code(), np.int32)
            mode, table = _s.sampling_mode(1.0, self.program.logits_scale)
            args = (np.int64(self.program.probs_off), np.int64(self.program.logits_off),
                    np.int64(mode), table, _s.pcg32_seed(0, self.batch))
            sh = self._shared
            if self._cond is None:
                self._run(c, np.empty((self.batch, 1, 256), np.int8), self.program.probs_off)
                self._split(1, lambda s, b0, b1: _k.generate(
                    sh.consts, s, b1 - b0, np.int64(self.t), c[b0:b1, 0].copy(),
                    np.empty((b1 - b0, 1), np.int32), *args[:4], args[4][b0:b1]))
            else:
                rows = np.zeros((self.batch, 1, self.config.cin_channels), np.int8)
                self._run(c, np.empty((self.batch, 1, 256), np.int8), self.program.probs_off,
                          cond=rows)
                self._split(1, lambda s, b0, b1: _ck.generate_cond(
                    sh.consts, s, b1 - b0, np.int64(self.t), c[b0:b1, 0].copy(), rows[b0:b1],
                    np.int64(sh.cond_off), np.empty((b1 - b0, 1), np.int32), *args[:4],
                    args[4][b0:b1]))
                # (the frame graph runs on process_cond too: nothing more to compile)
            for (st, _, _), (a, r) in zip(self._parts, saved[0]):
                st.arena[:], st.ring[:] = a, r
            self.t = saved[1]
            self._fresh_tail()
        return time.perf_counter() - t0

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to silence: step counter 0, every delay line empty (reads at their zero point)."""
        with self._exclusive():
            for st, _, _ in self._parts:
                st.arena[:] = 0
                st.ring[:] = 0
            self._tail_stale = False
            self.t = 0
            self._free = None
            if self._cond is not None:
                self._cond.reset()

    # -- local conditioning (vocoders) --------------------------------------------------------
    @property
    def has_cond(self) -> bool:
        """The model takes local-conditioning features (``cond=`` / :meth:`feed_frames`)."""
        return self._cond is not None

    def _need_cond(self):
        if self._cond is None:
            raise ConfigError("this model has no local conditioning (no cond input)")
        return self._cond

    @property
    def hop(self) -> int:
        """Samples per feature frame (1 without an upsampler; None without conditioning)."""
        return None if self._cond is None else self._cond.hop

    @property
    def lookahead_frames(self) -> int:
        """Feature frames beyond frame f (padded frame f + cin_pad) that must have been fed
        before the samples of frame f can be computed (conv-in's cin_pad plus the upsampler
        FIR's frames ahead); 0 without an upsampler."""
        return self._need_cond().lookahead_frames

    @property
    def lookahead_samples(self) -> int:
        """:attr:`lookahead_frames` in samples (times :attr:`hop`), counted from the first
        sample of the current frame."""
        c = self._need_cond()
        return c.lookahead_frames * c.hop

    @property
    def cond_available(self) -> int:
        """Samples the frames fed so far allow :meth:`process`/:meth:`generate` to run now."""
        return self._need_cond().available

    def feed_frames(self, frames) -> int:
        """Streaming: append feature frames ``(k, cin)`` (``(B, k, cin)`` with a batch), float,
        the rows of the padded features one call would take (the first ``cin_pad`` frames are
        the leading padding).  The frame graph runs as far as they allow; returns
        :attr:`cond_available`.  Any split of the frames gives the same samples as one call."""
        c = self._need_cond()
        f = check_frames(frames, self.batch, self.config.cin_channels)
        with self._exclusive():
            c.feed(f)
        return c.available

    def end_frames(self) -> int:
        """Streaming: no more frames for this utterance (the look-ahead sees zero frames past
        the end, as in one call); returns :attr:`cond_available`."""
        c = self._need_cond()
        with self._exclusive():
            c.end()
        return c.available

    def _cond_rows(self, n, cond, what):
        """int8 (B, n, cin) cond rows for the next n steps, or None (unconditioned model).
        ``cond``: the whole utterance's frames (one call), or None (take them from the stream
        fed by :meth:`feed_frames`)."""
        c = self._cond
        if c is None:
            if cond is not None:
                raise ConfigError("this model has no local conditioning; cond must be None")
            return None
        if cond is not None:
            if c.started and not (c.ended and c.available == 0):
                raise ConfigError(f"{what}(cond=...) while a frame stream is in progress "
                                  f"({c.available} samples pending); finish it or reset()")
            f = check_frames(cond, self.batch, self.config.cin_channels)
            cfg = self.config
            if cfg.upsampler != "none" and n % cfg.hop:
                raise ConfigError(f"{n} samples is not a multiple of hop {cfg.hop} (cond "
                                  f"frames cover whole hops)")
            want = cfg.frames_for(n)
            if f.shape[1] != want:
                how = (f"{n}/{cfg.hop} + 2·{cfg.cin_pad}" if cfg.upsampler != "none"
                       else "one per sample")
                raise ConfigError(f"cond has {f.shape[1]} frames but {n} samples need {want} "
                                  f"({how})")
            with self._exclusive():
                c.reset()
                c.feed(f)
                c.end()
        elif n > c.available:
            more = ("end_frames() or more frames" if not c.ended else "a new utterance")
            raise ConfigError(f"{what}: {n} samples asked but the conditioning frames fed allow "
                              f"{c.available} (feed_frames(...), then {more})")
        with self._exclusive():
            return c.take(n)

    @property
    def speaker(self):
        """Speaker id(s) of a globally conditioned model: int (batch 1) or int array (B,)."""
        if not self.config.has_gc:
            return None
        return int(self._speakers[0]) if self.batch == 1 else self._speakers.copy()

    @speaker.setter
    def speaker(self, value):
        if not self.config.has_gc:
            if value is None:
                return
            raise ConfigError("this model has no global conditioning; speaker must be None")
        v = np.broadcast_to(np.asarray(0 if value is None else value), (self.batch,))
        if not np.issubdtype(v.dtype, np.integer):
            raise ConfigError(f"speaker must be an integer, got {value!r}")
        if v.min() < 0 or v.max() >= self.config.gc_cardinality:
            raise ConfigError(f"speaker must lie in [0, {self.config.gc_cardinality - 1}], got {value!r}")
        with self._exclusive():
            self._speakers[:] = v

    # -- running ----------------------------------------------------------------------------------
    def _codes2d(self, codes, what="codes"):
        a = np.asarray(codes)
        if a.dtype.kind not in "iu":
            if a.dtype.kind == "f" and a.size and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            else:
                raise ConfigError(f"{what} must be integer class indices, got dtype {a.dtype}")
        if self.batch == 1 and a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[0] != self.batch:
            want = "(n,)" if self.batch == 1 else f"({self.batch}, n)"
            raise ConfigError(f"{what} must have shape {want}, got {np.shape(codes)}")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ConfigError(f"{what} must be class indices in [0, 255]")
        return np.ascontiguousarray(a, dtype=np.int32)

    def step(self, codes):
        """Advance one sample.  ``codes``: int (batch 1) or (B,) class indices of x[t].

        Returns int8 probabilities for x[t+1]: (256,) for batch 1 given a scalar, else (B, 256).
        """
        scalar = np.ndim(codes) == 0
        c = self._codes2d(np.reshape(codes, (self.batch, 1)) if not scalar or self.batch > 1
                          else np.array([[codes]]))
        out = np.empty((self.batch, 1, 256), np.int8)
        self._run(c, out, self.program.probs_off, cond=self._cond_rows(1, None, "step"))
        return out[0, 0] if (scalar and self.batch == 1) else out[:, 0]

    def process(self, codes, *, logits: bool = False, out=None, cond=None):
        """Teacher-forced run over ``codes`` ((n,) or (B, n)); returns int8 (n, 256) or (B, n, 256).

        Row t is the model's output after consuming codes[t] (it predicts codes[t+1]).
        ``logits=True`` returns the logits instead of the probabilities.  ``out``: optional
        preallocated int8 array of the result's shape (C-contiguous).

        Locally conditioned models: ``cond`` float ``(n/hop + 2·cin_pad, cin)`` (``(B, …)``
        with a batch; ``(n, cin)`` without an upsampler), the padded features of exactly these
        n samples, quantized by the contract; or None to take the rows of the frames fed with
        :meth:`feed_frames` (at most :attr:`cond_available` samples).
        """
        c = self._codes2d(codes)
        n = c.shape[1]
        shape = (self.batch, n, 256)
        if out is None:
            buf = np.empty(shape, np.int8)
        else:
            want = (n, 256) if self.batch == 1 else shape
            if (not isinstance(out, np.ndarray) or out.shape != want or out.dtype != np.int8
                    or not out.flags.c_contiguous):
                raise ConfigError(f"out must be a C-contiguous int8 array of shape {want}")
            buf = out.reshape(shape)
        rows = self._cond_rows(n, cond, "process")
        self._run(c, buf, self.program.logits_off if logits else self.program.probs_off,
                  cond=rows)
        return buf[0] if self.batch == 1 else buf

    def _run(self, codes, out, off, size=256, cond=None):
        """Teacher-forced steps; ``cond`` int8 (B, n, cin) rows of a conditioned model."""
        self._free = None
        if codes.shape[1] == 0:
            return
        offs = np.atleast_1d(np.asarray(off, np.int64))
        sizes = np.atleast_1d(np.asarray(size, np.int64))
        sh = self._shared
        consts = sh.consts
        lo, hi = sh.tail_range
        with self._exclusive():
            if sh.head is not None and all(
                    int(o) >= hi or lo >= int(o + z) for o, z in zip(offs, sizes)):
                consts = sh.head
                self._tail_stale = True
            else:
                self._tail_stale = False
            t = np.int64(self.t)
            if cond is None:
                self._split(codes.shape[1], lambda s, b0, b1: _k.process(
                    consts, s, b1 - b0, t, codes[b0:b1], out[b0:b1], offs, sizes))
            else:
                co = np.int64(sh.cond_off)
                self._split(codes.shape[1], lambda s, b0, b1: _ck.process_cond(
                    consts, s, b1 - b0, t, codes[b0:b1], cond[b0:b1], co, out[b0:b1], offs,
                    sizes))
            self.t += codes.shape[1]

    def trace(self, codes, names, *, cond=None) -> dict:
        """Teacher-forced run recording activations: ``{name: int8 (n, size)}`` ((B, n, size)
        with a batch) of each tensor in ``names`` after every step (e.g. the delay-line writes,
        to compare with an interpreter).  Advances the state like :meth:`process` (``cond``
        as there)."""
        c = self._codes2d(codes)
        offs, sizes = [], []
        for name in names:
            try:
                o, z = self.program.tensor_offsets[name]
            except KeyError:
                raise ConfigError(f"no activation tensor named {name!r}") from None
            offs.append(o)
            sizes.append(z)
        buf = np.empty((self.batch, c.shape[1], int(sum(sizes))), np.int8)
        self._run(c, buf, offs, sizes, cond=self._cond_rows(c.shape[1], cond, "trace"))
        res, k = {}, 0
        for name, z in zip(names, sizes):
            v = buf[:, :, k:k + z]
            res[name] = v[0] if self.batch == 1 else v
            k += z
        return res

    def tensor(self, name: str) -> np.ndarray:
        """Current int8 value of activation ``name`` after the last step: (B, size) copy."""
        try:
            off, size = self.program.tensor_offsets[name]
        except KeyError:
            raise ConfigError(f"no activation tensor named {name!r}") from None
        with self._exclusive():
            self._fresh_tail()
            return np.concatenate([_stream_rows(st.arena, b1 - b0, self._A)[:, off:off + size]
                                   for st, b0, b1 in self._parts])

    def _fresh_tail(self) -> None:
        """Recompute the SOFTMAX a logits-only run skipped, from the logits in the arena: the
        same ``process`` kernel with only that row and no delay lines (the step counter and the
        ring are untouched), so the arena is again exactly what the full step leaves."""
        if not self._tail_stale:
            return
        self._tail_stale = False
        for st, b0, b1 in self._parts:
            _k.process(self._shared.tail, st, b1 - b0, np.int64(self.t),
                       np.zeros((b1 - b0, 1), np.int32), np.empty((b1 - b0, 1, 0), np.int8),
                       np.zeros(0, np.int64), np.zeros(0, np.int64))

    # -- generation -------------------------------------------------------------------------------
    def silence_code(self) -> int:
        """The class index of 0.0 in the model's mu-law convention."""
        from .mulaw import encode_classes
        return int(encode_classes(np.zeros(1), mu=self.mu, convention=self.mulaw_convention)[0])

    def generate(self, n: int | None, *, seed: int = 0, temperature: float = 1.0, prime=None,
                 speaker=None, progress=None, cond=None):
        """Free-running generation of ``n`` class indices: (n,) int64 or (B, n).

        ``prime``: class indices fed teacher-forced first ((m,) or (B, m)); the first generated
        code is sampled from the output after the last prime code.  Without a prime the engine
        starts (from its current state) by feeding the silence code.  ``temperature``: 0 is greedy;
        any other value samples the int8 logits with the integer weight table of
        :mod:`wavenet_edge.sampling` (at 1: the SOFTMAX's own exponentials; the codes for a
        seed changed in the release that introduced this, see there).  ``seed``: PCG32 seed (stream b
        of a batch uses sequence b).  ``progress``: optional callable(k) called with the number
        of samples done after each chunk.  Decode with :meth:`decode`.

        Locally conditioned models: the call steps ``len(prime) − 1 + n`` times (n without a
        prime), each step with one row of conditioning: ``cond`` float, the padded features of
        exactly those steps (see :meth:`process`), or None to take them from the frames fed
        with :meth:`feed_frames`; ``n=None`` then generates as far as those frames allow.
        Streaming (``cond=None``), consecutive generate calls are one generation: the first
        seeds the sampler, later ones (same ``seed`` and ``temperature``, no prime) continue
        its PCG32 sequence from the last generated code, so any split of the frames and of
        ``n`` yields the codes of one call.
        """
        if n is None and self._cond is not None and cond is None:
            pm = 0 if prime is None else max(np.shape(prime)[-1] - 1, 0)
            n = max(self._cond.available - pm, 0)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"n must be a non-negative integer, got {n!r}")
        if speaker is not None:
            self.speaker = speaker
        mode, table = _s.sampling_mode(temperature, self.program.logits_scale)
        rng = _s.pcg32_seed(seed, self.batch)
        if prime is not None:
            pc = self._codes2d(prime, "prime")
            if pc.shape[1] == 0:
                prime = None
        streaming = self._cond is not None and cond is None
        free = self._free if streaming and prime is None else None
        if free is not None:
            # a conditioned stream's generate calls are one generation: continue its sampler
            # and feed its last code, so that any split equals one call
            if (free[2], free[3]) != (seed, temperature):
                raise ConfigError(f"generate continues this stream's generation (seed "
                                  f"{free[2]}, temperature {free[3]}); got seed {seed}, "
                                  f"temperature {temperature} (reset() to start anew)")
            rng, pc = free[0], free[1][:, None].copy()
        elif prime is None:
            pc = np.full((self.batch, 1), self.silence_code(), np.int32)
        rows = self._cond_rows(pc.shape[1] - 1 + int(n), cond, "generate")
        # feed all but the last prime code teacher-forced; the last one starts the generation
        if pc.shape[1] > 1:
            scratch = np.empty((self.batch, pc.shape[1] - 1, 256), np.int8)
            # the sampler reads only the logits: so may the prime (no SOFTMAX row)
            self._run(np.ascontiguousarray(pc[:, :-1]), scratch, self.program.logits_off,
                      cond=None if rows is None else rows[:, :pc.shape[1] - 1])
            if rows is not None:
                rows = np.ascontiguousarray(rows[:, pc.shape[1] - 1:])
        out = np.empty((self.batch, int(n)), np.int32)
        cur = np.ascontiguousarray(pc[:, -1])
        chunk = 4096 if progress is not None else max(int(n), 1)
        done = 0
        while done < n:
            m = min(chunk, n - done)
            view = out[:, done:done + m]
            buf = np.empty((self.batch, m), np.int32)
            with self._exclusive():
                # the sampler reads only the logits: the schedule without the final SOFTMAX
                # when there is one (its output recomputed on demand, _fresh_tail)
                sh = self._shared
                t, c = np.int64(self.t), (sh.consts if sh.head is None else sh.head)
                po, lo = np.int64(self.program.probs_off), np.int64(self.program.logits_off)
                if rows is None:
                    self._split(m, lambda s, b0, b1: _k.generate(
                        c, s, b1 - b0, t, cur[b0:b1], buf[b0:b1], po, lo, np.int64(mode),
                        table, rng[b0:b1]))
                else:
                    cr = np.ascontiguousarray(rows[:, done:done + m])
                    co = np.int64(self._shared.cond_off)
                    self._split(m, lambda s, b0, b1: _ck.generate_cond(
                        c, s, b1 - b0, t, cur[b0:b1], cr[b0:b1], co, buf[b0:b1], po, lo,
                        np.int64(mode), table, rng[b0:b1]))
                self._tail_stale = sh.head is not None
                self.t += m
            view[:] = buf
            cur = np.ascontiguousarray(buf[:, -1])
            done += m
            if progress is not None:
                progress(m)
        self._free = (rng, cur, seed, temperature) if streaming and (n or free) else None
        res = out.astype(np.int64)
        return res[0] if self.batch == 1 else res

    def decode(self, codes) -> np.ndarray:
        """Class indices → float32 audio in [-1, 1] with the model's mu-law convention."""
        from .mulaw import decode_classes
        return decode_classes(codes, mu=self.mu, convention=self.mulaw_convention).astype(np.float32)

    def encode(self, y) -> np.ndarray:
        """float audio in [-1, 1] → class indices (int64) with the model's mu-law convention."""
        from .mulaw import encode_classes
        return encode_classes(y, mu=self.mu, convention=self.mulaw_convention)

    # -- scoring ------------------------------------------------------------------------------------
    def score(self, y, *, speaker=None, cond=None, reset: bool = True) -> float:
        """Teacher-forced cross-entropy of audio ``y`` in bits/sample.

        ``y``: float32 (n,) in [-1, 1] at :attr:`sr`, mu-law encoded with the model's
        convention.  The int8 logits after codes[t] are dequantized (``scale·(q − zp)``) and
        scored against codes[t+1] with a float64 log-softmax; the mean over the n − 1
        predictions is returned in bits.  ``reset`` (default) scores from silence.  Batch 1 only.
        A vocoder takes ``cond``: the padded features of the n samples (``n/hop + 2·cin_pad``
        frames, as :meth:`process`; e.g. ``converters.vocoder_inputs``).
        """
        if self.batch != 1:
            raise ConfigError("score needs an engine with batch=1")
        codes = self.encode(np.asarray(y, dtype=np.float64).ravel())
        if codes.shape[0] < 2:
            raise ConfigError("need at least two samples to score")
        if speaker is not None:
            self.speaker = speaker
        if reset:
            self.reset()
        if self._cond is not None:
            if cond is None:
                raise ConfigError("this model is locally conditioned: score(y, cond=frames)")
            # the frames cover all n samples; the n − 1 predictions take the first n − 1 rows
            c = self._cond
            if c.started and not (c.ended and c.available == 0):
                raise ConfigError("score(cond=...) while a frame stream is in progress; "
                                  "reset() first")
            f = check_frames(cond, 1, self.config.cin_channels)
            want = self.config.frames_for(codes.shape[0])
            if f.shape[1] != want or (self.config.upsampler != "none"
                                      and codes.shape[0] % self.config.hop):
                raise ConfigError(f"cond has {f.shape[1]} frames but {codes.shape[0]} samples "
                                  f"need {want} (and a whole number of hops)")
            with self._exclusive():
                c.reset()
                c.feed(f)
                c.end()
        elif cond is not None:
            raise ConfigError("this model has no local conditioning; cond must be None")
        q = self.process(codes[:-1], logits=True)
        lg = (q.astype(np.float64) - self.program.logits_zero_point) * self.program.logits_scale
        m = lg.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
        nll = lse - lg[np.arange(lg.shape[0]), codes[1:]]
        return float(nll.mean() / np.log(2.0))

    def __repr__(self):
        c = self.config
        return (f"Engine({self.path!r}, profile={self.profile!r}, batch={self.batch}, "
                f"threads={self.threads}, "
                f"layers={c.n_layers}, R={c.residual_channels}, sr={self.sr})")


def _stream_rows(arena, nb, A):
    """(nb, A) view of a state's arena: row b = stream b's bytes (stream-minor for nb ≥ 2)."""
    if nb == 1:
        return arena[:A].reshape(1, A)
    return arena[:nb * A].reshape(A, nb).T


def _check_batch(batch):
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"batch must be a positive integer, got {batch!r}")


def _check_threads(threads):
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
