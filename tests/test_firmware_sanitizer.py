"""Every firmware build is -Werror, and every kernel variant (plain C, DSP, MVE) runs clean under
the trapping UndefinedBehaviorSanitizer in QEMU — with a check that a trap is really detected."""

import subprocess

import pytest

from firmware_sim.emulate import check_undefined_behaviour
from firmware_sim.qemu import (UBSAN_TRAP_FLAGS, EmulationError, compile_firmware, run_firmware,
                               toolchain_status)

pytestmark = [pytest.mark.emulate,
              pytest.mark.skipif(toolchain_status() is not None, reason=str(toolchain_status()))]

UB_SRC = r"""
#include <stdint.h>
void sh_puts(const char *s);
void marker(void);
__attribute__((noinline)) void marker(void) { __asm__ volatile(""); }
volatile int32_t big = 2147483647, amount = 33;
int main(void) {
    int32_t x = big;
    marker();
#if UB == 1
    x = x + 1;                /* signed overflow */
#elif UB == 2
    x = x << amount;          /* shift by more than the width */
#endif
    sh_puts(x ? "ran\n" : "ran zero\n");
    return 0;
}
"""


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
def test_an_undefined_operation_traps_in_a_sanitized_build(core, tmp_path):
    src = tmp_path / "ub.c"
    src.write_text(UB_SRC)
    for ub in (1, 2):
        d = tmp_path / f"ub{ub}"
        d.mkdir()
        # without the sanitizer the undefined operation just runs (the compiler's choice) ...
        assert run_firmware(compile_firmware([src], core, d, defines=[f"UB={ub}"]),
                            core).stdout.startswith("ran")
        # ... with it, the check executes UDF and the run fails, saying why
        elf = compile_firmware([src], core, d, defines=[f"UB={ub}"], sanitize=True)
        with pytest.raises(EmulationError, match="undefined-behaviour trap"):
            run_firmware(elf, core)
    # defined code runs unchanged under the sanitizer
    d = tmp_path / "ok"
    d.mkdir()
    elf = compile_firmware([src], core, d, defines=["UB=0"], sanitize=True)
    assert run_firmware(elf, core).stdout.strip() == "ran"


def test_firmware_warnings_are_errors(tmp_path):
    src = tmp_path / "w.c"
    src.write_text("int main(void) { int unused; return 0; }\n")
    with pytest.raises(EmulationError, match="arm-none-eabi-gcc failed"):
        compile_firmware([src], "cortex-m55", tmp_path)
    assert compile_firmware([src], "cortex-m55", tmp_path, werror=False).exists()


def test_every_variant_is_clean_under_ubsan(tmp_path):
    """Plain C, DSP and MVE (odd channel counts: every scalar tail; gc; wide initial layer),
    free-running with the SOFTMAX each step: no sanitizer trap, still bit-exact, same codes."""
    from test_engine_helpers import model_bytes
    runs = check_undefined_behaviour(model_bytes("k3"), cores=("cortex-m7", "cortex-m55"),
                                     steps=24, work_dir=tmp_path)
    assert {(r.core, r.kernels) for r in runs} == {
        ("cortex-m7", "plain"), ("cortex-m7", "dsp"), ("cortex-m55", "plain"),
        ("cortex-m55", "dsp"), ("cortex-m55", "mve")}
    for r in runs:
        assert r.ok, r
    # the engine itself is instrumented: its object code carries the sanitizer's traps
    elf = tmp_path / "cortex-m55-mve" / "firmware-cortex-m55.elf"
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    fn, traps = None, {}
    for line in dis.splitlines():
        if line.endswith(">:"):
            fn = line.split("<")[1].rstrip(">:")
        elif "\tudf\t" in line and fn:
            traps[fn] = traps.get(fn, 0) + 1
    assert sum(v for k, v in traps.items() if k.startswith("wn_")) >= 20, traps
    assert UBSAN_TRAP_FLAGS[0] == "-fsanitize=undefined"
