"""Every command line of the README runs (substitutions: tests/readme_commands.py)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from readme_commands import (PY_SUBSTITUTIONS, ROOT, code_blocks, inline_cli_spans,
                             promised_quickstart_files, shell_commands, with_budget)


def _env():
    bindir = os.path.dirname(sys.executable)
    return dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
                PYTHONIOENCODING="utf-8")


def test_readme_has_exactly_two_setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```", setup, re.S | re.M)
    assert len(blocks) == 2 and all(len(b.strip().splitlines()) == 1 for b in blocks), blocks
    assert code_blocks("bash")[0] == blocks[0]


def test_pip_install_lines_name_real_extras_and_the_pictures_need_nothing_more():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    deps = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert re.search(r'^\s*"matplotlib', deps, re.M), "command 1 promises PNGs: matplotlib"
    extras = set(re.findall(r"^(\w+)\s*=\s*\[", pyproject.split(
        "[project.optional-dependencies]", 1)[1].split("\n[", 1)[0], re.M))
    pips = [c for c in shell_commands() if c.startswith("pip install")]
    assert pips
    for cmd in pips:
        spec = shlex.split(cmd)[-1]
        assert spec.startswith("."), cmd
        wanted = set(re.findall(r"\[([\w,]+)\]", spec)[0].split(",")) if "[" in spec else set()
        assert wanted <= extras, (cmd, extras)


def test_the_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    tests = [c for c in shell_commands() if c.startswith("python -m pytest")]
    assert tests and all(t in ci for t in tests), tests


def _parsers():
    from wavenet_edge.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def test_every_wavenet_edge_synopsis_uses_real_options():
    # the command table and inline spans are synopses (placeholders, brackets): each option shown
    # must exist for that command, e.g. `export-c MODEL.tflite -o DIR`
    parsers = _parsers()
    spans = inline_cli_spans()
    assert len(spans) >= 12
    for span in spans:
        words = span.replace("\\|", "|").split()
        cmd = words[1]
        assert cmd in parsers, f"README shows an unknown command: {span}"
        known = set(parsers[cmd]._option_string_actions)
        for w in words[2:]:
            for opt in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", w):
                assert opt in known, f"{opt} is not an option of {cmd}: {span}"


def test_every_command_of_the_bash_blocks_runs(tmp_path):
    run = [c for c in shell_commands()
           if not c.startswith(("pip install", "python -m pytest", "wavenet-edge quickstart"))]
    assert run, "nothing left to run"
    for cmd in run:
        # commands naming repository files run at the repository root
        r = subprocess.run(with_budget(cmd), shell=True, cwd=ROOT, env=_env(),
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"


def test_readme_first_command_writes_everything_it_promises(quickstart_run):
    r, cwd = quickstart_run
    assert r.returncode == 0, r.stderr[-3000:]
    assert "skipped" not in r.stdout, r.stdout
    promised = promised_quickstart_files()
    assert {"generated.wav", "continuation.png", "continuation.wav"} <= set(promised), promised
    out = cwd / "quickstart_out"
    for name in promised:
        p = out / name
        assert p.exists(), f"README promises quickstart_out/{name}"
        if name.endswith(".png"):
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_python_api_block_runs(tmp_path):
    from wavenet_edge import write_wav
    blocks = code_blocks("python")
    assert len(blocks) == 1
    code = blocks[0]
    for old, new in PY_SUBSTITUTIONS:
        assert old in code, old
        code = code.replace(old, new)
    t = np.arange(16000) / 16000
    write_wav(tmp_path / "speech.wav", 0.3 * np.sin(2 * np.pi * 200 * t), 16000)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "bits/sample" in r.stdout


@pytest.mark.parametrize("name", ["quickstart"])
def test_budget_flags_exist(name):
    # the substituted flags must be real options, or the budget would be a silent no-op
    from readme_commands import BUDGETS
    known = set(_parsers()[name]._option_string_actions)
    flags = [f for f in BUDGETS[f"wavenet-edge {name}"] if f.startswith("--")]
    assert flags and set(flags) <= known
