"""Fixtures of the SOP-semantics tests."""

from __future__ import annotations

import pytest
from sop_semantics_helpers import LIBRARY_DIR

from engine.sop.library import Library, load_library


@pytest.fixture(scope="session")
def library() -> Library:
    """The real SOP library with the organisation's levels, calendars and SLA policies."""
    return load_library(LIBRARY_DIR)
