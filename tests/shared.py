"""Where real files written by other tools lie: shared/fixtures beside the project (absent in a user's clone)."""

from pathlib import Path

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
