"""numba's on-disk cache follows the sources a kernel can reach, not just its own file.

Numba alone validates a kernel's cache entry against the defining file only: after an edit to
``int8/requant.py`` the engine kernels (in ``_engine_kernels.py``, with ``requantize_int8``
inlined) were loaded from the cache and computed the old arithmetic."""

import inspect
import json
import os
import shutil
import subprocess
import sys

import numba
import numpy as np
import pytest

import wavenet_edge
from converters.convert import convert
from wavenet_edge import FloatWaveNet, WaveNetConfig
from wavenet_edge._jit import DigestFunctionCache, _forget_sources, source_digest
from wavenet_edge.int8 import requant

_RUN = """
import hashlib, json, sys
import numpy as np
import numba
import wavenet_edge, wavenet_edge._engine_kernels as K
from wavenet_edge import Engine
eng = Engine.from_file(sys.argv[1], profile="tflm")
logits = eng.process(np.arange(40) * 7 % 256, logits=True)
disps = [v for v in vars(K).values() if isinstance(v, numba.core.registry.CPUDispatcher)]
print(json.dumps({"file": wavenet_edge.__file__,
                  "logits": hashlib.sha256(np.ascontiguousarray(logits).tobytes()).hexdigest(),
                  "distinct": int(np.unique(logits).size),
                  "hits": sum(sum(d.stats.cache_hits.values()) for d in disps),
                  "misses": sum(sum(d.stats.cache_misses.values()) for d in disps)}))
"""

# appended to the copy's int8/requant.py: every FC output becomes its lower clamp (the engine's
# tflm/litert FCs use the one-shift form, the others requantize_int8)
_EDIT = """

@kernel
def requantize_int8(acc, multiplier, shift, fmul, out_zp, act_min, act_max, profile):
    return np.int64(act_min)


@kernel
def requantize_single_shift(acc, multiplier, shift, ties_away):
    return np.int64(-1000)
"""


def _copy_package(tmp, *, with_cache=False):
    """wavenet_edge's sources copied to ``tmp/pkg/wavenet_edge`` (numba's cache files too with
    ``with_cache``: the copy then starts warm wherever this process has compiled)."""
    skip = ["*.pyc"] if with_cache else ["__pycache__", "*.pyc"]
    shutil.copytree(os.path.dirname(wavenet_edge.__file__), tmp / "pkg" / "wavenet_edge",
                    ignore=shutil.ignore_patterns(*skip))


@pytest.fixture(scope="module")
def copy_and_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jitcache")
    cfg = WaveNetConfig(dilations=(1, 2, 4), residual_channels=8, dilation_channels=8,
                        skip_channels=8, end_channels=8)
    model = tmp / "m.tflite"
    convert(FloatWaveNet.initialize(cfg, seed=1), out=model, progress=False,
            evaluate_quality=False, method="minmax")
    # compile (or load) the engine here first and copy its cache entries with the sources: the
    # test then pays one cold compile of the engine (after the edit), not two (~75 s each)
    from wavenet_edge import Engine
    Engine.from_file(model, profile="tflm").process(np.arange(40) * 7 % 256, logits=True)
    _copy_package(tmp, with_cache=True)
    return tmp, model


def _run(tmp, model):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = str(tmp / "pkg")
    r = subprocess.run([sys.executable, "-c", _RUN, str(model)], capture_output=True, text=True,
                       env=env, cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["file"].startswith(str(tmp / "pkg"))
    return res


def test_editing_an_inlined_callee_in_another_file_recompiles_the_engine(copy_and_model):
    tmp, model = copy_and_model
    first = _run(tmp, model)   # warm where this process compiled the same kernels (copied)
    assert first["distinct"] > 1
    second = _run(tmp, model)  # warm: every engine kernel comes from the cache
    assert second["logits"] == first["logits"]
    assert second["hits"] > 0 and second["misses"] == 0
    # the edit assumes requantize_int8's signature; fail loudly (not silently pass) if it moved
    sig = inspect.signature(requant.requantize_int8.py_func)
    assert list(sig.parameters) == ["acc", "multiplier", "shift", "fmul", "out_zp", "act_min",
                                    "act_max", "profile"]
    sig = inspect.signature(requant.requantize_single_shift.py_func)
    assert list(sig.parameters) == ["acc", "multiplier", "shift", "ties_away"]
    with open(tmp / "pkg" / "wavenet_edge" / "int8" / "requant.py", "a") as f:
        f.write(_EDIT)
    third = _run(tmp, model)
    assert third["misses"] > 0
    assert third["logits"] != first["logits"] and third["distinct"] == 1
    fourth = _run(tmp, model)  # and the new entries are cached in turn
    assert fourth["logits"] == third["logits"] and fourth["misses"] == 0


def test_the_digest_covers_inlined_callees_and_nothing_outside_the_import_closure(tmp_path):
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    for name, text in {"__init__.py": "", "sub/__init__.py": "from .leaf import f\n",
                       "sub/leaf.py": "X = 1\n", "kern.py": "from .sub import f\nfrom . import other\n",
                       "other.py": "import p.deep\n", "deep.py": "", "unused.py": ""}.items():
        (pkg / name).write_text(text)
    d0 = source_digest(pkg / "kern.py")
    for name in ("sub/leaf.py", "other.py", "deep.py", "sub/__init__.py", "__init__.py"):
        _forget_sources()
        (pkg / name).write_text((pkg / name).read_text() + "# edited\n")
        d1 = source_digest(pkg / "kern.py")
        assert d1 != d0, name
        d0 = d1
    _forget_sources()
    (pkg / "unused.py").write_text("Y = 2\n")
    assert source_digest(pkg / "kern.py") == d0


def test_every_cached_kernel_of_the_package_uses_the_digest_cache():
    import importlib
    import pkgutil

    found = 0
    for m in pkgutil.walk_packages(wavenet_edge.__path__, "wavenet_edge."):
        if m.name.endswith("__main__"):
            continue
        mod = importlib.import_module(m.name)
        for name, v in vars(mod).items():
            if isinstance(v, numba.core.registry.CPUDispatcher) and v.__module__ == m.name:
                found += 1
                assert isinstance(v._cache, DigestFunctionCache), f"{m.name}.{name}"
    assert found > 20


def test_generic_and_host_targets_keep_separate_cache_entries(tmp_path):
    """numba keys an entry on the codegen's CPU name and features: a NUMBA_CPU_NAME=generic
    process compiles its own entry instead of loading the host's (AVX-512) code, and both stay."""
    _copy_package(tmp_path)
    code = ("import numpy as np, wavenet_edge.int8.fixedpoint as F;"
            "print(F.srdhm(np.int64(123456789), np.int64(1518500250)));"
            "print(sum(F.srdhm.stats.cache_hits.values()), sum(F.srdhm.stats.cache_misses.values()))")

    def run(**extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
        env.update(PYTHONPATH=str(tmp_path / "pkg"), **extra)
        # cwd: ``python -c`` puts the working directory before PYTHONPATH, and the suite runs
        # from the checkout, whose own (already cached) wavenet_edge would shadow the copy
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        value, counts = r.stdout.split("\n")[:2]
        return int(value), tuple(map(int, counts.split()))

    # (hits, misses) of one call each
    assert run()[1] == (0, 1)
    assert run(NUMBA_CPU_NAME="generic")[1] == (0, 1)
    assert run()[1] == (1, 0)
    assert run(NUMBA_CPU_NAME="generic")[1] == (1, 0)
    assert len({run()[0], run(NUMBA_CPU_NAME="generic")[0]}) == 1
