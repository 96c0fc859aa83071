"""Test-wide settings: no hypothesis deadlines (CI runs on a slow 2-core machine), and the shared fixtures folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from tests.shared import SHARED_FIXTURES

settings.register_profile("seg", deadline=None, max_examples=60)
settings.load_profile("seg")


@pytest.fixture
def shared_fixtures() -> Path:
    """The shared fixtures folder, or a skip when this clone has none."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES
