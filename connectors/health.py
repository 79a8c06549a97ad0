"""Health bookkeeping shared by connectors: last success, last error, consecutive errors.

A connector that stops working must be visible rather than silent; every built-in connector
records each receive/send outcome here and reports ``snapshot()`` as its ``health()``.
"""

from __future__ import annotations

import threading
from datetime import datetime

from connectors.base import ConnectorHealth
from engine.clock import Clock

__all__ = ["HealthTracker"]


class HealthTracker:
    """Thread-safe record of a connector's successes and failures."""

    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self._lock = threading.Lock()
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._errors = 0

    def succeeded(self) -> None:
        """A receive or send worked: consecutive errors reset."""
        with self._lock:
            self._last_success = self.clock.now()
            self._errors = 0

    def failed(self, detail: str) -> None:
        """A receive or send failed with ``detail``."""
        with self._lock:
            self._last_error = detail
            self._errors += 1

    def snapshot(self) -> ConnectorHealth:
        """The connector's health now: ok while no error followed the last success."""
        with self._lock:
            return ConnectorHealth(self.name, self._errors == 0, self._last_success,
                                   self._last_error, self._errors)
