"""``wavenet-edge train`` by subprocess: success paths write loadable checkpoints; user errors give
one line on stderr, a non-zero exit, no traceback and no output file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from wavenet_edge import FloatWaveNet, write_wav

# a small config so that a few steps take well under a second
SMALL = {"dilations": [1, 2, 4, 8, 16], "residual_channels": 8, "dilation_channels": 8,
         "skip_channels": 8, "end_channels": 16}


def _run(args, cwd):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "wavenet_edge", "train", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def small_config(tmp_path):
    p = tmp_path / "small.json"
    p.write_text(json.dumps(SMALL))
    return p


def test_builtin_success_default_name(tmp_path, small_config):
    r = _run(["--config", small_config, "--steps", "3", "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "wavenet-small.npz"
    model = FloatWaveNet.load(out)
    assert model.config.dilations == (1, 2, 4, 8, 16)
    assert "held-out order-0 entropy" in r.stdout
    assert "held-out before training" in r.stdout and "held-out after training" in r.stdout
    assert "wrote" in r.stdout and "Traceback" not in r.stderr


def test_init_continues_a_checkpoint(tmp_path, small_config):
    r = _run(["--config", small_config, "--steps", "2", "--no-progress", "-o", "a.npz"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run(["--init", "a.npz", "--steps", "2", "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    a, b = FloatWaveNet.load(tmp_path / "a.npz"), FloatWaveNet.load(tmp_path / "a-continued.npz")
    assert a.config == b.config
    assert not np.array_equal(a.weights["end2/w"], b.weights["end2/w"])


def test_user_wav_resampled_preset_and_output(tmp_path):
    sr = 8000
    t = np.arange(sr) / sr
    y = 0.4 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 331 * t + 1.0)
    write_wav(tmp_path / "tone.wav", np.stack([y, y]), sr)      # stereo, 8 kHz
    out = tmp_path / "models" / "m.npz"
    out.parent.mkdir()
    r = _run([tmp_path / "tone.wav", "--preset", "tiny", "--steps", "2", "--batch-size", "2",
              "--no-progress", "-o", out], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "8000 Hz -> 16000 Hz" in r.stderr
    assert FloatWaveNet.load(out).config.residual_channels == 16
    assert "held-out after training" in r.stdout


def _assert_clean_failure(r, tmp_path, *needles):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("wavenet-edge train: error:")
    for n in needles:
        assert n in lines[0]
    assert not list(tmp_path.glob("*.npz")), "an output file was left behind"
    assert not list(tmp_path.glob(".tmp-*")), "a temporary file was left behind"


def test_missing_file(tmp_path):
    r = _run(["nope.wav", "--steps", "1", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "nope.wav", "no such file")


def test_bad_wav(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really a wav file")
    r = _run(["bad.wav", "--steps", "1", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "bad.wav")


def test_bad_config_json(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    r = _run(["--config", "c.json", "--steps", "1", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "c.json", "JSON")


def test_out_of_range_config(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({**SMALL, "kernel_size": 1}))
    r = _run(["--config", "c.json", "--steps", "1", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "c.json", "kernel_size")


def test_missing_output_dir(tmp_path, small_config):
    r = _run(["--config", small_config, "--steps", "1", "-o", tmp_path / "no" / "x.npz"],
             tmp_path)
    _assert_clean_failure(r, tmp_path, "does not exist")


def test_bad_budget(tmp_path, small_config):
    r = _run(["--config", small_config, "--steps", "0", "-o", "x.npz"], tmp_path)
    _assert_clean_failure(r, tmp_path, "steps")


def _interrupt_at(marker, args, cwd, env=None):
    """Start ``train ARGS``, send SIGINT as soon as a stderr line contains ``marker``, return
    ``(exit code, stderr)``.  No deadline decides when to interrupt (the marker does); the
    timeouts only keep a hung process from hanging the suite."""
    import queue
    import signal
    import threading

    env = dict(os.environ, PYTHONIOENCODING="utf-8", **(env or {}))
    proc = subprocess.Popen([sys.executable, "-m", "wavenet_edge", "train", *map(str, args)],
                            cwd=cwd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)
    lines = queue.Queue()
    def read():
        for x in proc.stderr:
            lines.put(x)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen = []
    try:
        while True:
            line = lines.get(timeout=600)
            assert line is not None, "train ended before " + repr(marker) + ":\n" + "".join(seen)
            seen.append(line)
            if marker in line:
                break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    while not lines.empty():
        line = lines.get()
        if line is not None:
            seen.append(line)
    return proc.returncode, "".join(seen)


def _assert_interrupted(rc, err, tmp_path, message):
    assert rc == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert message in err, err
    assert err.strip().splitlines()[-1] == "wavenet-edge train: interrupted"
    assert not list(tmp_path.glob(".tmp-*"))


def test_ctrl_c_saves_the_checkpoint(tmp_path, small_config):
    # the periodic checkpoint is far away: only the interrupt can write x.npz, with the weights
    # of the step it names
    out = tmp_path / "x.npz"
    rc, err = _interrupt_at("step 1 took", ["--config", small_config, "--seconds", "600",
                                            "--checkpoint-every", "1000000", "--no-progress",
                                            "-o", out], tmp_path)
    _assert_interrupted(rc, err, tmp_path, "interrupted at step ")
    assert f"wrote {out}" in err
    trained = FloatWaveNet.load(out)
    init = FloatWaveNet.initialize(trained.config, seed=0)
    assert not np.array_equal(trained.weights["end2/w"], init.weights["end2/w"])


def test_ctrl_c_while_numba_compiles(tmp_path, small_config):
    # an empty numba cache: the first step compiles the training kernels for seconds; Ctrl-C
    # there must end the run cleanly (numba compiles through ctypes callbacks, which swallow a
    # KeyboardInterrupt and then fail otherwise), and must not break the cache for the next run
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    env = {"NUMBA_CACHE_DIR": str(cache)}
    rc, err = _interrupt_at("training:", ["--config", small_config, "--seconds", "600",
                                          "--no-progress", "-o", "x.npz"], tmp_path, env)
    if "step 1 took" in err:        # compilation finished before the signal arrived
        _assert_interrupted(rc, err, tmp_path, "interrupted at step ")
    else:
        _assert_interrupted(rc, err, tmp_path, "interrupted before the first step: nothing written")
        assert not (tmp_path / "x.npz").exists()
    r = subprocess.run([sys.executable, "-m", "wavenet_edge", "train", "--config", small_config,
                        "--steps", "2", "--no-progress", "-o", "y.npz"], cwd=tmp_path,
                       capture_output=True, text=True, env=dict(os.environ, **env), timeout=300)
    assert r.returncode == 0, r.stderr
    FloatWaveNet.load(tmp_path / "y.npz")


@pytest.fixture
def long_tone(tmp_path):
    # 40 s: its last 10 % (64,000 samples) is held out, which takes tiny a while to score
    sr = 16000
    t = np.arange(40 * sr) / sr
    write_wav(tmp_path / "long.wav", 0.4 * np.sin(2 * np.pi * 220 * t), sr)
    return tmp_path / "long.wav"


def test_ctrl_c_while_scoring_heldout_before_training(tmp_path, long_tone):
    rc, err = _interrupt_at("samples before training",
                            [long_tone, "--preset", "tiny", "--steps", "5", "--no-progress",
                             "-o", "x.npz"], tmp_path)
    _assert_interrupted(rc, err, tmp_path, "interrupted before the first step: nothing written")
    assert not (tmp_path / "x.npz").exists()


def test_ctrl_c_while_scoring_heldout_after_training_keeps_the_model(tmp_path, long_tone):
    rc, err = _interrupt_at("samples after training",
                            [long_tone, "--preset", "tiny", "--steps", "3", "--batch-size", "2",
                             "--no-progress", "-o", "x.npz"], tmp_path)
    _assert_interrupted(rc, err, tmp_path, "interrupted after step 3: wrote x.npz")
    FloatWaveNet.load(tmp_path / "x.npz")


def test_interrupt_lost_in_a_ctypes_callback_still_stops_training():
    """What numba's compiler does to a Ctrl-C, with real ctypes: the KeyboardInterrupt raised in a
    callback is dropped (and would be printed as 'Exception ignored'), and the caller then fails
    with another error; _Interrupts turns that error back into the KeyboardInterrupt."""
    import ctypes
    import signal

    from converters.train import _Interrupts

    def callback():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):       # the handler runs between these bytecodes
            pass

    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with pytest.raises(KeyboardInterrupt):
            with _Interrupts().installed():
                ctypes.CFUNCTYPE(None)(callback)()
                raise RuntimeError("no compiled object yet")       # numba's follow-up error
        # held back, then raised; a lost one is raised by check()
        it = _Interrupts()
        with it.installed():
            with pytest.raises(KeyboardInterrupt):
                with it.held():
                    os.kill(os.getpid(), signal.SIGINT)
                    for _ in range(1000):
                        pass
                    done = True
            assert done
            it.seen = False
            ctypes.CFUNCTYPE(None)(callback)()
            with pytest.raises(KeyboardInterrupt):
                it.check()
    finally:
        sys.unraisablehook = old_hook
    assert unraisable == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
