"""What a step may know besides the case: calendars, SLA policies, levels (pure values only).

The runtime builds one ``StepContext`` from the organisation documents it loaded and passes
it to every ``step`` call. Nothing here does I/O; calendars are engine.sla business
calendars (pure arithmetic on the instants passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.sop.model import LevelsDoc, LevelSpec, SlaPolicyDoc, frozen_map

__all__ = ["CalendarLike", "StepContext"]


class CalendarLike(Protocol):
    """The part of ``engine.sla.calendar.BusinessCalendar`` the interpreter uses."""

    def add(self, start: datetime, seconds: float) -> datetime: ...

    def between(self, a: datetime, b: datetime) -> float: ...


@dataclass(frozen=True, slots=True)
class StepContext:
    """The organisation around a case.

    Attributes:
        calendars: business calendars by id (``timeout.calendar``, SLA policy calendars).
        policies: SLA policies, tried in their ``order`` by ``select_policy``.
        levels: the competence levels (rank order); None = levels are not checked.
        default_calendar: calendar used when a policy names none that is known.
        internal_channel: channel of SLA notifications (``SendMessage.channel``).
        inline_actions: pure actions by name (engine.actions.registry.pure_action), run
            inside the step that reaches their node instead of through a RunAction
            command; empty: every action goes out as RunAction.
    """

    calendars: Mapping[str, CalendarLike] = field(default_factory=frozen_map)
    policies: tuple[SlaPolicyDoc, ...] = ()
    levels: LevelsDoc | None = None
    default_calendar: str | None = None
    internal_channel: str = "internal"
    inline_actions: Mapping[str, Any] = field(default_factory=frozen_map)
    #: SLA policy choices made so far, by (metric, facts): the choice is a pure function of
    #: them and the policies never change (a replaced context starts with an empty memo)
    _chosen: dict[tuple[Any, ...], SlaPolicyDoc | None] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def select_policy(self, metric: str, facts: Mapping[str, Any]) -> SlaPolicyDoc | None:
        """``engine.sla.policy.select_policy`` over this context's policies, remembered.

        Raises:
            ExpressionError: a policy condition cannot be evaluated (not remembered).
        """
        key = (metric, *facts.items())
        try:
            return self._chosen[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable fact: choose without remembering
            key = ()
        from engine.sla.policy import select_policy

        chosen = select_policy(self.policies, metric, facts)
        if key:
            self._chosen[key] = chosen
        return chosen

    def level(self, level_id: str) -> LevelSpec | None:
        """The level named ``level_id``; None when unknown or levels are not configured."""
        if self.levels is None:
            return None
        return next((lv for lv in self.levels.levels if lv.id == level_id), None)

    def knows_level(self, level_id: str) -> bool:
        """True when ``level_id`` is a configured level, or no levels are configured."""
        return self.levels is None or self.level(level_id) is not None

    def deeper(self, level_id: str | None) -> str | None:
        """The next deeper level (next higher rank) after ``level_id``; None if none."""
        return self._neighbour(level_id, +1)

    def shallower(self, level_id: str | None) -> str | None:
        """The next shallower level (next lower rank) before ``level_id``; None if none."""
        return self._neighbour(level_id, -1)

    def hand_back_target(self, level_id: str | None, to_level: str | None) -> str | None:
        """Where a hand-back from ``level_id`` goes: ``to_level`` (default: the next
        shallower level) when it is known and shallower by rank; None when it is not."""
        to = to_level or self.shallower(level_id)
        old_rank, new_rank = self.rank(level_id), self.rank(to)
        if to is None or not self.knows_level(to) or (
                old_rank is not None and new_rank is not None and new_rank >= old_rank):
            return None
        return to

    def _neighbour(self, level_id: str | None, direction: int) -> str | None:
        if self.levels is None:
            return None
        ranked = sorted(self.levels.levels, key=lambda lv: lv.rank)
        ids = [lv.id for lv in ranked]
        if level_id not in ids:
            return ids[0] if direction > 0 and ids else None
        i = ids.index(level_id) + direction
        return ids[i] if 0 <= i < len(ids) else None

    def rank(self, level_id: str | None) -> int | None:
        """The rank of ``level_id``, or None."""
        spec = self.level(level_id) if level_id else None
        return spec.rank if spec else None

    def calendar(self, calendar_id: str | None) -> CalendarLike | None:
        """The calendar ``calendar_id`` (or the default one when None); None if unknown."""
        key = calendar_id or self.default_calendar
        return self.calendars.get(key) if key else None
