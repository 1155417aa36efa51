"""The larger presets, bit for bit: engine vs TFLM and LiteRT builtin on every graph output,
teacher-forced on speech and free-running (check_bitexact)."""

import pytest

from firmware_sim.bitexact import check_bitexact
from test_engine import _codes, _compare_run
from test_engine_helpers import model_bytes
from wavenet_edge.engine import Engine


@pytest.mark.parametrize("profile", ["tflm", "litert"])
def test_small_preset(profile):
    data = model_bytes("small")
    _compare_run(data, profile, _codes(Engine.from_bytes(data).config, 1500, "a"))
    r = check_bitexact(data, steps=0, free_steps=500, runtime=profile)
    assert r.ok and r.free_running_identical == 500, r.message()


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["tflm", "litert"])
def test_tensorflow_wavenet_preset(profile):
    # 50 layers, skip 512, initial filter width 32 (per-tap lookups + summing FC)
    data = model_bytes("tensorflow-wavenet")
    _compare_run(data, profile, _codes(Engine.from_bytes(data).config, 300, "a"))
    r = check_bitexact(data, steps=0, free_steps=150, runtime=profile)
    assert r.ok and r.free_running_identical == 150, r.message()
