"""The error policy passed into long loops: raise at the first bad item, or skip it and keep a record."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Literal

from seg.errors import SegError

logger = logging.getLogger(__name__)

Policy = Literal["raise", "skip"]


@dataclass
class Problems:
    """Collects per-item errors under ``policy``: ``"raise"`` re-raises them, ``"skip"`` records and continues."""

    policy: Policy = "raise"
    skipped: list[SegError] = field(default_factory=list)

    def handle(self, error: SegError) -> None:
        """Raise ``error`` or record it, according to the policy."""
        if self.policy == "raise":
            raise error
        logger.warning("skipped: %s", error)
        self.skipped.append(error)

    def to_records(self) -> list[dict]:
        """The skipped items as JSON-ready dicts (path, item, message, expected, actual)."""
        return [
            {
                "path": e.path,
                "item": None if e.item_id is None else str(e.item_id),
                "error": type(e).__name__,
                "message": e.message,
                "expected": None if e.expected is None else str(e.expected),
                "actual": None if e.actual is None else str(e.actual),
            }
            for e in self.skipped
        ]

    def to_json(self) -> str:
        return json.dumps(self.to_records(), indent=2)
