"""A host for a wavenet-edge step graph written from its delay-line contract alone.

:class:`ContractHost` reads ``Model.metadata["wavenet_edge"]`` (docs/step-graph.md) and nothing
else about the model: it sets ``sample`` (and ``speaker``), fills every delay-line ``read`` with
what its ``write`` produced ``delay`` steps earlier (the read tensor's zero point, i.e. real 0.0,
before that), invokes a real interpreter (:mod:`firmware_sim.interpreters`) and pushes the writes.
It is the reference a firmware integrator would follow, and the oracle the Numba engine is
checked against.
"""

from __future__ import annotations

import json

import numpy as np

from wavenet_edge.errors import ConfigError, ModelFileError
from wavenet_edge.tflite_file import read_tflite

from .interpreters import make_runner

__all__ = ["ContractHost", "DelayLine", "read_contract"]

METADATA_KEY = "wavenet_edge"
FORMAT_VERSION = 1


class DelayLine:
    """One contract entry: before step t, ``read`` holds ``write`` of step t - ``delay``."""

    __slots__ = ("read", "write", "delay")

    def __init__(self, read: str, write: str, delay: int):
        self.read, self.write, self.delay = read, write, delay

    def __repr__(self):
        return f"DelayLine({self.read!r} <- {self.write!r} @ {self.delay})"


def read_contract(model, *, name=None) -> dict:
    """Decode and validate the delay-line contract of a parsed model (``TFLiteModel``).

    Returns the JSON dict with ``delay_lines`` replaced by a list of :class:`DelayLine`.  Raises
    ModelFileError naming the file for a missing/undecodable entry, unknown tensor names, a delay
    that is not a positive integer, or a read/write pair of different shape, dtype or quantization.
    """
    label = name or getattr(model, "name", None)

    def bad(msg):
        return ModelFileError(f"delay-line contract: {msg}", path=label)

    raw = model.metadata.get(METADATA_KEY)
    if raw is None:
        raise ModelFileError(f"no {METADATA_KEY!r} metadata: not a wavenet-edge step graph",
                             path=label)
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"metadata is not UTF-8 JSON ({e})") from None
    if not isinstance(meta, dict):
        raise bad("metadata is not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise bad(f"unsupported format_version {meta.get('format_version')!r} "
                  f"(expected {FORMAT_VERSION})")

    names = {t.name: t for t in model.tensors}
    in_names = [model.tensors[i].name for i in model.inputs]
    out_names = [model.tensors[i].name for i in model.outputs]

    def field(obj, key, where):
        if not isinstance(obj, dict) or key not in obj:
            raise bad(f"{where} lacks {key!r}")
        return obj[key]

    sample = field(meta, "sample_input", "metadata")
    sample_name = field(sample, "name", "sample_input")
    if sample_name not in in_names:
        raise bad(f"sample input {sample_name!r} is not a graph input")
    if sample.get("encoding", "class_index") != "class_index":
        raise bad(f"unsupported sample encoding {sample.get('encoding')!r}")
    if names[sample_name].dtype != np.int32:
        raise bad(f"sample input {sample_name!r} is {names[sample_name].dtype}, expected int32")
    speaker = meta.get("speaker_input")
    if speaker is not None:
        spk_name = field(speaker, "name", "speaker_input")
        card = field(speaker, "cardinality", "speaker_input")
        if spk_name not in in_names:
            raise bad(f"speaker input {spk_name!r} is not a graph input")
        if names[spk_name].dtype != np.int32:
            raise bad(f"speaker input {spk_name!r} is {names[spk_name].dtype}, expected int32")
        if not isinstance(card, int) or isinstance(card, bool) or card < 1:
            raise bad(f"speaker cardinality {card!r} is not a positive integer")
    outputs = field(meta, "outputs", "metadata")
    for key in ("probabilities", "logits"):
        oname = field(outputs, key, "outputs")
        if oname not in out_names:
            raise bad(f"output {key} {oname!r} is not a graph output")

    lines_raw = field(meta, "delay_lines", "metadata")
    if not isinstance(lines_raw, list):
        raise bad("delay_lines is not a list")
    lines, seen_reads = [], set()
    for k, entry in enumerate(lines_raw):
        where = f"delay_lines[{k}]"
        read, write, delay = (field(entry, key, where) for key in ("read", "write", "delay"))
        if not isinstance(delay, int) or isinstance(delay, bool) or delay <= 0:
            raise bad(f"{where}: delay {delay!r} is not a positive integer")
        if not isinstance(read, str) or read not in in_names:
            raise bad(f"{where}: read {read!r} is not a graph input")
        if not isinstance(write, str) or write not in out_names:
            raise bad(f"{where}: write {write!r} is not a graph output")
        if read in seen_reads:
            raise bad(f"{where}: read {read!r} is filled by more than one delay line")
        seen_reads.add(read)
        r, w = names[read], names[write]
        if r.shape != w.shape or r.dtype != w.dtype:
            raise bad(f"{where}: read {read!r} is {r.dtype}{list(r.shape)} but write {write!r} "
                      f"is {w.dtype}{list(w.shape)}")
        if not (np.array_equal(r.scale, w.scale) and np.array_equal(r.zero_point, w.zero_point)):
            raise bad(f"{where}: read {read!r} and write {write!r} are quantized differently "
                      f"(scale {r.scale.tolist()} vs {w.scale.tolist()}, zero point "
                      f"{r.zero_point.tolist()} vs {w.zero_point.tolist()})")
        lines.append(DelayLine(read, write, delay))
    fed = {sample_name} | seen_reads | ({speaker["name"]} if speaker is not None else set())
    for n in in_names:
        if n not in fed:
            raise bad(f"graph input {n!r} is neither the sample, the speaker nor a delay-line read")
    meta = dict(meta)
    meta["delay_lines"] = lines
    return meta


class ContractHost:
    """Run a step graph one sample at a time through a real interpreter, from the contract alone.

    ``model_bytes``: the ``.tflite`` content (or a path); ``runtime``: see
    :data:`firmware_sim.interpreters.RUNTIMES`.  State: one ring buffer per written tensor, as long
    as the longest delay reading it, so a write feeding delays d and 2d is stored once.
    """

    def __init__(self, model_bytes, runtime: str = "tflm", *, arena_size=None, name=None):
        if not isinstance(model_bytes, (bytes, bytearray, memoryview)):
            path = model_bytes
            model = read_tflite(path, name=name)
            name = model.name
            with open(path, "rb") as f:
                model_bytes = f.read()
        else:
            model_bytes = bytes(model_bytes)
            model = read_tflite(model_bytes, name=name)
        self.model = model
        self.meta = read_contract(model, name=name)
        self.delay_lines: list[DelayLine] = self.meta["delay_lines"]
        self.runner = make_runner(model_bytes, runtime, arena_size=arena_size, name=name)
        self.runtime = runtime
        self.sample_name = self.meta["sample_input"]["name"]
        spk = self.meta.get("speaker_input")
        self.speaker_name = None if spk is None else spk["name"]
        self.speaker_cardinality = None if spk is None else spk["cardinality"]
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
