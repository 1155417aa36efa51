"""``wavenet-edge simulate`` as a user runs it: subprocess, table, JSON, exit codes, bad input."""

import json
import os
import subprocess
import sys

import pytest

from test_firmware_sim import SMALL, build_graph


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "small.tflite"
    p.write_bytes(build_graph(SMALL))
    return p


def run(*args, tmp=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if tmp is not None:
        env["XDG_CACHE_HOME"] = str(tmp)
    return subprocess.run([sys.executable, "-m", "wavenet_edge", "simulate", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_table_and_json(model, tmp_path):
    r = run(model, "--target", "stm32f746", "--target", "alif-e3-hp", "--steps", "40",
            "--seconds", "0.5", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "stm32f746" in r.stdout and "alif-e3-hp" in r.stdout
    assert "40/40 identical" in r.stdout and "ESTIMATE" in r.stdout
    j = run(model, "--target", "rp2040", "--steps", "10", "--seconds", "0.2", "--fifo", "64",
            "--sample-rate", "8000", "--json", tmp=tmp_path)
    assert j.returncode == 0, j.stderr
    d = json.loads(j.stdout)
    assert d["sample_rate"] == 8000 and d["deadline_simulation"]["fifo_depth"] == 64
    assert d["bitexact"]["ok"] and d["bitexact"]["teacher_forced"]["identical"] == 10
    t = d["targets"][0]
    assert t["target"]["name"] == "rp2040" and t["latency"]["kind"] == "estimate"
    assert t["memory"]["fifo_bytes"] == 128


def test_cli_mismatch_exits_1(model, tmp_path):
    r = run(model, "--target", "rp2040", "--steps", "300", "--seconds", "0.1",
            "--engine-profile", "litert", tmp=tmp_path)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()[-1]
    assert "differ at teacher-forced step" in err and "tensor" in err
    assert "FAILED" in r.stdout


def test_cli_user_board(model, tmp_path):
    f = tmp_path / "boards.json"
    f.write_text(json.dumps([{"name": "big", "core": "cortex-m7", "clock_hz": 1_000_000_000,
                              "sram_bytes": 1 << 20, "flash_bytes": 1 << 22}]))
    r = run(model, "--target-file", f, "--no-bitexact", "--seconds", "0.2", "--json", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [t["target"]["name"] for t in d["targets"]] == ["big"] and d["bitexact"] is None


@pytest.mark.parametrize("args, msg", [
    (["{model}", "--target", "pdp11", "--no-bitexact"], "unknown target 'pdp11'"),
    (["{tmp}/missing.tflite", "--no-bitexact"], "missing.tflite"),
    (["{tmp}/junk.tflite", "--no-bitexact"], "junk.tflite"),
    (["{model}", "--target-file", "{tmp}/bad.json", "--no-bitexact"], "bad.json"),
])
def test_cli_bad_input_is_one_line_exit_2(model, tmp_path, args, msg):
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    (tmp_path / "bad.json").write_text('{"targets": [{"name": "x"}]}')
    r = run(*[a.format(model=model, tmp=tmp_path) for a in args], tmp=tmp_path)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and msg in lines[0] and "Traceback" not in r.stderr


@pytest.mark.parametrize("opt", [["--fifo", "0"], ["--steps", "-3"], ["--jitter", "2"],
                                 ["--sample-rate", "fast"]])
def test_cli_bad_options_rejected_by_parser(model, opt, capsys):
    from wavenet_edge.cli import main
    with pytest.raises(SystemExit) as e:
        main(["simulate", str(model), *opt])
    assert e.value.code == 2 and "error" in capsys.readouterr().err
