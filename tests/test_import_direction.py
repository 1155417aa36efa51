"""Dependencies point one way: firmware_sim -> converters -> wavenet_edge.

Read from the source with ``ast`` (so imports inside functions count, and nothing is imported):
wavenet_edge imports neither host package; converters never imports firmware_sim.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"wavenet_edge": {"converters", "firmware_sim"},
             "converters": {"firmware_sim"},
             "firmware_sim": set()}


def _imported_packages(source: str, package: str):
    """(line, top-level package) of every import in ``source``, a module of ``package``:
    ``import``/``from`` statements at any depth and ``importlib.import_module("…")`` /
    ``__import__("…")`` with a literal name.  A relative import stays inside ``package``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, package if node.level else (node.module or "").split(".")[0]
        elif isinstance(node, ast.Call) and node.args:
            fn = node.func.attr if isinstance(node.func, ast.Attribute) else \
                getattr(node.func, "id", "")
            arg = node.args[0]
            if fn in ("import_module", "__import__") and isinstance(arg, ast.Constant) \
                    and isinstance(arg.value, str) and not arg.value.startswith("."):
                yield node.lineno, arg.value.split(".")[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert len(files) > 3, f"no modules found under {package}"
    bad = [f"{p.relative_to(ROOT)}:{line} imports {top}"
           for p in files
           for line, top in _imported_packages(p.read_text(encoding="utf-8"), package)
           if top in FORBIDDEN[package]]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_function_level_and_dynamic_imports():
    src = ("import numpy as np, firmware_sim.qemu\n"
           "def f():\n    import firmware_sim.simulate\n"
           "def g():\n    from firmware_sim import emulate\n"
           "class C:\n    def h(self):\n        importlib.import_module('firmware_sim.memory')\n"
           "from .host import ContractHost\nfrom wavenet_edge import Engine\n")
    got = [top for _, top in _imported_packages(src, "converters")]
    assert got.count("firmware_sim") == 4
    assert {"numpy", "converters", "wavenet_edge"} <= set(got)
