"""Encode and write chips on background threads while the caller assembles the next ones.

Chip makers spend most of their time in the encoders (GDAL's deflate, PIL's PNG and JPEG), which release the GIL, so
a small thread pool uses the other cores. At most ``depth`` chips wait in memory; :meth:`WritePool.submit` blocks
until the oldest is written when the queue is full, which keeps memory flat whatever the number of chips.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType


class WritePool:
    """A bounded pool of write jobs; the first failure is raised by :meth:`submit` or on leaving the block.

    Args:
        workers: threads (default: the CPUs this process may use, at most 4).
        depth: jobs pending at once (default: twice the workers).
    """

    def __init__(self, workers: int | None = None, depth: int | None = None) -> None:
        self.workers = workers or min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
        self.depth = depth or 2 * self.workers
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="seg-write")
        self._pending: deque[Future] = deque()

    def submit(self, write: Callable[..., object], *args: object) -> None:
        """Queue ``write(*args)``; wait for the oldest job first when ``depth`` are pending."""
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(write, *args))

    def drain(self) -> None:
        """Wait until every queued job is written; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> WritePool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self.drain()
        finally:
            for future in self._pending:
                future.cancel()
            self._executor.shutdown(wait=True)
