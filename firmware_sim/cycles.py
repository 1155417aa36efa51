"""Cycle ESTIMATES from classified executed instructions (QEMU counts instructions, not cycles).

:func:`estimate_cycles` takes the per-address execution histogram of the instruction-counting
plugin (``firmware_sim.qemu.run_firmware(..., hist=...)``: executions and taken branches per
instruction address), disassembles the ELF (``arm-none-eabi-objdump``), puts every executed
instruction in a class and prices each class per core.  The prices are ESTIMATES taken from the
cores' technical reference manuals (below); they ignore memory wait states, stalls on results
and branch mispredictions, so every figure computed here is labelled an estimate.

Classes: ``alu`` (scalar data processing, IT, VCTP/VPST), ``mul`` (MUL/MLA, SMLAD and the other
DSP multiply-accumulates, long multiplies), ``div``, ``load``/``store`` (single, dual, multiple:
LDM/STM/PUSH/POP cost per register), ``branch`` (not taken) / ``branch_taken`` (control did not
fall through afterwards), ``vector_load``/``vector_store``/``vector_mac``/``vector_alu``
(MVE instructions on Q registers), ``fp`` (scalar floating point, not in the int8 step).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from wavenet_edge.errors import WaveNetEdgeError

__all__ = ["CLASSES", "PRICES", "PRICE_SOURCES", "CycleEstimate", "classify", "disassemble",
           "estimate_cycles"]

CLASSES = ("alu", "mul", "div", "load", "store", "branch", "branch_taken", "vector_load",
           "vector_store", "vector_mac", "vector_alu", "fp")

#: cycles per instruction of each class (ESTIMATES; memory is assumed zero-wait TCM/SRAM)
PRICES = {
    # Cortex-M4 TRM r0p1 (Arm DDI 0439B) §3.3.1, Table 3-1 "Cortex-M4 instruction set summary":
    # data processing 1; MUL/MLA, the DSP MACs (SMLAD ...) and SMULL/SMLAL 1; SDIV/UDIV 2-12;
    # LDR/STR 2 (neighbouring single loads/stores pipeline: 1 each after the first);
    # LDM/STM/PUSH/POP 1+N; branch 1+P with a refill P of 1-3 cycles.
    "cortex-m4": dict(alu=1.0, mul=1.0, div=7.0, load=2.0, store=2.0, load_next=1.0,
                      multiple_base=1.0, multiple_per_reg=1.0, branch=1.0, branch_taken=3.0,
                      vector=2.0, vector_overlap=1.0, fp=1.0),
    # Cortex-M7 TRM (Arm DDI 0489F) ch. 1 "Introduction", Features: in-order, six-stage,
    # superscalar dual issue (two ALU instructions per cycle), one MAC pipeline, one 64-bit
    # load/store unit, branch prediction (BTAC).  The TRM gives no per-instruction timing table:
    # dual-issued ALU work is priced 0.5, a predicted taken branch 1.
    "cortex-m7": dict(alu=0.5, mul=1.0, div=7.0, load=1.0, store=1.0, load_next=1.0,
                      multiple_base=0.0, multiple_per_reg=0.5, branch=0.5, branch_taken=1.0,
                      vector=2.0, vector_overlap=1.0, fp=1.0),
    # Cortex-M55 TRM (Arm 101051) "Processor features" and the M-profile Vector Extension
    # chapter: dual-beat Helium, a 128-bit vector instruction takes 2 beats (cycles); the beats
    # of two consecutive vector instructions of different kinds (load/store vs. ALU/MAC) overlap,
    # so the second costs 1; scalar pipeline single issue, 1 cycle per instruction, taken branch
    # ~2 (low-overhead-loop LE 1).
    "cortex-m55": dict(alu=1.0, mul=1.0, div=7.0, load=1.0, store=1.0, load_next=1.0,
                       multiple_base=1.0, multiple_per_reg=1.0, branch=1.0, branch_taken=2.0,
                       vector=2.0, vector_overlap=1.0, fp=1.0),
}

PRICE_SOURCES = {
    "cortex-m4": "Arm Cortex-M4 Processor TRM r0p1 (DDI 0439B), Table 3-1 instruction timings",
    "cortex-m7": "Arm Cortex-M7 Processor TRM (DDI 0489F), dual-issue pipeline (no timing "
                 "table published: ALU 0.5, MAC/load/store 1 assumed)",
    "cortex-m55": "Arm Cortex-M55 Processor TRM (101051), dual-beat MVE: 2 cycles per 128-bit "
                  "vector instruction, 1 when overlapped with one of another kind",
}

_MUL = re.compile(r"^(mul|mla|mls|smul|smla|smls|smmul|smmla|smmls|smuad|smusd|umull|umlal|"
                  r"umaal|smull|smlal)")
_BRANCH = re.compile(r"^(b|bl|blx|bx|cbz|cbnz|le|letp|wls|dls|wlstp|dlstp|tbb|tbh|bf\w*)$")
_COND = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt",
         "gt", "le", "al")


def _base(mnemonic: str) -> str:
    return mnemonic.lower().split(".")[0]


def classify(mnemonic: str, operands: str, core: str) -> str:
    """The class of one instruction (``mnemonic`` as objdump prints it, e.g. ``vldrb.u8``)."""
    m = _base(mnemonic)
    ops = operands.lower()
    if m.startswith("v"):
        if re.search(r"\bq\d", ops):                    # MVE: operates on Q registers
            if re.match(r"^v(ldr|ld[24])", m):
                return "vector_load"
            if re.match(r"^v(str|st[24])", m):
                return "vector_store"
            if re.match(r"^v(mla|mlav|mladav|mlsdav|rmlal|mlaldav|mul|qdmul|qrdmul|qdmla|"
                        r"qrdmla|mull|rmulh|mulh|dot)", m):
                return "vector_mac"
            return "vector_alu"
        if m in ("vpush", "vstmdb", "vstmia", "vstr"):
            return "store"
        if m in ("vpop", "vldmia", "vldmdb", "vldr"):
            return "load"
        if m in ("vctp", "vpst", "vpt", "vmrs", "vmsr", "vmov"):
            return "alu"
        return "fp"
    if _BRANCH.match(m) or (m.startswith("b") and m[1:] in _COND):
        return "branch"
    if m in ("sdiv", "udiv"):
        return "div"
    if _MUL.match(m):
        return "mul"
    if m.startswith(("ldr", "ldm", "pop", "ldrex", "lda")):
        return "load"
    if m.startswith(("str", "stm", "push", "strex", "stl")):
        return "store"
    return "alu"


def disassemble(elf, core: str) -> dict:
    """{address: (mnemonic, operands, class)} of every instruction in ``elf``."""
    arch = ["-m", "armv8.1-m.main"] if core == "cortex-m55" else []
    try:
        r = subprocess.run(["arm-none-eabi-objdump", "-d", *arch, "--no-show-raw-insn",
                            str(elf)], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise WaveNetEdgeError(f"cannot disassemble {Path(elf).name}: {e}") from None
    out = {}
    for line in r.stdout.splitlines():
        mm = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if mm:
            mn, ops = mm.group(2), mm.group(3).split("@")[0].split(";")[0].strip()
            out[int(mm.group(1), 16)] = (mn, ops, classify(mn, ops, core))
    return out


@dataclass
class CycleEstimate:
    """Executed instructions by class and their cycle ESTIMATE on one core."""

    core: str
    instructions: int
    cycles_ESTIMATE: float
    by_class: dict = field(default_factory=dict)     # {class: [instructions, cycles estimate]}
    source: str = ""

    @property
    def cpi_ESTIMATE(self) -> float:
        return self.cycles_ESTIMATE / max(self.instructions, 1)

    def to_dict(self) -> dict:
        return {"core": self.core, "instructions": self.instructions,
                "cycles_ESTIMATE": round(self.cycles_ESTIMATE, 1),
                "cpi_ESTIMATE": round(self.cpi_ESTIMATE, 3),
                "by_class": {k: [v[0], round(v[1], 1)] for k, v in self.by_class.items()},
                "prices": PRICES[self.core], "source": self.source}


def _n_regs(ops: str) -> int:
    m = re.search(r"\{([^}]*)\}", ops)
    if not m:
        return 1
    n = 0
    for part in m.group(1).split(","):
        part = part.strip()
        if "-" in part:
            a, b = (re.sub(r"\D", "", x) for x in part.split("-"))
            n += (int(b) - int(a) + 1) if a and b else 2
        elif part:
            n += 1
    return max(n, 1)


def estimate_cycles(hist: dict, elf, core: str, *, disasm: dict | None = None) -> CycleEstimate:
    """Price ``hist`` ({address: (size, executions, taken)}) with :data:`PRICES` for ``core``.

    Static neighbours stand in for the executed order (a good approximation in straight-line
    kernels): a load/store right after another is pipelined, a vector instruction right after
    one of another kind overlaps (M55).
    """
    if core not in PRICES:
        raise WaveNetEdgeError(f"no cycle prices for {core!r}")
    p = PRICES[core]
    dis = disasm if disasm is not None else disassemble(elf, core)
    addrs = sorted(dis)
    prev_of = {a: b for b, a in zip(addrs, addrs[1:])}
    by = {c: [0, 0.0] for c in CLASSES}
    total = 0
    for a, (size, n, taken) in hist.items():
        if a not in dis or n == 0:
            continue
        mn, ops, cls = dis[a]
        total += n
        prev = dis.get(prev_of.get(a, -1), (None, None, None))[2]
        if cls.startswith("vector"):
            kind = "mem" if cls in ("vector_load", "vector_store") else "op"
            pk = (None if prev is None or not prev.startswith("vector")
                  else "mem" if prev in ("vector_load", "vector_store") else "op")
            cost = p["vector_overlap"] if pk is not None and pk != kind else p["vector"]
            by[cls][0] += n
            by[cls][1] += n * cost
            continue
        if cls in ("load", "store"):
            if re.match(r"^(ldm|stm|push|pop|vpush|vpop|vldm|vstm)", _base(mn)):
                cost = p["multiple_base"] + p["multiple_per_reg"] * _n_regs(ops)
            elif prev in ("load", "store"):
                cost = p["load_next"]
            else:
                cost = p[cls]
        elif cls == "branch":
            nt = n - min(taken, n)
            by["branch"][0] += nt
            by["branch"][1] += nt * p["branch"]
            by["branch_taken"][0] += min(taken, n)
            by["branch_taken"][1] += min(taken, n) * p["branch_taken"]
            continue
        else:
            cost = p[cls]
        by[cls][0] += n
        by[cls][1] += n * cost
        if taken and cls != "branch":       # POP {pc}, LDR pc, MOV pc: a taken branch too
            by["branch_taken"][1] += min(taken, n) * max(p["branch_taken"] - cost, 0.0)
    by = {k: v for k, v in by.items() if v[0] or v[1]}
    return CycleEstimate(core=core, instructions=total,
                         cycles_ESTIMATE=sum(v[1] for v in by.values()), by_class=by,
                         source=PRICE_SOURCES[core])
