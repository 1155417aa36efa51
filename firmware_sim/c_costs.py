"""Cost model of OUR C engine (firmware_sim/c): instructions per step priced per executed KERNEL.

``wn_reset`` fuses a layer's FC, FC, LUT, LUT, MUL into one gated-unit kernel and an FC with the
ADD that consumes it into one FC+ADD kernel (channel counts multiples of 4), and leaves the
SOFTMAX to ``wn_probs`` (on demand).  Pricing such a step per *operator* (a dispatch per
operator, the fused tables and MUL as separate passes) describes work the engine does not do; so
this model prices what runs:

=========== ======================================================================
kernel      instructions
=========== ======================================================================
gate        gate_kernel + gate_mac[_generic] x 2·G·cols + gate_channel x G
fc_add      fc_add_kernel + fc_add_mac[_generic] x R·cols + fc_add_channel x R
fc          fc_kernel + fc_mac[_generic] x rows·cols + fc_channel x rows   (fused RELU)
logits      logits_kernel + logits_mac[_generic] x 256·cols  (the FC before the SOFTMAX: no
            RELU, full-range requantization; always 256 rows)
add/mul/lut op_kernel + <kind>_element x n        (unfused: channels not multiples of 4)
gather/copy op_kernel + copy_byte x n
delay lines step_fixed + delay_byte x bytes + delay_call x copies, per pass (reads, then
            writes: the passes also carry the step's entry and bookkeeping)
=========== ======================================================================

(``_generic``: inputs of a length without a specialised dot product, :data:`SPECIALIZED_COLS`),
plus, outside the step, ``sample`` (one draw on the logits) and ``softmax_call`` (the 256-way
SOFTMAX when probabilities are asked for).  Coefficients are instructions counted by QEMU
(:mod:`firmware_sim.emulate`'s profiling build, a marker before every kernel), fitted by
non-negative least squares (relative errors) per kernel type over SEVERAL model shapes (one shape cannot separate
a kernel's fixed cost from its per-channel and per-MAC costs); cycles = instructions x the
core's cycles-per-instruction ESTIMATE (:data:`firmware_sim.emulate.CPI_ASSUMED`).
``targets.json`` stores them per measured core (``fused`` object; :func:`fit_fused_costs`
and ``benchmarks/fit_c_costs.py`` write it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Kernel", "plan_kernels", "config_kernels", "FUSED_COEFS", "kernel_features",
           "step_features", "program_features", "predict_instructions", "fit_fused_costs", "profile_program",
           "FusedCosts", "program_of_config", "engine_source_hash"]

#: kind numbers of wavenet_edge.lowered.OpKind the C engine knows
_GATHER, _FC, _ADD, _MUL, _LUT, _SOFTMAX, _COPY = 1, 2, 3, 4, 5, 6, 7

#: coefficient names (instructions) of the fused model, grouped by what they price
FUSED_COEFS = ("gate_kernel", "gate_mac", "gate_mac_generic", "gate_channel",
               "fc_add_kernel", "fc_add_mac", "fc_add_mac_generic", "fc_add_channel",
               "fc_kernel", "fc_mac", "fc_mac_generic", "fc_channel",
               "logits_kernel", "logits_mac", "logits_mac_generic",
               "op_kernel", "add_element", "mul_element", "lut_element", "copy_byte",
               "delay_byte", "delay_call", "step_fixed", "softmax_call", "sample")

#: fitted together (disjoint columns: each group is its own least-squares problem)
_GROUPS = (("gate_kernel", "gate_mac", "gate_mac_generic", "gate_channel"),
           ("fc_add_kernel", "fc_add_mac", "fc_add_mac_generic", "fc_add_channel"),
           ("fc_kernel", "fc_mac", "fc_mac_generic", "fc_channel"),
           ("logits_kernel", "logits_mac", "logits_mac_generic"),
           ("op_kernel", "add_element", "mul_element", "lut_element", "copy_byte"),
           ("delay_byte", "delay_call", "step_fixed"), ("softmax_call",), ("sample",))


@dataclass(frozen=True)
class Kernel:
    """One executed kernel of the step: ``kind`` (gate, fc_add, fc, logits, add, mul, lut, gather,
    copy, softmax), ``n`` output channels, ``cols`` inputs per output (FC kinds), ``ops`` the indices of
    the program operators it runs."""

    kind: str
    n: int
    cols: int
    ops: tuple


_NAMES = {_GATHER: "gather", _FC: "fc", _ADD: "add", _MUL: "mul", _LUT: "lut",
          _SOFTMAX: "softmax", _COPY: "copy"}


def plan_kernels(ops, *, links: bool = True) -> list:
    """The kernels ``wn_reset`` plans for the program records ``ops`` (fields kind, n, cols and,
    with ``links``, in0/in1/out): the C plan's patterns (FC FC LUT LUT MUL of equal widths,
    multiple of 4, both FCs on the same input; an FC then the ADD of its output, multiple of 4).
    ``links=False`` takes the data links as given (records of an unbuilt config).  Our graphs
    never break the C plan's aliasing conditions (checked against the QEMU profile in tests)."""
    out, k, n = [], 0, len(ops)
    g = [(int(o["kind"]), int(o["n"]), int(o["cols"])) for o in ops]
    io = [(int(o["in0"]), int(o["in1"]), int(o["out"])) if links else None for o in ops]
    while k < n:
        kind, w, cols = g[k]
        if (k + 4 < n and kind == _FC and [x[0] for x in g[k + 1:k + 5]] == [_FC, _LUT, _LUT, _MUL]
                and g[k + 1][2] == cols and w % 4 == 0 and all(x[1] == w for x in g[k + 1:k + 5])
                and (not links or io[k + 1][0] == io[k][0])):
            out.append(Kernel("gate", w, cols, tuple(range(k, k + 5))))
            k += 5
        elif (k + 1 < n and kind == _FC and g[k + 1][0] == _ADD and w % 4 == 0
              and g[k + 1][1] == w and (not links or io[k][2] in io[k + 1][:2])):
            out.append(Kernel("fc_add", w, cols, (k, k + 1)))
            k += 2
        else:
            # the FC that feeds the SOFTMAX is the logits FC: no fused RELU, so the C takes
            # its full-range requantization path (priced apart)
            logits = kind == _FC and k + 1 < n and g[k + 1][0] == _SOFTMAX
            out.append(Kernel("logits" if logits else _NAMES.get(kind, f"kind{kind}"), w, cols,
                              (k,)))
            k += 1
    return out


def config_kernels(cfg):
    """``(kernels, read widths, write widths)`` (bytes per delay-line copy) of the C step for an unbuilt
    ``cfg`` (kernel size k, initial width 1, no conditioning: the graph of
    ``converters.export``), or None for other configs (build a proxy program instead)."""
    if cfg.initial_filter_width != 1 or cfg.has_gc or getattr(cfg, "cin_channels", 0):
        return None
    R, G, S, E = (cfg.residual_channels, cfg.dilation_channels, cfg.skip_channels,
                  cfg.end_channels)
    k, L = cfg.kernel_size, cfg.n_layers
    ops = [(_GATHER, R, cfg.quantization_channels)]
    for i in range(L):
        ops += [(_FC, G, k * R), (_FC, G, k * R), (_LUT, G, 0), (_LUT, G, 0), (_MUL, G, 0)]
        if i < L - 1:
            ops += [(_FC, R, G), (_ADD, R, 0)]
    ops += [(_FC, S, L * G), (_FC, E, S), (_FC, cfg.quantization_channels, E), (_SOFTMAX, 256, 0)]
    rec = np.array(ops, dtype=[("kind", "i4"), ("n", "i4"), ("cols", "i4")])
    return plan_kernels(rec, links=False), [R] * (L * (k - 1)), [R] * L


#: inputs one vector step of the FC loops consumes per kernel variant (a row's input is padded to
#: it: MVE VMLADAVA takes 16 int8 lanes with tail predication, the DSP loop 4 bytes per word)
MAC_GRANULE = {"mve": 16, "dsp": 4, "plain": 1}


#: input lengths for which the C kernels have unrolled, specialised dot products (wn_dot4 and
#: the DSP wn_dot4_16/_32 paths; the common shapes of the presets); other lengths take the
#: generic loop, priced by the ``*_mac_generic`` coefficients
SPECIALIZED_COLS = (16, 32)


def kernel_features(kn: Kernel, granule: int = 1) -> dict:
    """What one kernel contributes to each coefficient of :data:`FUSED_COEFS`; MACs are counted
    over inputs padded to ``granule`` (:data:`MAC_GRANULE`), as ``<kind>_mac`` for the
    :data:`SPECIALIZED_COLS` lengths and ``<kind>_mac_generic`` for the others."""
    cols = _pad(kn.cols, granule)
    mac = "_mac" if kn.cols in SPECIALIZED_COLS else "_mac_generic"
    if kn.kind == "gate":
        return {"gate_kernel": 1, "gate" + mac: 2 * kn.n * cols, "gate_channel": kn.n}
    if kn.kind == "fc_add":
        return {"fc_add_kernel": 1, "fc_add" + mac: kn.n * cols, "fc_add_channel": kn.n}
    if kn.kind == "fc":
        return {"fc_kernel": 1, "fc" + mac: kn.n * cols, "fc_channel": kn.n}
    if kn.kind == "logits":          # always 256 rows: its per-row cost is in logits_kernel
        return {"logits_kernel": 1, "logits" + mac: kn.n * cols}
    if kn.kind in ("add", "mul", "lut"):
        return {"op_kernel": 1, f"{kn.kind}_element": kn.n}
    if kn.kind in ("gather", "copy"):
        return {"op_kernel": 1, "copy_byte": _pad(kn.n, granule)}
    if kn.kind == "softmax":
        return {"softmax_call": 1}
    raise ValueError(f"unknown kernel kind {kn.kind!r}")


def _pad(n, granule) -> int:
    return -(-int(n) // granule) * granule


def _delay_pass(widths, granule) -> dict:
    return {"delay_byte": sum(_pad(w, granule) for w in widths), "delay_call": len(widths),
            "step_fixed": 1}


def step_features(kernels, read_widths, write_widths, granule: int = 1) -> dict:
    """Features of one step (SOFTMAX excluded: it runs on demand) plus one draw on the logits;
    ``read_widths``/``write_widths``: bytes of each delay-line copy (padded to ``granule``
    like the FC inputs: the vector copy loops move whole vectors)."""
    f = dict.fromkeys(FUSED_COEFS, 0)
    for kn in kernels:
        if kn.kind == "softmax":
            continue
        for c, v in kernel_features(kn, granule).items():
            f[c] += v
    for w in (read_widths, write_widths):    # the read pass and the write pass
        for c, v in _delay_pass(w, granule).items():
            f[c] += v
    f["sample"] = 1
    return f


def program_features(ops, reads, writes, granule: int = 1) -> dict:
    """:func:`step_features` of a built program's operator, delay-read and delay-write records."""
    widths = [int(w["width"]) for w in writes]
    return step_features(plan_kernels(ops), [widths[int(r["write"])] for r in reads], widths,
                         granule=granule)


def predict_instructions(coefs: dict, features: dict) -> float:
    return float(sum(coefs.get(c, 0.0) * v for c, v in features.items()))


def _nnls(A, y):
    """Least squares with coefficients >= 0 by elimination (a coefficient driven negative is
    fixed at 0 and the rest refitted)."""
    used = A.any(axis=0)
    coef = np.zeros(A.shape[1])
    while used.any():
        coef[:] = 0.0
        coef[used] = np.linalg.lstsq(A[:, used], y, rcond=None)[0]
        if (coef >= -1e-9).all():
            break
        used &= coef > 0
    return np.clip(coef, 0.0, None)


def profile_program(prog, ops_instr, reads_instr, writes_instr, granule: int = 1):
    """Equations of one profiled step: ``[(features, instructions)]`` per kernel (a fused
    kernel's instructions all fall in its first operator's interval) and per delay-line pass.
    ``prog``: the exported program dict (ops, reads, writes)."""
    eqs = []
    for kn in plan_kernels(prog["ops"]):
        eqs.append((kernel_features(kn, granule), float(sum(ops_instr[i] for i in kn.ops))))
    widths = [int(w["width"]) for w in prog["writes"]]
    eqs.append((_delay_pass([widths[int(r["write"])] for r in prog["reads"]], granule),
                float(reads_instr)))
    eqs.append((_delay_pass(widths, granule), float(writes_instr)))
    return eqs


@dataclass
class FusedCosts:
    """Fitted coefficients (instructions) and how well they reproduce the profiled kernels."""

    instructions: dict
    max_rel_error: float          # worst |predicted - measured| / measured over the kernels fitted
    equations: int

    def to_dict(self) -> dict:
        return {"instructions": {k: round(float(v), 4) for k, v in self.instructions.items()},
                "max_rel_error": round(float(self.max_rel_error), 4),
                "equations": int(self.equations)}


def fit_fused_costs(equations, *, sample=None, softmax=None) -> FusedCosts:
    """Fit :data:`FUSED_COEFS` to ``equations`` (``[(features, instructions)]`` from
    :func:`profile_program` over one or more shapes), group by group; ``sample`` / ``softmax``:
    measured instructions of one draw on the logits / of the SOFTMAX on demand."""
    coefs = dict.fromkeys(FUSED_COEFS, 0.0)
    for grp in _GROUPS:
        rows = [(f, y) for f, y in equations if any(f.get(c) for c in grp)]
        if not rows:
            continue
        A = np.array([[f.get(c, 0) for c in grp] for f, _ in rows], float)
        y = np.array([v for _, v in rows], float)
        # relative error is what matters (kernels range from tens to tens of thousands of
        # instructions): weight every equation by 1 / its measured instructions
        w = 1.0 / np.maximum(y, 1.0)
        A, y = A * w[:, None], y * w
        for c, v in zip(grp, _nnls(A, y)):
            coefs[c] = float(v)
    if sample is not None:
        coefs["sample"] = float(sample)
    if softmax is not None:
        coefs["softmax_call"] = float(softmax)
    err = 0.0
    for f, y in equations:
        if y > 0:
            err = max(err, abs(predict_instructions(coefs, f) - y) / y)
    return FusedCosts(instructions=coefs, max_rel_error=err, equations=len(equations))


def engine_source_hash() -> str:
    """SHA-256 of the C engine's sources (wavenet_engine.c/.h): the fit records it, so a stored
    model fitted on other kernels can say so."""
    import hashlib
    from pathlib import Path
    h = hashlib.sha256()
    for name in ("wavenet_engine.c", "wavenet_engine.h"):
        h.update((Path(__file__).parent / "c" / name).read_bytes())
    return h.hexdigest()


def program_of_config(cfg):
    """The lowered int8 program (profile tflm) of ``cfg``'s step graph built with random weights
    and fixed activation ranges (structure is all that sizes and kernel shapes depend on)."""
    from converters.calibrate import activation_tensors
    from converters.canonical import canonicalize
    from converters.export import build_step_graph
    from converters.quantize import activation_plan
    from wavenet_edge.float_model import FloatWaveNet
    from wavenet_edge.lowered import lower
    from wavenet_edge.tflite_file import load_model
    if cfg.has_cond and cfg.upsampler != "none":
        # a vocoder's step graph does not depend on its upsampler (the frame graph, which runs
        # once per hop, is priced apart): build it with features at sample rate
        cfg = cfg.replace(upsampler="none", upsample_scales=(), cin_pad=0, mel=None,
                          freq_axis_kernel_size=1)
    model = canonicalize(FloatWaveNet.initialize(cfg.replace(residual_scale=1.0, skip_scale=1.0),
                                                 seed=0))
    plan = activation_plan(model.config,
                           {k: (-1.0, 1.0) for k in activation_tensors(model.config)})
    return lower(load_model(build_step_graph(model, plan)), profile="tflm")
