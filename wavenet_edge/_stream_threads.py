"""Several threads over one batch of streams: contiguous stream ranges, one per thread.

The engine's streams are independent (each has its own activations and delay lines; all advance
by the same steps), so a batch of ``B`` streams can be cut into ``T`` contiguous ranges that run
the same jitted kernel at the same time, each on its slice of the state.  The kernels are
compiled with ``nogil=True``, so plain Python threads run them in parallel.  Per stream the
arithmetic is the same whatever the cut (the batched kernels give every stream the accumulators
of the single-stream path), so the results do not depend on ``threads``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

__all__ = ["split_streams", "StreamThreads"]


def split_streams(batch: int, threads: int) -> list[tuple[int, int]]:
    """``threads`` contiguous ranges ``[b0, b1)`` covering ``range(batch)``, sizes differing by at
    most one (fewer ranges when there are fewer streams than threads)."""
    t = max(1, min(int(threads), int(batch)))
    q, r = divmod(int(batch), t)
    out, b0 = [], 0
    for i in range(t):
        b1 = b0 + q + (1 if i < r else 0)
        out.append((b0, b1))
        b0 = b1
    return out


class StreamThreads:
    """Runs ``fn(i, b0, b1)`` for every stream range ``i``: range 0 in the calling thread, the
    others in a pool of worker threads kept for the engine's lifetime; re-raises the first
    exception after all ranges finished."""

    def __init__(self, batch: int, threads: int):
        self.parts = split_streams(batch, threads)
        self._pool = (ThreadPoolExecutor(len(self.parts) - 1, thread_name_prefix="wavenet-edge")
                      if len(self.parts) > 1 else None)

    def run(self, fn) -> None:
        futures = [self._pool.submit(fn, i, b0, b1)
                   for i, (b0, b1) in enumerate(self.parts[1:], 1)] if self._pool else []
        try:
            fn(0, *self.parts[0])
        finally:
            errors = [f.exception() for f in futures]
        for e in errors:
            if e is not None:
                raise e

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
