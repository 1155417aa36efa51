"""Front door: read any supported checkpoint file into a :class:`FloatWaveNet`.

Containers (recognised by their bytes, not their suffix): PyTorch ``torch.save`` files, zip or
legacy (< 1.6) stream (state dict, trainer dict with ``state_dict``, or a whole pickled model),
safetensors, ``.npz``, and TensorFlow
V2 checkpoint bundles (``model.ckpt-N.index`` + ``.data-*``, the prefix, or the directory holding
the ``checkpoint`` file).  Layouts
(recognised by key names, see :mod:`converters.checkpoints.layouts`): ``wavenet-edge``,
``pytorch-wavenet``, ``wavenet_vocoder``, ``tensorflow-wavenet``.
"""

from __future__ import annotations

import dataclasses
import json
import os

from wavenet_edge.config import WaveNetConfig
from wavenet_edge.errors import CheckpointError, ConfigError
from wavenet_edge.float_model import FloatWaveNet

from ._limits import MAX_MEMBER_BYTES, open_zip
from .detect import detect_layout, layout_scores
from .layouts import LAYOUTS
from .layouts._base import FIELDS, Context
from .layouts.tensorflow_wavenet import normalize_name
from .npz_io import read_npz
from .safetensors_io import looks_like_safetensors, read_safetensors, write_safetensors
from .tf_bundle import bundle_prefix, read_tf_bundle
from .torch_zip import (Placeholder, TensorRef, is_legacy_torch, read_torch_legacy,
                        read_torch_zip)

__all__ = ["load_checkpoint", "inspect_checkpoint", "import_checkpoint", "read_tensors",
           "save_safetensors", "LAYOUT_NAMES"]

LAYOUT_NAMES = tuple(LAYOUTS)
_META_CONFIG = "wavenet_edge_config"
# ibab's wavenet_params.json uses initial_filter_width for scalar input only
_NATIVE_SHADOWED = {"tensorflow-wavenet": ("initial_filter_width",)}


class _Raw:
    """A checkpoint file's tensors before any layout is applied."""

    def __init__(self, fmt, tensors, attrs=None, notes=None):
        self.format, self.tensors = fmt, tensors
        self.attrs, self.notes = attrs or {}, notes or []


# -- containers -------------------------------------------------------------------------------
def _module_tensors(obj, prefix, out, seen, path, depth=0):
    """Flatten a pickled nn.Module (placeholder) into dotted ``_parameters``/``_buffers``."""
    if depth > 64:
        raise CheckpointError("pickled model nests modules too deeply", path=path)
    if id(obj) in seen:
        return
    seen.add(id(obj))
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]
    if not isinstance(state, dict):
        raise CheckpointError(f"pickled object {obj._global} has no readable state", path=path)
    skip = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        d = state.get(group) or {}
        if not isinstance(d, dict):
            raise CheckpointError(f"{prefix or 'model'}.{group} is not a dict", path=path)
        for name, t in d.items():
            if t is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(t, TensorRef):
                raise CheckpointError(f"{prefix}{name} is not a tensor", path=path)
            out[prefix + str(name)] = t
    mods = state.get("_modules") or {}
    if not isinstance(mods, dict):
        raise CheckpointError(f"{prefix or 'model'}._modules is not a dict", path=path)
    for name, m in mods.items():
        if m is None:
            continue
        if not isinstance(m, Placeholder):
            raise CheckpointError(f"sub-module {prefix}{name} is not a pickled module", path=path)
        _module_tensors(m, f"{prefix}{name}.", out, seen, path, depth + 1)


def _simple(v, depth=0):
    if isinstance(v, (bool, int, float, str)) or v is None:
        return True
    if isinstance(v, (list, tuple)) and depth < 3 and len(v) < 100000:
        return all(_simple(x, depth + 1) for x in v)
    return False


def _from_torch(path) -> _Raw:
    zf = open_zip(path)
    with zf:
        obj, _ = read_torch_zip(path, zf)
        # materialise while the archive is open (shape/bounds checked per tensor)
        return _torch_object(path, obj, "torch zip")


def _from_torch_legacy(path) -> _Raw:
    size = os.path.getsize(path)
    if size > MAX_MEMBER_BYTES:
        raise CheckpointError(f"legacy torch file of {size} bytes is too large", path=path)
    with open(path, "rb") as f:
        data = f.read()
    obj, _ = read_torch_legacy(path, data)
    return _torch_object(path, obj, "legacy torch (< 1.6)")


def _torch_object(path, obj, container) -> _Raw:
    notes, attrs = [], {}
    if isinstance(obj, Placeholder):
        flat = {}
        _module_tensors(obj, "", flat, set(), path)
        st = obj.state if isinstance(obj.state, dict) else {}
        attrs = {k: v for k, v in st.items() if not k.startswith("_") and _simple(v)}
        fmt = f"{container}: whole pickled model ({obj._global})"
    elif isinstance(obj, dict):
        if obj and all(isinstance(v, TensorRef) for v in obj.values()):
            flat, fmt = dict(obj), f"{container}: state_dict"
        else:
            for key in ("state_dict", "model_state_dict", "model"):
                sub = obj.get(key)
                if isinstance(sub, dict) or isinstance(sub, Placeholder):
                    break
            else:
                raise CheckpointError("torch checkpoint holds neither tensors nor a "
                                      "'state_dict' entry (keys: "
                                      + ", ".join(map(str, list(obj)[:5])) + ")", path=path)
            others = [str(k) for k in obj if k != key]
            fmt = f"{container}: trainer checkpoint ['{key}']"
            if others:
                notes.append(f"ignored checkpoint entries: {', '.join(others[:8])}")
            if isinstance(sub, Placeholder):
                flat = {}
                _module_tensors(sub, "", flat, set(), path)
            else:
                flat = {}
                for k, v in sub.items():
                    if not isinstance(v, TensorRef):
                        raise CheckpointError(f"state_dict entry {k!r} is not a tensor",
                                              path=path)
                    flat[str(k)] = v
    else:
        raise CheckpointError(f"torch file holds a {type(obj).__name__}, not a state_dict "
                              "or model", path=path)
    if not flat:
        raise CheckpointError("checkpoint holds no tensors", path=path)
    if all(k.startswith("module.") for k in flat):
        flat = {k[len("module."):]: v for k, v in flat.items()}
        notes.append("stripped DataParallel prefix 'module.'")
    tensors = {k: v.numpy() for k, v in flat.items()}
    return _Raw(fmt, tensors, attrs, notes)


def read_tensors(path) -> _Raw:
    """Read the container at ``path``: ``.format``, ``.tensors`` (name → array), ``.attrs``."""
    path = os.fspath(path)
    if not os.path.isfile(path) or path.endswith(".index") or ".data-0" in \
            os.path.basename(path):
        prefix = bundle_prefix(path)
        if prefix is not None:
            return _Raw("TensorFlow checkpoint bundle", read_tf_bundle(prefix, path=path))
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise CheckpointError("no such file", path=path) from None
    except IsADirectoryError:
        raise CheckpointError("is a directory, not a checkpoint file", path=path) from None
    except OSError as e:
        raise CheckpointError(f"cannot read ({e.strerror})", path=path) from None
    if not head:
        raise CheckpointError("empty file", path=path)
    if is_legacy_torch(head):
        return _from_torch_legacy(path)
    if head[:2] == b"PK":
        zf = open_zip(path)
        with zf:
            try:
                names = zf.namelist()
            except Exception as e:  # pragma: no cover - namelist reads the parsed directory
                raise CheckpointError(f"corrupt zip ({e})", path=path) from None
        if any(n.endswith("/data.pkl") for n in names) or any(n.endswith(".pkl") for n in names):
            return _from_torch(path)
        if names and all(n.endswith(".npy") or n.endswith("/") for n in names):
            arrays = read_npz(path)
            attrs = {}
            if "__config__" in arrays:
                try:
                    attrs["config_json"] = bytes(arrays["__config__"].astype("u1")).decode("utf-8")
                except (UnicodeDecodeError, ValueError):
                    raise CheckpointError("__config__ entry is not UTF-8 JSON", path=path) \
                        from None
            return _Raw("npz", arrays, attrs)
        raise CheckpointError("zip archive that is neither a torch.save file nor an .npz",
                              path=path)
    if looks_like_safetensors(head):
        tensors, meta = read_safetensors(path)
        attrs = {}
        if _META_CONFIG in meta:
            attrs["config_json"] = meta[_META_CONFIG]
        return _Raw("safetensors", tensors, attrs)
    if (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or \
            head[:1] in (b"(", b"]", b"}", b"c"):
        raise CheckpointError("a raw pickle, not a torch.save file: refused (unpickling runs "
                              "code); save with torch.save or as safetensors", path=path)
    raise CheckpointError("unrecognised file format (not a torch zip, safetensors or .npz)",
                          path=path)


# -- configuration ----------------------------------------------------------------------------
def _config_parts(config, layout: str, path):
    """(overrides, options, native, ignored) from the user's ``config`` argument."""
    if config is None:
        return {}, {}, {}, []
    if isinstance(config, WaveNetConfig):
        default = WaveNetConfig()
        over = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                if getattr(config, f.name) != getattr(default, f.name)}
        if "dilations" in over:
            over["dilations"] = tuple(over["dilations"])
        return over, {}, {}, []
    if isinstance(config, (str, os.PathLike)):
        cpath = os.fspath(config)
        try:
            with open(cpath, encoding="utf-8") as f:
                d = json.load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config ({e.strerror})", path=cpath) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"config is not valid JSON ({e})", path=cpath) from None
    elif isinstance(config, dict):
        d, cpath = dict(config), None
    else:
        raise ConfigError("config must be a WaveNetConfig, a dict or a JSON file path, got "
                          f"{type(config).__name__}")
    if not isinstance(d, dict):
        raise ConfigError("config must be a JSON object", path=cpath)
    d = dict(d)
    options = d.pop("layout_options", {}) or {}
    if not isinstance(options, dict):
        raise ConfigError("layout_options must be an object", path=cpath)
    mod = LAYOUTS[layout]
    native_keys = set(mod.NATIVE_KEYS)
    is_native = any(k in native_keys and k not in FIELDS for k in d)
    shadowed = set(_NATIVE_SHADOWED.get(layout, ())) if is_native else set()
    over, native, unknown = {}, {}, []
    for k, v in d.items():
        if k in native_keys and (k not in FIELDS or k in shadowed):
            native[k] = v
        elif k in FIELDS:
            over[k] = tuple(v) if k == "dilations" and isinstance(v, list) else v
            if k in native_keys:
                native[k] = v
        else:
            unknown.append(k)
    if unknown and not is_native:
        raise ConfigError(f"unknown config key(s) for layout {layout}: {', '.join(unknown)}",
                          path=cpath)
    return over, options, native, sorted(unknown)


# -- front door -------------------------------------------------------------------------------
def import_checkpoint(path, *, layout: str = "auto", config=None):
    """``(FloatWaveNet, report)`` for the checkpoint at ``path``; see :func:`inspect_checkpoint`."""
    return _import(path, layout, config, partial=False)


def _import(path, layout, config, *, partial: bool):
    if layout != "auto" and layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; known: auto, {', '.join(LAYOUTS)}")
    raw = read_tensors(path)
    tensors = raw.tensors
    keys = list(tensors)
    scores = layout_scores(keys)
    detected = detect_layout(keys, path=path) if layout == "auto" else None
    chosen = detected or layout
    if layout != "auto" and scores[layout] == 0:
        try:
            looks = detect_layout(keys, path=path)
        except CheckpointError:
            looks = "an unknown layout"
        raise CheckpointError(f"layout={layout} given but the keys are those of {looks}",
                              path=path)
    if chosen == "tensorflow-wavenet":
        norm = {}
        for k, v in tensors.items():
            n = normalize_name(k)
            if n in norm:
                raise CheckpointError(f"variables {k} and another both name {n}", path=path)
            norm[n] = v
        tensors = norm
    over, options, native, ignored = _config_parts(config, chosen, path)
    ctx = Context(path, tensors, attrs=raw.attrs, overrides=over, options=options,
                  native=native)
    try:
        cfg, weights = LAYOUTS[chosen].convert(ctx)
        model = FloatWaveNet(cfg, weights, source=str(path))
    except CheckpointError as e:
        if not partial:
            raise
        return None, {
            "file": str(path), "format": raw.format, "layout": chosen,
            "layout_source": "detected from key names" if layout == "auto" else "given (layout=)",
            "layout_scores": scores, "n_tensors": len(tensors), "complete": False,
            "error": str(e), "inferred": ctx.inferred, "assumed": ctx.assumed, "config": None,
            "notes": raw.notes + ctx.notes}
    report = {
        "file": str(path),
        "format": raw.format,
        "layout": chosen,
        "layout_source": "detected from key names" if layout == "auto" else "given (layout=)",
        "layout_scores": scores,
        "n_tensors": len(tensors),
        "complete": True,
        "inferred": ctx.inferred,
        "assumed": ctx.assumed,
        "config": cfg.to_dict(),
        "receptive_field": cfg.receptive_field,
        "parameters": cfg.parameter_count(),
        "macs": cfg.macs_breakdown(),
        "notes": raw.notes + ctx.notes + ([f"config keys ignored: {', '.join(ignored)}"]
                                          if ignored else []),
    }
    return model, report


def load_checkpoint(path, *, layout: str = "auto", config=None) -> FloatWaveNet:
    """The :class:`FloatWaveNet` of a checkpoint of any supported container and layout.

    path : ``.pt``/``.pth`` (torch zip: state dict, trainer dict, whole model), ``.safetensors``,
        ``.npz`` (ours or tensorflow-wavenet variables)
    layout : ``"auto"`` (from key names) or one of :data:`LAYOUT_NAMES`
    config : what the weights cannot tell (dilations, sample rate, …): a :class:`WaveNetConfig`
        (its non-default fields count), a dict or a JSON file path with WaveNetConfig keys
        and/or the peer's own keys (``layers``/``blocks``, ``stacks``, ``legacy``,
        wavenet_params.json …) and optional ``layout_options``
    """
    return import_checkpoint(path, layout=layout, config=config)[0]


def inspect_checkpoint(path, *, layout: str = "auto", config=None) -> dict:
    """Report of the import: ``layout``, ``format``, ``inferred`` and ``assumed`` hyper-parameters
    (each ``{"value", "from"}``), the resulting ``config``, receptive field, notes.

    A checkpoint that is readable but cannot be mapped without more information (e.g. its
    dilations) gives ``complete: False``, the ``error`` and what was inferred so far instead of
    raising; unreadable or unsafe files still raise :class:`CheckpointError`.
    """
    return _import(path, layout, config, partial=True)[1]


def save_safetensors(model: FloatWaveNet, path) -> None:
    """Write ``model`` as safetensors (float64 canonical weights + config in the metadata)."""
    write_safetensors(path, model.weights, metadata={_META_CONFIG: model.config.to_json(),
                                                     "format": "wavenet-edge-float/1"})
