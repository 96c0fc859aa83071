"""Candidates from a file of URLs: text with one URL per line, or a CSV with an ``image_url`` (or ``url``) column.

Text: blank lines and lines starting with ``#`` are ignored; every other line must be one URL with a scheme
(``https://...``, ``data:image/...``; schemes the downloader refuses, like ``ftp:``, are read and refused there with a
status). CSV (a ``.csv`` name, or a first line naming an ``image_url`` or ``url`` column): optional ``title``,
``page_url``, ``licence`` (or ``license``), ``query`` and ``thumbnail_url`` columns; rows with every cell empty are
ignored. ``rank`` is the candidate's position in the file, from 0.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from seg.collector.candidates import Candidate
from seg.errors import FormatError

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_NETWORK = re.compile(r"(?i)https?://[^/\s?#]+")
URL_COLUMNS = ("image_url", "url")


def _check_url(text: str, path: Path, line: int) -> str:
    if not _URL.fullmatch(text) or (text[:4].lower() == "http" and not _NETWORK.match(text)):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise FormatError(
            "not a URL", path=path, item_id=f"line {line}", expected="one URL like https://...", actual=repr(shown)
        )
    return text


def _is_csv(path: Path, lines: list[str]) -> bool:
    if path.suffix.lower() == ".csv":
        return True
    first = next((s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")), "")
    fields = next(csv.reader([first]), [])
    return any(f.strip().lower() in URL_COLUMNS for f in fields)


def read_url_file(path: str | os.PathLike[str]) -> list[Candidate]:
    """Read every candidate of a URL list (text or CSV; see the module docstring).

    Raises:
        FormatError: unreadable or binary file, a line that is not a URL, a CSV without a URL column; the message
            names the file and the line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FormatError(f"cannot read file: {e.strerror or e}", path=path) from e
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise FormatError("not a text file (not UTF-8)", path=path, item_id=f"line {line}") from e
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise FormatError("not a text file (binary data)", path=path, item_id=f"line {line}")
    lines = text.split("\n")
    if _is_csv(path, lines):
        candidates = _read_csv(path, text)
    else:
        candidates = []
        for number, raw in enumerate(lines, start=1):
            url = raw.strip()
            if url and not url.startswith("#"):
                candidates.append(Candidate(image_url=_check_url(url, path, number), rank=len(candidates)))
    if not candidates:
        raise FormatError("no URL in file", path=path, expected="one URL per line, or a CSV with an image_url column")
    return candidates


def _read_csv(path: Path, text: str) -> list[Candidate]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    candidates: list[Candidate] = []
    header: list[str] | None = None
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                if not any(c in header for c in URL_COLUMNS):
                    raise FormatError(
                        "CSV has no URL column",
                        path=path,
                        item_id=f"line {reader.line_num}",
                        expected="an image_url or url column",
                        actual=", ".join(header)[:200],
                    )
                url_column = next(c for c in URL_COLUMNS if c in header)
                continue
            row = dict(zip(header, (cell.strip() for cell in record), strict=False))
            if len(record) > len(header):
                raise FormatError(
                    "CSV row has more fields than the header",
                    path=path,
                    item_id=f"line {reader.line_num}",
                    expected=len(header),
                    actual=len(record),
                )
            url = _check_url(row.get(url_column, ""), path, reader.line_num)
            candidates.append(
                Candidate(
                    image_url=url,
                    query=row.get("query", ""),
                    rank=len(candidates),
                    page_url=row.get("page_url", ""),
                    title=row.get("title", ""),
                    licence=row.get("licence") or row.get("license", ""),
                    thumbnail_url=row.get("thumbnail_url", ""),
                )
            )
    except csv.Error as e:
        raise FormatError(f"malformed CSV: {e}", path=path, item_id=f"line {reader.line_num}") from e
    if header is None:
        raise FormatError("CSV is empty", path=path, expected="a header with an image_url or url column")
    return candidates
