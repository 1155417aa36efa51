"""A host for a wavenet-edge step graph written from its delay-line contract alone.

:class:`ContractHost` reads ``Model.metadata["wavenet_edge"]`` (docs/step-graph.md) and nothing
else about the model: it sets ``sample`` (and ``speaker``), fills every delay-line ``read`` with
what its ``write`` produced ``delay`` steps earlier (the read tensor's zero point, i.e. real 0.0,
before that), invokes a real interpreter (:mod:`converters.interpreters`) and pushes the writes.
The contract is decoded and checked by :func:`wavenet_edge.contract.read_contract`, as in every
other reader.

A vocoder (contract ``cond_input``) takes model-ready float features
(:meth:`ContractHost.set_features`, or ``run(codes, cond=…)``): the host quantizes them with the
contract's feature quantization, runs the frame graph stored in the file (a second interpreter of
the same runtime) once per frame by the contract's host semantics, and sets ``cond`` to each
sample's row before the step.  It is the reference a firmware integrator would follow, and the oracle the Numba engine is
checked against.
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.contract import DelayLine, read_contract
from wavenet_edge.errors import ConfigError
from wavenet_edge.tflite_file import load_model

from .features import check_feature_array
from .interpreters import make_runner

__all__ = ["ContractHost"]


class ContractHost:
    """Run a step graph one sample at a time through a real interpreter, from the contract alone.

    ``model``: a ``.tflite`` path, its bytes or a parsed model (or an Engine); ``runtime``: see
    :data:`converters.interpreters.RUNTIMES`.  State: one ring buffer per written tensor, as long
    as the longest delay reading it, so a write feeding delays d and 2d is stored once.
    """

    def __init__(self, model, runtime: str = "tflm", *, arena_size=None, name=None):
        model = load_model(model, name=name)
        name = model.name
        self.model = model
        self.contract = read_contract(model, name=name)
        self.meta = self.contract.metadata
        self.delay_lines: tuple[DelayLine, ...] = self.contract.delay_lines
        self.runner = make_runner(model, runtime, arena_size=arena_size)
        self.runtime = self.runner.runtime
        self.sample_name = self.contract.inputs.sample
        self.speaker_name = self.contract.inputs.speaker
        self.speaker_cardinality = self.contract.inputs.speaker_cardinality or None
        self.output_names = self.runner.output_names
        self.cond = self.contract.cond
        self.frame_runner = None
        self._cond_rows = None      # int8 (n, channels): the cond row of every sample t < n
        if self.cond is not None:
            self._cond_buf = np.zeros(self.runner.input_spec(self.cond.name)[0], np.int8)
            self._set_cond = self.runner.bind_input(self.cond.name)
            if self.cond.frames is not None:
                self.frame_runner = make_runner(self.cond.frames.model, self.runtime)

        # Ring buffers, one per distinct write: slot t % length holds write of step t.
        self._rings: dict[str, np.ndarray] = {}
        self._init: dict[str, np.ndarray] = {}
        for line in self.delay_lines:
            t = model.tensor(line.read)
            length = max(line.delay, self._rings[line.write].shape[0]
                         if line.write in self._rings else 0)
            zp = t.zero_point[0] if t.zero_point.size else 0
            self._rings[line.write] = np.full((length,) + t.shape, zp, dtype=t.dtype)
            self._init[line.write] = self._rings[line.write][0].copy()
        # Everything the step loop touches is resolved once: bound setters/getters of the runner
        # (no per-step name lookups or dtype checks), the rings, a reused sample buffer.
        r = self.runner
        self._sample_buf = np.zeros(r.input_spec(self.sample_name)[0], np.int32)
        self._set_sample = r.bind_input(self.sample_name)
        self._set_speaker = None
        if self.speaker_name is not None:
            self._speaker_buf = np.zeros(r.input_spec(self.speaker_name)[0], np.int32)
            self._set_speaker = r.bind_input(self.speaker_name)
        self._reads = [(r.bind_input(ln.read), self._rings[ln.write], ln.delay)
                       for ln in self.delay_lines]
        self._writes = [(w, r.bind_output(w), ring) for w, ring in self._rings.items()]
        self._getters = {n: r.bind_output(n) for n in self.output_names}
        self.t = 0

    def reset(self):
        """Back to t = 0: every delay line holds its read tensor's zero point again (the
        features set by :meth:`set_features` stay)."""
        for w, ring in self._rings.items():
            ring[...] = self._init[w]
        self.runner.reset()
        self.t = 0

    def _check_code(self, code, speaker):
        try:
            c = int(code)
        except (TypeError, ValueError):
            raise ConfigError(f"sample class index {code!r} is not an integer") from None
        if not 0 <= c < 256 or c != code:
            raise ConfigError(f"sample class index {code!r} outside 0..255")
        if self.speaker_name is None:
            if speaker is not None:
                raise ConfigError("this model has no speaker input (no global conditioning)")
            return c, None
        if speaker is None:
            raise ConfigError(f"this model needs a speaker id in 0..{self.speaker_cardinality - 1}")
        try:
            s = int(speaker)
        except (TypeError, ValueError):
            raise ConfigError(f"speaker id {speaker!r} is not an integer") from None
        if not 0 <= s < self.speaker_cardinality or s != speaker:
            raise ConfigError(f"speaker id {speaker!r} outside 0..{self.speaker_cardinality - 1}")
        return c, s

    # -- local conditioning ----------------------------------------------------------------------
    def quantize_features(self, frames) -> np.ndarray:
        """Model-ready float features (frames, channels) → int8 by the contract's feature
        quantization (round half to even, saturating); one-line errors for a wrong band count,
        NaN/Inf or a non-float array."""
        ci = self._need_cond()
        m = check_feature_array(frames, ci.channels).astype(np.float64)
        q = np.round(m / ci.feature_scale) + ci.feature_zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def samples_for(self, n_frames: int) -> int:
        """Samples that ``n_frames`` model-ready feature frames condition."""
        ci = self._need_cond()
        return (int(n_frames) - 2 * ci.cin_pad) * ci.hop

    def frames_for(self, n_samples: int) -> int:
        """Feature frames that ``n_samples`` samples take (n/hop + 2·cin_pad)."""
        ci = self._need_cond()
        return int(n_samples) // ci.hop + 2 * ci.cin_pad

    def _need_cond(self):
        if self.cond is None:
            raise ConfigError("this model has no local conditioning (no cond_input)")
        return self.cond

    def set_features(self, frames) -> int:
        """Condition the stream from t = 0 on model-ready float ``frames`` (N + 2·cin_pad,
        channels) covering N·hop samples (features at sample rate: one row per sample).  The
        frame graph runs here, once per call of the contract; returns the samples covered."""
        ci = self._need_cond()
        q = self.quantize_features(frames)
        n = self.samples_for(q.shape[0])
        if n < 1:
            raise ConfigError(f"features have {q.shape[0]} frames: fewer than the "
                              f"{2 * ci.cin_pad + 1} that one frame of samples takes")
        self._cond_rows = q if ci.frames is None else self._run_frame_graph(q)
        return n

    def _run_frame_graph(self, q) -> np.ndarray:
        ci, fg, r = self.cond, self.cond.frames, self.frame_runner
        C, hop, K = ci.channels, ci.hop, fg.frames_per_call
        n_out = q.shape[0] - 2 * ci.cin_pad
        n_win = q.shape[0] - K + 1                 # calls with a full window of real rows
        zero = np.full((1, K * C), ci.feature_zero_point, np.int8)
        rings, lines = {}, []
        for dl in fg.delay_lines:
            t = fg.model.tensor(dl.read)
            length = max(dl.delay, rings[dl.write].shape[0] if dl.write in rings else 0)
            rings[dl.write] = np.full((length,) + tuple(t.shape), t.zero_point[0], np.int8)
        r.reset()
        out = np.empty((n_out * hop, C), np.int8)
        for g in range(n_out + fg.block_delay):
            win = q[g:g + K].reshape(1, K * C) if g < n_win else zero
            r.set_input(fg.frames_input, win)
            for dl in fg.delay_lines:
                ring = rings[dl.write]
                r.set_input(dl.read, ring[(g - dl.delay) % ring.shape[0]])
            r.invoke()
            for w, ring in rings.items():
                ring[g % ring.shape[0]] = r.get_output(w)
            f = g - fg.block_delay
            if f >= 0:
                out[f * hop:(f + 1) * hop] = r.get_output(fg.block_output).reshape(C, hop).T
        return out

    def _invoke(self, c, s, want):
        t = self.t
        if self.cond is not None:
            rows = self._cond_rows
            if rows is None:
                raise ConfigError("this model is locally conditioned: set its features first "
                                  "(set_features, or run(codes, cond=frames))")
            if t >= rows.shape[0]:
                raise ConfigError(f"conditioning exhausted: the features cover {rows.shape[0]} "
                                  f"samples, step {t} needs more")
            self._cond_buf[...] = rows[t].reshape(self._cond_buf.shape)
            self._set_cond(self._cond_buf)
        self._sample_buf[...] = c
        self._set_sample(self._sample_buf)
        if s is not None:
            self._speaker_buf[...] = s
            self._set_speaker(self._speaker_buf)
        for set_read, ring, delay in self._reads:
            set_read(ring[(t - delay) % ring.shape[0]])
        self.runner.invoke()
        getters = self._getters
        out = {name: getters[name]() for name in want}
        for name, get, ring in self._writes:
            ring[t % ring.shape[0]] = out[name] if name in out else get()
        self.t = t + 1
        return out

    def step(self, code: int, *, speaker: int | None = None) -> dict:
        """One invocation for input class ``code`` (0..255): every graph output of this step
        (name -> int8/int32 array as the interpreter returns it, batch dimension kept)."""
        c, s = self._check_code(code, speaker)
        return self._invoke(c, s, self.output_names)

    def run(self, codes, *, speaker: int | None = None, cond=None,
            outputs=("probs", "logits"), progress: bool = False) -> dict:
        """Teacher-forced run from the current state over ``codes`` (n class indices).

        ``cond``: a vocoder's model-ready float features for exactly these samples from t = 0
        (n/hop + 2·cin_pad frames; :meth:`set_features`); None to use the features already set.
        Returns ``{name: array (n, ...)}`` for each requested output, the batch dimension of 1
        dropped (``probs``/``logits``: (n, 256) int8).
        """
        codes = np.asarray(codes).reshape(-1)
        if cond is not None:
            ci = self._need_cond()
            if self.t != 0:
                raise ConfigError(f"cond gives the features from t = 0, but the host is at step "
                                  f"{self.t} (reset() first)")
            m = np.asarray(cond)
            self.quantize_features(m)              # bands, dtype, NaN first
            want = self.frames_for(codes.size)
            if codes.size % ci.hop or m.shape[0] != want:
                raise ConfigError(
                    f"cond has {m.shape[0]} frames but {codes.size} samples "
                    f"need {want} ({codes.size}/{ci.hop} + 2·{ci.cin_pad}"
                    + (", and a multiple of the hop" if codes.size % ci.hop else "") + ")")
            self.set_features(m)
        for name in outputs:
            if name not in self.output_names:
                raise ConfigError(f"{name!r} is not an output of this model "
                                  f"({', '.join(self.output_names)})")
        if codes.size and (not np.issubdtype(codes.dtype, np.integer)
                           or codes.min() < 0 or codes.max() > 255):
            raise ConfigError("sample class indices must be integers in 0..255")
        _, s = self._check_code(int(codes[0]) if codes.size else 0, speaker)
        shapes = {n: self.model.tensor(n) for n in outputs}
        res = {n: np.empty((codes.size,) + _drop_batch(shapes[n].shape), shapes[n].dtype)
               for n in outputs}
        it = range(codes.size)
        if progress:
            from tqdm import tqdm
            it = tqdm(it, desc=f"{self.runtime} steps", unit="step")
        want = tuple(outputs)
        for i in it:
            out = self._invoke(int(codes[i]), s, want)
            for n in want:
                res[n][i] = out[n].reshape(res[n].shape[1:])
        return res


def _drop_batch(shape):
    return shape[1:] if len(shape) >= 1 and shape[0] == 1 else shape
