"""One front door per package, dependencies one way, no side effects at import."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("pkg", ["wavenet_edge", "converters", "firmware_sim"])
def test_front_door_exports_exist_and_import_is_silent(pkg):
    code = (f"import importlib, {pkg} as p\n"
            "missing = [n for n in p.__all__ if not hasattr(p, n)]\n"
            "assert not missing, missing\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""


def test_runtime_never_imports_the_host_packages():
    code = ("import sys, wavenet_edge, wavenet_edge.engine, wavenet_edge.cli, wavenet_edge.commands\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('converters', 'firmware_sim', "
            "'flatbuffers', 'tflite', 'ai_edge_litert', 'tflite_micro', 'matplotlib', 'tqdm')]\n"
            "print(','.join(bad))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_function_names_are_not_shadowed_by_their_modules():
    import converters
    import converters.convert  # noqa: F401  (a submodule import must not rebind the attribute)
    import converters.train  # noqa: F401
    assert callable(converters.convert) and callable(converters.train)
