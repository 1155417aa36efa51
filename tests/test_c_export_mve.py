"""The MVE layout of the FC requantization parameters (firmware_sim.c_export_mve): every FC row's
bias, multiplier and shift, interleaved per 4 rows, is a copy of the program's, and the export
writes it only where MVE exists."""

import re

import numpy as np
import pytest

from firmware_sim.c_export import export_c, exported_program
from firmware_sim.c_export_mve import MVE_GUARD, requant_groups
from test_engine_helpers import model_bytes
from wavenet_edge.lowered import OpKind


@pytest.mark.parametrize("name", ["k2", "odd"])
def test_every_fc_row_is_a_copy(name):
    d = exported_program(model_bytes(name))
    rq = requant_groups(d["ops"], d["bias"], d["mult"], d["shift"])
    n_fc = 0
    for o in d["ops"]:
        if int(o["kind"]) != int(OpKind.FC):
            continue
        n_fc += 1
        q, n = int(o["q"]), int(o["n"])
        for j in range(n):
            if j < n // 4 * 4:
                at = 3 * q + 12 * (j // 4) + j % 4
                got = (rq[at], rq[at + 4], rq[at + 8])
            else:
                got = tuple(rq[3 * (q + j):3 * (q + j) + 3])
            assert got == (d["bias"][q + j], d["mult"][q + j], d["shift"][q + j]), (q, j)
    assert n_fc > 3


def test_overlapping_fcs_are_refused():
    ops = np.zeros(2, dtype=[("kind", "i4"), ("n", "i4"), ("q", "i4")])
    ops["kind"] = int(OpKind.FC)
    ops["n"] = [8, 4]
    ops["q"] = [0, 2]
    with pytest.raises(ValueError, match="shared"):
        requant_groups(ops, np.arange(8), np.arange(8), np.arange(8))


def test_written_only_for_mve(tmp_path):
    export_c(model_bytes("k2"), tmp_path)
    c = (tmp_path / "wavenet_model.c").read_text()
    h = (tmp_path / "wavenet_model.h").read_text()
    assert f"#if {MVE_GUARD}\nconst int32_t wn_rq[" in c
    assert f"#if {MVE_GUARD}\nextern const int32_t wn_rq[];" in h
    d = exported_program(model_bytes("k2"))
    body = re.search(r"wn_rq\[\d+\] = \{(.*?)\};", c, re.S).group(1)
    assert [int(v) for v in re.findall(r"-?\d+", body)] == \
        requant_groups(d["ops"], d["bias"], d["mult"], d["shift"]).tolist()


def test_mve_flash_bytes_equal_the_object(tmp_path):
    """flash_bytes(d, "mve") = the const data of an MVE build of wavenet_model.c (symbol sizes);
    a plain build on the same core has no wn_rq."""
    import shutil
    import subprocess

    from firmware_sim.c_export import flash_bytes
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("no arm-none-eabi-gcc")
    data = model_bytes("odd")
    export_c(data, tmp_path)
    d = exported_program(data)
    sizes = {}
    for k in (3, 1):
        obj = tmp_path / f"m{k}.o"
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m55", "-mfloat-abi=hard", "-mthumb",
                        "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-DWN_KERNELS={k}",
                        f"-I{tmp_path}", "-c", str(tmp_path / "wavenet_model.c"), "-o", str(obj)],
                       check=True, capture_output=True)
        nm = subprocess.run(["arm-none-eabi-nm", "-S", str(obj)], capture_output=True,
                            text=True, check=True).stdout
        sizes[k] = {p[3]: int(p[1], 16) for p in (ln.split() for ln in nm.splitlines())
                    if len(p) == 4 and p[3].startswith("wn_")}
    assert "wn_rq" in sizes[3] and "wn_rq" not in sizes[1]
    assert sum(sizes[3].values()) == flash_bytes(d, "mve")
    assert sum(sizes[1].values()) == flash_bytes(d)
