"""Fixtures of the SLA tests."""

from __future__ import annotations

import pytest
from sla_helpers import WEEKDAYS, office

from engine.sla.calendar import BusinessCalendar


@pytest.fixture(scope="session")
def office_cal() -> BusinessCalendar:
    return office()


@pytest.fixture(scope="session")
def nine_five() -> BusinessCalendar:
    """Mon-Fri 09:00-17:00 UTC."""
    return BusinessCalendar.create("nine_five", "UTC", week={d: ["09:00-17:00"] for d in WEEKDAYS})
