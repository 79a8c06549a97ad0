"""Fixtures for the CRM tests: the channel tests' database, SOP library and clock."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))

from intake_fixtures import LIBRARY_DIR, T0, clock, db, library, session  # noqa: E402, F401
