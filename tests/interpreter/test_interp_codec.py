"""JSON codec: exact round trips (hypothesis), schema versions, events and commands."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, datetime, timedelta

import pytest
from interp_helpers import T0, Driver, sop
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.interpreter import codec
from engine.interpreter import types as t
from engine.slots import fast_constructor
from engine.sop.model import frozen_map

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:_", min_size=1, max_size=12)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.just(UTC))
scalars = st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=10) | \
    st.floats(allow_nan=False, allow_infinity=False) | instants | st.timedeltas()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=5), inner, max_size=3),
    max_leaves=8,
)
maps = st.dictionaries(st.text(alphabet="abcdefgh_", min_size=1, max_size=6), values,
                       max_size=4).map(frozen_map)
tokens = st.builds(
    t.Token, id=ids, node=ids, state=st.sampled_from(t.TokenState),
    forks=st.lists(st.tuples(ids, ids), max_size=2).map(tuple),
    attempt=st.integers(0, 9), entered_at=st.none() | instants,
    wait=st.sampled_from(["", "action", "task", "event", "join"]), ref=st.none() | ids,
    timer=st.none() | ids, entered_seq=st.integers(0, 99))
states = st.builds(
    t.CaseState,
    case_id=ids, sop_id=ids, sop_version=st.just("1.0.0"), sop_hash=ids,
    status=st.sampled_from(t.CaseStatus), data=maps, level=st.none() | ids,
    priority=ids, tier=ids, channel=st.none() | ids, customer_id=st.none() | ids,
    tokens=st.lists(tokens, max_size=3).map(tuple),
    joins=st.dictionaries(ids, st.lists(ids, max_size=2).map(tuple), max_size=2).map(frozen_map),
    forks=st.dictionaries(ids, st.integers(1, 5), max_size=2).map(frozen_map),
    counters=st.dictionaries(ids, st.integers(0, 5), max_size=2).map(frozen_map),
    tasks=st.dictionaries(ids, st.builds(t.OpenTask, ids, ids, ids, ids),
                          max_size=2).map(frozen_map),
    timers=st.dictionaries(ids, ids | st.just(""), max_size=2).map(frozen_map),
    clocks=st.dictionaries(ids, st.builds(
        t.ClockRef, ids, maps,
        st.dictionaries(ids, st.tuples(ids, ids, ids), max_size=2).map(frozen_map)),
        max_size=2).map(frozen_map),
    seq=st.integers(0, 10**6), outcome=st.none() | ids,
    escalations=st.integers(0, 5), hand_backs=st.integers(0, 5),
    parent=st.none() | st.tuples(ids, ids), knowledge=st.none() | maps)


@settings(max_examples=75, deadline=None)
@given(states)
def test_state_round_trips_exactly_through_json_text(state: t.CaseState) -> None:
    doc = json.loads(json.dumps(codec.state_to_json(state)))
    assert codec.state_from_json(doc) == state
    assert doc["schema_version"] == t.SCHEMA_VERSION


event_strategies = [
    st.builds(t.CaseStarted, data=maps, priority=st.none() | ids, tier=st.none() | ids),
    st.builds(t.TaskCompleted, ids, ids, maps, ids, st.none() | maps, st.none() | ids),
    st.builds(t.TaskEscalated, ids, ids, ids, st.none() | ids),
    st.builds(t.TaskHandedBack, ids, ids, ids, st.none() | ids, st.none() | maps),
    st.builds(t.Signal, ids, maps, st.none() | ids, ids),
    st.builds(t.TimerFired, ids, instants, instants),
    st.builds(t.ActionCompleted, ids, values),
    st.builds(t.ActionFailedEvent, ids, ids, st.booleans()),
    st.builds(t.SubCaseEnded, ids, ids, ids, maps),
    st.builds(t.IncidentRetried, ids, ids),
]


@settings(max_examples=100, deadline=None)
@given(st.one_of(event_strategies))
def test_events_round_trip(event: t.Event) -> None:
    doc = json.loads(json.dumps(codec.event_to_json(event)))
    assert doc["type"] == type(event).__name__
    assert codec.event_from_json(doc) == event


def test_every_event_type_has_a_strategy() -> None:
    assert len(event_strategies) == len(typing.get_args(t.Event))


def test_commands_of_a_real_run_round_trip() -> None:
    flow = """
start: {type: start, next: t}
t:
  type: human_task
  level: L1
  outcomes: {ok: {next: e}}
  timeout: {after: 1h, next: e}
e: {type: end}
"""
    d = Driver(sop(flow))
    d.start()
    d.complete("t", "ok")
    assert d.commands
    for command in d.commands:
        doc = json.loads(json.dumps(codec.command_to_json(command)))
        assert codec.command_from_json(doc) == command
    first = codec.command_to_json(d.commands[0])
    assert first["type"] == "Audit"


def test_datetimes_are_iso_strings() -> None:
    state = t.CaseState("C", "s", "1", "h", tokens=(t.Token("k", "n", entered_at=T0),))
    doc = codec.state_to_json(state)
    assert doc["tokens"][0]["entered_at"] == "2026-03-02T09:00:00+00:00"
    assert doc["status"] == "open"


def test_newer_schema_version_is_refused() -> None:
    doc = codec.state_to_json(t.CaseState("C", "s", "1", "h"))
    doc["schema_version"] = t.SCHEMA_VERSION + 1
    with pytest.raises(codec.StateSchemaError, match="newer"):
        codec.state_from_json(doc)


def test_older_schema_version_is_upgraded_one_step_at_a_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(t, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(codec.t, "SCHEMA_VERSION", 3)

    def v1_to_v2(doc: dict[str, typing.Any]) -> dict[str, typing.Any]:
        """v2 renamed 'prio' to 'priority'."""
        doc["priority"] = doc.pop("prio")
        return doc

    def v2_to_v3(doc: dict[str, typing.Any]) -> dict[str, typing.Any]:
        """v3 added 'tier' (default standard)."""
        doc.setdefault("tier", "gold")
        return doc

    monkeypatch.setitem(codec.UPGRADES, 1, v1_to_v2)
    monkeypatch.setitem(codec.UPGRADES, 2, v2_to_v3)
    old = {"schema_version": 1, "case_id": "C", "sop_id": "s", "sop_version": "1",
           "sop_hash": "h", "prio": "high"}
    state = codec.state_from_json(old)
    assert (state.priority, state.tier, state.schema_version) == ("high", "gold", 3)


def test_unknown_fields_and_types_are_refused() -> None:
    doc = codec.state_to_json(t.CaseState("C", "s", "1", "h"))
    doc["colour"] = "red"
    with pytest.raises(codec.StateSchemaError, match="colour"):
        codec.state_from_json(doc)
    with pytest.raises(codec.StateSchemaError, match="unknown event type"):
        codec.event_from_json({"type": "Explosion"})


def test_timedelta_free_round_trip_of_live_state() -> None:
    d = Driver(sop("""
start: {type: start, next: w}
w: {type: wait, on: [{event: go, next: e}], timeout: {after: 1d, next: e}}
e: {type: end}
"""))
    d.start()
    d.advance(hours=1)
    again = codec.state_from_json(json.loads(json.dumps(codec.state_to_json(d.state))))
    assert again == d.state
    assert again.tokens[0].entered_at == T0
    assert T0 + timedelta(hours=1) == d.now


# ---- SLA clocks in the state: kept decoded, written as engine.sla's JSON ---------------------

SLA_FLOW = """
start: {type: start, next: clock}
clock: {type: sla_start, clock: fr, metric: first_response, next: work}
work:
  type: human_task
  level: L1
  outcomes: {done: {next: stop}}
stop: {type: sla_stop, clock: fr, next: e}
e: {type: end}
"""


def test_clock_state_is_written_exactly_as_engine_sla_writes_it(org_ctx: typing.Any) -> None:
    from engine.sla.codec import to_json

    d = Driver(sop(SLA_FLOW), org_ctx)
    d.start()
    ref = d.state.clocks["fr"]
    assert isinstance(ref.state, t.ClockDoc)
    doc = codec.state_to_json(d.state)["clocks"]["fr"]["state"]
    assert doc == to_json(ref.state.clock)
    assert json.loads(json.dumps(doc)) == doc  # plain JSON, no mapping proxies
    assert dict(ref.state) == doc
    assert ref.state == doc
    assert ref.state["state"] == "running"


def test_decoded_clock_state_is_decoded_again_only_when_a_step_touches_it(
        org_ctx: typing.Any) -> None:
    d = Driver(sop(SLA_FLOW), org_ctx)
    d.start()
    again = codec.state_from_json(json.loads(json.dumps(codec.state_to_json(d.state))))
    state = again.clocks["fr"].state
    assert isinstance(state, t.ClockDoc)
    assert state._clock is None  # not decoded yet
    assert codec.state_to_json(again) == codec.state_to_json(d.state)  # written as read
    assert state == d.state.clocks["fr"].state
    assert again == d.state
    assert state.clock == d.state.clocks["fr"].state.clock  # decoded on demand, equal


def test_a_state_with_clocks_as_plain_mappings_still_runs(org_ctx: typing.Any) -> None:
    """States written before ClockDoc (a frozen_map of the clock's JSON) keep working."""
    from engine.interpreter import step

    d = Driver(sop(SLA_FLOW), org_ctx)
    d.start()
    ref = d.state.clocks["fr"]
    plain_ref = t.ClockRef(ref.name, frozen_map(dict(ref.state)), ref.timers)
    old = dataclasses.replace(d.state, clocks=frozen_map({"fr": plain_ref}))
    task_id = next(iter(d.state.tasks))
    new_from_plain, out_plain = step(d.compiled, old, t.TaskCompleted(task_id, "done"), d.now,
                                     org_ctx)
    new, out = step(d.compiled, d.state, t.TaskCompleted(task_id, "done"), d.now, org_ctx)
    assert new_from_plain == new
    assert out_plain == out
    assert new.clocks["fr"].state["state"] == "completed"


def test_clock_doc_needs_a_clock_or_a_document() -> None:
    with pytest.raises(TypeError):
        t.ClockDoc()
    doc = t.ClockDoc(doc=frozen_map({"schema_version": 99}))
    assert doc["schema_version"] == 99
    assert list(doc) == ["schema_version"]
    from engine.errors import CalendarError

    with pytest.raises(CalendarError, match="schema_version"):
        _ = doc.clock


def test_generated_and_checked_decoders_agree() -> None:
    """The straight-line decoder reads complete documents; the checked path everything else
    (fields left out take their defaults) -- with the same result."""
    state = t.CaseState("C", "s", "1", "h", tokens=(t.Token("k", "n", entered_at=T0),),
                        data=frozen_map({"a": (1, 2), "b": {"c": T0}}), parent=("P", "call"))
    doc = json.loads(json.dumps(codec.state_to_json(state)))
    assert codec._plan(t.CaseState).decode(doc) == codec._checked_in(t.CaseState, doc) == state
    del doc["tier"], doc["tokens"][0]["wait"]
    assert codec.state_from_json(doc) == dataclasses.replace(
        state, tier="standard", tokens=(t.Token("k", "n", entered_at=T0),))
    with pytest.raises(codec.StateSchemaError, match="Token"):
        codec.state_from_json({**doc, "tokens": [{"id": "k"}]})


@pytest.mark.parametrize(("field", "value"), [
    ("tasks", []), ("tasks", None), ("timers", "x"), ("data", 0), ("tokens", None),
    ("parent", ["P"]), ("parent", ["P", "c", "x"]), ("status", "sleeping"),
    ("tokens", [{"id": "k"}]), ("clocks", {"fr": {"name": "fr", "state": [], "timers": {}}}),
])
def test_malformed_documents_are_refused_by_the_generated_decoder_too(
        field: str, value: object) -> None:
    doc = json.loads(json.dumps(codec.state_to_json(t.CaseState("C", "s", "1", "h"))))
    with pytest.raises(codec.StateSchemaError):
        codec.state_from_json({**doc, field: value})


def test_fast_constructors_build_what_the_dataclasses_build() -> None:
    for cls in (t.Token, t.CaseState, t.OpenTask, t.ClockRef, *typing.get_args(t.Event),
                *typing.get_args(t.Command)):
        fields = dataclasses.fields(cls)
        values = [f"v{i}" for i, _ in enumerate(fields)]
        assert fast_constructor(cls)(*values) == cls(*values), cls

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    with pytest.raises(TypeError, match="slots"):
        fast_constructor(NoSlots)
