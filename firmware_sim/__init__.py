"""firmware_sim: will this model run on my microcontroller, in real time, computing what I validated?

Front door: :func:`simulate` (memory, latency estimate, FIFO deadline simulation, bit-exactness
against TFLM), :func:`check_bitexact` (the engine against any real interpreter through the
delay-line contract), :func:`export_c` (the model as portable C) and :func:`emulate` (that C run
as firmware on Cortex-M cores in QEMU); every one takes a ``.tflite`` path, its bytes, a parsed
model or an Engine.  :func:`quickstart` runs the whole pipeline (train, convert, verify,
simulate, generate) on the built-in signal set, on top of :mod:`converters`.
"""

from converters.host import ContractHost
from converters.interpreters import make_runner

from .arena import measure_arena
from .bitexact import BitExactResult, check_bitexact
from .c_export import ExportResult, export_c
from .emulate import emulate
from .latency import JitterModel, estimate_latency, simulate_fifo, smallest_fifo
from .memory import MemoryBudget, delay_line_bytes_for_config, memory_budget
from .opcount import OpCount, StepCounts, count_ops, counts_from_config
from .report import Report, TargetResult
from .quickstart import quickstart
from .simulate import simulate
from .targets import CoreModel, Target, builtin_targets, load_registry, select_targets

__all__ = [
    "simulate", "Report", "TargetResult", "quickstart",
    "check_bitexact", "BitExactResult", "ContractHost", "make_runner",
    "export_c", "ExportResult", "emulate",
    "select_targets", "builtin_targets", "load_registry", "Target", "CoreModel",
    "count_ops", "counts_from_config", "StepCounts", "OpCount",
    "memory_budget", "MemoryBudget", "delay_line_bytes_for_config",
    "estimate_latency", "simulate_fifo", "smallest_fifo", "JitterModel", "measure_arena",
]
