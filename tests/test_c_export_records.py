"""The C export writes the lowered program the engine runs, record for record: every operator,
delay line and parameter array in wavenet_model.c equals the engine's program (profile tflm),
and the kind enum and ADD/MUL slot macros in wavenet_model.h are the Python names' values."""

import re

import numpy as np
import pytest

from firmware_sim.c_export import ADD_SLOTS, MUL_SLOTS, OP_FIELDS, READ_FIELDS, WRITE_FIELDS, export_c
from test_engine_helpers import model_bytes
from wavenet_edge.engine import Engine
from wavenet_edge.int8 import elementwise as ew
from wavenet_edge.lowered import OpKind, lower
from wavenet_edge.tflite_file import read_tflite


def _c_arrays(text):
    """{name: flat list of ints} of every ``const T name[] = {...};`` in a C file."""
    out = {}
    for name, body in re.findall(r"const \w+ (\w+)\[\d*\] = \{(.*?)\};", text, re.S):
        body = body.replace("(-2147483647 - 1)", "-2147483648")
        out[name] = [int(v) for v in re.findall(r"-?\d+", body)]
    return out


def _records(rec, fields):
    return [int(r[f]) for r in rec for f in fields]


@pytest.mark.parametrize("name", ["k2", "gc", "odd"])
def test_export_writes_the_engines_program(name, tmp_path):
    data = model_bytes(name)
    eng = Engine.from_bytes(data, profile="tflm")
    p = eng.program
    # the program is a function of the file and the profile: lowering again gives the same
    again = lower(read_tflite(data, name=name), profile="tflm")
    for f in ("ops", "wblob", "bblob", "mult", "shift", "iparams", "tables", "sm_exps", "reads",
              "writes"):
        assert np.array_equal(getattr(p, f), getattr(again, f)), f
    export_c(eng, tmp_path)
    arrays = _c_arrays((tmp_path / "wavenet_model.c").read_text())
    assert arrays["wn_ops"] == _records(p.ops, OP_FIELDS)
    if p.reads.size:
        assert arrays["wn_dl_reads"] == _records(p.reads, READ_FIELDS)
        assert arrays["wn_dl_writes"] == _records(p.writes, WRITE_FIELDS)
    for c_name, arr in (("wn_weights", p.wblob), ("wn_bias", p.bblob), ("wn_mult", p.mult),
                        ("wn_shift", p.shift), ("wn_iparams", p.iparams), ("wn_luts", p.tables),
                        ("wn_softmax_exp", p.sm_exps)):
        assert arrays[c_name] == [int(v) for v in np.asarray(arr).ravel()], c_name
    # every kind the program holds is one the C enum names, with the IntEnum's value
    header = (tmp_path / "wavenet_model.h").read_text()
    for k in {OpKind(int(v)) for v in p.ops["kind"]}:
        assert f"WN_OP_{k.name} = {int(k)}" in header
    # the ADD/MUL parameter vectors are written whole; the C reads the int8 module's slots
    for n, v in ADD_SLOTS.items():
        assert f"#define WN_ADD_{n} {v}\n" in header
        assert getattr(ew, f"A_{n}") == v
    for n, v in MUL_SLOTS.items():
        assert f"#define WN_MUL_{n} {v}\n" in header
        assert getattr(ew, f"M_{n}") == v
