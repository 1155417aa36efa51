"""wavenet-edge's own checkpoints: canonical weight names (``initial/table`` …) + embedded config.

``.npz`` written by :meth:`FloatWaveNet.save` (``__config__`` member) or a safetensors file whose
``__metadata__`` holds ``wavenet_edge_config`` (see :func:`converters.checkpoints.save_safetensors`).
Everything is stored, nothing is inferred or assumed; a user config may only repeat it.
"""

from __future__ import annotations

from wavenet_edge.config import WaveNetConfig
from wavenet_edge.errors import ConfigError
from wavenet_edge.float_model import weight_shapes

from ._base import Context

NAME = "wavenet-edge"
MULAW = None
NATIVE_KEYS = ()


def score(keys) -> int:
    keys = set(keys)
    return 3 * ("initial/table" in keys) + ("end2/w" in keys) + ("__config__" in keys)


def convert(ctx: Context):
    text = ctx.attrs.get("config_json")
    if text is None:
        ctx.fail("wavenet-edge weights without an embedded config")
    try:
        cfg = WaveNetConfig.from_json(text)
    except ConfigError as e:
        ctx.fail(f"embedded config: {e}")
    for field, v in cfg.to_dict().items():
        if field in ctx.overrides and ctx.overrides[field] != v and not (
                field == "dilations" and tuple(ctx.overrides[field]) == tuple(v)):
            ctx.fail(f"config says {field}={ctx.overrides[field]!r} but the checkpoint's "
                     f"embedded config has {v!r}")
        ctx.inferred[field] = {"value": v, "from": "embedded config"}
    W = {}
    for name, shape in weight_shapes(cfg).items():
        W[name] = ctx.get(name, shape)
    for k in ("__config__", "__format__"):
        ctx.ignore(k)
    ctx.check_all_used()
    return cfg, W
