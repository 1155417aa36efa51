"""The Cortex-M emulation harness itself: cross-compile, run in QEMU, exact instruction counts."""

import pytest

from firmware_sim.qemu import CORES, compile_firmware, run_firmware, toolchain_status

pytestmark = [pytest.mark.emulate,
              pytest.mark.skipif(toolchain_status() is not None, reason=str(toolchain_status()))]

SRC = r"""
#include <stdint.h>
void sh_puts(const char *s);
__attribute__((noinline)) void marker(void) { __asm__ volatile(""); }
volatile int sink;
int main(void) {
    marker();
    marker();                       /* empty interval: the marker's own overhead */
    for (volatile int i = 0; i < N; i++) sink += i;
    marker();
    sh_puts("ok\n");
    return 0;
}
"""


@pytest.mark.parametrize("core", list(CORES))
def test_counts_are_exact_and_linear(core, tmp_path):
    src = tmp_path / "m.c"
    src.write_text(SRC)
    counts = {}
    for n in (100, 200):
        elf = compile_firmware([src], core, tmp_path, defines=[f"N={n}"])
        r = run_firmware(elf, core)
        assert r.stdout.strip() == "ok"
        assert len(r.marks) == 3
        counts[n] = r.marks[2] - r.marks[1]
        assert run_firmware(elf, core).marks == r.marks  # repeatable to the instruction
    per_iter = (counts[200] - counts[100]) / 100
    assert per_iter == int(per_iter) and 3 <= per_iter <= 20
