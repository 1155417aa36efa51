"""Runs INSIDE the emulated aarch64 Python (qemu-aarch64-static): one LiteRT interpreter, driven
step by step over stdin/stdout by :class:`converters.litert_arm64.Arm64Runner`.

Standalone on purpose (numpy and ai_edge_litert only): the aarch64 root has no wavenet-edge.

Protocol (binary, little-endian):
  host -> server: u32 model length, model bytes, u8 resolver (0 builtin kernels without
                  delegates, 1 default = XNNPACK, 2 reference kernels)
  server -> host: one JSON line {"inputs": [[name, shape, dtype], ...], "outputs": [[name,
                  shape, dtype], ...]} or {"error": message}
  then per request, one byte:
    b"S" + every input's bytes in input order -> every output's bytes in output order
    b"R" -> b"k" (reset_all_variables)
  EOF: exit.
"""

import json
import os
import struct
import sys


def _read_exact(f, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise EOFError
        got += k
    return bytes(buf)


def main():
    # the protocol owns the real stdout; anything the runtime prints goes to stderr
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    (n,) = struct.unpack("<I", _read_exact(inp, 4))
    model = _read_exact(inp, n)
    resolver = _read_exact(inp, 1)[0]
    kinds = {0: OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, 2: OpResolverType.BUILTIN_REF}
    try:
        kw = {} if resolver == 1 else {"experimental_op_resolver_type": kinds[resolver]}
        it = Interpreter(model_content=model, num_threads=1, **kw)
        it.allocate_tensors()
    except Exception as e:  # reported to the host as one line
        out.write((json.dumps({"error": str(e).splitlines()[0] if str(e) else repr(e)}) + "\n")
                  .encode())
        return
    ins = it.get_input_details()
    outs = it.get_output_details()

    def spec(d):
        return [d["name"], [int(s) for s in d["shape"]], np.dtype(d["dtype"]).str]

    out.write((json.dumps({"inputs": [spec(d) for d in ins], "outputs": [spec(d) for d in outs]})
               + "\n").encode())
    raw = it._interpreter
    in_meta = [(int(d["index"]), tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]))
               for d in ins]
    in_sizes = [int(np.prod(s)) * dt.itemsize for _, s, dt in in_meta]
    total = sum(in_sizes)
    out_idx = [int(d["index"]) for d in outs]
    while True:
        try:
            cmd = _read_exact(inp, 1)
        except EOFError:
            return
        if cmd == b"R":
            it.reset_all_variables()
            out.write(b"k")
            continue
        data = _read_exact(inp, total)
        pos = 0
        for (idx, shape, dt), size in zip(in_meta, in_sizes):
            raw.SetTensor(idx, np.frombuffer(data, dt, size // dt.itemsize, pos).reshape(shape))
            pos += size
        raw.Invoke()
        out.write(b"".join(raw.GetTensor(i, 0).tobytes() for i in out_idx))


if __name__ == "__main__":
    main()
