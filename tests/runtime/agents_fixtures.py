"""A small library with an agents document, shared by the agent and four-eyes tests.

``refund``: level 1 reviews (role ``clerk``; ``approve`` needs ``senior_clerk``,
``escalate`` needs ``clerk``), level 2 pays out (role ``treasurer``, four eyes; its
``hand_back`` outcome needs ``treasurer``), level 1 answers (no role).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.runtime.registry import Runtime, unregister_runtime
from engine.runtime.sops import SopProvider
from engine.runtime.worker import make_runtime, run_until_idle
from engine.store.models import CaseEventRow, CaseRow, HumanTaskRow
from engine.store.tasks import list_tasks

LEVELS = """\
kind: levels
levels:
  - {id: L1, name: Front office, rank: 1}
  - {id: L2, name: Back office, rank: 2}
"""
AGENTS = """\
kind: agents
agents:
  - {id: cleo, name: Cleo, levels: [L1], roles: [clerk]}
  - {id: sam, name: Sam, levels: [L1], roles: [clerk, senior_clerk]}
  - {id: tara, name: Tara, levels: [L2], roles: [treasurer]}
  - {id: tom, name: Tom, levels: [L2], roles: [treasurer]}
  - {id: lou, name: Lou, levels: [L2]}
"""
REFUND = """\
kind: sop
id: refund
version: "1.0.0"
title: Refund request
data:
  amount: {type: number, input: true}
  note: {type: string}
nodes:
  start: {type: start, next: review}
  review:
    type: human_task
    title: Review the refund
    level: L1
    role: clerk
    outcomes:
      approve: {next: pay, roles: [senior_clerk]}
      reject: {next: rejected}
      escalate: {next: up, roles: [clerk]}
    form:
      note: {type: string}
    timeout: {after: 1d, next: up}
  up: {type: escalate, to: L2, reason: Level 1 could not decide, next: pay}
  pay:
    type: human_task
    title: Pay out the refund
    level: L2
    role: treasurer
    four_eyes: true
    outcomes:
      paid: {next: done}
      hand_back: {next: answer, roles: [treasurer]}
    form:
      note: {type: string}
    timeout: {after: 1d, next: done}
  answer:
    type: human_task
    title: Answer the customer
    level: L1
    outcomes:
      answered: {next: done}
    timeout: {after: 1d, next: done}
  done: {type: end, outcome: paid}
  rejected: {type: end, outcome: rejected}
"""


def write_library(folder: Path, *, agents: bool = True) -> Path:
    """The refund library in ``folder`` (without the agents document when asked)."""
    (folder / "org").mkdir(parents=True)
    (folder / "org" / "levels.yaml").write_text(LEVELS)
    if agents:
        (folder / "org" / "agents.yaml").write_text(AGENTS)
    (folder / "refund.yaml").write_text(REFUND)
    return folder


@contextmanager
def refund_runtime(engine: Any, clock: Any, folder: Path) -> Iterator[Runtime]:
    rt = make_runtime(engine, clock, sops=SopProvider(folder), artifacts=False)
    try:
        yield rt
    finally:
        unregister_runtime(rt.key)


def settle(rt: Runtime) -> None:
    run_until_idle(runtime=rt, use_prefect=False)


def open_task(rt: Runtime, case_id: str) -> HumanTaskRow:
    """The one unfinished task of the case (open, claimed or proposed)."""
    with Session(rt.engine) as s:
        (task,) = [t for t in list_tasks(s, case_id=case_id, status=None)
                   if t.status in ("open", "claimed", "proposed")]
        return task


def task_row(rt: Runtime, task_id: str) -> HumanTaskRow:
    with Session(rt.engine) as s:
        row = s.get(HumanTaskRow, task_id)
        assert row is not None
        return row


def case_row(rt: Runtime, case_id: str) -> CaseRow:
    with Session(rt.engine) as s:
        row = s.get(CaseRow, case_id)
        assert row is not None
        return row


def pending_inputs(rt: Runtime, case_id: str) -> int:
    with Session(rt.engine) as s:
        return s.scalar(select(func.count()).select_from(CaseEventRow).where(
            CaseEventRow.case_id == case_id, CaseEventRow.status == "pending")) or 0


@pytest.fixture(name="rt")
def refund_rt(engine: Any, clock: Any, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on the refund library (import it as ``refund_rt``; it is the ``rt`` fixture)."""
    with refund_runtime(engine, clock, write_library(tmp_path / "lib")) as runtime:
        yield runtime
