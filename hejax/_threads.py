"""Map independent ciphertext work over a few threads.

The coef protocol's work is one independent task per ciphertext (encrypt,
decrypt) or per output ciphertext (a sum of products). OpenFHE's Python
bindings release the GIL inside the library, so threads run such tasks on
several cores at once; with bindings that keep it (TenSEAL's) threads only
take turns, which costs little. One pool per worker count lives for the
rest of the process.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from hejax.errors import InvalidInputError

T = TypeVar("T")

_started: set[int] = set()


def check_workers(workers: Any) -> int:
    """`workers` as a positive int.

    Raises:
        InvalidInputError: for anything else.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a positive int, got {workers!r}")
    return workers


@functools.lru_cache(maxsize=4)
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    _started.add(workers)
    return concurrent.futures.ThreadPoolExecutor(workers, "hejax")


@atexit.register
def _shutdown() -> None:
    for workers in _started:
        _pool(workers).shutdown(wait=True, cancel_futures=True)
    _started.clear()


def tmap(fn: Callable[[Any], T], items: Iterable[Any], workers: int) -> list[T]:
    """``[fn(x) for x in items]``, on `workers` threads when more than one.

    Results keep the order of `items`; the first task that raises re-raises
    its exception here.
    """
    items = list(items)
    if workers <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    return list(_pool(workers).map(fn, items))
