"""A simulated day of the care center, run through the real engine on a simulated clock.

Contacts from the bundled data file arrive on their channels and pass the real intake
(inbox, CRM, routing); the real runtime (Prefect flows over a SQLite file) advances the
cases; simulated agents at each competence level (the staff of the library's agents
document) work their queues during business hours; simulated customers answer what the
SOPs wait for, or stay silent so that timeouts and SLA timers fire. Everything the
simulation does goes through the same functions the CLI and the HTTP API use: it adds
behaviour, never shortcuts.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.clock import SimulatedClock
from engine.interpreter.events import HAND_BACK_OUTCOME

__all__ = ["DemoConfig", "DemoRun", "Simulation", "load_contacts"]

DATA = Path(__file__).with_name("data") / "contacts.jsonl"
CUSTOMER_CHANNELS = ("email", "phone", "web", "chat", "social", "sms", "letter", "fax")

#: outcome words agents pick when the task allows them (in this order of preference)
_RESOLVE_WORDS = ("resolved", "verified", "fixed", "solved", "answered", "approve", "approved",
                  "done", "accepted", "refund", "explained", "complete", "ok")
_ESCALATE_WORDS = ("escalate", "escalated", "specialist", "refer", "transfer")


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """What day to simulate and how the organisation is staffed."""

    db_path: Path
    sop_dir: Path = Path("sop_definitions")
    contacts: Path = DATA
    day: date = date(2026, 11, 23)  # a Monday
    timezone: str = "Europe/Amsterdam"
    opens: time = time(7, 30)
    closes: time = time(19, 30)
    tick: timedelta = timedelta(minutes=15)
    follow_days: int = 2  # the days after, until queues are worked off
    seed: int = 7
    #: agents per level, acting as ``<level>-agent-<n>`` (``l1-agent-1`` ...): the staff of
    #: sop_definitions/org/agents.yaml, whose levels and roles the runtime enforces
    agents: Mapping[str, int] = field(default_factory=lambda: {"L1": 6, "L2": 3, "specialist": 1})
    handle_minutes: Mapping[str, int] = field(
        default_factory=lambda: {"L1": 12, "L2": 35, "specialist": 50})
    escalate_share: Mapping[str, float] = field(
        default_factory=lambda: {"L1": 0.22, "L2": 0.12, "specialist": 0.0})
    #: share of tasks whose SOP allows a by-hand hand-back that a deeper level hands back
    #: to level 1 with the article to use (``careflow task hand-back``)
    hand_back_share: float = 0.15
    customer_answers: float = 0.8
    use_prefect: bool = True
    limit: int | None = None  # only the first N contacts (tests)


@dataclass(slots=True)
class DemoRun:
    """Counters while the simulation runs; the summary is read from the database."""

    contacts: int = 0
    intake: dict[str, int] = field(default_factory=dict)
    tasks_completed: dict[str, int] = field(default_factory=dict)
    hand_backs: int = 0
    customer_replies: int = 0
    ticks: int = 0
    flow_runs: int = 0
    timers_fired: int = 0
    sent: int = 0
    wall_seconds: float = 0.0


def load_contacts(path: Path = DATA) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class Simulation:
    """Run one simulated day (plus follow-up days) against a fresh case database."""

    def __init__(self, config: DemoConfig) -> None:
        self.cfg = config
        self.tz = ZoneInfo(config.timezone)
        start_local = datetime.combine(config.day, config.opens, self.tz)
        self.clock = SimulatedClock(start_local.astimezone(UTC))
        self.rng = random.Random(config.seed)
        self.run = DemoRun()
        self._contacts = load_contacts(config.contacts)[: config.limit]
        self._replies: dict[tuple[str, str], tuple[datetime, str, dict[str, Any]] | None] = {}
        self._capacity: dict[str, float] = {}
        self.rt: Any = None
        self.library: Any = None

    # ---- set-up --------------------------------------------------------------------------

    def setup(self) -> None:
        from sqlalchemy.orm import Session

        from engine.runtime.sops import SopProvider
        from engine.runtime.worker import make_runtime
        from engine.sop.library import load_library
        from engine.store.db import make_engine
        from engine.store.migrate import upgrade

        path = self.cfg.db_path
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
        upgrade(url)
        self.library = load_library(self.cfg.sop_dir)
        # a simulation: WAL with synchronous=NORMAL (consistent after a crash, not fsync per
        # commit); a real deployment keeps the durable default (FULL)
        engine = make_engine(url, sqlite_synchronous="NORMAL")
        self.rt = make_runtime(engine, self.clock,
                               sops=SopProvider(self.cfg.sop_dir, library=self.library),
                               worker="demo", artifacts=True)
        with Session(engine) as session, session.begin():
            self._seed_customers(session)
            self._seed_knowledge(session)

    def _outbound_bindings(self) -> Any:
        """Customer-channel replies are recorded by the memory connector, not sent; the
        bindings hold while the simulation runs and are restored afterwards."""
        from connectors.registry import default_registry

        return default_registry.bound({channel: "memory" for channel in CUSTOMER_CHANNELS})

    def _seed_customers(self, session: Any) -> None:
        """The CRM's master data: every customer of the day, with verified identifiers."""
        from engine.crm.customers import add_identifier, new_customer

        now = self.clock.now()
        seen: set[str] = set()
        for contact in self._contacts:
            ident = contact["customer"]
            number = ident["customer_number"]
            if number in seen:
                continue
            seen.add(number)
            row = new_customer(session, now=now, display_name=ident.get("name", ""),
                               tier=contact.get("tier", "standard"))
            for kind in ("customer_number", "email", "phone", "handle"):
                value = _master_value(contact, kind)
                if value:
                    add_identifier(session, row.id, kind, value, source="crm_import", now=now,
                                   verified=True, actor="crm_import", region="NL")

    def _seed_knowledge(self, session: Any) -> None:
        kb_dir = self.cfg.sop_dir / "knowledge"
        if not kb_dir.is_dir():
            return
        from engine.knowledge.files import load_article_folder
        from engine.knowledge.repo import ensure_search_schema, import_specs

        ensure_search_schema(session)
        import_specs(session, load_article_folder(kb_dir), actor="kb_import", at=self.clock.now())

    # ---- the day -------------------------------------------------------------------------

    def ticks(self) -> list[datetime]:
        """Every instant the simulation looks at: the business day, then hourly follow-up."""
        out: list[datetime] = []
        start = datetime.combine(self.cfg.day, self.cfg.opens, self.tz).astimezone(UTC)
        end = datetime.combine(self.cfg.day, self.cfg.closes, self.tz).astimezone(UTC)
        t = start
        while t <= end:
            out.append(t)
            t += self.cfg.tick
        horizon = end + timedelta(days=self.cfg.follow_days)
        t = end + timedelta(hours=1)
        while t <= horizon:
            out.append(t)
            t += timedelta(hours=1)
        return out

    def execute(self, on_tick: Callable[[int, int, datetime], None] | None = None) -> DemoRun:
        import time as _time

        t0 = _time.perf_counter()
        if self.rt is None:
            self.setup()
        from engine.runtime.worker import prefect_settings

        held = prefect_settings() if self.cfg.use_prefect else contextlib.nullcontext()
        with self._outbound_bindings(), held:
            self._run_ticks(on_tick)
        self.run.wall_seconds = _time.perf_counter() - t0
        return self.run

    def _run_ticks(self, on_tick: Callable[[int, int, datetime], None] | None) -> None:
        instants = self.ticks()
        pending = iter(self._contacts)
        nxt = next(pending, None)
        for i, instant in enumerate(instants):
            self.clock.set(instant)
            arrived = []
            while nxt is not None and self._arrival(nxt) <= instant:
                arrived.append(nxt)
                nxt = next(pending, None)
            self._ingest(arrived)
            self._customers()
            self._agents()
            self._engine()
            self.run.ticks += 1
            if on_tick is not None:
                on_tick(i + 1, len(instants), instant)

    def _arrival(self, contact: Mapping[str, Any]) -> datetime:
        hh, mm, ss = (int(x) for x in str(contact["at"]).split(":"))
        return datetime.combine(self.cfg.day, time(hh, mm, ss), self.tz).astimezone(UTC)

    def _engine(self) -> None:
        from engine.runtime.worker import run_until_idle

        rep = run_until_idle(runtime=self.rt, use_prefect=self.cfg.use_prefect)
        self.run.flow_runs += rep.flow_runs
        self.run.timers_fired += rep.timers_fired
        self.run.sent += rep.sent

    def _ingest(self, contacts: Sequence[Mapping[str, Any]]) -> None:
        """Contacts that arrived since the last tick, through the real intake (one
        transaction, a savepoint per contact so one bad contact cannot take others down)."""
        if not contacts:
            return
        from sqlalchemy.orm import Session

        from connectors.base import ChannelEvent, ThreadRefs
        from engine.intake.pipeline import ingest

        with Session(self.rt.engine) as session, session.begin():
            for contact in contacts:
                ident = {k: v for k, v in contact["customer"].items() if v}
                event = ChannelEvent(
                    channel=contact["channel"], external_id=f"demo-{contact['id']}",
                    direction="inbound", occurred_at=self._arrival(contact), kind="message",
                    customer=ident, thread=ThreadRefs(), subject=contact["subject"],
                    body=contact["body"],
                    metadata={"language": contact["language"], "demo_topic": contact["topic"]})
                with session.begin_nested():
                    result = ingest(session, event, library=self.library, clock=self.clock)
                self.run.contacts += 1
                key = result.status.value
                self.run.intake[key] = self.run.intake.get(key, 0) + 1

    # ---- simulated customers ---------------------------------------------------------------

    def _customers(self) -> None:
        """Customers answer what their case waits for (or stay silent), after a while."""
        from engine.runtime.ops import send_event

        now = self.clock.now()
        for case_id, node in self._waiting():
            key = (case_id, node.id)
            if key not in self._replies:
                self._replies[key] = self._decide_reply(case_id, node, now)
            planned = self._replies[key]
            if planned is None or planned[0] > now:
                continue
            _, name, payload = planned
            self._replies[key] = None
            send_event(self.rt, case_id, name, payload, actor="customer",
                       event_id=f"demo-reply-{case_id}-{node.id}")
            self.run.customer_replies += 1

    def _decide_reply(self, case_id: str, node: Any, now: datetime
                      ) -> tuple[datetime, str, dict[str, Any]] | None:
        rng = random.Random(f"{self.cfg.seed}:{case_id}:{node.id}")
        if not node.on or rng.random() > self.cfg.customer_answers:
            return None  # silent: the wait's timeout decides
        entry = node.on[0]
        delay = timedelta(minutes=rng.randint(3, 120))
        payload = {"confirmed": True, "solved": True, "answer": "yes", "accepted": True,
                   "channel": "email", "subject": "Re: your case",
                   "body": "Yes, thank you, that solved it."}
        return now + delay, entry.event, payload

    def _waiting(self) -> Iterator[tuple[str, Any]]:
        """(case id, wait node) for every token waiting at a wait node."""
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from engine.store.models import CaseRow

        with Session(self.rt.engine) as session:
            rows = session.execute(select(CaseRow.id, CaseRow.sop_hash, CaseRow.state)
                                   .where(CaseRow.status == "open")).all()
            found: list[tuple[str, Any]] = []
            for case_id, sop_hash, state in rows:
                if not state:
                    continue
                compiled = self.rt.sops.by_hash(sop_hash, session)
                for token in state.get("tokens", ()):
                    node = compiled.spec.nodes.get(token.get("node"))
                    if node is not None and node.type == "wait":
                        found.append((case_id, node))
        yield from found

    # ---- simulated agents ------------------------------------------------------------------

    def _working_hours(self) -> bool:
        local = self.clock.now().astimezone(self.tz)
        return local.weekday() < 5 and time(8, 0) <= local.time() < time(18, 0)

    def _agents(self) -> None:
        """Each level's agents work their queue, oldest due first, as capacity allows."""
        if not self._working_hours():
            return
        from sqlalchemy.orm import Session

        from engine.store.tasks import list_tasks

        minutes = self.cfg.tick.total_seconds() / 60
        for level, count in self.cfg.agents.items():
            cap = self._capacity.get(level, 0.0) + count * minutes / self.cfg.handle_minutes[level]
            with Session(self.rt.engine) as session:
                queue = list_tasks(session, level=level, status="open", limit=max(1, int(cap)))
                work = [(t.id, t.case_id, t.node) for t in queue]
            done = 0
            for task_id, case_id, node_id in work:
                if done + 1 > cap:
                    break
                if self._work_task(level, task_id, case_id, node_id):
                    done += 1
            self._capacity[level] = min(cap - done, float(count))

    def _work_task(self, level: str, task_id: str, case_id: str, node_id: str) -> bool:
        from sqlalchemy.orm import Session

        from engine.errors import RunError
        from engine.runtime.ops import complete_task
        from engine.store.models import CaseRow

        with Session(self.rt.engine) as session:
            case = session.get(CaseRow, case_id)
            if case is None:
                return False
            compiled = self.rt.sops.by_hash(case.sop_hash, session)
            state = case.state or {}
        node = compiled.node(node_id)
        rng = random.Random(f"{self.cfg.seed}:{task_id}")
        if (node.outcome_spec(HAND_BACK_OUTCOME) is not None
                and rng.random() < self.cfg.hand_back_share):
            return self._hand_back(task_id, level, state, rng)
        outcome = _choose_outcome(node, self.cfg.escalate_share.get(level, 0.0), rng)
        fields = _fill_form(node, outcome, rng, agent=f"{level}-agent", now=self.clock.now())
        spec = node.outcome_spec(outcome)
        knowledge = None
        if "required" in (spec.knowledge, node.knowledge) or rng.random() < 0.3:
            knowledge = self._knowledge(state, rng)
        agent = f"{level.lower()}-agent-{rng.randint(1, max(1, self.cfg.agents.get(level, 1)))}"
        try:
            complete_task(self.rt, task_id, outcome, fields, agent=agent, knowledge=knowledge)
        except RunError:
            return False
        self.run.tasks_completed[level] = self.run.tasks_completed.get(level, 0) + 1
        return True

    def _hand_back(self, task_id: str, level: str, state: Mapping[str, Any],
                   rng: random.Random) -> bool:
        """A deeper level finds level 1 could have answered: back, with what to use."""
        from engine.errors import RunError
        from engine.runtime.ops import hand_back_task

        agent = f"{level.lower()}-agent-{rng.randint(1, max(1, self.cfg.agents.get(level, 1)))}"
        try:
            hand_back_task(self.rt, task_id, "level 1 can answer this with the article",
                           agent=agent, knowledge=self._knowledge(state, rng))
        except RunError:
            return False
        self.run.tasks_completed[level] = self.run.tasks_completed.get(level, 0) + 1
        self.run.hand_backs += 1
        return True

    def _knowledge(self, state: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
        """Agents link the article that helped, draft one, or say why none applies."""
        data = state.get("data", {}) if isinstance(state, Mapping) else {}
        text = " ".join(str(data.get(k, "")) for k in ("request_text", "subject", "body", "text"))
        port = self.rt.advancer.actions.ports.get("knowledge") if hasattr(
            self.rt.advancer, "actions") else None
        if port is not None and text.strip() and rng.random() < 0.7:
            try:
                hits = port.suggest_for_case(text, "", None, limit=1)
            except Exception:  # noqa: BLE001 -- assist is optional; the agent goes on
                hits = []
            if hits:
                return {"kind": "linked", "article": hits[0].article_id}
        return {"kind": "none", "reason": "one-off configuration problem, no reusable answer"}


def _master_value(contact: Mapping[str, Any], kind: str) -> str | None:
    value = contact["customer"].get(kind)
    return str(value) if value else None


def _choose_outcome(node: Any, escalate_share: float, rng: random.Random) -> str:
    names = [o.name for o in node.outcomes]
    escalations = [n for n in names if any(w in n.lower() for w in _ESCALATE_WORDS)]
    others = [n for n in names if n not in escalations]
    if escalations and (not others or rng.random() < escalate_share):
        return rng.choice(escalations)
    for word in _RESOLVE_WORDS:
        for name in others:
            if word in name.lower():
                return name
    return others[0] if others else names[0]


def _fill_form(node: Any, outcome: str, rng: random.Random, *, agent: str,
               now: datetime) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for f in node.form:
        if f.enum:
            fields[f.name] = outcome if outcome in f.enum else f.enum[0]
        elif f.type == "boolean":
            fields[f.name] = True
        elif f.type == "integer":
            fields[f.name] = 1
        elif f.type == "number":
            fields[f.name] = 25.0
        elif f.type == "timestamp":  # e.g. a purchase date read off the receipt
            fields[f.name] = (now - timedelta(days=rng.randint(30, 700))).isoformat()
        elif f.type == "duration":
            fields[f.name] = f"{rng.randint(1, 48)}h"
        elif f.type in ("object", "array"):
            if not f.required:
                continue
            fields[f.name] = {} if f.type == "object" else []
        elif f.type == "string":
            fields[f.name] = f"{outcome.replace('_', ' ')} ({agent})"
        elif f.required:
            continue
    return fields


def contacts_by_topic(contacts: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in contacts:
        out[str(c["topic"])] = out.get(str(c["topic"]), 0) + 1
    return out
