"""Reading JSON annotation files and writing the JSON text seg stores in ``geometry``/``attributes`` columns.

orjson does both (a COCO-val-sized file parses in about half the time of the standard library, and polygon rings
serialise several times faster); files orjson refuses go through the standard parser, which also accepts the NaN and
Infinity that Python writes by default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from seg.errors import FormatError


def dumps(value: Any) -> str:
    """Compact, stable JSON text (UTF-8, no spaces)."""
    return orjson.dumps(value).decode("utf-8")


def read_json(path: Path, expected: str = "a JSON file") -> Any:
    """Parse a JSON file (a UTF-8 byte-order mark is allowed).

    Raises:
        FormatError: unreadable file, not UTF-8, or malformed JSON, with the line and column of the fault.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FormatError(f"cannot read file: {e.strerror or e}", path=path) from e
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    # Python's json.dump writes NaN and Infinity by default; the standard parser accepts them (and says where a
    # truly malformed file breaks), so the loaders can report such values per item.
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError("not UTF-8 text", path=path, expected=expected) from e
    except json.JSONDecodeError as e:
        raise FormatError(
            f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}", path=path, expected=expected
        ) from e
    except RecursionError as e:
        raise FormatError("JSON nested too deeply", path=path, expected=expected) from e
