"""The C export's Arm DSP layouts (firmware_sim.c_export_dsp): the pre-extended int16 weight
layout computes the int8 matrix product, the cheaper requantization forms equal the int8
definitions (wavenet_edge.int8.fixedpoint) wherever the export marks them FAST, and the DSP build
stays bit-exact in QEMU when every record takes the scalar path instead."""

import shutil
import subprocess

import numpy as np
import pytest

from firmware_sim import c_export_dsp as dsp
from firmware_sim.c_export import export_c
from firmware_sim.emulate import emulate
from firmware_sim.qemu import toolchain_status
from test_c_export import _codes, build_model
from wavenet_edge.int8.fixedpoint import rdbpot, srdhm
from wavenet_edge.lowered import OpKind, lower
from wavenet_edge.tflite_file import read_tflite


def _sxtb16_pairs(x):
    """What the kernel's SXTB16 / SXTB16 ror 8 make of 4 input bytes: (x0, x2), (x1, x3)."""
    c4 = -(-len(x) // 4) * 4
    xp = np.zeros(c4, np.int64)
    xp[:len(x)] = x
    xp = xp.reshape(-1, 4)
    return np.stack([xp[:, [0, 2]], xp[:, [1, 3]]], axis=1)      # (chunk, even/odd, 2)


def _unpack(words):
    w = np.asarray(words, np.int64) & 0xFFFFFFFF
    lo = ((w & 0xFFFF) ^ 0x8000) - 0x8000
    hi = (((w >> 16) & 0xFFFF) ^ 0x8000) - 0x8000
    return np.stack([lo, hi], axis=-1)


@pytest.mark.parametrize("rows, cols", [(16, 32), (4, 16), (7, 9), (1, 3), (12, 256)])
def test_weight_layout_is_the_matrix_product(rows, cols):
    """Reading the words as the kernel does (per 4-row group and 4-column chunk: two words per
    row, SMLAD with the SXTB16 pairs of the input) gives w @ x for every row."""
    rng = np.random.default_rng(rows * 100 + cols)
    w = rng.integers(-128, 128, (rows, cols))
    x = rng.integers(-128, 128, cols)
    words = dsp.fc_weights(w, 2)
    r4, nch = -(-rows // 4) * 4, -(-cols // 4)
    assert words.size == r4 * nch * 2
    assert words.min() >= -2**31 and words.max() < 2**31
    pairs = _unpack(words).reshape(r4 // 4, nch, 4, 2, 2)           # group, chunk, row, e/o, 2
    xs = _sxtb16_pairs(x)                                            # chunk, e/o, 2
    acc = np.einsum("gcrek,cek->gr", pairs, xs).reshape(-1)[:rows]
    assert np.array_equal(acc, 2 * (w @ x))


def test_rounding_form_is_rounding_divide_by_pot():
    """(2h + (h >> 31) + 2**e + zp 2**(e+1)) >> (e+1) == RDBPOT(h, e) + zp, e = 0..24, on the
    rounding boundaries and at random."""
    rng = np.random.default_rng(3)
    for e in range(0, 25):
        base = np.arange(-3, 4) * (1 << e)
        h = np.concatenate([base + d for d in (-1, 0, 1)] + [base + (1 << e >> 1) + d
                                                               for d in (-1, 0, 1)]
                           + [rng.integers(-2**29, 2**29, 200)])
        for zp in (-128, -5, 0, 127):
            if abs(zp) << (e + 1) >= 1 << 29:
                continue
            c = dsp._rounding_addend(e, zp)
            fast = (2 * h + (h >> 31) + c) >> (e + 1)
            ref = np.array([int(rdbpot(int(v), e)) + zp for v in h])
            assert np.array_equal(fast, ref), (e, zp)


def test_smmulr_of_twice_x_is_srdhm():
    """SMMULR(2x, m) = (2xm + 2**31) >> 32 equals SRDHM(x, m) for |x| < 2**29, m in [0, 2**31)."""
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.integers(-2**29 + 1, 2**29, 300), [-2**29 + 1, 2**29 - 1, 0, -1, 1]])
    for m in (0, 1, 1 << 30, 2**31 - 1, 1518500250, 2139576613):
        fast = (2 * x * m + (1 << 31)) >> 32
        ref = np.array([int(srdhm(int(v), m)) for v in x])
        assert np.array_equal(fast, ref), m


def test_records_of_a_model():
    """Every FC of a converted model takes the FAST form (bounds far from the limits), its
    record holds the program's multipliers, and ADD/MUL records mark FAST where exact."""
    p = lower(read_tflite(build_model("k2")), profile="tflm")
    lay = dsp.dsp_layout(p)
    assert len(lay["recs"]) == len(p.ops)
    fcs = [(r, rec) for r, rec in zip(p.ops, lay["recs"]) if int(r["kind"]) == OpKind.FC]
    assert fcs and all(rec[4] & dsp.FAST for _, rec in fcs)
    for r, rec in fcs:
        n, q = int(r["n"]), int(r["q"])
        grp = lay["rq"][rec[1]:rec[1] + (-(-n // 4)) * 16].reshape(-1, 16)
        bias = grp[:, :4].reshape(-1)[:n]
        mcs = grp[:, 4:].reshape(-1, 3)[:n]
        assert np.array_equal(bias, 2 * p.bblob[q:q + n])
        assert np.array_equal(mcs[:, 0], p.mult[q:q + n])
        assert np.array_equal(mcs[:, 2], 1 - p.shift[q:q + n])
    ew = [rec for r, rec in zip(p.ops, lay["recs"]) if int(r["kind"]) in (OpKind.ADD, OpKind.MUL)]
    assert ew and all(rec[4] & dsp.FAST for rec in ew)


@pytest.mark.emulate
@pytest.mark.skipif(toolchain_status() is not None, reason=str(toolchain_status()))
def test_dsp_scalar_paths_bit_exact(monkeypatch):
    """With the FAST bound at 0 every FC, ADD and MUL record takes the scalar requantization
    (weights not doubled): the DSP build on M4 and M7 is still bit-exact with the engine."""
    monkeypatch.setattr(dsp, "LIMIT", 0)
    p = lower(read_tflite(build_model("k2")), profile="tflm")
    assert not any(rec[4] & dsp.FAST for rec in dsp.dsp_layout(p)["recs"])
    rep = emulate(build_model("k2"), cores=("cortex-m4", "cortex-m7"), kernels="dsp", steps=40,
                  codes=_codes(40, 9), full_every=5, profile_ops=False, repeat_check=False,
                  cycle_classes=False, bench=None)
    for r in rep.runs:
        assert r.bitexact_steps == r.steps == 40 and r.codes_match, r.core


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
def test_dsp_flash_bytes_equal_the_cortex_m7_build(tmp_path):
    """ExportResult.flash_bytes_dsp is what a Cortex-M7 build (auto = DSP kernels) lays out:
    the int8 weight blob replaced by the DSP arrays (symbol sizes of the object file)."""
    res = export_c(build_model("k3"), tmp_path / "export")
    obj = tmp_path / "m.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-std=c99", "-O2", "-Wall",
                    "-Werror", f"-I{tmp_path / 'export'}", "-c",
                    str(tmp_path / "export" / "wavenet_model.c"), "-o", str(obj)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    sizes = {f[3]: int(f[1], 16) for f in (ln.split() for ln in out.splitlines()) if len(f) == 4}
    assert "wn_weights" not in sizes and "wn_w16" in sizes
    assert sum(sizes.values()) == res.flash_bytes_dsp
    assert res.flash_bytes_dsp > res.flash_bytes   # the weights doubled


def test_add_tables_give_add_int8_for_every_pair():
    """The DSP ADD record (two 256-entry tables of doubled rescaled terms, then SMMULR and the
    rounding form) gives wavenet_edge.int8's ADD (profile tflm) for all 65,536 input pairs, for
    every ADD of a model, both operand orders of the tables."""
    from wavenet_edge.int8.elementwise import add_int8_vec
    p = lower(read_tflite(build_model("k2")), profile="tflm")
    x1, x2 = (v.ravel().astype(np.int8) for v in np.meshgrid(np.arange(-128, 128),
                                                              np.arange(-128, 128)))
    checked = 0
    for r in p.ops:
        if int(r["kind"]) != OpKind.ADD:
            continue
        o, f = int(r["p"]), int(r["f"])
        flags, words = dsp.elementwise_records(OpKind.ADD, p.iparams[o:o + 16])
        assert flags & dsp.FAST
        mo, co, e1, lo, hi = words[:5]
        t1, t2 = np.array(words[5:261], np.int64), np.array(words[261:517], np.int64)
        s2 = t1[x1.astype(np.int64) + 128] + t2[x2.astype(np.int64) + 128]
        h = (s2 * mo + (1 << 31)) >> 32
        v = np.clip((2 * h + (h >> 31) + co) >> e1, -128, 127)
        v = np.clip(v, lo, hi)
        ref = np.empty(x1.size, np.int8)
        add_int8_vec(x1, x2, p.iparams[o:], p.fparams[f:], p.profile_id, ref)
        assert np.array_equal(v, ref.astype(np.int64))
        checked += 1
    assert checked >= 3


@pytest.mark.emulate
@pytest.mark.skipif(toolchain_status() is not None, reason=str(toolchain_status()))
def test_dsp_kernels_for_the_tiny_widths_bit_exact():
    """The copies the fast kernels keep for 32- and 16-column inputs (the gate on 2 x 16
    residual channels, the residual FC on 16; the k2/k3 test models have other widths), on M4
    and M7, teacher-forced, every step bit-exact with the engine."""
    from converters.convert import convert
    from wavenet_edge.config import WaveNetConfig
    from wavenet_edge.float_model import FloatWaveNet
    cfg = WaveNetConfig(dilations=(1, 2, 4), residual_channels=16, dilation_channels=16,
                        skip_channels=32, end_channels=32)
    m = FloatWaveNet.initialize(cfg, seed=1)
    rng = np.random.default_rng(5)
    for k, a in m.weights.items():
        if k.endswith("/b") or k == "initial/bias":
            m.weights[k] = rng.normal(0.0, 0.1, a.shape)
    data = convert(m, method="minmax", progress=False, evaluate_quality=False).tflite
    p = lower(read_tflite(data), profile="tflm")
    fc = p.ops[p.ops["kind"] == OpKind.FC]
    assert {32, 16} <= set(int(c) for c in fc["cols"])
    rep = emulate(data, cores=("cortex-m4", "cortex-m7"), kernels="dsp", steps=40,
                  codes=_codes(40, 10), full_every=5, profile_ops=False, repeat_check=False,
                  cycle_classes=False, bench=None)
    for r in rep.runs:
        assert r.bitexact_steps == r.steps == 40 and r.codes_match, r.core
