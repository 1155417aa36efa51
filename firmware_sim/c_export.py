"""Export a wavenet-edge ``.tflite`` step graph as a self-contained C99 step engine.

The export writes the lowered int8 program (:func:`wavenet_edge.lowered.lower`, profile
``tflm``) as it is: its operator records (the C ``wn_op`` kinds are :class:`OpKind`), arena
offsets (CONCATENATION and RESHAPE are free by aliasing), delay-line records, int8 weights,
biases with the input zero point folded in, per-channel multipliers/shifts, TANH/LOGISTIC
tables, the ADD/MUL parameter vectors of :mod:`wavenet_edge.int8.elementwise` (slot names
emitted as ``WN_ADD_*``/``WN_MUL_*`` macros) and the SOFTMAX exponential table (256 int32; the
normalization stays in C fixed point).  The Numba engine runs the same program, so the C
computes exactly what ``Engine.from_file(path, profile="tflm")`` computes (probabilities,
logits, every delay-line write); the export derives no arithmetic of its own, it only checks
that the values lie in the ranges the C kernels assume.

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
from wavenet_edge.int8 import elementwise as ew
from wavenet_edge.lowered import FC_MAX, FC_MIN, FC_ZP, OpKind

from . import c_export_dsp as dsp
from . import c_export_mve as mve

__all__ = ["export_c", "ExportResult", "KERNELS", "register_export_c", "exported_program",
           "state_bytes", "frame_state_bytes", "flash_bytes", "model_macros",
           "quantize_features", "COND_FILES"]

_C_DIR = Path(__file__).parent / "c"
#: the conditioning sources a vocoder's export adds (frame interpreter, cond row)
COND_FILES = ("wavenet_cond.h", "wavenet_cond.c")
KERNELS = {"auto": 0, "plain": 1, "dsp": 2, "mve": 3}

#: the ``wn_op`` fields of wavenet_model.h, in struct order (names of the program's records)
OP_FIELDS = ("kind", "aux", "in0", "in1", "out", "n", "cols", "w", "q", "p")
READ_FIELDS = ("dst", "delay", "zero_point", "write")
WRITE_FIELDS = ("src", "ring", "length", "width")
#: kinds the C engine executes
C_KINDS = (OpKind.GATHER, OpKind.FC, OpKind.ADD, OpKind.MUL, OpKind.LUT, OpKind.SOFTMAX,
           OpKind.COPY)
#: parameter slots the C ADD/MUL kernels read, by their int8 names (``WN_<OP>_<NAME>`` macros)
ADD_SLOTS = {"Z1": ew.A_Z1, "Z2": ew.A_Z2, "LEFT": ew.A_LEFT, "M1": ew.A_M1, "S1": ew.A_S1,
             "M2": ew.A_M2, "S2": ew.A_S2, "MO": ew.A_MO, "SO": ew.A_SO, "ZO": ew.A_ZO,
             "MIN": ew.A_MIN, "MAX": ew.A_MAX}
MUL_SLOTS = {"Z1": ew.M_Z1, "Z2": ew.M_Z2, "M": ew.M_M, "S": ew.M_S, "ZO": ew.M_ZO,
             "MIN": ew.M_MIN, "MAX": ew.M_MAX}


@dataclass
class ExportResult:
    """What :func:`export_c` wrote.

    out_dir : directory of the export; files : {name: path}
    kernels : requested kernel variant ("auto", "plain", "dsp", "mve")
    flash_bytes : const data (weights, biases, multipliers, tables, operator list), bytes
    flash_bytes_dsp : the same for a DSP build (int16 weights and records instead of the int8
        weight blob, :mod:`firmware_sim.c_export_dsp`)
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
    flash_bytes_dsp: int = 0
    #: the exported program (:func:`exported_program`), for callers that profile it
    program: dict = field(default_factory=dict, repr=False)
    #: vocoders: RAM of one ``wn_frame_state`` (frame arena + frame delay lines), bytes, and
    #: the frame program's MACs per call (one call per ``hop`` samples); 0 otherwise
    frame_state_bytes: int = 0
    frame_macs: int = 0
    hop: int = 0


def _load_engine(model):
    from wavenet_edge.engine import Engine
    from wavenet_edge.tflite_file import load_model
    # the C implements profile tflm whatever the given engine's profile
    return Engine(load_model(model), profile="tflm")


def _check_ranges(p, path):
    """The C kernels assume what TFLM's reference kernels assume: every requantization
    multiplier in [0, 2**31) (no SRDHM saturation), shifts within [-31, 31], ADD's input
    shifts non-positive and its left shift in [0, 30], 256 SOFTMAX classes."""
    ip = p.iparams
    mults, shifts = [int(v) for v in p.mult], [int(v) for v in p.shift]
    for r in p.ops:
        k, o = int(r["kind"]), int(r["p"])
        if k == OpKind.ADD:
            if (not 0 <= ip[o + ew.A_LEFT] <= 30 or ip[o + ew.A_S1] > 0 or ip[o + ew.A_S2] > 0
                    or ip[o + ew.A_SO] > 0):
                raise ModelFileError(f"ADD at arena {int(r['out'])}: shifts outside the "
                                     f"reference range", path=path)
            mults += [int(ip[o + j]) for j in (ew.A_M1, ew.A_M2, ew.A_MO)]
            shifts += [int(ip[o + j]) for j in (ew.A_S1, ew.A_S2, ew.A_SO)]
        elif k == OpKind.MUL:
            mults.append(int(ip[o + ew.M_M]))
            shifts.append(int(ip[o + ew.M_S]))
        elif k == OpKind.SOFTMAX and int(r["n"]) != 256:
            raise ModelFileError("SOFTMAX must have 256 classes", path=path)
        elif k not in C_KINDS:
            raise ModelFileError(f"program row kind {k} is not known to the C export", path=path)
    if mults and min(mults) < 0:
        raise ModelFileError("a requantization multiplier is negative", path=path)
    if shifts and (min(shifts) < -31 or max(shifts) > 31):
        raise ModelFileError("a requantization shift is outside [-31, 31]", path=path)
    if any(int(p.writes[int(r["write"])]["width"]) != int(r["width"]) for r in p.reads):
        raise ModelFileError("delay-line read and write widths differ", path=path)


def _set_sampling(d, temperature) -> None:
    """The sampler's table for ``temperature`` into ``d`` (sample_table, sample_mode,
    sample_temperature): greedy (0) keeps the temperature-1 table for a switch at run time."""
    from wavenet_edge.sampling import MODE_TABLE, sampling_mode
    mode, table = sampling_mode(temperature, d["logits_scale"])
    if mode != MODE_TABLE:
        table = sampling_mode(1.0, d["logits_scale"])[1]
    d["sample_table"] = np.asarray(table, np.int64)
    d["sample_mode"] = int(mode)
    d["sample_temperature"] = float(temperature) if mode == MODE_TABLE else 1.0


def exported_program(model) -> dict:
    """What the C export writes: the lowered program (profile tflm, ``"program"``) and, as in
    wavenet_model.h, its arrays (``ops``/``reads``/``writes`` are the program's records) plus
    the model's constants.  ``model`` as for :func:`export_c`."""
    eng = _load_engine(model)
    p = eng.program
    _check_ranges(p, eng.path)
    cfg = eng.config
    d = dict(
        engine=eng, program=p, ops=p.ops, weights=p.wblob, bias=p.bblob, mult=p.mult,
        shift=p.shift, luts=p.tables, iparams=p.iparams, softmax_exp=p.sm_exps,
        reads=p.reads, writes=p.writes, arena_size=int(p.arena_size),
        ring_size=int(p.ring_size), probs_offset=int(p.probs_off),
        logits_offset=int(p.logits_off), logits_scale=float(p.logits_scale),
        logits_zero_point=int(p.logits_zero_point),
        n_speakers=int(cfg.gc_cardinality) if cfg.has_gc else 0,
        max_delay=int(max(p.reads["delay"], default=1)),
        silence_code=eng.silence_code(), sample_rate=int(eng.sr),
        pcm16=np.clip(np.round(eng.decode(np.arange(256)).astype(np.float64) * 32767.0),
                      -32768, 32767).astype(np.int16),
        receptive_field=int(cfg.receptive_field), macs=int(p.macs_per_sample),
        write_names=list(p.write_names), dsp=dsp.dsp_layout(p), cond=None)
    if cfg.has_cond:
        d["cond"] = _cond_part(eng)
    _set_sampling(d, 1.0)
    return d


#: kinds the frame program's interpreter (c/wavenet_cond.c) executes
FRAME_KINDS = (OpKind.FC, OpKind.COPY)


def _cond_part(eng) -> dict:
    """The conditioning of a vocoder as the C export writes it: the step's cond input (arena
    offset, channels), the hop, the host's feature quantization and, with an upsampler, the
    lowered frame program (``"frames"``: its records and parameter arrays, as for the step)."""
    sh, cfg = eng._shared, eng.config
    feats = sh.cond_meta.get("features") or {}
    c = dict(offset=int(sh.cond_off), channels=int(cfg.cin_channels),
             hop=int(cfg.hop) if sh.frames is not None else 1, cin_pad=int(cfg.cin_pad),
             upsampler=str(cfg.upsampler), feature_scale=float(feats.get("scale", 1.0)),
             feature_zero_point=int(feats.get("zero_point", 0)), frames=None, frame_macs=0)
    if sh.frames is None:
        return c
    fp = sh.frames[0]
    p = fp.program
    for r in p.ops:
        if int(r["kind"]) not in FRAME_KINDS:
            raise ModelFileError(f"frame graph row kind {OpKind(int(r['kind'])).name} is not "
                                 f"known to the C export's frame interpreter (FC, COPY only)",
                                 path=eng.path)
    _check_ranges(p, eng.path)
    if (fp.feature_scale, fp.feature_zero_point) != (c["feature_scale"],
                                                     c["feature_zero_point"]):
        raise ModelFileError("the frame graph's feature quantization differs from the cond "
                             "input's", path=eng.path)
    c.update(frame_macs=int(p.macs_per_sample), frames=dict(
        program=p, ops=p.ops, reads=p.reads, writes=p.writes, weights=p.wblob, bias=p.bblob,
        mult=p.mult, shift=p.shift, iparams=p.iparams, arena_size=int(p.arena_size),
        ring_size=int(p.ring_size), input_offset=int(fp.frames_off),
        input_size=int(fp.frames_size), block_offset=int(fp.block_off),
        frames_per_call=int(fp.frames_per_call), block_delay=int(fp.block_delay),
        ahead=int(fp.ahead), lookahead_frames=int(fp.lookahead_frames),
        max_delay=int(max(p.reads["delay"], default=1))))
    return c


def quantize_features(d, features) -> np.ndarray:
    """float features (frames, cin) -> the int8 frames the device takes (the host's side of the
    C export: ``round(x / scale) + zero_point``, ties to even, saturated; the engine's and
    every contract host's formula).  ``d``: :func:`exported_program` of a vocoder."""
    c = d["cond"]
    if c is None:
        raise ConfigError("the model has no local conditioning")
    q = (np.round(np.asarray(features, np.float64) / c["feature_scale"])
         + c["feature_zero_point"])
    return np.clip(q, -128, 127).astype(np.int8)


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


def _kind_enum() -> str:
    return ", ".join(f"WN_OP_{k.name} = {int(k)}" for k in C_KINDS)


def _slot_macros() -> str:
    slots = [("FC_ZP", FC_ZP), ("FC_MIN", FC_MIN), ("FC_MAX", FC_MAX)]
    slots += [(f"ADD_{n}", v) for n, v in ADD_SLOTS.items()]
    slots += [(f"MUL_{n}", v) for n, v in MUL_SLOTS.items()]
    return "\n".join(f"#define WN_{n} {v}" for n, v in slots)


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
#define WN_SAMPLE_TEMPERATURE {d['sample_temperature']!r}f /* wn_sample_table's temperature */
#define WN_SAMPLE_MODE {d['sample_mode']}  /* the export's mode: 1 WN_SAMPLE_TABLE, 2 WN_SAMPLE_GREEDY */

#ifndef WN_KERNELS
#define WN_KERNELS {KERNELS[kernels]}   /* 0 auto, 1 plain C, 2 DSP, 3 MVE */
#endif
#if WN_KERNELS == 0   /* auto: by the compiler's target features (here, so the data follows) */
#undef WN_KERNELS
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define WN_KERNELS 3
#elif defined(__ARM_FEATURE_DSP)
#define WN_KERNELS 2
#else
#define WN_KERNELS 1
#endif
#endif

enum {{ {_kind_enum()} }};

/* parameter slots of an FC, ADD and MUL at iparams[p] (wavenet_edge.lowered / int8.elementwise) */
{_slot_macros()}

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
extern const uint16_t wn_sample_table[256]; /* sampling weights table[qmax - logit] (Q15) */
#if {mve.MVE_GUARD}
extern const int32_t wn_rq[];   /* MVE: FC requantization per 4 rows (firmware_sim.c_export_mve) */
#endif
extern const int16_t wn_pcm16[256];   /* class index -> 16-bit PCM (the model's mu-law decode) */
{_dsp_h(d)}{_cond_h(d)}
#endif
"""


def _cond_h(d) -> str:
    c = d["cond"]
    if c is None:
        return "\n#define WN_HAS_COND 0\n#define WN_HAS_FRAMES 0\n"
    f = c["frames"]
    txt = f"""
/* local conditioning (a vocoder; firmware_sim/c/wavenet_cond.h says who does what) */
#define WN_HAS_COND 1
#define WN_COND_OFFSET {c['offset']}        /* arena offset of the step's int8 cond row */
#define WN_COND_CHANNELS {c['channels']}
#define WN_HOP {c['hop']}                 /* samples per feature frame (1: features at sample rate) */
#define WN_CIN_PAD {c['cin_pad']}             /* padding frames at each end of the features */
#define WN_FEATURE_SCALE {c['feature_scale']!r}  /* host: q = round(x / scale) + zero point */
#define WN_FEATURE_ZERO_POINT {c['feature_zero_point']}
#define WN_HAS_FRAMES {0 if f is None else 1}
"""
    if f is None:
        return txt
    nw = len(f["writes"])
    return txt + f"""#define WN_FRAME_K {f['frames_per_call']}              /* padded frames per wn_frame call */
#define WN_FRAME_INPUT_OFFSET {f['input_offset']}
#define WN_FRAME_INPUT_SIZE {f['input_size']}   /* WN_FRAME_K x WN_COND_CHANNELS bytes */
#define WN_FRAME_BLOCK_OFFSET {f['block_offset']}  /* [WN_COND_CHANNELS][WN_HOP] channel-major */
#define WN_FRAME_BLOCK_DELAY {f['block_delay']}    /* calls before frame 0's block */
#define WN_FRAME_LOOKAHEAD {f['lookahead_frames']}      /* frames past frame f needed for its samples */
#define WN_FRAME_ARENA_SIZE {f['arena_size']}
#define WN_FRAME_RING_SIZE {f['ring_size']}
#define WN_FRAME_RING_ALLOC {max(f['ring_size'], 1)}
#define WN_FRAME_N_OPS {len(f['ops'])}
#define WN_FRAME_N_READS {len(f['reads'])}
#define WN_FRAME_N_WRITES {nw}
#define WN_FRAME_N_WRITES_ALLOC {max(nw, 1)}
#define WN_FRAME_MAX_DELAY {f['max_delay']}u
#define WN_FRAME_MACS {c['frame_macs']}         /* int8 MACs per frame call */
extern const wn_op wn_frame_ops[];
extern const wn_dl_read wn_frame_reads[];
extern const wn_dl_write wn_frame_writes[];
extern const int8_t wn_frame_weights[];
extern const int32_t wn_frame_bias[];
extern const int32_t wn_frame_mult[];
extern const int32_t wn_frame_shift[];
extern const int32_t wn_frame_iparams[];
"""


def _frame_c(d) -> str:
    """The frame program's arrays (int8 weights in every kernel variant: wn_fc reads them)."""
    c = d.get("cond")
    if c is None or c["frames"] is None:
        return ""
    f = c["frames"]
    return ("/* the frame program (wavenet_edge.lowered.lower_frames) */\n"
            + _c_records("wn_op", "wn_frame_ops", f["ops"], OP_FIELDS, None)
            + _c_records("wn_dl_read", "wn_frame_reads", f["reads"], READ_FIELDS,
                         dict(dst=0, delay=1, zero_point=0, write=0))
            + _c_records("wn_dl_write", "wn_frame_writes", f["writes"], WRITE_FIELDS,
                         dict(src=0, ring=0, length=1, width=0))
            + _c_array("int8_t", "wn_frame_weights", f["weights"])
            + _c_array("int32_t", "wn_frame_bias", f["bias"], 12)
            + _c_array("int32_t", "wn_frame_mult", f["mult"], 12)
            + _c_array("int32_t", "wn_frame_shift", f["shift"])
            + _c_array("int32_t", "wn_frame_iparams", f["iparams"], 12))


def _frame_flash_bytes(d) -> int:
    c = d.get("cond")
    if c is None or c["frames"] is None:
        return 0
    f = c["frames"]

    def arr(a, itemsize):
        return max(int(np.asarray(a).size), 1) * itemsize
    return int(max(len(f["ops"]), 1) * 4 * len(OP_FIELDS)
               + max(len(f["reads"]), 1) * 4 * len(READ_FIELDS)
               + max(len(f["writes"]), 1) * 4 * len(WRITE_FIELDS)
               + arr(f["weights"], 1) + arr(f["bias"], 4) + arr(f["mult"], 4)
               + arr(f["shift"], 4) + arr(f["iparams"], 4))


def _c_records(ctype, name, records, fields, empty) -> str:
    """``const ctype name[] = {{...}, ...};`` of the named fields of each record (``empty``:
    the one placeholder an empty array gets, as C has no zero-length arrays)."""
    rows = [[int(r[f]) for f in fields] for r in records] or [[empty[f] for f in fields]]
    return (f"const {ctype} {name}[] = {{\n" + ",\n".join(
        "    {" + ", ".join(str(v) for v in row) + "}" for row in rows) + "\n};\n")


def _dsp_h(d) -> str:
    return f"""
#if WN_KERNELS == 2
/* Arm DSP kernels' data (firmware_sim/c_export_dsp.py): FC weights pre-extended to int16 pairs
 * (the int8 blob is not compiled in), requantization records, ADD/MUL records, GATHER tables;
 * one record per operator (NULL where it has none). */
#define WN_DSP_MAX_COLS {d['dsp']['max_cols']}
#define WN_DSP_FAST {dsp.FAST}   /* record flag: the exact cheaper requantization applies */
#define WN_DSP_FULL {dsp.FULL}   /* record flag: the clamp is the whole int8 range */
typedef struct {{
    const int32_t *w, *rq, *ew;
    const int8_t *tab;
    int32_t flags;
}} wn_dsp_rec;
extern const wn_dsp_rec wn_dsp[];
extern const int32_t wn_w16[];
extern const int32_t wn_rq16[];
extern const int32_t wn_ew16[];
extern const int8_t wn_tab8[];
#endif
"""


def _dsp_c(d) -> str:
    lay = d["dsp"]
    names = ("wn_w16", "wn_rq16", "wn_ew16", "wn_tab8")
    rows = []
    for rec in lay["recs"]:
        ptrs = [f"{nm} + {off}" if off >= 0 else "0" for nm, off in zip(names, rec[:4])]
        rows.append("    {" + ", ".join(ptrs) + f", {rec[4]}}}")
    return ("#if WN_KERNELS == 2\n" + _c_array("int32_t", "wn_w16", lay["w16"], 12)
            + _c_array("int32_t", "wn_rq16", lay["rq"], 12)
            + _c_array("int32_t", "wn_ew16", lay["ew"], 12)
            + _c_array("int8_t", "wn_tab8", lay["tab"])
            + "const wn_dsp_rec wn_dsp[] = {\n" + ",\n".join(rows) + "\n};\n#endif\n")


def _model_c(d) -> str:
    parts = ["/* wavenet-edge model data (generated by firmware_sim.c_export; do not edit). */\n"
             "#include \"wavenet_model.h\"\n\n"]
    parts.append(_c_records("wn_op", "wn_ops", d["ops"], OP_FIELDS, None))
    parts.append(_c_records("wn_dl_read", "wn_dl_reads", d["reads"], READ_FIELDS,
                            dict(dst=0, delay=1, zero_point=0, write=0)))
    parts.append(_c_records("wn_dl_write", "wn_dl_writes", d["writes"], WRITE_FIELDS,
                            dict(src=0, ring=0, length=1, width=0)))
    parts.append("#if WN_KERNELS != 2\n" + _c_array("int8_t", "wn_weights", d["weights"])
                 + "#endif\n")
    parts.append(_c_array("int32_t", "wn_bias", d["bias"], 12))
    parts.append(_c_array("int32_t", "wn_mult", d["mult"], 12))
    parts.append(_c_array("int32_t", "wn_shift", d["shift"]))
    parts.append(_c_array("int32_t", "wn_iparams", d["iparams"], 12))
    parts.append(_c_array("int8_t", "wn_luts", d["luts"]))
    parts.append(_c_array("int32_t", "wn_softmax_exp", d["softmax_exp"], 12))
    parts.append(_c_array("int16_t", "wn_pcm16", d["pcm16"], 16))
    parts.append(_c_array("uint16_t", "wn_sample_table", d["sample_table"], 16))
    parts.append(f"#if {mve.MVE_GUARD}\n"
                 + _c_array("int32_t", "wn_rq", mve.requant_groups(d["ops"], d["bias"], d["mult"],
                                                                 d["shift"]), 12) + "#endif\n")
    parts.append(_dsp_c(d))
    parts.append(_frame_c(d))
    return "\n".join(parts)


#: (size, alignment) of the C types a ``wn_state`` field may have, 32-bit Arm (AAPCS) ABI
_C_TYPES = {"int8_t": (1, 1), "uint8_t": (1, 1), "int16_t": (2, 2), "uint16_t": (2, 2),
            "int32_t": (4, 4), "uint32_t": (4, 4), "int64_t": (8, 8), "uint64_t": (8, 8),
            "float": (4, 4), "double": (8, 8)}


def model_macros(d) -> dict:
    """The integer size macros of ``wavenet_model.h`` for the program ``d``."""
    nw = len(d["writes"])
    return {"WN_ARENA_SIZE": int(d["arena_size"]), "WN_RING_SIZE": int(d["ring_size"]),
            "WN_N_OPS": len(d["ops"]), "WN_N_READS": len(d["reads"]), "WN_N_WRITES": nw,
            "WN_N_WRITES_ALLOC": max(nw, 1)}


def _state_fields(header: str, struct: str = "wn_state") -> list:
    """``[(ctype, count expression or None)]`` of the ``struct`` typedef in ``header``."""
    import re
    m = re.search(r"typedef\s+struct\s*\{([^{}]*)\}\s*" + struct + r"\s*;", header)
    if m is None:
        raise ConfigError(f"the engine header has no 'typedef struct {{...}} {struct};'")
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    out = []
    for decl in body.split(";"):
        decl = decl.strip()
        if not decl:
            continue
        f = re.fullmatch(r"(\w+)\s+(\w+)\s*(?:\[\s*([^\]]+)\s*\])?", decl)
        if f is None or f.group(1) not in _C_TYPES:
            raise ConfigError(f"{struct} field {decl!r}: state_bytes knows only fixed-width "
                              "integer and float fields (update firmware_sim.c_export)")
        out.append((f.group(1), f.group(3)))
    return out


def state_bytes(d, header: str | None = None) -> int:
    """``sizeof(wn_state)`` for the program ``d`` (:func:`exported_program`), bytes: the struct
    of ``wavenet_engine.h`` laid out by the C rules (each field at a multiple of its alignment,
    the whole rounded up to the largest alignment), array lengths from the model's macros.
    ``header``: the header text (default: the one the export ships)."""
    if header is None:
        header = (_C_DIR / "wavenet_engine.h").read_text()
    return _struct_bytes(_state_fields(header), model_macros(d))


def frame_state_bytes(d, header: str | None = None) -> int:
    """``sizeof(wn_frame_state)`` (c/wavenet_cond.h) of a vocoder with an upsampler, bytes (0
    without a frame program): the frame arena, its delay-line rings and positions."""
    c = d.get("cond")
    if c is None or c["frames"] is None:
        return 0
    f = c["frames"]
    if header is None:
        header = (_C_DIR / "wavenet_cond.h").read_text()
    nw = len(f["writes"])
    macros = {"WN_FRAME_ARENA_SIZE": int(f["arena_size"]),
              "WN_FRAME_RING_ALLOC": max(int(f["ring_size"]), 1),
              "WN_FRAME_N_WRITES_ALLOC": max(nw, 1)}
    return _struct_bytes(_state_fields(header, "wn_frame_state"), macros)


def _struct_bytes(fields, macros) -> int:
    off, align = 0, 1
    for ctype, count in fields:
        size, a = _C_TYPES[ctype]
        n = 1
        if count is not None:
            n = macros[count] if count in macros else int(count)
        off = -(-off // a) * a + size * n
        align = max(align, a)
    return -(-off // align) * align


def flash_bytes(d, kernels: str = "auto") -> int:
    """Bytes of the const data arrays of ``wavenet_model.c`` for the program ``d`` (each array
    as declared; padding between them and the engine's code not included).  ``kernels="dsp"``:
    a DSP build (WN_KERNELS == 2, also "auto" on a DSP core without MVE), which replaces the
    int8 weight blob by the DSP arrays (:mod:`firmware_sim.c_export_dsp`: int16 FC weights,
    requantization records, GATHER tables); ``"mve"``: an MVE build, which adds ``wn_rq``
    (:mod:`firmware_sim.c_export_mve`)."""
    if kernels == "dsp":
        return (_flash_bytes(d) - max(int(np.asarray(d["weights"]).size), 1)
                + dsp.flash_bytes(d["dsp"]))
    if kernels == "mve":      # + the interleaved FC requantization (firmware_sim.c_export_mve)
        return _flash_bytes(d) + mve.flash_bytes(d)
    return _flash_bytes(d)


def _flash_bytes(d) -> int:
    # each array as _model_c declares it (an empty one gets one placeholder element)
    def arr(a, itemsize):
        return max(int(np.asarray(a).size), 1) * itemsize
    return _frame_flash_bytes(d) + int(max(len(d["ops"]), 1) * 4 * len(OP_FIELDS)
               + max(len(d["reads"]), 1) * 4 * len(READ_FIELDS)
               + max(len(d["writes"]), 1) * 4 * len(WRITE_FIELDS)
               + arr(d["weights"], 1) + arr(d["bias"], 4) + arr(d["mult"], 4)
               + arr(d["shift"], 4) + arr(d["iparams"], 4) + arr(d["luts"], 1)
               + arr(d["softmax_exp"], 4) + 2 * 256 + arr(d["sample_table"], 2))


def _readme(d, kernels, flash, state, flash_dsp) -> str:
    gc = (f"Global conditioning: call `wn_set_speaker(&s, id)` with 0 ≤ id < {d['n_speakers']} "
          "before stepping.\n" if d["n_speakers"] else "")
    return f"""# wavenet-edge C step engine

Generated by `firmware_sim.c_export` from the int8 step graph. Bit-exact with
`wavenet_edge.Engine(..., profile="tflm")` (TFLM reference arithmetic): probabilities, logits and
every delay-line write, at every step.

| | |
|---|---|
| MACs per sample | {d['macs']} |
| operators per step | {len(d['ops'])} |
| const data (flash) | {flash} bytes (+ code, a few KB); DSP build (int16 weights): {flash_dsp} \
bytes |
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
wn_sampler_init(&r, /*seed*/ 1234, /*stream*/ 0, WN_SAMPLE_MODE, wn_sample_table);
for (;;) {{
    wn_step(&s, code, 0, 0);             /* or pass int8_t probs[256], logits[256] */
    code = wn_sample(&r, wn_logits(&s)); /* no SOFTMAX: wn_probs(&s) only if you want them */
    /* code: class index 0..255 of the next sample; wn_pcm16[code] is its 16-bit PCM value */
}}
```

`wn_sample` mirrors `wavenet_edge.sampling` (PCG32 + integer inverse CDF on the int8 logits):
the same seed gives the same codes as `Engine.generate(n, seed=..., temperature=T)` with
`wn_sample_table`, the integer weights for the export's temperature T = {d['sample_temperature']!r}
(mode `WN_SAMPLE_TABLE`; at T = 1 they are the SOFTMAX's own exponentials), or greedy
(`WN_SAMPLE_GREEDY`). Sampling never needs the 256-way SOFTMAX. {gc}
## Build

Sources: `wavenet_model.c`, `wavenet_engine.c` (C99; only `memcpy`/`memset` from libc). Compiles
warning-free with `-std=c99 -Wall -Wextra -Werror`, for the host and for `arm-none-eabi-gcc`.

Kernel variant: `WN_KERNELS` (default {KERNELS[kernels]} = {kernels!r} from the export; override
with `-DWN_KERNELS=n`): 0 auto (MVE if `__ARM_FEATURE_MVE`, else DSP if `__ARM_FEATURE_DSP`,
else plain),
1 plain C, 2 Arm DSP extension (SXTB16/SMLAD; Cortex-M4/M7/M33/M55), 3 MVE/Helium (Cortex-M55/M85,
`-mcpu=cortex-m55`). All variants compute identical outputs.
{_readme_cond(d)}"""


def _readme_cond(d) -> str:
    c = d["cond"]
    if c is None:
        return ""
    head = f"""
## Vocoder: local conditioning (`wavenet_cond.h`, `wavenet_cond.c`)

This model takes {c['channels']} channels of features. Add `wavenet_cond.c` to the build.
Who does what:

- **host** (float): the model-ready features, frames x {c['channels']} (with {c['cin_pad']}
  padding frames at each end, as `Engine.process(codes, cond=...)` takes them), quantized to int8:
  `q = clamp(round_half_even(x / {c['feature_scale']!r}) {'-' if c['feature_zero_point'] < 0 else '+'} {abs(c['feature_zero_point'])}, -128, 127)`
  (`WN_FEATURE_SCALE`, `WN_FEATURE_ZERO_POINT`; `firmware_sim.c_export.quantize_features`).
  That is the only float step.
- **device** (int8 only):"""
    f = c["frames"]
    if f is None:
        return head + f"""
  the features are at sample rate: before each `wn_step`, `wn_set_cond(&s, row)` with that
  sample's {c['channels']} int8 values.
"""
    return head + f"""
  the frame program ({c['upsampler']} upsampler; {c['frame_macs']} MACs per call, one call per
  {c['hop']} samples = {c['frame_macs'] / c['hop']:.1f} MACs/sample; `wn_frame_state`
  {frame_state_bytes(d)} bytes of RAM) turns frames into the step's cond rows:

```c
static wn_state s;
static wn_frame_state fs;
const int8_t *block = 0;
uint32_t g = 0;                          /* frame calls so far */
wn_reset(&s);
wn_frame_reset(&fs);
for (t = 0; t < n_samples; t++) {{
    if (t % WN_HOP == 0)                 /* a new frame: the calls it needs */
        do {{
            /* padded frames g .. g+WN_FRAME_K-1 (frame-major int8), or WN_FRAME_K frames of
             * WN_FEATURE_ZERO_POINT once they run past the last frame */
            block = wn_frame(&fs, window(g++));
        }} while (!block);               /* the first WN_FRAME_BLOCK_DELAY = {f['block_delay']} calls only fill
                                            delay lines */
    wn_step_cond(&s, block, code, 0, 0); /* cond row = column t mod WN_HOP of the block */
    code = wn_sample(&r, wn_logits(&s));
}}
```

Samples of frame f need the padded frames up to f + {c['cin_pad']} + {f['lookahead_frames']}
(`WN_FRAME_LOOKAHEAD`): a streaming device can start a frame's samples
{f['lookahead_frames']} frames after it arrives. Bit-exact with `Engine.process(codes,
cond=features)` and `Engine.generate(n, cond=features, seed=...)` (every step's probabilities,
logits and delay-line writes; the same codes).
"""


def export_c(model, out_dir, *, kernels: str = "auto", temperature: float = 1.0) -> ExportResult:
    """Write the C99 step engine for ``model`` into ``out_dir`` (created if missing).

    model : ``.tflite`` path, its bytes, a parsed ``TFLiteModel`` or an :class:`Engine`
    kernels : default kernel variant compiled in: ``"auto"`` (by the compiler's target features),
        ``"plain"``, ``"dsp"`` or ``"mve"``; ``-DWN_KERNELS=n`` overrides it at build time
    temperature : the sampler's temperature: ``wn_sample_table`` holds its integer weights
        (:func:`wavenet_edge.int8.logit_weight_table`; the temperature-1 table for 0, greedy,
        which is ``WN_SAMPLE_MODE``'s default then)
    """
    if kernels not in KERNELS:
        raise ConfigError(f"unknown kernels {kernels!r}; known: {', '.join(KERNELS)}")
    d = exported_program(model)
    _set_sampling(d, temperature)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    flash = _flash_bytes(d)
    state = state_bytes(d)
    texts = {
        "wavenet_model.h": _model_h(d, kernels),
        "wavenet_model.c": _model_c(d),
        "wavenet_engine.h": (_C_DIR / "wavenet_engine.h").read_text(),
        "wavenet_engine.c": (_C_DIR / "wavenet_engine.c").read_text(),
        "README.md": _readme(d, kernels, flash, state, flash_bytes(d, "dsp")),
    }
    if d["cond"] is not None:
        for name in COND_FILES:
            texts[name] = (_C_DIR / name).read_text()
    files = {}
    for name, txt in texts.items():
        with atomic_write(out / name, "w") as f:
            f.write(txt)
        os.chmod(out / name, 0o644)   # sources, not secrets (the temporary file was 0600)
        files[name] = str(out / name)
    return ExportResult(out_dir=str(out), files=files, kernels=kernels, flash_bytes=flash,
                        state_bytes=state, macs_per_sample=d["macs"], n_ops=len(d["ops"]),
                        write_widths=[int(w["width"]) for w in d["writes"]],
                        silence_code=d["silence_code"], n_speakers=d["n_speakers"],
                        flash_bytes_dsp=flash_bytes(d, "dsp"), program=d,
                        frame_state_bytes=frame_state_bytes(d),
                        frame_macs=int(d["cond"]["frame_macs"]) if d["cond"] else 0,
                        hop=int(d["cond"]["hop"]) if d["cond"] else 0)


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
                   help="sampling temperature of the embedded integer weight table (default 1; "
                        "0 = greedy)")
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
    if r.program.get("cond") is not None:
        c = r.program["cond"]
        what = (f"frame program {r.frame_macs} MACs per call, one call per {r.hop} samples "
                f"(+{r.frame_macs / r.hop:.1f} MACs/sample), wn_frame_state "
                f"{r.frame_state_bytes} B" if r.frame_macs else
                "features at sample rate (no frame program)")
        print(f"vocoder: {c['channels']} cond channels, {what}; the host quantizes the features "
              f"(scale {c['feature_scale']:.6g}, zero point {c['feature_zero_point']}), the "
              f"device runs wavenet_cond.c (README.md)")
    return 0
