"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# The shared lung-CT corpus sits next to the repository; tests that need it are marked realdata.
REAL_DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def real_data_dir() -> Path:
    """The shared lung-CT corpus; skips the test when it is absent."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real lung-CT corpus not found at {REAL_DATA_DIR.resolve()}")
    return REAL_DATA_DIR.resolve()
