"""ORACLE: int8 → int8 QUANTIZE (the conditioned step graph's per-layer requantization of
``cond``) in the real runtimes, bit for bit against wavenet_edge.int8.quantize for every profile
(module docstring there: LiteRT's blocks of 16 round ties up, its tail and TFLM away from zero;
XNNPACK takes the op for scale ratios in [2**-8, 2**7])."""

import numpy as np
import pytest

from wavenet_edge.int8 import PROFILES
from wavenet_edge.int8.quantize import (quantize_int8_vec, quantize_params, quantize_tables)

pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
from converters.tflite_writer import GraphBuilder  # noqa: E402
from test_int8_oracle import Tally, run  # noqa: E402


def quantize_model(n, s_in, z_in, s_out, z_out):
    g = GraphBuilder()
    x = g.add_tensor("x", (1, n), np.int8, scale=s_in, zero_point=z_in)
    y = g.add_tensor("y", (1, n), np.int8, scale=s_out, zero_point=z_out)
    g.add_operator("QUANTIZE", [x], [y], version=2)
    g.set_inputs([x])
    g.set_outputs([y])
    return g.build()


def _cases():
    rng = np.random.default_rng(41)
    cases = []
    for k in range(24):
        s_in = np.float32(10 ** rng.uniform(-2.5, 0))
        ratio = 10 ** rng.uniform(-1.5, 1.2)
        if k % 6 == 0:
            ratio = float(rng.choice([1.0, 0.5, 2.0, 1 / 3, 3.0]))   # exact ties abound
        cases.append((s_in, int(rng.integers(-128, 128)), np.float32(s_in / ratio),
                      int(rng.integers(-128, 128))))
    # XNNPACK's delegation bounds: just below 2**-8 stays on the builtin kernel
    cases += [(np.float32(0.05), -128, np.float32(0.05 / (2 ** -8 * r)), 0)
              for r in (0.9, 0.999, 1.0, 1.001)]
    return cases


@pytest.mark.parametrize("n", [7, 16, 20, 37, 80])
def test_quantize_int8_to_int8(n):
    rng = np.random.default_rng(n)
    tally = Tally("QUANTIZE")
    for s_in, z_in, s_out, z_out in _cases():
        model = quantize_model(n, s_in, z_in, s_out, z_out)
        # every input value at every position over a few runs (blocks and tail)
        xs = [np.roll(np.arange(-128, 128), k)[:n].astype(np.int8)[None] for k in range(0, 256, n)]
        xs += [rng.integers(-128, 128, (1, n)).astype(np.int8) for _ in range(2)]
        for profile in PROFILES:
            p = quantize_params(s_in, z_in, s_out, z_out, profile)
            blk, tail = quantize_tables(p)
            for x in xs:
                want = np.empty(n, np.int8)
                quantize_int8_vec(x[0], p.ip, p.profile, want)
                b = n // 16 * 16          # the tables are what the engine runs
                via = np.concatenate([blk[x[0, :b].astype(int) + 128],
                                      tail[x[0, b:].astype(int) + 128]])
                np.testing.assert_array_equal(via, want)
                tally.add(profile, run(model, [x], profile)[0], want)
    tally.assert_identical()


def test_profiles_really_differ():
    """The four formulas are not interchangeable: at ratio 1/4 (exact ties after the SRDHM) they differ."""
    x = np.arange(-128, 128).astype(np.int8)
    outs = {}
    for profile in PROFILES:
        p = quantize_params(np.float32(0.125), 3, np.float32(0.5), -5, profile)
        outs[profile] = np.empty(256, np.int8)
        quantize_int8_vec(x, p.ip, p.profile, outs[profile])
    assert np.array_equal(outs["tflm"], outs["litert-ref"])
    assert (outs["tflm"] != outs["litert"]).sum() > 0
    assert (outs["xnnpack"] != outs["tflm"]).sum() > 0
