"""Conversion report: model facts and int8-vs-float quality on held-out audio.

Quality compares, teacher-forced on the same class-index sequences, the float model's logits with
the int8 graph's ``logits`` output (dequantized with the tensor's scale/zero point; softmax in
float64):

* ``float_bits`` / ``int8_bits``: cross-entropy of the next sample in bits/sample;
* ``delta_bits``: ``int8_bits - float_bits`` (``delta_bits_se``: its standard error over steps);
* ``top1_agreement``: fraction of steps whose arg-max class agrees;
* ``kl_bits``: mean KL(float ‖ int8) in bits/sample;
* ``logit_snr_db``: ``10·log10(Σ float² / Σ (float - int8)²)`` over the logits that matter to
  the softmax: entries within ``SNR_WINDOW`` (20) nats of their row's maximum float logit
  (relative probability ≥ e⁻²⁰).  The converter clips the far-negative logits on purpose
  (softmax-aware range), so the SNR over *all* logits, ``logit_snr_all_db``, is dominated by
  that harmless clipping; it is reported too.

The int8 graph is executed by a *runner*: ``runner(tflite_bytes, codes, speaker) -> int8 logits
(n, 256)`` (a locally conditioned model's runner also takes ``cond=`` features).  The default runs the real LiteRT builtin interpreter through
:class:`converters.host.ContractHost`, i.e. driven only by the file's metadata contract; any
other engine with the same signature (the Numba engine) can be passed instead.
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["contract_host_runner", "engine_runner", "default_runner", "quality",
           "evaluate", "model_facts", "format_table", "write_report"]


SNR_WINDOW = 20.0


def _snr_db(f, q, mask=None):
    if mask is not None:
        f, q = f[mask], q[mask]
    noise = ((f - q) ** 2).sum()
    return float(10.0 * np.log10((f ** 2).sum() / noise)) if noise > 0 else float("inf")


def _relevant(f):
    return f >= f.max(axis=1, keepdims=True) - SNR_WINDOW


def contract_host_runner(runtime: str = "litert"):
    """A runner executing the graph with ``converters.host.ContractHost(…, runtime)``."""
    def run(data: bytes, codes, speaker=None, cond=None) -> np.ndarray:
        from .host import ContractHost
        host = ContractHost(data, runtime=runtime)
        out = host.run(np.asarray(codes), speaker=speaker, cond=cond, outputs=("logits",))
        lg = out["logits"] if isinstance(out, dict) else out
        return np.asarray(lg).reshape(len(codes), -1)
    run.__name__ = f"ContractHost[{runtime}]"
    return run


def engine_runner(profile: str = "litert"):
    """A runner on the Numba engine (:class:`wavenet_edge.engine.Engine`), bit-exact with the
    ``profile`` runtime (``"litert"``, ``"tflm"``, ``"litert-ref"``) and much faster."""
    def run(data: bytes, codes, speaker=None, cond=None) -> np.ndarray:
        from wavenet_edge.engine import Engine
        eng = Engine.from_bytes(data, profile=profile)
        eng.speaker = speaker
        if cond is not None:
            return eng.process(np.asarray(codes), logits=True, cond=cond)
        return eng.process(np.asarray(codes), logits=True)
    run.__name__ = f"Engine[{profile}]"
    return run


def _log_softmax(lg):
    m = lg.max(axis=1, keepdims=True)
    return lg - (m + np.log(np.exp(lg - m).sum(axis=1, keepdims=True)))


def default_runner():
    """LiteRT (builtin kernels) through :class:`converters.host.ContractHost`."""
    return contract_host_runner("litert")


def quality(float_logits, int8_logits, codes) -> dict:
    """Quality numbers (module docstring) for logits rows predicting ``codes[1:]``.

    ``float_logits``, ``int8_logits``: (n, 256) real values (int8 already dequantized);
    ``codes``: (n,) class indices; row t is scored against ``codes[t+1]`` (n - 1 scored rows).
    """
    lf = np.asarray(float_logits, np.float64)[:-1]
    lq = np.asarray(int8_logits, np.float64)[:-1]
    tgt = np.asarray(codes, np.int64)[1:]
    return _quality_rows(lf, lq, tgt)


def _quality_rows(lf, lq, tgt) -> dict:
    """Quality of scored rows: ``lf``/``lq`` (m, 256) logits, ``tgt`` (m,) their target classes."""
    ln2 = np.log(2.0)
    pf, pq = _log_softmax(lf), _log_softmax(lq)
    rows = np.arange(tgt.shape[0])
    d = (pf[rows, tgt] - pq[rows, tgt]) / ln2
    return {
        "steps": int(tgt.shape[0]),
        "float_bits": float(-pf[rows, tgt].mean() / ln2),
        "int8_bits": float(-pq[rows, tgt].mean() / ln2),
        "delta_bits": float(d.mean()),
        # standard error of delta_bits over steps (steps are correlated: a lower bound)
        "delta_bits_se": float(d.std() / np.sqrt(max(d.size, 1))),
        "top1_agreement": float((lf.argmax(axis=1) == lq.argmax(axis=1)).mean()),
        "kl_bits": float((np.exp(pf) * (pf - pq)).sum(axis=1).mean() / ln2),
        "logit_snr_db": _snr_db(lf, lq, _relevant(lf)),
        "logit_snr_all_db": _snr_db(lf, lq),
    }


def evaluate(model, data: bytes, clips, *, logits_qparams, runner=None, speakers=None,
             conds=None) -> dict:
    """Quality of the int8 graph ``data`` against float ``model`` over ``clips`` (class indices).

    Each clip starts from silence (fresh delay lines); the scored rows of all clips are pooled.
    ``conds``: per clip the model-ready features of a locally conditioned model (passed to the
    runner as ``cond=``).
    ``logits_qparams``: the ``logits`` tensor's :class:`converters.quantize.QParams`.
    ``runner`` defaults to LiteRT via ContractHost.
    """
    from .quantize import dequantize
    runner = runner or default_runner()
    if speakers is None:
        speakers = [None] * len(clips)
    if conds is None:
        conds = [None] * len(clips)
    lf, lq, tg = [], [], []
    for codes, spk, cnd in zip(clips, speakers, conds):
        codes = np.asarray(codes, np.int64)
        if codes.shape[0] < 2:
            continue
        # row t of a clip predicts that clip's t+1: the last row has no target
        lf.append(model.logits(codes, speaker=spk, cond=cnd)[:-1])
        lq8 = runner(data, codes, spk) if cnd is None else runner(data, codes, spk, cond=cnd)
        lq.append(dequantize(lq8, logits_qparams)[:-1])
        tg.append(codes[1:])
    out = _quality_rows(np.concatenate(lf), np.concatenate(lq), np.concatenate(tg))
    out["runner"] = getattr(runner, "__name__", type(runner).__name__)
    return out


def model_facts(config, data: bytes) -> dict:
    """Size and cost of the converted model: parameters, file bytes, MACs/sample, receptive field
    (samples), delay-line SRAM (bytes)."""
    return {
        "parameters": int(config.parameter_count()),
        "file_bytes": len(data),
        "macs_per_sample": int(config.macs_per_sample()),
        "receptive_field": int(config.receptive_field),
        "receptive_field_ms": 1000.0 * config.receptive_field / config.sample_rate,
        "delay_line_bytes": int(config.delay_line_bytes()),
    }


def format_table(report: dict) -> str:
    """Human-readable table of a conversion report (the dict built by ``convert``)."""
    f = report["model"]
    lines = [
        f"{'parameters':<26}{f['parameters']:>14,}",
        f"{'file size':<26}{f['file_bytes']:>14,} bytes",
        f"{'MACs per sample':<26}{f['macs_per_sample']:>14,}",
        f"{'receptive field':<26}{f['receptive_field']:>14,} samples "
        f"({f['receptive_field_ms']:.1f} ms)",
        f"{'delay lines (int8 SRAM)':<26}{f['delay_line_bytes']:>14,} bytes",
        f"{'calibration':<26}{report['calibration']['audio']}",
    ]
    if report.get("heldout"):
        lines.append(f"{'held-out (quality)':<26}{report['heldout']}")
    methods = report.get("methods") or {}
    if methods:
        lines.append("")
        lines.append(f"held-out quality ({next(iter(methods.values()))['steps']} steps, "
                     f"{next(iter(methods.values())).get('runner', '')})")
        hdr = (f"{'method':<12}{'float b/s':>10}{'int8 b/s':>10}{'Δ b/s':>9}{'top-1':>8}"
               f"{'KL b/s':>9}{'SNR dB':>8}{'(all)':>7}")
        lines.append(hdr)
        for name, q in methods.items():
            mark = " *" if name == report["method"] else ""
            lines.append(f"{name:<12}{q['float_bits']:>10.4f}{q['int8_bits']:>10.4f}"
                         f"{q['delta_bits']:>+9.4f}{q['top1_agreement']:>8.3f}{q['kl_bits']:>9.4f}"
                         f"{q['logit_snr_db']:>8.1f}{q.get('logit_snr_all_db', float('nan')):>7.1f}"
                         f"{mark}")
        lines.append(f"(* chosen: {report['method']}; SNR over the logits within {SNR_WINDOW:g} "
                     "nats of each row's maximum, (all) over every logit)")
    else:
        lines.append(f"{'method':<26}{report['method']}")
    return "\n".join(lines)


def write_report(path, report: dict) -> None:
    """Write ``report`` as JSON, atomically."""
    from wavenet_edge._fileio import atomic_write
    with atomic_write(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=False, default=float)
        f.write("\n")
