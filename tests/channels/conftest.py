"""Fixtures for the channel/intake tests (defined in intake_fixtures, shared with tests/crm)."""

from intake_fixtures import LIBRARY_DIR, T0, clock, db, library, session  # noqa: F401
