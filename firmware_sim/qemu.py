"""Cross-compile C for Cortex-M and run it in QEMU with exact executed-instruction counts.

Cores and the QEMU boards that model them (Debian 12: ``gcc-arm-none-eabi``,
``libnewlib-arm-none-eabi``, ``qemu-system-arm`` 7.2):

========== ============ ============================================== ============
core       QEMU machine gcc flags                                      linker script
========== ============ ============================================== ============
cortex-m4  mps2-an386   -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard mps2.ld
cortex-m7  mps2-an500   -mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard    mps2.ld
cortex-m55 mps3-an547   -mcpu=cortex-m55 -mfloat-abi=hard (MVE)            mps3_an547.ld
========== ============ ============================================== ============

Every build is warning-free or fails: ``-Wall -Wextra -Werror`` (``werror=False`` to relax for
other code).  ``sanitize=True`` adds GCC's UndefinedBehaviorSanitizer in trap mode
(:data:`UBSAN_TRAP_FLAGS`: ``-fsanitize=undefined -fsanitize-undefined-trap-on-error``, no
run-time library, so it works bare-metal): each detected undefined operation (signed overflow,
out-of-range or negative shift, division by zero, misaligned or null pointer use, out-of-bounds
index of an array of known size, ...) executes ``UDF``, the core takes a fault, the start-up
code prints ``FAULT undefined instruction`` and :func:`run_firmware` raises
:class:`EmulationError` saying so.  (AddressSanitizer needs a run-time and shadow memory, which
bare metal has not; heap/stack bounds through pointers are checked by the host ASan build.)

Counting: a small TCG plugin (``emulator/icount_plugin.c``, built with the host gcc) adds each
translation block's instruction count when it executes and prints the count since the previous
hit whenever the first instruction of the ``marker`` function runs.  Firmware calls a
``noinline`` ``marker()`` around the code to measure.  QEMU counts instructions, not cycles.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wavenet_edge.errors import WaveNetEdgeError

__all__ = ["CORES", "toolchain_status", "build_plugin", "compile_firmware", "run_firmware",
           "EmulationResult", "EmulationError", "WARNING_FLAGS", "UBSAN_TRAP_FLAGS"]

#: every firmware build: warnings are errors
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror")
#: UndefinedBehaviorSanitizer without a run-time: each check traps (UDF) instead of reporting
UBSAN_TRAP_FLAGS = ("-fsanitize=undefined", "-fsanitize-undefined-trap-on-error")

_HERE = Path(__file__).parent / "emulator"

CORES = {
    "cortex-m4": dict(machine="mps2-an386", ld="mps2.ld",
                      flags=["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]),
    "cortex-m7": dict(machine="mps2-an500", ld="mps2.ld",
                      flags=["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"]),
    "cortex-m55": dict(machine="mps3-an547", ld="mps3_an547.ld",
                       flags=["-mcpu=cortex-m55", "-mfloat-abi=hard"]),
}


class EmulationError(WaveNetEdgeError):
    """Cross-compilation or emulation failed."""


def toolchain_status() -> str | None:
    """``None`` if cross-compiler, QEMU and a host C compiler are present, else what is missing."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm", "gcc") if not shutil.which(t)]
    if missing:
        return ("missing " + ", ".join(missing) + " (apt-get install -y --no-install-recommends "
                "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc)")
    return None


def _cache_dir() -> Path:
    d = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wavenet-edge"
    d.mkdir(parents=True, exist_ok=True)
    return d


@functools.lru_cache(maxsize=1)
def build_plugin() -> Path:
    """Build (once, cached by source hash) the instruction-counting QEMU plugin; returns its path."""
    src = _HERE / "icount_plugin.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    out = _cache_dir() / f"icount-{digest}.so"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        r = subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(tmp), str(src)],
                           capture_output=True, text=True)
        if r.returncode:
            raise EmulationError(f"building the QEMU plugin failed: {r.stderr.strip()[:300]}")
        os.replace(tmp, out)
    return out


def compile_firmware(sources, core: str, out_dir, *, opt: str = "-O2", defines=(),
                     include_dirs=(), werror: bool = True, sanitize: bool = False) -> Path:
    """Cross-compile ``sources`` (C files) with the start-up code into an ELF for ``core``:
    with :data:`WARNING_FLAGS` (unless ``werror=False``), and with :data:`UBSAN_TRAP_FLAGS`
    when ``sanitize`` (see the module docstring)."""
    if core not in CORES:
        raise EmulationError(f"unknown core {core!r}; known: {', '.join(CORES)}")
    c = CORES[core]
    out = Path(out_dir) / f"firmware-{core}.elf"
    cmd = (["arm-none-eabi-gcc", *c["flags"], "-mthumb", opt, "-std=c99", "-ffunction-sections",
            *(WARNING_FLAGS if werror else ()), *(UBSAN_TRAP_FLAGS if sanitize else ()),
            "-nostartfiles", "-T", str(_HERE / c["ld"]), "--specs=nano.specs",
            *[f"-D{d}" for d in defines], *[f"-I{i}" for i in include_dirs],
            str(_HERE / "startup.c"), *map(str, sources), "-o", str(out), "-lc", "-lnosys"])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise EmulationError(f"arm-none-eabi-gcc failed for {core}: "
                             + " | ".join(r.stderr.strip().splitlines()[:4]))
    return out


def _symbol(elf: Path, name: str) -> int:
    r = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise EmulationError(f"{elf.name} has no symbol {name!r}")


@dataclass
class EmulationResult:
    """Output of one QEMU run: what the firmware printed, and instructions between markers."""
    stdout: str
    marks: list          # instructions executed between consecutive marker() calls
    total: int           # instructions executed in the whole run
    exit_code: int
    #: with ``hist``: {address: (size, executions, taken)} between the chosen marker hits
    hist: dict = None


def run_firmware(elf, core: str, *, marker: str = "marker", timeout: float = 120.0,
                 hist=None) -> EmulationResult:
    """Run ``elf`` on the QEMU board for ``core`` with instruction counting.

    hist : ``(a, b)`` also counts executions (and taken branches) per instruction address from
        the a-th to the b-th ``marker`` hit (1-based) into ``EmulationResult.hist``
    """
    c = CORES[core]
    plugin = build_plugin()
    addr = _symbol(Path(elf), marker)
    cmd = ["qemu-system-arm", "-M", c["machine"], "-nographic", "-monitor", "none",
           "-serial", "none", "-semihosting-config", "enable=on,target=native",
           "-kernel", str(elf), "-plugin",
           f"{plugin},marker={addr:#x}" + (f",hist={int(hist[0])}:{int(hist[1])}" if hist else ""),
           "-d", "plugin"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"QEMU ({c['machine']}) did not finish within {timeout:.0f} s") from None
    marks, total, lines, counts = [], 0, [], {}
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("ICOUNT-HIST "):
            _, a, size, n, taken = line.split()
            counts[int(a, 16)] = (int(size), int(n), int(taken))
        elif line.startswith("ICOUNT-MARK "):
            marks.append(int(line.split()[1]))
        elif line.startswith("ICOUNT-TOTAL "):
            total = int(line.split()[1])
        elif line.startswith("qemu: fatal"):
            raise EmulationError(f"QEMU ({c['machine']}): {line}")
        else:
            lines.append(line)
    out = "\n".join(lines)
    if "FAULT" in out or r.returncode not in (0,):
        why = ""
        if "FAULT undefined instruction" in out:
            why = (" after an undefined-instruction fault (an undefined-behaviour trap in a "
                   "sanitized build)")
        elif "FAULT" in out:
            why = " after a fault"
        raise EmulationError(f"firmware on {c['machine']} exited with {r.returncode}{why}")
    return EmulationResult(stdout=out, marks=marks, total=total, exit_code=r.returncode,
                           hist=counts if hist else None)
