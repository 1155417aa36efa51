""".ci/run fails on what it cannot check: a toolchain that does not install under CI=true, pytest's
exit status 5 (nothing collected), any failing step.  Exercised with stand-in commands on PATH
(no network, no pip)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CI_RUN = Path(__file__).resolve().parents[1] / ".ci" / "run"


def _stub(bin_dir: Path, name: str, body: str):
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


def _run(tmp_path, script, *, ci="true", stubs=()):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in stubs:
        _stub(bin_dir, name, body)
    for tool in ("bash", "env", "dirname", "cat", "sh"):  # only these real commands are visible
        real = shutil.which(tool)
        if real and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(real)
    env = {"PATH": str(bin_dir), "CI": ci, "HOME": str(tmp_path)}
    return subprocess.run([shutil.which("bash"), "-c", f"source {CI_RUN}; {script}"],
                          capture_output=True, text=True, env=env)


def test_toolchain_install_failure_fails_under_ci(tmp_path):
    r = _run(tmp_path, "install_cortex_m_toolchain", stubs=[("apt-get", "exit 100")])
    assert r.returncode == 1 and "could not install the Cortex-M toolchain" in r.stderr


def test_toolchain_install_failure_only_warns_outside_ci(tmp_path):
    r = _run(tmp_path, "install_cortex_m_toolchain", ci="false", stubs=[("apt-get", "exit 100")])
    assert r.returncode == 0 and "will be skipped" in r.stderr


def test_toolchain_that_installs_without_the_tools_still_fails(tmp_path):
    r = _run(tmp_path, "install_cortex_m_toolchain", stubs=[("apt-get", "exit 0")])
    assert r.returncode == 1


@pytest.mark.parametrize("pytest_rc, want", [(0, 0), (1, 1), (5, 1)])
def test_pytest_exit_status(tmp_path, pytest_rc, want):
    log = tmp_path / "calls"
    r = _run(tmp_path, "run_tests FOO=bar -- tests/x.py", stubs=[
        ("pip", f'echo "pip $*" >> {log}'),
        ("python", f'echo "python $* FOO=$FOO" >> {log}; exit {pytest_rc}')])
    assert r.returncode == want, r.stderr
    calls = log.read_text().splitlines()
    # the README's command, plus the extra arguments and environment of this pass
    assert calls == ['pip install -e .[test]', "python -m pytest -q tests/x.py FOO=bar"]
    if pytest_rc == 5:
        assert "collected no tests" in r.stderr


def test_a_failing_step_stops_the_run(tmp_path):
    r = _run(tmp_path, "step false; echo after")
    assert r.returncode == 1 and "after" not in r.stdout and "FAILED: false" in r.stderr


def test_readme_test_command_is_the_one_ci_runs():
    readme = (CI_RUN.parents[1] / "README.md").read_text()
    cmd = 'pip install -e ".[test]" && python -m pytest -q'
    assert cmd in readme and cmd in CI_RUN.read_text()
    assert os.access(CI_RUN, os.X_OK)


def test_arm64_oracle_tools_install_failure_fails_under_ci(tmp_path):
    r = _run(tmp_path, "install_arm64_oracle_tools", stubs=[("apt-get", "exit 100")])
    assert r.returncode == 1 and "qemu-aarch64-static, mmdebstrap" in r.stderr
    r = _run(tmp_path, "install_arm64_oracle_tools", stubs=[("apt-get", "exit 0")])
    assert r.returncode == 1  # "installed" but the tools are not there


def test_ci_runs_the_oracle_tests_on_the_portable_target_too(tmp_path):
    log = tmp_path / "calls"
    r = _run(tmp_path, 'run_tests NUMBA_CPU_NAME=generic -- "${PORTABLE_TESTS[@]}"', stubs=[
        ("pip", "true"), ("python", f'echo "$* $NUMBA_CPU_NAME" >> {log}')])
    assert r.returncode == 0, r.stderr
    (call,) = log.read_text().splitlines()
    assert call.endswith(" generic") and "tests/test_int8_oracle.py" in call
    assert "tests/test_litert_arm64_models.py" in call
    assert 'step run_tests NUMBA_CPU_NAME=generic -- "${PORTABLE_TESTS[@]}"' in CI_RUN.read_text()
    for f in call.split()[3:-1]:
        assert (CI_RUN.parents[1] / f).is_file(), f
