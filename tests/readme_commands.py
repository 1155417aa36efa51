"""The README's command lines, as a test sees them (used by test_readme.py and conftest.py).

What "runs every command line" means here, and what is substituted where running it verbatim
would take long or change the machine:

- ``pip install -e <spec>``: not executed (the suite runs inside such an install); the test
  checks that every extra it names exists in pyproject.toml and that what the first command's
  pictures need (matplotlib) is a plain dependency.
- ``python -m pytest -q``: not executed (it is this suite); the test checks that .ci/run runs
  the same command.
- ``wavenet-edge quickstart``: run with :data:`BUDGETS` appended (a few training steps, short
  verification and generation) in a temporary directory; every ``quickstart_out/FILE`` the
  README names must then exist.
- ``python benchmarks/bench_engine.py``: run with :data:`BUDGETS` appended (tiny preset, one
  short round, main table only).
- the Python API block: run as a script with :data:`PY_SUBSTITUTIONS` (three training steps
  instead of 60 s; ``speech.wav`` is a tone the test writes first).
- the command table and every inline ``wavenet-edge ...`` span: each option they show must be
  an option of that sub-command's parser (they are synopses with placeholders, not runnable).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# appended to a command line that starts with the key (argparse: the last value wins)
BUDGETS = {
    "wavenet-edge quickstart": ["--steps", "3", "--verify-steps", "50", "--generate-seconds",
                                "0.2", "--no-progress"],
    "taskset -c 1 python benchmarks/bench_engine.py": [
        "--preset", "tiny", "--quick", "--rounds", "1", "--seconds", "0.02", "--no-threads",
        "--no-portable"],
}
PY_SUBSTITUTIONS = [("seconds=60", "steps=3")]


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def code_blocks(lang: str) -> list:
    """Bodies of the fenced blocks of ``lang`` (``bash``, ``python``, ...), in order."""
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", readme_text(), re.S | re.M)
            if m.group(1) == lang]


def shell_commands() -> list:
    """Every command of the bash blocks: lines split at ``&&``, comments dropped."""
    out = []
    for block in code_blocks("bash"):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out += [c.strip() for c in line.split("&&")]
    return out


def with_budget(command: str) -> str:
    for prefix, extra in BUDGETS.items():
        if command.startswith(prefix):
            return command + " " + " ".join(extra)
    return command


def quickstart_command() -> str:
    """The ``wavenet-edge quickstart`` command of the README's first code block."""
    first = code_blocks("bash")[0]
    cmds = [c.strip() for line in first.splitlines() for c in line.split("&&")]
    qs = [c for c in cmds if c.startswith("wavenet-edge quickstart")]
    assert qs, f"the README's first code block runs no quickstart: {first!r}"
    return qs[0]


def promised_quickstart_files() -> list:
    """Every ``quickstart_out/NAME`` the README mentions (NAME with an extension)."""
    return sorted(set(re.findall(r"quickstart_out/([\w.-]+\.\w+)", readme_text())))


def inline_cli_spans() -> list:
    """Every inline code span (and table cell) that starts with ``wavenet-edge <command>``."""
    return re.findall(r"`(wavenet-edge [a-z][\w-]*[^`]*)`", readme_text())
