"""Flash and SRAM budget of a step graph on a target, with a verdict and what to shrink.

Flash = the ``.tflite`` bytes as TFLM embeds them (a ``const`` array, padded to 16 bytes) + a
runtime-code allowance (ASSUMPTION, :data:`RUNTIME_FLASH_BYTES`).
SRAM = delay lines (one int8 ring per distinct ``write`` of the contract, as long as its longest
delay: Σ max-delay × channels bytes; equals :meth:`WaveNetConfig.delay_line_bytes`) + the TFLM
arena measured with the real interpreter (:mod:`firmware_sim.arena`) + a stack/scratch allowance
(ASSUMPTION, :data:`STACK_SRAM_BYTES`) + the audio output FIFO (2 bytes per int16 sample).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wavenet_edge.config import WaveNetConfig

__all__ = ["RUNTIME_FLASH_BYTES", "STACK_SRAM_BYTES", "DelayLines", "delay_lines_from_metadata",
           "delay_line_bytes_for_config", "MemoryBudget", "memory_budget", "shrink_moves", "Scaling",
           "ASSUMPTIONS", "C_ENGINE_CODE_BYTES", "c_engine_memory", "c_export_arrays"]

#: Flash for TFLM's runtime (MicroInterpreter, allocator, flatbuffer reader ≈ 16 KB per the TFLM
#: README's "core runtime fits in 16 KB on a Cortex-M3") + the 9 int8 kernels this graph uses with
#: CMSIS-NN/ESP-NN (≈ 32 KB, -Os) + application glue, vector table, libc bits (≈ 16 KB).  Assumed.
RUNTIME_FLASH_BYTES = 64 * 1024
#: Main stack + TFLM's stack use during Invoke + application scratch.  Assumed.
STACK_SRAM_BYTES = 8 * 1024
#: Flash for OUR C engine's code: wavenet_engine.c at -O2 measured with arm-none-eabi-gcc 12
#: (`arm-none-eabi-size`): .text 13,260 B (M4, DSP), 13,204 B (M7, DSP), 13,444 B (M55, MVE),
#: + ~3 KB assumed for the application's audio glue, vector table and memcpy/memset.
C_ENGINE_CODE_BYTES = 16 * 1024
#: Bytes per sample of the audio output FIFO (int16 PCM to the DAC/I2S).
FIFO_BYTES_PER_SAMPLE = 2

ASSUMPTIONS = {
    "runtime_flash_bytes": f"{RUNTIME_FLASH_BYTES} B: TFLM core runtime ~16 KB (TFLM README: "
                           "'core runtime just fits in 16 KB on an Arm Cortex M3') + 9 int8 kernels "
                           "with CMSIS-NN ~32 KB + application ~16 KB (assumption)",
    "stack_sram_bytes": f"{STACK_SRAM_BYTES} B stack/scratch outside the arena (assumption)",
    "arena": "measured with the tflite-micro Python package (64-bit host build): activations are "
             "exact, TFLM's persistent structures contain pointers and are smaller on a 32-bit MCU "
             "(the figure is an upper bound for them)",
    "model_flash": "the .tflite bytes embedded verbatim (no compression), padded to 16 bytes",
    "fifo": f"{FIFO_BYTES_PER_SAMPLE} bytes per sample of audio output FIFO (int16 PCM)",
    "c_engine_memory": "our C export: flash = its const arrays (exact, = the compiled "
                       "wavenet_model.c) + engine code 16 KiB (13.0-13.1 KiB .text measured at "
                       "-O2 + 3 KiB glue, assumed); SRAM = sizeof(wn_state) (exact: arena, "
                       f"delay-line rings, positions, plan) + {STACK_SRAM_BYTES} B stack "
                       "(assumption) + the FIFO",
}


@dataclass(frozen=True)
class DelayLines:
    """``ring_bytes``: one ring per distinct write, length = its longest delay (what a host needs);
    ``per_read_bytes``: Σ over reads of delay × channels (the naive one-queue-per-read figure)."""

    ring_bytes: int
    per_read_bytes: int
    n_reads: int
    n_writes: int


def delay_lines_from_metadata(meta: dict, channels_of) -> DelayLines:
    """Delay-line SRAM from the contract ``meta`` (``delay_lines`` list); ``channels_of(name)`` gives
    a tensor's bytes per step (channels × 1 byte for int8)."""
    longest = {}
    per_read = 0
    for dl in meta["delay_lines"]:
        d = int(dl["delay"])
        c = int(channels_of(dl["read"]))
        per_read += d * c
        w = dl["write"]
        longest[w] = max(longest.get(w, (0, 0))[0], d), int(channels_of(w))
    ring = sum(d * c for d, c in longest.values())
    return DelayLines(ring_bytes=ring, per_read_bytes=per_read, n_reads=len(meta["delay_lines"]),
                      n_writes=len(longest))


def delay_line_bytes_for_config(config: WaveNetConfig) -> int:
    """Delay-line SRAM (bytes) of a config's step graph: Σ_l (k-1)·d_l·R + Σ_{j<w} j·R."""
    return int(config.delay_line_bytes())


@dataclass
class MemoryBudget:
    """Bytes of one model on one target; ``fits`` when both flash and SRAM fit."""

    target: str
    model_bytes: int
    runtime_flash_bytes: int
    flash_bytes: int
    flash_capacity: int
    delay_line_bytes: int
    arena_bytes: int
    stack_bytes: int
    fifo_bytes: int
    sram_bytes: int
    sram_capacity: int
    notes: list = field(default_factory=list)

    @property
    def flash_headroom(self) -> int:
        return self.flash_capacity - self.flash_bytes

    @property
    def sram_headroom(self) -> int:
        return self.sram_capacity - self.sram_bytes

    @property
    def fits_flash(self) -> bool:
        return self.flash_headroom >= 0

    @property
    def fits_sram(self) -> bool:
        return self.sram_headroom >= 0

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_sram

    def to_dict(self) -> dict:
        return {"model_bytes": self.model_bytes, "runtime_flash_bytes": self.runtime_flash_bytes,
                "flash_bytes": self.flash_bytes, "flash_capacity": self.flash_capacity,
                "flash_headroom": self.flash_headroom, "fits_flash": self.fits_flash,
                "delay_line_bytes": self.delay_line_bytes, "arena_bytes": self.arena_bytes,
                "stack_bytes": self.stack_bytes, "fifo_bytes": self.fifo_bytes,
                "sram_bytes": self.sram_bytes, "sram_capacity": self.sram_capacity,
                "sram_headroom": self.sram_headroom, "fits_sram": self.fits_sram,
                "fits": self.fits, "notes": list(self.notes)}


def memory_budget(target, *, model_bytes: int, delay_line_bytes: int, arena_bytes: int,
                  fifo_samples: int = 0, runtime_flash_bytes: int = RUNTIME_FLASH_BYTES,
                  stack_bytes: int = STACK_SRAM_BYTES) -> MemoryBudget:
    """The budget of a model (``model_bytes`` of .tflite) on ``target`` (:class:`Target`)."""
    embedded = -(-int(model_bytes) // 16) * 16
    flash = embedded + int(runtime_flash_bytes)
    fifo = int(fifo_samples) * FIFO_BYTES_PER_SAMPLE
    sram = int(delay_line_bytes) + int(arena_bytes) + int(stack_bytes) + fifo
    notes = []
    if target.flash_external:
        notes.append("flash is external (XIP); weights stream through the cache")
    return MemoryBudget(target=target.name, model_bytes=int(model_bytes),
                        runtime_flash_bytes=int(runtime_flash_bytes), flash_bytes=flash,
                        flash_capacity=int(target.flash_bytes),
                        delay_line_bytes=int(delay_line_bytes), arena_bytes=int(arena_bytes),
                        stack_bytes=int(stack_bytes), fifo_bytes=fifo, sram_bytes=sram,
                        sram_capacity=int(target.sram_bytes), notes=notes)


def _blocks(dilations) -> list:
    """Split a dilation list into blocks at every restart (d <= previous)."""
    blocks, cur = [], []
    for d in dilations:
        if cur and d <= cur[-1]:
            blocks.append(cur)
            cur = []
        cur.append(d)
    if cur:
        blocks.append(cur)
    return blocks


def shrink_moves(cfg: WaveNetConfig) -> list:
    """One-step reductions of ``cfg``: ``[(description, smaller config), …]`` (halve R, G, R and G
    down to 8; halve S and E down to 32; drop the last dilation block; drop the largest dilation;
    initial width → 1)."""
    out = []
    R, G = cfg.residual_channels, cfg.dilation_channels
    if R >= 16:
        out.append((f"residual_channels {R} -> {R // 2}", cfg.replace(residual_channels=R // 2)))
    if G >= 16:
        out.append((f"dilation_channels {G} -> {G // 2}", cfg.replace(dilation_channels=G // 2)))
    if R >= 16 and G >= 16:
        out.append((f"residual/dilation channels {R}/{G} -> {R // 2}/{G // 2}",
                    cfg.replace(residual_channels=R // 2, dilation_channels=G // 2)))
    blocks = _blocks(cfg.dilations)
    if len(blocks) > 1:
        dil = tuple(d for b in blocks[:-1] for d in b)
        out.append((f"dilation blocks {len(blocks)} -> {len(blocks) - 1}", cfg.replace(dilations=dil)))
    top = max(cfg.dilations)
    if top > 1 and any(d < top for d in cfg.dilations):
        dil = tuple(d for d in cfg.dilations if d < top)
        out.append((f"drop dilation {top} (max {top} -> {max(dil)})", cfg.replace(dilations=dil)))
    if cfg.initial_filter_width > 1:
        out.append((f"initial_filter_width {cfg.initial_filter_width} -> 1",
                    cfg.replace(initial_filter_width=1)))
    S, E = cfg.skip_channels, cfg.end_channels
    if S >= 64 or E >= 64:
        s2, e2 = max(32, S // 2), max(32, E // 2)
        out.append((f"skip/end channels {S}/{E} -> {s2}/{e2}",
                    cfg.replace(skip_channels=s2, end_channels=e2)))
    return out


#: Bytes of per-channel quantization per FULLY_CONNECTED output channel in the flatbuffer: the
#: weights' and the bias's float32 scale + int64 zero point each.
PER_CHANNEL_BYTES = 2 * (4 + 8)
#: Arena bytes per FULLY_CONNECTED output channel (TFLM's per-channel int32 multiplier and shift).
ARENA_PER_CHANNEL_BYTES = 8


def _fc_channels(counts) -> int:
    return int(sum(o.requants for o in counts.ops if o.category == "fully_connected"))


@dataclass(frozen=True)
class Scaling:
    """Flash and arena of an unbuilt config, scaled from a measured model of the same family.

    The graph's constants follow from the config exactly (:func:`firmware_sim.opcount.
    counts_from_config`), so does its per-channel quantization (:data:`PER_CHANNEL_BYTES` per FC
    output channel); the rest of the file (tensor tables, names, metadata) and the TFLM arena
    (per-tensor and per-node structures) are scaled by the tensor count; the arena also holds
    :data:`ARENA_PER_CHANNEL_BYTES` per FC output channel.  Estimates: across the presets (57 to
    866 tensors) the file came out within 0.3 % and the arena within 5 % of the measured values."""

    model_bytes: int
    constant_bytes: int
    n_tensors: int
    arena_bytes: int
    fc_channels: int = 0

    @classmethod
    def from_model(cls, model_bytes: int, counts, n_tensors: int, arena_bytes: int) -> "Scaling":
        return cls(model_bytes=int(model_bytes), constant_bytes=int(counts.constant_bytes),
                   n_tensors=int(n_tensors), arena_bytes=int(arena_bytes),
                   fc_channels=_fc_channels(counts))

    def model_bytes_for(self, counts) -> int:
        n = counts.extra["n_tensors"]
        rest = max(0, self.model_bytes - self.constant_bytes - PER_CHANNEL_BYTES * self.fc_channels)
        return int(counts.constant_bytes + PER_CHANNEL_BYTES * _fc_channels(counts)
                   + round(rest * n / max(1, self.n_tensors)))

    def arena_bytes_for(self, counts) -> int:
        # TFLM keeps an int32 multiplier and an int32 shift per FC output channel in the arena;
        # the rest is per-tensor / per-node bookkeeping
        n = counts.extra["n_tensors"]
        rest = max(0, self.arena_bytes - ARENA_PER_CHANNEL_BYTES * self.fc_channels)
        a = ARENA_PER_CHANNEL_BYTES * _fc_channels(counts) + rest * n / max(1, self.n_tensors)
        return int(-(-int(round(a)) // 16) * 16)


def c_export_arrays(program) -> dict:
    """The array sizes :func:`firmware_sim.c_export.state_bytes` / ``flash_bytes`` read, from a
    lowered program (:class:`wavenet_edge.lowered.Program`), without building an Engine."""
    return dict(ops=program.ops, reads=program.reads, writes=program.writes,
                arena_size=int(program.arena_size), ring_size=int(program.ring_size),
                weights=program.wblob, bias=program.bblob, mult=program.mult, shift=program.shift,
                iparams=program.iparams, luts=program.tables, softmax_exp=program.sm_exps,
                sample_table=np.zeros(256, np.int64))


def c_engine_memory(program, target, *, fifo_samples: int = 0,
                    kernels: str = "auto") -> MemoryBudget:
    """Flash and SRAM of OUR C export of ``program`` on ``target`` (see ASSUMPTIONS
    ``c_engine_memory``) built with ``kernels`` ("dsp": the DSP weight layout of
    :mod:`firmware_sim.c_export_dsp`); ``arena_bytes`` = sizeof(wn_state) minus its rings."""
    from .c_export import flash_bytes, state_bytes
    d = c_export_arrays(program)
    if kernels == "dsp":
        from .c_export_dsp import dsp_layout
        d["dsp"] = dsp_layout(program)
    state = state_bytes(d)
    flash = flash_bytes(d, kernels)
    fifo = int(fifo_samples) * FIFO_BYTES_PER_SAMPLE
    return MemoryBudget(target=target.name, model_bytes=flash,
                        runtime_flash_bytes=C_ENGINE_CODE_BYTES,
                        flash_bytes=flash + C_ENGINE_CODE_BYTES,
                        flash_capacity=int(target.flash_bytes),
                        delay_line_bytes=d["ring_size"], arena_bytes=state - d["ring_size"],
                        stack_bytes=STACK_SRAM_BYTES, fifo_bytes=fifo,
                        sram_bytes=state + STACK_SRAM_BYTES + fifo,
                        sram_capacity=int(target.sram_bytes),
                        notes=["C export: const arrays + engine code; wn_state + stack + FIFO"])
