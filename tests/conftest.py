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
