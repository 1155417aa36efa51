"""The real aarch64 LiteRT interpreter on an x86-64 host, under user-mode qemu.

Phones and Raspberry Pis run the aarch64 ``ai-edge-litert`` wheel, whose int8 SOFTMAX takes a
different code path than the x86-64 wheel (``wavenet_edge.int8.softmax_arm64``).  This module
makes that wheel an oracle like the x86 ones:

* :func:`ensure_arm64_root` builds, once, a minimal arm64 Debian root (``mmdebstrap --arch=arm64
  --variant=extract --include=python3,libstdc++6 <host codename>``, from the host's apt sources)
  with the aarch64 wheels of numpy and ai-edge-litert at the host's installed versions under
  ``opt/site`` (``pip install --target --platform manylinux_2_28_aarch64 ...``).  It is cached
  outside the repository: ``$WAVENET_EDGE_ARM64_ROOT``, else ``~/.cache/wavenet-edge/arm64-root``
  (~200 MB; ~15-30 s to build here).
* :class:`Arm64Runner` (runtimes ``litert-arm64``: builtin kernels without delegates,
  ``xnnpack-arm64``: the default resolver with XNNPACK) starts ``qemu-aarch64-static -L ROOT
  ROOT/usr/bin/python3 _litert_arm64_server.py`` and drives it one invocation per request over
  pipes; it has the API of :class:`converters.interpreters.Runner`, so ``ContractHost`` and
  ``check_bitexact`` use it unchanged.

Two traps of qemu 7.2 (Debian 12), both handled here: it passes the host's x86
``/proc/cpuinfo`` through, and LiteRT's CPU detection then crashes in ``Interpreter()`` — the
root carries an ARM ``proc/cpuinfo``, which qemu's ``-L`` serves; and its default ``-cpu max``
advertises SME, on which XNNPACK takes an SME path that gets half the FC outputs wrong — the
emulated CPU is pinned to a real core, ``QEMU_CPU=cortex-a76``.

Measured here (ai-edge-litert 2.3.0, numpy 2.4.6, Python 3.11, emulated Cortex-A76): starting the
emulated interpreter takes ~1-2 s; a ``small`` step ~1-2 ms plus ~0.1 ms of pipe round trip.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from wavenet_edge.errors import ModelFileError, WaveNetEdgeError

from .interpreters import Runner

__all__ = ["ARM64_RUNTIMES", "Arm64Runner", "arm64_root", "ensure_arm64_root", "arm64_tools"]

#: runtime name -> resolver code of the server
ARM64_RUNTIMES = {"litert-arm64": 0, "xnnpack-arm64": 1}

QEMU_CPU = "cortex-a76"

_SERVER = Path(__file__).with_name("_litert_arm64_server.py")

# What LiteRT's cpuinfo reader needs to see on a Cortex-A76 (ARMv8.2-A + dotprod, no SVE/SME).
_CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 "
    "crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n"
    "CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n"
    for i in range(1))


def arm64_root() -> Path:
    """Where the aarch64 root lives (``$WAVENET_EDGE_ARM64_ROOT`` or the user cache)."""
    env = os.environ.get("WAVENET_EDGE_ARM64_ROOT")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wavenet-edge" / "arm64-root"


def arm64_tools() -> dict:
    """Paths of the host tools the root needs (None where missing)."""
    return {t: shutil.which(t) for t in ("qemu-aarch64-static", "mmdebstrap")}


def _wanted() -> dict:
    """The package versions the root must hold: the host's, so both sides run one release."""
    want = {}
    for pkg in ("numpy", "ai-edge-litert"):
        try:
            want[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            raise WaveNetEdgeError(f"the aarch64 LiteRT oracle mirrors the host's {pkg}, which "
                                   f"is not installed (pip install {pkg})") from None
    return want


def _codename() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    raise WaveNetEdgeError("cannot build the aarch64 root: /etc/os-release names no Debian "
                           "codename (mmdebstrap needs the host's apt sources)")


def _python_in(root: Path):
    cands = sorted(root.glob("usr/bin/python3.[0-9]*"))
    cands = [c for c in cands if c.name.replace("python", "").replace(".", "").isdigit()]
    return cands[-1] if cands else None


def _run(cmd, what):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise WaveNetEdgeError(f"building the aarch64 root: {what} failed: {tail[0]}")


def ensure_arm64_root(root=None, *, progress: bool = False) -> Path:
    """The aarch64 root, built on first use (atomically: temp dir, then rename; a lock file
    keeps two processes from building it at once).  Rebuilt if the host's numpy/ai-edge-litert
    versions changed.  Raises WaveNetEdgeError naming what is missing or what failed."""
    root = Path(root) if root is not None else arm64_root()
    want = _wanted()
    stamp = root / "wavenet-edge-root.json"

    def ready():
        try:
            return json.loads(stamp.read_text()).get("packages") == want
        except (OSError, ValueError):
            return False

    if ready():
        return root
    missing = [t for t, p in arm64_tools().items() if p is None]
    if missing:
        raise WaveNetEdgeError(f"the aarch64 LiteRT oracle needs {' and '.join(missing)} "
                               f"(apt-get install qemu-user-static mmdebstrap)")
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / (root.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready():
            return root
        tmp = Path(tempfile.mkdtemp(prefix=root.name + ".build-", dir=root.parent))
        try:
            if progress:
                print(f"building the aarch64 root in {root} (once)", file=sys.stderr)
            _run(["mmdebstrap", "--quiet", "--arch=arm64", "--variant=extract",
                  "--include=python3,libstdc++6", _codename(), str(tmp / "root")], "mmdebstrap")
            py = _python_in(tmp / "root")
            if py is None:
                raise WaveNetEdgeError("building the aarch64 root: no python3 in the extracted root")
            ver = py.name.replace("python", "")
            abi = "cp" + ver.replace(".", "")
            _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "--target", str(tmp / "root" / "opt" / "site"),
                  "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux_2_27_aarch64",
                  "--platform", "manylinux2014_aarch64", "--only-binary=:all:",
                  "--python-version", ver, "--implementation", "cp", "--abi", abi,
                  "--abi", "abi3", "--abi", "none"] + [f"{k}=={v}" for k, v in want.items()],
                 "pip install of the aarch64 wheels")
            (tmp / "root" / "proc").mkdir(exist_ok=True)
            (tmp / "root" / "proc" / "cpuinfo").write_text(_CPUINFO)
            (tmp / "root" / "wavenet-edge-root.json").write_text(
                json.dumps({"packages": want, "python": py.name}))
            if root.exists():
                shutil.rmtree(root)
            os.rename(tmp / "root", root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _command(root: Path):
    py = _python_in(root)
    env = {"QEMU_CPU": QEMU_CPU, "PYTHONPATH": "/opt/site", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONNOUSERSITE": "1", "LC_ALL": "C.UTF-8", "HOME": "/tmp"}
    return [shutil.which("qemu-aarch64-static") or "qemu-aarch64-static", "-L", str(root),
            str(py), str(_SERVER)], env


class Arm64Runner(Runner):
    """The aarch64 ``ai-edge-litert`` interpreter in an emulated child process.

    Inputs are buffered until :meth:`invoke`, which sends them all, runs one ``Invoke`` and
    receives every output (one pipe round trip per step); :meth:`close` (or garbage collection)
    ends the child."""

    def __init__(self, model_bytes, runtime, model, *, root=None):
        if runtime not in ARM64_RUNTIMES:
            raise WaveNetEdgeError(f"unknown aarch64 runtime {runtime!r}; expected one of "
                                   f"{', '.join(ARM64_RUNTIMES)}")
        root = ensure_arm64_root(root)
        cmd, env = _command(root)
        # stderr to a file: a chatty runtime can never fill a pipe and stall the protocol
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._err, env=env, bufsize=0)
        self.runtime = runtime
        try:
            self._proc.stdin.write(struct.pack("<I", len(model_bytes)) + bytes(model_bytes)
                                   + bytes([ARM64_RUNTIMES[runtime]]))
            header = self._proc.stdout.readline()
        except BrokenPipeError:
            header = b""
        if not header:
            raise WaveNetEdgeError(f"{runtime}: the emulated interpreter died at start "
                                   f"({self._last_words()})")
        info = json.loads(header)
        if "error" in info:
            self.close()
            raise ModelFileError(f"{runtime} cannot load the model: {info['error']}",
                                 path=model.name)
        ins = [(n, k, tuple(s), np.dtype(d)) for k, (n, s, d) in enumerate(info["inputs"])]
        super().__init__(runtime, model, ins, [n for n, _, _ in info["outputs"]])
        self._bufs = [np.zeros(s, d) for _, _, s, d in ins]
        outs = [(tuple(s), np.dtype(d)) for _, s, d in info["outputs"]]
        self._out_specs = outs
        self._out_bytes = sum(int(np.prod(s)) * d.itemsize for s, d in outs)
        self._outs = [np.zeros(s, d) for s, d in outs]

    def _setter(self, k):
        buf = self._bufs[k]

        def set_(array):
            buf[...] = array
        return set_

    def set_input(self, name, array):
        k, shape, dtype = self._lookup_in(name)
        self._bufs[k][...] = self._coerce(array, shape, dtype)

    def bind_input(self, name):
        return self._setter(self._lookup_in(name)[0])

    def _last_words(self) -> str:
        """End the child; its exit status and last stderr line, for an error message."""
        with contextlib.suppress(Exception):
            self._proc.kill()
        code = self._proc.wait()
        self._err.seek(0)
        lines = self._err.read().decode("utf-8", "replace").strip().splitlines()
        return f"exit {code}: {lines[-1] if lines else 'no message'}"

    def _io(self, request: bytes, n: int) -> bytes:
        chunks, got = [], 0
        try:
            self._proc.stdin.write(request)
            while got < n:
                c = self._proc.stdout.read(n - got)
                if not c:
                    break
                chunks.append(c)
                got += len(c)
        except (BrokenPipeError, ValueError):
            pass
        if got != n:
            raise WaveNetEdgeError(f"{self.runtime}: the emulated interpreter died "
                                   f"({self._last_words()})")
        return b"".join(chunks)

    def invoke(self):
        data = self._io(b"S" + b"".join(b.tobytes() for b in self._bufs), self._out_bytes)
        pos = 0
        outs = []
        for shape, dt in self._out_specs:
            size = int(np.prod(shape)) * dt.itemsize
            outs.append(np.frombuffer(data, dt, size // dt.itemsize, pos).reshape(shape))
            pos += size
        self._outs = outs

    def get_output(self, name):
        return self._outs[self._lookup_out(name)].copy()

    def bind_output(self, name):
        k = self._lookup_out(name)
        return lambda: self._outs[k].copy()

    def reset(self):
        self._io(b"R", 1)

    def close(self):
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def __del__(self):
        self.close()
