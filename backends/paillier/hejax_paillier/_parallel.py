"""Run a kernel over a long list in worker processes, or in this one.

Paillier work is one independent modular exponentiation per value, so a
vector splits into as many chunks as there are workers. Below a threshold
(a few hundred values) the work stays in the calling process: starting the
transfer costs more than it saves. Workers are started with ``spawn`` (JAX,
which hejax loads, must not be forked) and import only
:mod:`hejax_paillier._kernels`; one pool per worker count lives for the rest
of the process.

Like every ``spawn`` pool, the workers import the main script again: a
script that uses more than one worker must keep its top-level work under
``if __name__ == "__main__":``. That is why one worker is the default.

What is measured on 2 cores is in ``bench/results/seed_baseline.md``.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

from hejax.errors import BackendError

#: Values below which a kernel always runs in the calling process.
DEFAULT_MIN_VALUES = 256


_started: set[int] = set()


@functools.lru_cache(maxsize=4)
def _pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")
    _started.add(workers)
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)


@atexit.register
def _shutdown() -> None:
    # Before the interpreter tears modules down under the pool's own threads.
    for workers in _started:
        _pool(workers).shutdown(wait=True, cancel_futures=True)
    _started.clear()


def _chunks(n: int, parts: int) -> list[slice]:
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def run(
    kernel: Callable[..., list],
    fixed: tuple[Any, ...],
    columns: Sequence[Sequence[Any]],
    *,
    workers: int,
    min_values: int = DEFAULT_MIN_VALUES,
) -> list:
    """``kernel(*fixed, *columns)``, split over the columns' rows in chunks.

    Args:
        kernel: a module-level function of :mod:`hejax_paillier._kernels`
            that maps equally long lists to one list of the same length.
        fixed: its leading arguments (moduli, keys), sent to every chunk.
        columns: the list arguments, all of one length.
        workers: number of processes; 1 runs everything here.
        min_values: below this many rows everything runs here.

    Returns:
        The concatenated results, in order.
    """
    rows = len(columns[0])
    if workers <= 1 or rows < max(min_values, 2):
        return kernel(*fixed, *columns)
    pool = _pool(workers)
    try:
        futures = [
            pool.submit(kernel, *fixed, *(col[part] for col in columns))
            for part in _chunks(rows, workers)
        ]
        out: list = []
        for future in futures:
            out.extend(future.result())
    except concurrent.futures.process.BrokenProcessPool as exc:
        _pool.cache_clear()
        _started.discard(workers)
        raise BackendError(
            "paillier: a worker process died. Workers re-import the main script: "
            'keep its top-level code under `if __name__ == "__main__":`, or use '
            "workers=1"
        ) from exc
    return out
