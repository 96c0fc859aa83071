"""The progress seam: long loops take ``progress``, a callable that wraps an iterable (a tqdm bar on a terminal, chosen
by the CLI; nothing in tests and pipes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

Progress = Callable[[Iterable], Iterable] | None


class Counted:
    """An iterable with a length, so that a progress bar knows the total of a generator."""

    def __init__(self, items: Iterable, count: int) -> None:
        self.items, self.count = items, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator:
        return iter(self.items)
