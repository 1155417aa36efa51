"""The C export of a vocoder whose upsampler mixes bands (F = 3): the band-window frame program
(SLICE band windows lowered to COPY records, one FC per edge band and one for the interior)
runs unchanged through the C frame interpreter; host gcc and QEMU firmware are bit-exact with
the engine (tflm) at every step across several frames and both edges."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_sim.emulate import default_features, emulate, engine_reference
from firmware_sim.qemu import toolchain_status
from test_c_export_cond import _codes, _host, _steps, vocoder
from wavenet_edge.engine import Engine
from wavenet_edge.lowered.kinds import OpKind


def _vocoder_F3() -> bytes:
    """test_c_export_cond's conv-in F = 3 vocoder (7 bands, scales (4, 4): band reach 2)."""
    return vocoder("conv-in-F3")


def test_host_c_bit_exact_with_the_engine_F3(tmp_path):
    eng = Engine(_vocoder_F3(), profile="tflm")
    fp = eng._shared.frames[0]
    assert fp.contract["band_reach"] == 2
    assert set(np.unique(fp.program.ops["kind"])) == {int(OpKind.FC), int(OpKind.COPY)}
    n = _steps(eng)
    codes = _codes(n)
    feats = default_features(eng, n)
    out = _host(tmp_path, eng, codes, feats)
    probs, logits, writes, hashes = engine_reference(eng, codes, cond=feats)
    np.testing.assert_array_equal(np.stack([out.full["L"][j] for j in range(n)]), logits)
    np.testing.assert_array_equal(np.stack([out.full["P"][j] for j in range(n)]), probs)
    np.testing.assert_array_equal(out.hashes, hashes)
    # the band mixing is live: features with two bands swapped give other logits
    other = feats.copy()
    other[:, [0, 3]] = other[:, [3, 0]]
    assert np.mean(engine_reference(eng, codes, cond=other)[1] != logits) > 0.2


needs_qemu = pytest.mark.skipif(toolchain_status() is not None, reason=str(toolchain_status()))


@pytest.mark.emulate
@needs_qemu
def test_qemu_teacher_forced_F3():
    """Real firmware (QEMU, the best kernel variant of a Cortex-M7 and a Cortex-M55): every
    step bit-exact with the engine, the frame calls counted."""
    data = _vocoder_F3()
    eng = Engine(data, profile="tflm")
    n = _steps(eng)
    rep = emulate(data, cores=("cortex-m7", "cortex-m55"), steps=n, codes=_codes(n, 9),
                  kernels="auto", full_every=4, bench=None, profile_ops=False,
                  cycle_classes=False, repeat_check=False)
    assert len(rep.runs) == 2 and rep.ok
    for r in rep.runs:
        assert r.bitexact_steps == r.steps == n, (r.core, r.kernels)
        fp = eng._shared.frames[0]
        assert r.frame_calls == n // fp.hop + fp.block_delay


def test_simulate_an_F3_vocoder():
    """simulate prices the F = 3 frame graph per sample (its C-cost proxy step is built without
    the upsampler, F reset with it: refused before as a config without an upsampler)."""
    import json
    from firmware_sim.simulate import simulate
    data = _vocoder_F3()
    fp = Engine(data, profile="tflm")._shared.frames[0]
    rep = simulate(data, targets=["stm32h743"], check_bitexact=False, plan=False)
    k = json.loads(rep.to_json())["conditioning"]
    assert k["frame_macs_per_call"] == fp.program.macs_per_sample > 0
    assert rep.results[0].latency.breakdown["frame_graph"] > 0
