"""Export a wavenet-edge ``.tflite`` step graph as a self-contained C99 step engine.

The export follows the Numba engine's compiled :class:`wavenet_edge.program.Program` (profile
``tflm``) for everything that is a *plan*: the operator order, the arena offsets (CONCATENATION
and RESHAPE are free by aliasing), the delay-line rings.  Every *parameter* is derived from the
file with :mod:`wavenet_edge.int8`, exactly as the program compiler derives it: int8 weights,
biases with the input zero point folded in, per-channel multipliers/shifts, TANH/LOGISTIC
tables, ADD/MUL parameters (the engine may tabulate those over all 65536 input pairs, which would
not fit a microcontroller's flash) and the SOFTMAX exponential of each possible ``x − max(x)``
(256 int32; the normalization stays in C fixed point).  So the C computes exactly what
``Engine.from_file(path, profile="tflm")`` computes (probabilities, logits, every delay-line
write) without depending on how the engine lays out its own blobs.

Files written to ``out_dir``:

``wavenet_model.h`` / ``wavenet_model.c``
    sizes and constants (macros), the operator list and every parameter as ``const`` arrays
``wavenet_engine.h`` / ``wavenet_engine.c``
    the step engine (no heap, only ``memcpy``/``memset``), int8 kernels in three variants:
    plain C, Arm DSP extension (SXTB16/SMLAD, ACLE intrinsics) and MVE/Helium (``arm_mve.h``)
``README.md``
    the API, memory figures, and how to build
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wavenet_edge._fileio import atomic_write
from wavenet_edge.errors import ConfigError, ModelFileError

__all__ = ["export_c", "ExportResult", "KERNELS", "register_export_c", "exported_program"]

_C_DIR = Path(__file__).parent / "c"
KERNELS = {"auto": 0, "plain": 1, "dsp": 2, "mve": 3}

# wn_op kinds (wavenet_model.h)
K_GATHER, K_FC, K_ADD, K_MUL, K_LUT, K_SOFTMAX, K_COPY = 1, 2, 3, 4, 5, 6, 7
K_FC2 = 8   # engine-only fused filter+gate FC row, split back into two FCs
_ROW_KIND = {"GATHER": 1, "FULLY_CONNECTED": 2, "ADD": 3, "MUL": 3, "TANH": 5, "LOGISTIC": 5,
             "SOFTMAX": 6}


@dataclass
class ExportResult:
    """What :func:`export_c` wrote.

    out_dir : directory of the export; files : {name: path}
    kernels : requested kernel variant ("auto", "plain", "dsp", "mve")
    flash_bytes : const data (weights, biases, multipliers, tables, operator list), bytes
    state_bytes : RAM of one ``wn_state`` (arena + delay-line rings + positions), bytes
    macs_per_sample : int8 multiply-accumulates per step
    n_ops : executed operators per step
    write_widths : bytes of each distinct delay-line write (contract order)
    """

    out_dir: str
    files: dict
    kernels: str
    flash_bytes: int
    state_bytes: int
    macs_per_sample: int
    n_ops: int
    write_widths: list = field(default_factory=list)
    silence_code: int = 0
    n_speakers: int = 0
    #: the exported program (:func:`exported_program`), for callers that profile it
    program: dict = field(default_factory=dict, repr=False)


def _load_engine(model):
    from wavenet_edge.engine import Engine
    from wavenet_edge.tflite_file import load_model
    # the C implements profile tflm whatever the given engine's profile
    return Engine(load_model(model), profile="tflm")


def _softmax_exp_table(multiplier, left_shift, diff_min) -> np.ndarray:
    """int32[256]: exp_on_negative_values(x − max) in Q0.31 for ``max − x = 0 … 255`` (0 below
    diff_min, which makes the C kernel output −128 and add nothing to the sum, as TFLM does)."""
    from wavenet_edge.int8.fixedpoint import exp_on_negative_values, mbqm_greater_than_one
    t = np.zeros(256, np.int64)
    for k in range(256):
        d = -k
        if d >= diff_min:
            t[k] = exp_on_negative_values(mbqm_greater_than_one(d, multiplier, left_shift), 5)
    return t.astype(np.int32)


def exported_program(model) -> dict:
    """The step graph in the C export's layout: the engine's memory plan, parameters from the
    file (profile tflm); a dict of numpy arrays and scalars (see wavenet_model.h).  ``model`` as
    for :func:`export_c`."""
    from wavenet_edge.int8 import elementwise as ew

    eng = _load_engine(model)
    p = eng.program
    m = eng.model
    T = m.tensors
    path = eng.path
    graph_ops = [op for op in m.operators if op.opcode not in ("CONCATENATION", "RESHAPE")]
    # the engine may fuse the filter and gate FCs of a layer into one row (program.OP_FC2 = 8:
    # rows < n to ``out`` with params at p_off, the next ops[k, 11] rows to ``in1`` with params
    # at aux, weights/biases/multipliers contiguous); the C engine runs them as two FCs
    rows_in = []
    for r in np.asarray(p.ops):
        r = [int(v) for v in r]
        if r[0] == K_FC2:
            rows_in.append([K_FC, r[1], 0, r[3], r[4], r[5], r[6], r[7], r[8], r[9], 0, 0])
            rows_in.append([K_FC, r[1], 0, r[2], r[11], r[5], r[6] + r[4] * r[5], r[7] + r[4],
                            r[8] + r[4], r[10], 0, 0])
        elif r[0] in (K_GATHER, K_FC, K_ADD, K_LUT, K_SOFTMAX, K_COPY):
            rows_in.append(r)
        else:
            raise ModelFileError(f"engine program row kind {r[0]} is not known to the C export",
                                 path=path)
    n_rows = sum(1 for r in rows_in if r[0] != K_COPY)
    if len(graph_ops) != n_rows:
        raise ModelFileError("engine program and graph disagree (operator count)", path=path)

    def q(i):
        t = T[i]
        return float(t.scale[0]), int(t.zero_point[0])

    # Parameters come from the file itself with wavenet_edge.int8 (profile tflm), exactly as the
    # engine's program compiler derives them; from the engine's program only the memory plan
    # (arena offsets, aliasing, delay lines) and the operator order are taken, so the export
    # does not depend on how the engine lays out or pre-folds its own blobs.
    from wavenet_edge.int8 import activations as act_mod
    from wavenet_edge.int8 import requant as rq
    from wavenet_edge.int8 import softmax as sm

    ops, iparams, sm_tabs, luts = [], [], [], []
    wparts, bparts, mparts, sparts = [], [], [], []
    wlen = qlen = 0

    def add_w(a):
        nonlocal wlen
        a = np.ascontiguousarray(a, np.int8).ravel()
        wparts.append(a)
        wlen += a.size
        return wlen - a.size

    gi = 0
    for r in rows_in:
        kind = r[0]
        rec = dict(kind=0, aux=0, in0=r[1], in1=r[2], out=r[3], n=r[4], cols=r[5], w=0, q=0, p=0)
        if kind == K_COPY:
            rec.update(kind=K_COPY)
            ops.append(rec)
            continue
        op = graph_ops[gi]
        gi += 1
        if _ROW_KIND.get(op.opcode) != kind:
            raise ModelFileError(f"engine program row {len(ops)} ({kind}) does not match operator "
                                 f"{op.index} ({op.opcode})", path=path)
        act = op.options.get("fused_activation_function", "NONE")
        if op.opcode == "GATHER":
            data = np.asarray(T[op.inputs[0]].data, np.int8)
            if data.size // data.shape[0] != r[4]:
                raise ModelFileError(f"GATHER {op.index}: row size differs from the plan",
                                     path=path)
            rec.update(kind=K_GATHER, w=add_w(data), aux=r[10])
        elif op.opcode == "FULLY_CONNECTED":
            x, wi = op.inputs[0], op.inputs[1]
            W = T[wi]
            nout, nin = (int(v) for v in W.shape)
            if (nout, nin) != (r[4], r[5]):
                raise ModelFileError(f"FULLY_CONNECTED {op.index}: shape differs from the plan",
                                     path=path)
            wdata = np.asarray(W.data, np.int8).reshape(nout, nin)
            bias = (np.asarray(T[op.inputs[2]].data, np.int64).ravel()
                    if len(op.inputs) > 2 and op.inputs[2] >= 0 else np.zeros(nout, np.int64))
            xs, xzp = q(x)
            os_, ozp = q(op.outputs[0])
            # fold the input zero point: Σ w (x − zp) + b = Σ w x + (b − zp Σ w), int32 wrap
            folded = bias - xzp * wdata.astype(np.int64).sum(axis=1)
            folded = ((folded + 2**31) % 2**32 - 2**31).astype(np.int32)
            fp = rq.fc_params(xs, xzp, np.asarray(W.scale, np.float32), os_, ozp, act, "tflm",
                              n_out=nout)
            rec.update(kind=K_FC, w=add_w(wdata), q=qlen, p=len(iparams))
            iparams.extend([ozp, int(fp.act_min), int(fp.act_max)])
            bparts.append(folded)
            mparts.append(np.asarray(fp.multiplier, np.int32))
            sparts.append(np.asarray(fp.shift, np.int32))
            qlen += nout
        elif op.opcode in ("ADD", "MUL"):
            a, c, o = op.inputs[0], op.inputs[1], op.outputs[0]
            (s1, z1), (s2, z2), (so, zo) = q(a), q(c), q(o)
            if op.opcode == "ADD":
                ip = ew.add_params(s1, z1, s2, z2, so, zo, act, "tflm").ip
                vals = [int(v) for v in ip[:12]]
                if not (0 <= vals[2] <= 30) or vals[4] > 0 or vals[6] > 0 or vals[8] > 0:
                    raise ModelFileError(f"ADD {op.index}: shifts outside the reference range",
                                         path=path)
                rec.update(kind=K_ADD, in0=r[1], in1=r[2])
            else:
                ip = ew.mul_params(s1, z1, s2, z2, so, zo, act, "tflm").ip
                vals = [int(v) for v in ip[:7]]
                rec.update(kind=K_MUL, in0=r[1], in1=r[2])
            rec["p"] = len(iparams)
            iparams.extend(vals)
        elif op.opcode in ("TANH", "LOGISTIC"):
            (sa, za), (so, zo) = q(op.inputs[0]), q(op.outputs[0])
            fn = act_mod.tanh_table if op.opcode == "TANH" else act_mod.logistic_table
            luts.append(np.asarray(fn(sa, za, "tflm", out_scale=so, out_zp=zo), np.int8))
            rec.update(kind=K_LUT, aux=len(luts) - 1)
        elif op.opcode == "SOFTMAX":
            if r[4] != 256:
                raise ModelFileError("SOFTMAX must have 256 classes", path=path)
            (sa, _), (so, zo) = q(op.inputs[0]), q(op.outputs[0])
            sp = sm.softmax_params(sa, float(op.options.get("beta", 1.0)), "tflm",
                                   out_scale=so, out_zp=zo)
            sm_tabs.append(_softmax_exp_table(sp.multiplier, sp.left_shift, sp.diff_min))
            rec.update(kind=K_SOFTMAX, aux=len(sm_tabs) - 1)
        ops.append(rec)

    # delay lines: reads point at their write's ring (index into the writes)
    wr_ring = [int(v) for v in p.wr_ring]
    reads = [dict(dst=int(p.dl_read[k]), delay=int(p.dl_delay[k]), zero_point=int(p.dl_zp[k]),
                  write=wr_ring.index(int(p.dl_ring[k])))
             for k in range(len(p.dl_read))]
    writes = [dict(src=int(p.wr_src[k]), ring=int(p.wr_ring[k]), length=int(p.wr_len[k]),
                   width=int(p.wr_width[k])) for k in range(len(p.wr_src))]
    for r_ in reads:
        if int(p.dl_width[reads.index(r_)]) != writes[r_["write"]]["width"]:
            raise ModelFileError("delay-line read and write widths differ", path=path)
    # the C kernels rely on every FC/ADD/MUL multiplier being in [0, 2**31) (no SRDHM saturation)
    mult_all = np.concatenate(mparts) if mparts else np.zeros(1, np.int32)
    shift_all = np.concatenate(sparts) if sparts else np.zeros(1, np.int32)
    mults = [int(v) for v in mult_all]
    for o in ops:
        if o["kind"] == K_ADD:
            mults += [iparams[o["p"] + j] for j in (3, 5, 7)]
        elif o["kind"] == K_MUL:
            mults.append(iparams[o["p"] + 2])
    if mults and min(mults) < 0:
        raise ModelFileError("a requantization multiplier is negative", path=path)
    # ... and on right shifts of at most 31 (gemmlowp's RoundingDivideByPOT range)
    shifts = [int(v) for v in shift_all]
    for o in ops:
        if o["kind"] == K_ADD:
            shifts += [iparams[o["p"] + j] for j in (4, 6, 8)]
        elif o["kind"] == K_MUL:
            shifts.append(iparams[o["p"] + 3])
    if shifts and (min(shifts) < -31 or max(shifts) > 31):
        raise ModelFileError("a requantization shift is outside [-31, 31]", path=path)
    cfg = eng.config
    return dict(
        engine=eng, ops=ops,
        weights=np.concatenate(wparts) if wparts else np.zeros(1, np.int8),
        bias=np.concatenate(bparts) if bparts else np.zeros(1, np.int32),
        mult=mult_all, shift=shift_all,
        luts=(np.asarray(luts, np.int8).reshape(-1, 256) if luts
              else np.zeros((1, 256), np.int8)),
        iparams=np.asarray(iparams if iparams else [0], np.int64),
        softmax_exp=(np.asarray(sm_tabs, np.int32).reshape(-1, 256) if sm_tabs
                     else np.zeros((1, 256), np.int32)),
        reads=reads, writes=writes, arena_size=int(p.arena_size), ring_size=int(p.ring_size),
        probs_offset=int(p.probs_off), logits_offset=int(p.logits_off),
        logits_scale=float(p.logits_scale), logits_zero_point=int(p.logits_zero_point),
        n_speakers=int(cfg.gc_cardinality) if cfg.has_gc else 0,
        max_delay=max([r_["delay"] for r_ in reads] or [1]),
        silence_code=eng.silence_code(), sample_rate=int(eng.sample_rate),
        pcm16=np.clip(np.round(eng.decode(np.arange(256)).astype(np.float64) * 32767.0),
                      -32768, 32767).astype(np.int16),
        receptive_field=int(cfg.receptive_field),
        macs=int(sum(o["n"] * o["cols"] for o in ops if o["kind"] == K_FC)),
        write_names=_write_names(eng))


def _write_names(eng):
    names = []
    for dl in eng.metadata["delay_lines"]:
        if dl["write"] not in names:
            names.append(dl["write"])
    return names


# ------------------------------------------------------------------------------------------------
# C text
# ------------------------------------------------------------------------------------------------
def _c_array(ctype, name, values, per_line=24) -> str:
    vals = [int(v) for v in np.asarray(values).ravel().tolist()] or [0]
    if ctype == "int32_t":
        # INT32_MIN cannot be written as a literal; spell it as an expression
        txt = [("(-2147483647 - 1)" if v == -2147483648 else str(v)) for v in vals]
    else:
        txt = [str(v) for v in vals]
    lines = [", ".join(txt[i:i + per_line]) for i in range(0, len(txt), per_line)]
    return f"const {ctype} {name}[{len(vals)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def _model_h(d, kernels) -> str:
    nw = len(d["writes"])
    return f"""/* wavenet-edge model data (generated by firmware_sim.c_export; do not edit). */
#ifndef WAVENET_MODEL_H
#define WAVENET_MODEL_H

#include <stdint.h>

#define WN_ARENA_SIZE {d['arena_size']}      /* bytes of int8 activations per step */
#define WN_RING_SIZE {d['ring_size']}       /* bytes of delay-line rings */
#define WN_N_OPS {len(d['ops'])}
#define WN_N_READS {len(d['reads'])}
#define WN_N_WRITES {nw}
#define WN_N_WRITES_ALLOC {max(nw, 1)}
#define WN_MAX_DELAY {d['max_delay']}u
#define WN_PROBS_OFFSET {d['probs_offset']}
#define WN_LOGITS_OFFSET {d['logits_offset']}
#define WN_LOGITS_SCALE {d['logits_scale']!r}f
#define WN_LOGITS_ZERO_POINT {d['logits_zero_point']}
#define WN_N_SPEAKERS {d['n_speakers']}          /* 0: no global conditioning */
#define WN_SILENCE_CODE {d['silence_code']}      /* class index of 0.0 (mu-law) */
#define WN_SAMPLE_RATE {d['sample_rate']}
#define WN_RECEPTIVE_FIELD {d['receptive_field']}
#define WN_MACS_PER_SAMPLE {d['macs']}
#define WN_HAS_TEMPERATURE_TABLE {1 if d.get('temperature_table') is not None else 0}

#ifndef WN_KERNELS
#define WN_KERNELS {KERNELS[kernels]}   /* 0 auto, 1 plain C, 2 DSP, 3 MVE */
#endif

enum {{ WN_OP_GATHER = 1, WN_OP_FC = 2, WN_OP_ADD = 3, WN_OP_MUL = 4, WN_OP_LUT = 5,
       WN_OP_SOFTMAX = 6, WN_OP_COPY = 7 }};

/* One operator: arena byte offsets in0/in1/out, n outputs; FC: cols inputs, weights at w,
 * bias/multiplier/shift at q, [zp, min, max] at iparams[p]; GATHER: table at w, aux 1 = speaker;
 * ADD/MUL: parameters at iparams[p]; LUT: table aux; SOFTMAX: exp table aux. */
typedef struct {{
    int32_t kind, aux, in0, in1, out, n, cols, w, q, p;
}} wn_op;

typedef struct {{ int32_t dst, delay, zero_point, write; }} wn_dl_read;
typedef struct {{ int32_t src, ring, length, width; }} wn_dl_write;

extern const wn_op wn_ops[];
extern const wn_dl_read wn_dl_reads[];
extern const wn_dl_write wn_dl_writes[];
extern const int8_t wn_weights[];
extern const int32_t wn_bias[];
extern const int32_t wn_mult[];
extern const int32_t wn_shift[];
extern const int32_t wn_iparams[];
extern const int8_t wn_luts[];
extern const int32_t wn_softmax_exp[];
extern const int32_t wn_temperature_table[];
extern const int16_t wn_pcm16[256];   /* class index -> 16-bit PCM (the model's mu-law decode) */

#endif
"""


def _model_c(d) -> str:
    parts = ["/* wavenet-edge model data (generated by firmware_sim.c_export; do not edit). */\n"
             "#include \"wavenet_model.h\"\n\n"]
    fields = ("kind", "aux", "in0", "in1", "out", "n", "cols", "w", "q", "p")
    parts.append("const wn_op wn_ops[] = {\n" + ",\n".join(
        "    {" + ", ".join(str(o[f]) for f in fields) + "}" for o in d["ops"]) + "\n};\n")
    reads = d["reads"] or [dict(dst=0, delay=1, zero_point=0, write=0)]
    parts.append("const wn_dl_read wn_dl_reads[] = {\n" + ",\n".join(
        f"    {{{r['dst']}, {r['delay']}, {r['zero_point']}, {r['write']}}}" for r in reads)
        + "\n};\n")
    writes = d["writes"] or [dict(src=0, ring=0, length=1, width=0)]
    parts.append("const wn_dl_write wn_dl_writes[] = {\n" + ",\n".join(
        f"    {{{w['src']}, {w['ring']}, {w['length']}, {w['width']}}}" for w in writes) + "\n};\n")
    parts.append(_c_array("int8_t", "wn_weights", d["weights"]))
    parts.append(_c_array("int32_t", "wn_bias", d["bias"], 12))
    parts.append(_c_array("int32_t", "wn_mult", d["mult"], 12))
    parts.append(_c_array("int32_t", "wn_shift", d["shift"]))
    parts.append(_c_array("int32_t", "wn_iparams", d["iparams"], 12))
    parts.append(_c_array("int8_t", "wn_luts", d["luts"]))
    parts.append(_c_array("int32_t", "wn_softmax_exp", d["softmax_exp"], 12))
    parts.append(_c_array("int16_t", "wn_pcm16", d["pcm16"], 16))
    tt = d.get("temperature_table")
    parts.append(_c_array("int32_t", "wn_temperature_table", tt if tt is not None else [0], 12))
    return "\n".join(parts)


def _flash_bytes(d) -> int:
    return int(len(d["ops"]) * 40 + max(len(d["reads"]), 1) * 16 + max(len(d["writes"]), 1) * 16
               + d["weights"].size + 4 * (d["bias"].size + d["mult"].size + d["shift"].size
                                          + d["iparams"].size + d["softmax_exp"].size)
               + d["luts"].size + 2 * 256
               + (4 * 256 if d.get("temperature_table") is not None else 4))


def _readme(d, kernels, flash, state) -> str:
    gc = (f"Global conditioning: call `wn_set_speaker(&s, id)` with 0 ≤ id < {d['n_speakers']} "
          "before stepping.\n" if d["n_speakers"] else "")
    tt = ("`wn_temperature_table` holds the integer weights for the export's temperature "
          "(mode `WN_SAMPLE_TABLE`).\n" if d.get("temperature_table") is not None else "")
    return f"""# wavenet-edge C step engine

Generated by `firmware_sim.c_export` from the int8 step graph. Bit-exact with
`wavenet_edge.Engine(..., profile="tflm")` (TFLM reference arithmetic): probabilities, logits and
every delay-line write, at every step.

| | |
|---|---|
| MACs per sample | {d['macs']} |
| operators per step | {len(d['ops'])} |
| const data (flash) | {flash} bytes (+ code, a few KB) |
| `wn_state` (RAM) | {state} bytes (arena {d['arena_size']} + delay-line rings \
{d['ring_size']} + positions) |
| delay lines | {len(d['reads'])} reads of {len(d['writes'])} writes, longest delay \
{d['max_delay']} samples |
| sample rate | {d['sample_rate']} Hz, receptive field {d['receptive_field']} samples |

## API (`wavenet_engine.h`)

```c
static wn_state s;                       /* no heap: static or caller-owned */
wn_sampler r;
int32_t code = WN_SILENCE_CODE;
wn_reset(&s);
wn_sampler_init(&r, /*seed*/ 1234, /*stream*/ 0, WN_SAMPLE_PROBS, 0);
for (;;) {{
    wn_step(&s, code, 0, 0);             /* or pass int8_t probs[256], logits[256] */
    code = wn_sample(&r, wn_probs(&s), wn_logits(&s));
    /* code: class index 0..255 of the next sample; wn_pcm16[code] is its 16-bit PCM value */
}}
```

`wn_sample` mirrors `wavenet_edge.sampling` (PCG32 + integer inverse CDF): the same seed gives the
same codes as `Engine.generate(n, seed=..., temperature=1)` (mode `WN_SAMPLE_PROBS`), or greedy
(`WN_SAMPLE_GREEDY`). {tt}{gc}
## Build

Sources: `wavenet_model.c`, `wavenet_engine.c` (C99; only `memcpy`/`memset` from libc). Compiles
warning-free with `-std=c99 -Wall -Wextra -Werror`, for the host and for `arm-none-eabi-gcc`.

Kernel variant: `WN_KERNELS` (default {KERNELS[kernels]} = {kernels!r} from the export; override
with `-DWN_KERNELS=n`): 0 auto (MVE if `__ARM_FEATURE_MVE`, else DSP if `__ARM_FEATURE_DSP`,
else plain),
1 plain C, 2 Arm DSP extension (SXTB16/SMLAD; Cortex-M4/M7/M33/M55), 3 MVE/Helium (Cortex-M55/M85,
`-mcpu=cortex-m55`). All variants compute identical outputs.
"""


def export_c(model, out_dir, *, kernels: str = "auto", temperature: float = 1.0) -> ExportResult:
    """Write the C99 step engine for ``model`` into ``out_dir`` (created if missing).

    model : ``.tflite`` path, its bytes, a parsed ``TFLiteModel`` or an :class:`Engine`
    kernels : default kernel variant compiled in: ``"auto"`` (by the compiler's target features),
        ``"plain"``, ``"dsp"`` or ``"mve"``; ``-DWN_KERNELS=n`` overrides it at build time
    temperature : embeds ``wn_temperature_table`` for this temperature when it is not 0 or 1
        (integer weights, :func:`wavenet_edge.sampling.temperature_table`)
    """
    if kernels not in KERNELS:
        raise ConfigError(f"unknown kernels {kernels!r}; known: {', '.join(KERNELS)}")
    from wavenet_edge.sampling import sampling_mode
    d = exported_program(model)
    mode, table = sampling_mode(temperature, d["logits_scale"])
    d["temperature_table"] = np.asarray(table, np.int64) if mode == 1 else None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    flash = _flash_bytes(d)
    nw = len(d["writes"])
    state = d["arena_size"] + d["ring_size"] + 4 * max(nw, 1) + 12
    texts = {
        "wavenet_model.h": _model_h(d, kernels),
        "wavenet_model.c": _model_c(d),
        "wavenet_engine.h": (_C_DIR / "wavenet_engine.h").read_text(),
        "wavenet_engine.c": (_C_DIR / "wavenet_engine.c").read_text(),
        "README.md": _readme(d, kernels, flash, state),
    }
    files = {}
    for name, txt in texts.items():
        with atomic_write(out / name, "w") as f:
            f.write(txt)
        os.chmod(out / name, 0o644)   # sources, not secrets (the temporary file was 0600)
        files[name] = str(out / name)
    return ExportResult(out_dir=str(out), files=files, kernels=kernels, flash_bytes=flash,
                        state_bytes=state, macs_per_sample=d["macs"], n_ops=len(d["ops"]),
                        write_widths=[w["width"] for w in d["writes"]],
                        silence_code=d["silence_code"], n_speakers=d["n_speakers"], program=d)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def register_export_c(subparsers) -> None:
    """Add the ``export-c`` sub-command."""
    import argparse
    p = subparsers.add_parser(
        "export-c",
        help="write a self-contained C99 step engine for a .tflite (bit-exact, no heap)",
        description="Writes wavenet_model.h/.c (const data), wavenet_engine.h/.c (code) and a "
                    "README into the output directory; the C computes exactly what the Numba "
                    "engine (profile tflm) computes.")
    p.add_argument("model", metavar="MODEL.tflite")
    # -o like every other command; the positional form of earlier releases keeps working
    p.add_argument("out_dir", metavar="OUT_DIR", nargs="?", default=None,
                   help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", metavar="DIR", default=None,
                   help="output directory, created if missing (default: <model name>-c in the "
                        "current directory)")
    p.add_argument("--kernels", choices=list(KERNELS), default="auto",
                   help="default kernel variant (auto: by the compiler's target features)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="embed the integer temperature table for this temperature (default 1)")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    out = args.output or args.out_dir
    if (args.output and args.out_dir
            and os.path.abspath(args.output) != os.path.abspath(args.out_dir)):
        raise ConfigError(f"two output directories given ({args.out_dir} and -o {args.output})")
    if out is None:
        out = os.path.splitext(os.path.basename(os.fspath(args.model).rstrip("/\\")))[0] + "-c"
    r = export_c(args.model, out, kernels=args.kernels, temperature=args.temperature)
    print(f"wrote {len(r.files)} files to {r.out_dir}: {r.macs_per_sample} MACs/sample, "
          f"{r.n_ops} ops, const data {r.flash_bytes} B, wn_state {r.state_bytes} B")
    return 0
