"""The memory figures of the C export (``state_bytes`` = sizeof(wn_state), ``flash_bytes`` = the
const arrays of wavenet_model.c) equal what the compilers lay out: host gcc (sizeof printed by a
program) and arm-none-eabi-gcc for Cortex-M (symbol sizes of the object files)."""

import shutil
import subprocess

import pytest

from firmware_sim.c_export import _C_DIR, export_c, state_bytes
from test_c_export import build_model

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host C compiler (gcc)")

PROBE = r"""
#include <stdio.h>
#include "wavenet_engine.h"
#include "wavenet_model.c"
int main(void)
{
    printf("%u %u\n", (unsigned)sizeof(wn_state),
           (unsigned)(sizeof wn_ops + sizeof wn_dl_reads + sizeof wn_dl_writes + sizeof wn_weights
                      + sizeof wn_bias + sizeof wn_mult + sizeof wn_shift + sizeof wn_iparams
                      + sizeof wn_luts + sizeof wn_softmax_exp + sizeof wn_pcm16
                      + sizeof wn_sample_table));
    return 0;
}
"""


@pytest.fixture(scope="module", params=["k2", "k3"])
def export(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"sizes-{request.param}")
    # k3 at another temperature than 1 (the sampling table is always exported)
    res = export_c(build_model(request.param), d / "export",
                   temperature=0.7 if request.param == "k3" else 1.0)
    return res, d


def test_state_and_flash_bytes_equal_the_host_build(export):
    res, d = export
    (d / "probe.c").write_text(PROBE)
    exe = d / "probe"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{d / 'export'}", str(d / "probe.c"),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    size, flash = (int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True,
                                                  check=True).stdout.split())
    assert res.state_bytes == size
    assert res.flash_bytes == flash
    # the old formula (arena + rings + positions + 12) was short by WN_N_OPS + 4 bytes at least
    p = res.program
    assert size >= p["arena_size"] + p["ring_size"] + 4 * max(len(p["writes"]), 1) + 16 + \
        len(p["ops"])


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
def test_state_and_flash_bytes_equal_the_cortex_m_build(export):
    res, d = export
    (d / "probe_arm.c").write_text('#include "wavenet_engine.h"\n'
                                   "wn_state wn_probe_state;\n")
    objs = []
    for src in (d / "probe_arm.c", d / "export" / "wavenet_model.c"):
        obj = d / (src.stem + ".o")
        # plain kernels: a DSP build lays out flash_bytes_dsp instead (test_c_export_dsp)
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m55", "-mthumb", "-std=c99", "-O2",
                        "-Wall", "-Werror", "-DWN_KERNELS=1", f"-I{d / 'export'}", "-c", str(src),
                        "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        objs.append(obj)
    sizes = {}
    for obj in objs:
        out = subprocess.run(["arm-none-eabi-nm", "-S", str(obj)], capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 4:
                sizes[f[3]] = int(f[1], 16)
    assert sizes["wn_probe_state"] == res.state_bytes
    assert sum(v for k, v in sizes.items() if k.startswith("wn_") and k != "wn_probe_state") == \
        res.flash_bytes


def test_state_bytes_follows_the_header():
    """A field added to wn_state changes the figure by the C layout rules (alignment, padding);
    a field state_bytes cannot size is an error, not a silent miscount."""
    hdr = (_C_DIR / "wavenet_engine.h").read_text()
    d = {"arena_size": 5, "ring_size": 2, "ops": [0] * 3, "reads": [], "writes": [0]}
    base = state_bytes(d, hdr)
    grown = hdr.replace("} wn_state;", "    uint64_t extra;\n} wn_state;")
    assert state_bytes(d, grown) == -(-base // 8) * 8 + 8
    from wavenet_edge.errors import ConfigError
    with pytest.raises(ConfigError):
        state_bytes(d, hdr.replace("} wn_state;", "    void *p;\n} wn_state;"))


@pytest.mark.parametrize("kernels", ["mve", "dsp"])
def test_simulate_memory_is_the_c_build(kernels):
    """The C-export memory simulate reports (firmware_sim.memory.c_engine_memory, from the lowered
    program alone) is the export's own figures: sizeof(wn_state) and the const arrays of the
    build variant (DSP: int16 weight layout)."""
    from firmware_sim.c_export import exported_program, flash_bytes
    from firmware_sim.memory import C_ENGINE_CODE_BYTES, STACK_SRAM_BYTES, c_engine_memory
    from firmware_sim.targets import builtin_targets
    d = exported_program(build_model("k2"))
    t = builtin_targets()["alif-e3-hp"]
    m = c_engine_memory(d["program"], t, fifo_samples=10, kernels=kernels)
    assert m.model_bytes == flash_bytes(d, kernels)
    assert m.flash_bytes == flash_bytes(d, kernels) + C_ENGINE_CODE_BYTES
    assert m.sram_bytes == state_bytes(d) + STACK_SRAM_BYTES + 20
