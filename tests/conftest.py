import os

import pytest
# numba compiles on first call; property tests must not time out on it
from hypothesis import settings

settings.register_profile("default", deadline=None, derandomize=True)
settings.load_profile("default")
os.environ.setdefault("MPLBACKEND", "Agg")

# Under CI=true a skipped test is a failure: CI must not be green on work it did not check (a
# toolchain that is missing, a fixture that is absent, a package that did not install).  The only
# skips allowed are the ones that depend on the machine by design, listed here by reason.
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CI_ALLOWED_SKIPS = (
    "no AVX-512 VNNI on this CPU",                     # kernel variants of other CPUs
    "one configuration is enough for the compile matrix",
    "posix only",
)


def _skip_reason(rep) -> str:
    lr = rep.longrepr
    text = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return text.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if CI and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = _skip_reason(rep)
        if not any(reason.startswith(ok) for ok in CI_ALLOWED_SKIPS):
            rep.outcome = "failed"
            rep.longrepr = f"CI=true: a skipped test counts as a failure ({reason})"


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory):
    """The quickstart command of the README's first code block, run once per session with the
    small budgets of tests/readme_commands.py, in a fresh directory: ``(CompletedProcess, cwd)``
    (its outputs are in ``cwd / "quickstart_out"``)."""
    import shlex
    import subprocess
    import sys

    from readme_commands import quickstart_command, with_budget

    cwd = tmp_path_factory.mktemp("readme-quickstart")
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
               PYTHONIOENCODING="utf-8")
    r = subprocess.run(shlex.split(with_budget(quickstart_command())), cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=1200)
    return r, cwd
