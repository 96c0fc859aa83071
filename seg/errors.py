"""The one exception hierarchy of seg.

Every error the library raises on purpose is a :class:`SegError`. It carries structured fields (``path``, ``item_id``,
``expected``, ``actual``) so that callers never parse message text, and its ``str()`` is the one-line message the CLI
prints. Causes are chained with ``raise ... from e``.
"""

from __future__ import annotations

from os import PathLike


class SegError(Exception):
    """Base class of every error seg raises deliberately.

    Args:
        message: what went wrong, in a few words.
        path: the file or folder concerned.
        item_id: the image, object or row inside that file.
        expected: what was expected there.
        actual: what was found instead.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        item_id: object = None,
        expected: object = None,
        actual: object = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.item_id = item_id
        self.expected = expected
        self.actual = actual
        super().__init__(str(self))

    def __reduce__(self):
        # keep the structured fields when an error crosses a process boundary (worker pools)
        fields = {"path": self.path, "item_id": self.item_id, "expected": self.expected, "actual": self.actual}
        return _rebuild, (type(self), self.message, fields)

    def __str__(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(self.path)
        if self.item_id is not None:
            parts.append(f"item {self.item_id}")
        text = ": ".join([*parts, self.message]) if parts else self.message
        if self.expected is not None:
            text += f" (expected {self.expected}"
            text += f", got {self.actual})" if self.actual is not None else ")"
        return text


def _rebuild(cls: type[SegError], message: str, fields: dict) -> SegError:
    return cls(message, **fields)


class FormatError(SegError):
    """An input file is malformed or does not follow its format."""


class ValidationError(SegError):
    """A Dataset breaks the contract (missing column, wrong type, dangling reference)."""


class UnknownFormatError(SegError):
    """The source format could not be detected or is not registered."""


class UnsafePathError(SegError):
    """A path in an input file is absolute or climbs out of its root with '..'."""


class ImageError(SegError):
    """An image file cannot be read, is not an image, or is too large to decode safely."""


class OptionError(SegError):
    """An option that the chosen format or command does not take (a usage error: exit 2 on the command line)."""


class OutputExistsError(SegError):
    """An output exists and ``overwrite`` was not given."""
