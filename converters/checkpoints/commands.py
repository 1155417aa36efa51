"""``wavenet-edge import``: read a peer checkpoint, report what was inferred, write our ``.npz``."""

from __future__ import annotations

import json

import numpy as np


def register_import(subparsers):
    """Add the ``import`` sub-command (entry point ``wavenet_edge.commands``)."""
    p = subparsers.add_parser(
        "import", help="import a pytorch-wavenet / wavenet_vocoder / tensorflow-wavenet "
                       "checkpoint (no torch or TF needed)",
        description="Read a checkpoint of a popular WaveNet implementation safely (torch zip "
                    "with a restricted unpickler, safetensors, .npz, TensorFlow checkpoint "
                    "bundle), detect its layout, print which hyper-parameters were inferred "
                    "from shapes and which assumed, and optionally write it as a wavenet-edge "
                    ".npz for 'convert'.")
    p.add_argument("checkpoint", help="checkpoint file (or TF checkpoint prefix / directory)")
    p.add_argument("-o", "--output", metavar="NPZ", help="write the imported model here")
    p.add_argument("--layout", default="auto",
                   help="auto (from key names), wavenet-edge, pytorch-wavenet, "
                        "wavenet_vocoder or tensorflow-wavenet (default: auto)")
    p.add_argument("--config", metavar="JSON",
                   help="what the weights cannot tell: WaveNetConfig keys (dilations, "
                        "sample_rate, …) or the peer's own (layers/blocks, stacks, legacy, "
                        "wavenet_params.json), plus optional layout_options")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run_import)
    return p


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):       # the mel recipe: its defining numbers, not every field
        keys = ("n_mels", "n_fft", "hop_length", "win_length", "fmin", "fmax", "compression")
        return ", ".join(f"{k}={v[k]}" for k in keys if k in v)
    if isinstance(v, (list, tuple)) and len(v) > 12:
        return "[" + ", ".join(map(str, v[:12])) + f", … ({len(v)} values)]"
    return str(v)


def format_report(rep: dict) -> str:
    """The human-readable form of an :func:`inspect_checkpoint` report."""
    lines = [f"file      {rep['file']}", f"format    {rep['format']}",
             f"layout    {rep['layout']} ({rep['layout_source']})"]
    if rep["complete"]:
        lines.append(f"tensors   {rep['n_tensors']}, parameters {rep['parameters']:,}, "
                     f"receptive field {rep['receptive_field']} samples")
        m = rep.get("macs")
        if m:
            line = f"compute   {round(m['per_sample']):,} MACs/sample"
            if m["cond_per_sample"] or m["upsampler_per_frame"]:
                hop = int(np.prod(rep["config"]["upsample_scales"] or [1]))
                line += (f" (step {m['step']:,} + conditioning {m['cond_per_sample']:,} per "
                         f"sample + upsampler {m['upsampler_per_frame']:,} per frame of {hop})")
            lines.append(line)
    else:
        lines.append(f"tensors   {rep['n_tensors']} (incomplete: see the error below)")
    lines.append("inferred from the weights:")
    for k, v in rep["inferred"].items():
        lines.append(f"  {k:<22} {_fmt(v['value']):<24} {v['from']}")
    lines.append("assumed (not in the weights):")
    for k, v in rep["assumed"].items():
        lines.append(f"  {k:<22} {_fmt(v['value']):<24} {v['from']}")
    for n in rep["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _run_import(args) -> int:
    from wavenet_edge.errors import CheckpointError

    from .load import import_checkpoint, inspect_checkpoint

    if args.output:
        model, rep = import_checkpoint(args.checkpoint, layout=args.layout, config=args.config)
        model.save(args.output)
        rep["output"] = args.output
    else:
        rep = inspect_checkpoint(args.checkpoint, layout=args.layout, config=args.config)
    print(json.dumps(rep, indent=1) if args.json else format_report(rep))
    if not rep["complete"]:
        raise CheckpointError(rep["error"])
    if args.output and not args.json:
        print(f"wrote {args.output}")
    return 0
