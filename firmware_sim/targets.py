"""Microcontroller targets and per-core cost coefficients: the registry ``targets.json`` plus
user boards from a ``--target-file``.

A target is a board/chip: clock (Hz), SRAM and flash (bytes), whether the flash is external
(execute-in-place), and the core whose cost model applies.  A core model is a set of cycle costs
(per int8 MAC, per requantization, per element of each elementwise / table operator, per byte and
per call of a memory copy, per operator dispatch) — every figure an estimate whose source is stated
next to it in the data file.  A user file has the same layout (``{"targets": [...], "cores": {...}}``)
or is a bare list of targets; its targets replace built-ins of the same name, its cores add to the
built-in ones.  Anything malformed raises :class:`~wavenet_edge.errors.ConfigError` naming the file,
the target and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from wavenet_edge.errors import ConfigError

__all__ = ["CoreModel", "Target", "COST_FIELDS", "load_registry", "builtin_targets",
           "select_targets", "DATA_FILE"]

DATA_FILE = Path(__file__).with_name("targets.json")
#: the per-kernel cost model of our C engine per measured core (firmware_sim.c_costs; written by
#: benchmarks/fit_c_costs.py), attached to the registry's core of the same name as ``fused``
C_COSTS_FILE = Path(__file__).with_name("c_engine_costs.json")

#: Cycle-cost fields every core model carries (all finite and >= 0).
COST_FIELDS = ("cycles_per_mac", "cycles_per_requant", "cycles_per_add_element",
               "cycles_per_mul_element", "cycles_per_transcendental_element",
               "cycles_per_softmax_element", "cycles_per_copy_byte", "cycles_per_copy_call",
               "cycles_per_op_dispatch")


@dataclass(frozen=True)
class CoreModel:
    """Cycle costs of one core running TFLM with the kernels named in ``kernels`` (estimates)."""

    name: str
    kernels: str
    costs: dict
    sources: dict = field(default_factory=dict)
    #: per-kernel model of the wavenet-edge C engine (firmware_sim.c_costs): ``instructions``
    #: (coefficients), ``cpi`` and their provenance; None for interpreter cost models
    fused: dict | None = None

    def __getattr__(self, item):
        # cost fields read as attributes: core.cycles_per_mac
        costs = self.__dict__.get("costs", {})
        if item in costs:
            return costs[item]
        raise AttributeError(item)

    def to_dict(self) -> dict:
        d = {"name": self.name, "kernels": self.kernels, **self.costs,
             "sources": dict(self.sources)}
        if self.fused is not None:
            d["fused"] = dict(self.fused)
        return d


@dataclass(frozen=True)
class Target:
    """One microcontroller: ``clock_hz``, ``sram_bytes``, ``flash_bytes`` (bytes), ``core``.

    ``weight_fetch_cycles_per_byte``: extra cycles per constant (weight) byte read per step when the
    weights stream from slow (external / uncached) flash; 0 when flash reads are hidden by caches.
    """

    name: str
    title: str
    core: CoreModel
    clock_hz: int
    sram_bytes: int
    flash_bytes: int
    flash_external: bool = False
    weight_fetch_cycles_per_byte: float = 0.0
    source: dict = field(default_factory=dict)
    caveats: tuple = ()

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "core": self.core.name,
                "kernels": self.core.kernels, "clock_hz": self.clock_hz,
                "sram_bytes": self.sram_bytes, "flash_bytes": self.flash_bytes,
                "flash_external": self.flash_external,
                "weight_fetch_cycles_per_byte": self.weight_fetch_cycles_per_byte,
                "source": dict(self.source), "caveats": list(self.caveats)}


def _num(v, what, err, *, positive=False, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise err(f"{what} must be a number, got {v!r}")
    if not math.isfinite(v):
        raise err(f"{what} must be finite, got {v!r}")
    if integer and v != int(v):
        raise err(f"{what} must be an integer, got {v!r}")
    if positive and v <= 0:
        raise err(f"{what} must be > 0, got {v!r}")
    if v < 0:
        raise err(f"{what} must be >= 0, got {v!r}")
    return int(v) if integer else float(v)


def _parse_fused(name, d, err):
    if not isinstance(d, dict) or not isinstance(d.get("instructions"), dict):
        raise err(f"core {name!r}: fused must be an object with an 'instructions' object")
    from .c_costs import FUSED_COEFS
    unknown = sorted(set(d["instructions"]) - set(FUSED_COEFS))
    if unknown:
        raise err(f"core {name!r}: fused: unknown coefficient(s) {', '.join(unknown)}")
    out = dict(d)
    out["instructions"] = {k: _num(v, f"core {name!r} fused {k}", err)
                           for k, v in d["instructions"].items()}
    out["cpi"] = _num(d.get("cpi"), f"core {name!r} fused cpi", err, positive=True)
    return out


def _parse_core(name, d, err, fused=None) -> CoreModel:
    if not isinstance(d, dict):
        raise err(f"core {name!r} must be an object")
    missing = [f for f in COST_FIELDS if f not in d]
    if missing:
        raise err(f"core {name!r}: missing {', '.join(missing)}")
    known = set(COST_FIELDS) | {"kernels", "sources", "fused"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise err(f"core {name!r}: unknown field(s) {', '.join(unknown)}")
    costs = {f: _num(d[f], f"core {name!r} {f}", err) for f in COST_FIELDS}
    sources = d.get("sources", {})
    if not isinstance(sources, dict):
        raise err(f"core {name!r}: sources must be an object")
    fz = d.get("fused", fused)
    return CoreModel(name=str(name), kernels=str(d.get("kernels", "")), costs=costs,
                     sources={str(k): str(v) for k, v in sources.items()},
                     fused=None if fz is None else _parse_fused(name, fz, err))


_TARGET_FIELDS = {"name", "title", "core", "clock_hz", "sram_bytes", "flash_bytes",
                  "flash_external", "weight_fetch_cycles_per_byte", "source", "caveats"}


def _parse_target(i, d, cores, err) -> Target:
    if not isinstance(d, dict):
        raise err(f"target #{i} must be an object")
    name = d.get("name")
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise err(f"target #{i}: name must be a non-empty string without spaces, got {name!r}")
    unknown = sorted(set(d) - _TARGET_FIELDS)
    if unknown:
        raise err(f"target {name!r}: unknown field(s) {', '.join(unknown)}")
    for f in ("core", "clock_hz", "sram_bytes", "flash_bytes"):
        if f not in d:
            raise err(f"target {name!r}: missing {f}")
    core = d["core"]
    if core not in cores:
        raise err(f"target {name!r}: unknown core {core!r}; known: {', '.join(sorted(cores))}")
    fe = d.get("flash_external", False)
    if not isinstance(fe, bool):
        raise err(f"target {name!r}: flash_external must be true or false")
    caveats = d.get("caveats", [])
    if not isinstance(caveats, list) or not all(isinstance(c, str) for c in caveats):
        raise err(f"target {name!r}: caveats must be a list of strings")
    source = d.get("source", {})
    if not isinstance(source, dict):
        raise err(f"target {name!r}: source must be an object")
    return Target(
        name=name, title=str(d.get("title", name)), core=cores[core],
        clock_hz=_num(d["clock_hz"], f"target {name!r} clock_hz", err, positive=True, integer=True),
        sram_bytes=_num(d["sram_bytes"], f"target {name!r} sram_bytes", err, positive=True,
                        integer=True),
        flash_bytes=_num(d["flash_bytes"], f"target {name!r} flash_bytes", err, positive=True,
                         integer=True),
        flash_external=fe,
        weight_fetch_cycles_per_byte=_num(d.get("weight_fetch_cycles_per_byte", 0.0),
                                          f"target {name!r} weight_fetch_cycles_per_byte", err),
        source={str(k): str(v) for k, v in source.items()}, caveats=tuple(caveats))


def _parse(doc, err, base_cores=None, fused=None) -> tuple:
    if isinstance(doc, list):
        doc = {"targets": doc}
    if not isinstance(doc, dict):
        raise err("must be a JSON object with a \"targets\" list (or a list of targets)")
    unknown = sorted(set(doc) - {"format_version", "about", "cores", "targets"})
    if unknown:
        raise err(f"unknown top-level field(s) {', '.join(unknown)}")
    fv = doc.get("format_version", 1)
    if fv != 1:
        raise err(f"unsupported format_version {fv!r} (expected 1)")
    cores = dict(base_cores or {})
    raw_cores = doc.get("cores", {})
    if not isinstance(raw_cores, dict):
        raise err("cores must be an object {name: cost model}")
    for name, d in raw_cores.items():
        cores[name] = _parse_core(name, d, err, (fused or {}).get(name))
    raw = doc.get("targets")
    if not isinstance(raw, list) or not raw:
        raise err("targets must be a non-empty list")
    targets = {}
    for i, d in enumerate(raw):
        t = _parse_target(i, d, cores, err)
        if t.name in targets:
            raise err(f"duplicate target name {t.name!r}")
        targets[t.name] = t
    return targets, cores


def _error_for(path):
    def err(msg):
        return ConfigError(msg, path=path)
    return err


def _read_json(path):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read target file ({e.strerror})", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError("target file is not UTF-8 text", path=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"target file is not valid JSON ({e.msg} at line {e.lineno})",
                          path=path) from None


def load_registry(target_file=None) -> tuple:
    """``({name: Target}, {name: CoreModel})``: the built-in registry, plus ``target_file``'s boards
    (which replace built-ins of the same name) and cores."""
    fused = _read_json(C_COSTS_FILE).get("cores", {}) if C_COSTS_FILE.exists() else {}
    targets, cores = _parse(_read_json(DATA_FILE), _error_for(DATA_FILE), fused=fused)
    if target_file is not None:
        extra, cores = _parse(_read_json(target_file), _error_for(target_file), cores)
        targets.update(extra)
    return targets, cores


def builtin_targets() -> dict:
    """``{name: Target}`` of the built-in registry."""
    return load_registry()[0]


def select_targets(names=None, *, target_file=None) -> list:
    """Targets by name (all built-ins, then the file's, when ``names`` is None/empty; with a
    target file and no names, only the file's targets).  Unknown names raise ConfigError."""
    targets, _ = load_registry(target_file)
    if not names:
        if target_file is not None:
            extra, _ = _parse(_read_json(target_file), _error_for(target_file),
                              load_registry()[1])
            return [targets[n] for n in extra]
        return list(targets.values())
    out = []
    for n in names:
        if n not in targets:
            raise ConfigError(f"unknown target {n!r}; known: {', '.join(targets)}")
        out.append(targets[n])
    return out
