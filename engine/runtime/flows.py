"""The Prefect flows: advance a batch, fire due timers, dispatch the outbox.

DESIGN decision 1: the case database is the source of truth; Prefect runs the work and
shows it. ``advance_batch`` claims a batch of runnable cases, advances them in-process,
commits everything in one transaction (and so on, batch after batch, while cases stay
runnable) and leaves a markdown artifact summarising the run, a row per batch;
``fire_due_timers`` turns due timers into case inputs; ``dispatch_outbox`` sends due
messages in ONE Prefect task with retries per batch. Flows take a runtime *key*
(a string) rather than objects, so their parameters stay JSON; the objects live in this
process's ``RUNTIMES`` table (engine.runtime.worker registers them).

This module and engine.runtime.worker are the only ones that import Prefect.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from engine.runtime import outbox as ob
from engine.runtime.advance import BatchReport
from engine.runtime.due import has_due_outbox, has_due_timers, has_work
from engine.runtime.registry import runtime_for
from engine.runtime.timers import fire_due

__all__ = ["advance_batch", "dispatch_outbox", "fire_due_timers"]


def _artifact(reports: list[BatchReport], key: str) -> None:
    """One markdown artifact for a flow run: a row per batch (each its own transaction),
    then the rows written, summed over the run's batches."""
    totals: dict[str, int] = {}
    for report in reports:
        for name, count in report.counts.items():
            totals[name] = totals.get(name, 0) + count
    batches = "\n".join(
        f"| {i} | {r.claimed} | {r.committed} | {r.stale} | {r.events} | {r.rejected} | "
        f"{r.actions} | {r.seconds * 1000:.0f} |" for i, r in enumerate(reports, 1))
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(totals.items()))
    create_markdown_artifact(
        key=key,
        markdown=(
            f"### careflow advance: {len(reports)} batch(es)\n\n"
            "| batch | claimed | committed | stale | inputs | rejected | actions run | ms |\n"
            f"|---|---|---|---|---|---|---|---|\n{batches}\n\n"
            f"| rows written | count |\n|---|---|\n{rows}\n"
        ),
        description="cases advanced by this flow run, batch by batch",
    )


@flow(name="careflow-advance-batch", persist_result=False, log_prints=False,
      validate_parameters=False)
def advance_batch(runtime_key: str, batch: int = 500, max_batches: int = 1,
                  linger_s: float = 0.0, max_s: float = 0.0,
                  yield_after_s: float = 0.0) -> dict[str, Any]:
    """Claim up to ``batch`` runnable cases, advance them in-process, commit once; repeat
    while cases stay runnable, up to ``max_batches`` batches (each its own transaction,
    which also leases the next batch when the run goes on: engine.runtime.advance), so a
    busy worker pays Prefect's per-run cost once per several batches. The run leaves
    one artifact with a row per batch (an API call per batch cost the Prefect server
    more CPU than a batch's claim).

    ``linger_s`` > 0 (long-lived workers): when the queue is drained the run waits up to
    that long for new runnable cases (polling every 5 ms) before it ends, so work that
    arrives in bursts does not pay a new flow run's start-up each time (against a busy
    Prefect server that start-up took from 0.1 s to over 2 s).

    ``max_s`` > 0 also ends the run once it has worked that many seconds (wall time), and
    a run that has worked ``yield_after_s`` seconds ends after any batch that leaves a
    timer or an outbox message due: those are served between runs, so a long run holds
    them back that long at most. (A batch that sends messages leaves them due at once: with
    no such slice, every such batch would cost a flow run of its own.)"""
    rt = runtime_for(runtime_key)
    totals: dict[str, Any] = {"batches": 0}
    reports: list[BatchReport] = []
    empty = 0  # claims in a row that found nothing (another worker was quicker)
    started = time.monotonic()
    deadline = started + max_s if max_s > 0 else None
    while len(reports) < max(1, max_batches):
        last = len(reports) + 1 >= max_batches or (
            deadline is not None and time.monotonic() >= deadline)
        report = rt.advancer.run_batch(batch, claim_next=not last)
        if not report.claimed:
            empty += 1
            if linger_s > 0 and empty <= _EMPTY_CLAIMS and _work_arrives(rt, linger_s):
                continue
            break
        empty = 0
        totals["batches"] += 1
        reports.append(report)
        for key, value in (("claimed", report.claimed), ("committed", report.committed),
                           ("stale", report.stale), ("events", report.events),
                           ("rejected", report.rejected), ("actions", report.actions),
                           *((f"rows_{k}", v) for k, v in report.counts.items())):
            totals[key] = totals.get(key, 0) + value
        worked = time.monotonic() - started
        if deadline is not None and worked >= max_s:
            break  # long enough: the next run goes on
        if worked >= yield_after_s and (has_due_timers(rt) or has_due_outbox(rt)):
            break  # timers and messages are served between runs
        if (report.claimed < batch and not rt.advancer.holds_cases
                and not (linger_s > 0 and _work_arrives(rt, linger_s))):
            break  # the queue is drained (what arrives later goes to the next run)
    if reports and rt.artifacts:
        _artifact(reports, "careflow-batch")
    totals.setdefault("claimed", 0)
    return totals


#: a lingering run ends after this many claims in a row that found nothing
_EMPTY_CLAIMS = 3


def _work_arrives(rt: Any, within_s: float, poll_s: float = 0.005) -> bool:
    """True as soon as there are cases to advance, polling up to ``within_s`` seconds (wall
    time)."""
    deadline = time.monotonic() + within_s
    while True:
        if has_work(rt):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


@flow(name="careflow-fire-due-timers", persist_result=False, log_prints=False,
      validate_parameters=False)
def fire_due_timers(runtime_key: str, batch: int = 1000) -> dict[str, Any]:
    """Turn every timer due now into a TimerFired input of its case (fire once, late)."""
    rt = runtime_for(runtime_key)
    report = fire_due(rt.engine, rt.clock, batch=batch, worker=rt.worker)
    return {"fired": report.fired, "max_lateness_s": report.max_lateness_s,
            "batches": report.batches}


class OutboxBatch:
    """The rows of one dispatch and their results so far (an opaque object to Prefect, so
    the task works on this very instance across its retries)."""

    def __init__(self, rows: list[Any], record: Any = None) -> None:
        self.rows = rows
        self.done: dict[str, ob.SendResult] = {}
        self.record = record


@task(name="careflow-send-outbox-batch", retries=2, retry_delay_seconds=0.5,
      cache_policy=NO_CACHE, persist_result=False)
def send_outbox_batch(batch: OutboxBatch) -> dict[str, int]:
    """Send a batch; raises (so Prefect retries) while retryable failures remain.

    A message already sent is never sent again by a retry.
    """
    ob.send_rows(batch.rows, batch.done, batch.record)
    retry = [r for r in batch.done.values() if r.status == "retry"]
    if retry:
        raise RuntimeError(f"{len(retry)} of {len(batch.rows)} messages deferred; "
                           f"first: {retry[0].error}")
    return {"sent": sum(1 for r in batch.done.values() if r.status == "sent")}


@flow(name="careflow-dispatch-outbox", persist_result=False, log_prints=False,
      validate_parameters=False)
def dispatch_outbox(runtime_key: str, batch: int = 200) -> dict[str, int]:
    """Send due outbox messages; record sent / failed / retry-later per message."""
    rt = runtime_for(runtime_key)
    rows = ob.claim(rt.engine, rt.clock, batch=batch)
    if not rows:
        return {"sent": 0, "failed": 0, "retry": 0}
    batch_ = OutboxBatch(list(rows), ob.recorder(rt.engine, rt.clock))
    try:
        send_outbox_batch(batch_)
    except Exception:  # noqa: BLE001 -- retries exhausted: the rows are rescheduled below
        pass
    return ob.finish(rt.engine, rows, batch_.done, rt.clock.now(), recorded=True)
