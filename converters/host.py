"""A host for a wavenet-edge step graph written from its delay-line contract alone.

:class:`ContractHost` reads ``Model.metadata["wavenet_edge"]`` (docs/step-graph.md) and nothing
else about the model: it sets ``sample`` (and ``speaker``), fills every delay-line ``read`` with
what its ``write`` produced ``delay`` steps earlier (the read tensor's zero point, i.e. real 0.0,
before that), invokes a real interpreter (:mod:`converters.interpreters`) and pushes the writes.
The contract is decoded and checked by :func:`wavenet_edge.contract.read_contract`, as in every
other reader.  It is the reference a firmware integrator would follow, and the oracle the Numba engine is
checked against.
"""

from __future__ import annotations

import numpy as np

from wavenet_edge.contract import DelayLine, read_contract
from wavenet_edge.errors import ConfigError
from wavenet_edge.tflite_file import load_model

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
        """Back to t = 0: every delay line holds its read tensor's zero point again."""
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

    def _invoke(self, c, s, want):
        t = self.t
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

    def run(self, codes, *, speaker: int | None = None, outputs=("probs", "logits"),
            progress: bool = False) -> dict:
        """Teacher-forced run from the current state over ``codes`` (n class indices).

        Returns ``{name: array (n, ...)}`` for each requested output, the batch dimension of 1
        dropped (``probs``/``logits``: (n, 256) int8).
        """
        codes = np.asarray(codes).reshape(-1)
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
