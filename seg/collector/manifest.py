"""The download manifest: ``manifest.csv``, one row per candidate, appended and flushed as each one finishes.

The file is RFC 4180 CSV in UTF-8 (``\\r\\n`` line ends; fields holding commas, quotes or line breaks are quoted), with
the columns in :data:`COLUMNS`. It is a journal: a run killed at any moment leaves every finished row readable, and at
worst one partial last row, which :func:`open_manifest` drops (and cuts off the file) before appending again. A
candidate tried again on a later run gets a new row; the last row for an ``image_url`` is the one that counts.

Text longer than :data:`MAX_TEXT` characters (``data:`` URLs of whole images, very long titles) is shortened by
:func:`clip_text` to a prefix plus the SHA-256 of the full text, so that every field stays far below the csv module's
field size limit and a shortened URL still identifies its candidate on resume.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from seg.errors import FormatError

logger = logging.getLogger(__name__)

COLUMNS = (
    "query",
    "engine",
    "rank",
    "page_url",
    "image_url",
    "thumbnail_url",
    "title",
    "licence",
    "source",
    "status",
    "error",
    "fetched_at",
    "file",
    "sha256",
    "phash",
    "width",
    "height",
    "bytes",
    "format",
    "duplicate_of",
)

#: Statuses that a later run does not try again, with every ``http_<code>`` below 500 but 408, 425 and 429. Any other
#: status (``error``, ``http_5xx``, ``http_408``...) is transient: tried again within the run and on the next run.
FINAL_STATUSES = frozenset(
    {"ok", "duplicate", "not_image", "corrupt", "too_large", "blocked", "bad_url", "unknown_host", "too_many_redirects"}
)
TRANSIENT_HTTP = frozenset({408, 425, 429})

#: Longest text kept whole in a manifest field.
MAX_TEXT = 4096


def is_final(status: str) -> bool:
    """True when a candidate with this status is done: a rerun skips it."""
    if status in FINAL_STATUSES:
        return True
    if status.startswith("http_") and status[5:].isdigit():
        code = int(status[5:])
        return code < 500 and code not in TRANSIENT_HTTP
    return False


def clip_text(text: str) -> str:
    """``text`` itself when short; else its first 1,000 characters and the SHA-256 of the whole (stable, unique)."""
    if len(text) <= MAX_TEXT:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{text[:1000]}...[{len(text)} chars, sha256 {digest}]"


def _pieces(data: bytes, state: dict) -> Iterator[str]:
    """The lines of ``data`` with their ends, decoded; ``state`` follows the bytes consumed and the last line's end."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        piece = data[start:end]
        state["line"] += 1
        try:
            text = piece.decode("utf-8")
        except UnicodeDecodeError as e:
            if end == len(data) and not piece.endswith(b"\n"):
                return  # a last line cut inside a multi-byte character
            raise FormatError("manifest is not UTF-8 text", path=state["path"], item_id=f"line {state['line']}") from e
        state["consumed"] = end
        state["complete"] = piece.endswith(b"\n")
        yield text
        start = end


def read_manifest(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]], int]:
    """Read a manifest, tolerating a partial last row.

    Returns:
        The header, the complete rows (dicts keyed by the header), and the byte offset where the complete rows end
        (the file's size unless its last row was cut off).

    Raises:
        FormatError: not UTF-8, malformed CSV before the last row, or a header without ``image_url`` and ``status``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FormatError(f"cannot read manifest: {e.strerror or e}", path=path) from e
    state = {"path": path, "line": 0, "consumed": 0, "complete": False}
    reader = csv.reader(_pieces(data, state), strict=True)
    good_end = 0
    header: list[str] = []
    rows: list[dict[str, str]] = []
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            if state["consumed"] >= len(data) or not state["complete"]:
                break  # the file ends inside a quoted field: a cut-off last row
            raise FormatError(f"malformed manifest row: {e}", path=path, item_id=f"line {state['line']}") from e
        at_end = state["consumed"] >= len(data)
        if not state["complete"]:
            break  # no line end: the run was killed while writing this row
        if not record:
            good_end = state["consumed"]
            continue
        if not header:
            header = record
            missing = [c for c in ("image_url", "status") if c not in header]
            if missing:
                raise FormatError("not a download manifest", path=path, item_id="line 1", expected=", ".join(COLUMNS))
        elif len(record) != len(header):
            if at_end:
                break
            raise FormatError(
                "manifest row has the wrong number of fields",
                path=path,
                item_id=f"line {state['line']}",
                expected=len(header),
                actual=len(record),
            )
        else:
            rows.append(dict(zip(header, record, strict=True)))
        good_end = state["consumed"]
    return header, rows, good_end


class ManifestWriter:
    """Appends rows to a manifest, one flushed write per row.

    Args:
        handle: the manifest opened for appending in text mode with ``newline=""``.
        header: the file's columns (rows are written in this order; missing values are empty).
    """

    def __init__(self, handle: TextIO, header: list[str]) -> None:
        self.handle = handle
        self.header = header

    def write(self, row: Mapping[str, object]) -> None:
        buffer = io.StringIO()
        values = ["" if row.get(c) is None else clip_text(str(row.get(c))) for c in self.header]
        csv.writer(buffer, lineterminator="\r\n").writerow(values)
        self.handle.write(buffer.getvalue())
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def open_manifest(path: str | os.PathLike[str]) -> tuple[ManifestWriter, list[dict[str, str]]]:
    """Open ``path`` for appending (creating it with a header when absent or empty) and return its earlier rows.

    A partial last row left by a killed run is logged and cut off first.
    """
    path = Path(path)
    header, rows, end = read_manifest(path) if path.exists() else ([], [], 0)
    if path.exists() and end < path.stat().st_size:
        logger.warning("%s: dropping a partial last row (the previous run was interrupted)", path)
        with open(path, "r+b") as handle:
            handle.truncate(end)
    handle = open(path, "a", encoding="utf-8", errors="backslashreplace", newline="")  # noqa: SIM115 (kept open)
    writer = ManifestWriter(handle, header or list(COLUMNS))
    if not header:
        writer.write({c: c for c in COLUMNS})
    return writer, rows
