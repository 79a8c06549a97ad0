"""The cyclic collector is off while a store batch runs and as it was found afterwards."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from store_helpers import fresh_schema, sqlite_url

from engine.clock import SimulatedClock
from engine.heap import collector_paused
from engine.interpreter import codec
from engine.interpreter import types as t
from engine.runtime.registry import unregister_runtime
from engine.runtime.worker import make_runtime
from engine.store import cases as case_store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def collections_seen() -> Iterator[list[list[str]]]:
    """The collector passes that run meanwhile, each as the names of the functions on the
    stack, with a threshold so low that any allocating code triggers some; the collector's
    settings are restored after."""
    seen: list[list[str]] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            frame, names = sys._getframe(1), []
            while frame is not None:
                names.append(frame.f_code.co_name)
                frame = frame.f_back
            seen.append(names)

    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.enable()
    gc.set_threshold(10)
    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()


def test_the_collector_is_off_inside_the_block_and_on_again_after(collections_seen) -> None:  # noqa: ANN001
    before = len(collections_seen)
    with collector_paused():
        assert not gc.isenabled()
        [[i] for i in range(10_000)]
        inside = len(collections_seen) - before
    assert inside == 0
    assert gc.isenabled()
    before = len(collections_seen)
    [[i] for i in range(10_000)]
    assert len(collections_seen) > before  # the same allocations outside the block collect


def test_an_error_in_the_block_still_switches_it_on_again() -> None:
    with pytest.raises(ValueError, match="boom"), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_block_that_found_the_collector_off_leaves_it_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            with collector_paused():
                pass
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_store_batch_runs_without_collector_passes_and_leaves_it_on(
        tmp_path: Path, collections_seen) -> None:  # noqa: ANN001
    rt = make_runtime(fresh_schema(sqlite_url(tmp_path)), SimulatedClock(T0),
                      sops=Path(__file__).resolve().parents[2] / "sop_definitions", worker="w")
    try:
        compiled = rt.sops.by_id("password_reset")
        started = codec.event_to_json(t.CaseStarted(
            data={"request_text": "I forgot my password", "email": "a@example.com"}))
        with Session(rt.engine) as s, s.begin():
            case_store.start_cases(s, [case_store.NewCase(
                compiled.id, compiled.hash, compiled.version, started, case_id=f"H{i}")
                for i in range(20)], now=T0)
        collections_seen.clear()
        report = rt.advancer.run_batch(50)
        assert report.committed == 20
        assert collections_seen  # passes run before and after the batch ...
        assert not [names for names in collections_seen if "_run_batch" in names]  # not in it
        assert gc.isenabled()
    finally:
        unregister_runtime(rt.key)
        rt.engine.dispose()
