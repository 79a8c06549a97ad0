"""Poll a connector into the case database: each event through ``engine.intake.ingest``,
each refusal into the dead-letter store, one short transaction per item.

The connector's cursor moves past an item only after that item's transaction has
committed (``receive()`` resumes only then), so a crash loses nothing and re-delivers at
most the item in flight, which the inbox deduplicates. Used by the runtime's connector
loop for every polling connector of careflow (e-mail, file drop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.clock import Clock

__all__ = ["BridgeReport", "poll_into_intake"]


class _Polling(Protocol):
    name: str
    on_reject: Callable[[Any], None] | None

    def receive(self, *, autocommit: bool = True) -> Iterable[Any]: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BridgeReport:
    """Counts by intake status (``started``, ``duplicate`` ...) plus ``rejected``."""

    counts: dict[str, int]
    results: tuple[Any, ...]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def poll_into_intake(
    connector: _Polling,
    sessions: Callable[[], Any],
    *,
    library: Any,
    clock: Clock,
    batch: int = 100,
) -> BridgeReport:
    """One poll of ``connector`` into intake, ``batch`` items per transaction.

    Args:
        connector: an EmailConnector or FileDropConnector (``receive``/``commit``/
            ``rollback``/``on_reject``).
        sessions: a ``sessionmaker`` of the case database.
        library: the SOP library intake routes with (``engine.sop.library``), or None.
        clock: the injected clock.
        batch: events and refusals per transaction (each event still has its own
            savepoint inside intake, so one bad event never spoils the batch).

    Raises:
        Whatever the database raises; the connector is rolled back first, so the items of
        the failed batch are delivered again by the next poll.
    """
    from engine.intake.inbox import dead_letter
    from engine.intake.pipeline import ingest

    counts: dict[str, int] = {}
    results: list[Any] = []
    current: list[Any] = []

    def reject(rejection: Any) -> None:
        dead_letter(
            current[0],
            rejection.source,
            f"{rejection.reason}: {rejection.detail}",
            rejection.as_dict(),
            now=clock.now(),
        )
        counts["rejected"] = counts.get("rejected", 0) + 1

    previous = connector.on_reject
    connector.on_reject = reject
    events = iter(connector.receive(autocommit=False))
    try:
        exhausted = False
        while not exhausted:
            with sessions() as session, session.begin():
                current[:] = [session]
                taken = 0
                exhausted = True
                for event in events:
                    result = ingest(session, event, library=library, clock=clock)
                    results.append(result)
                    counts[result.status.value] = counts.get(result.status.value, 0) + 1
                    taken += 1
                    if taken >= batch:
                        exhausted = False
                        break
            connector.commit()
    except BaseException:
        connector.rollback()
        raise
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
        connector.on_reject = previous
    return BridgeReport(counts, tuple(results))
