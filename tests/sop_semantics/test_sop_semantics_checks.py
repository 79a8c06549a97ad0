"""Unit specs of the semantic checks that the corpus cannot reach through the schema, and of
the rules' finer points (exhaustiveness, must-analysis at joins, bounded cycles)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from sop_semantics_helpers import ROOT, collect_errors

from engine.errors import SopError
from engine.sop.checks import CODES, iter_semantic_errors
from engine.sop.checks_refs import exhaustive_field
from engine.sop.compiler import compile_spec
from engine.sop.model import NodeType, SopSpec, frozen_map
from engine.sop.pipeline import compile_sop, load_text

HEADER = 'kind: sop\nid: t\nversion: "1.0.0"\ntitle: T\n'


def spec_of(body: str) -> SopSpec:
    spec = load_text(HEADER + body)
    assert isinstance(spec, SopSpec)
    return spec


def codes(spec: SopSpec, library: object = None) -> list[str]:
    return sorted(e.code for e in iter_semantic_errors(compile_spec(spec), library))


def with_node(spec: SopSpec, node_id: str, **changes: object) -> SopSpec:
    nodes = dict(spec.nodes)
    nodes[node_id] = dataclasses.replace(nodes[node_id], **changes)
    return dataclasses.replace(spec, nodes=frozen_map(nodes))


SIMPLE = """
nodes:
  start: {type: start, next: work}
  work: {type: set, set: {}, next: done}
  done: {type: end}
"""

WAIT = """
nodes:
  start: {type: start, next: await}
  await:
    type: wait
    on: [{event: customer_replied, next: done}]
    timeout: {after: 1d, next: done}
  done: {type: end}
"""


def test_node_without_successor_is_a_dead_end() -> None:
    spec = with_node(spec_of(SIMPLE), "work", next=None)
    errors = {e.code: e for e in iter_semantic_errors(spec)}
    assert set(errors) == {"E-GRAPH-DEADEND", "E-GRAPH-UNREACHABLE"}  # `done` is cut off
    assert errors["E-GRAPH-DEADEND"].json_path == "$.nodes.work"
    assert "'work'" in errors["E-GRAPH-DEADEND"].message


def test_bare_spec_and_compiled_sop_give_the_same_result() -> None:
    spec = with_node(spec_of(SIMPLE), "work", next=None)
    assert sorted(e.code for e in iter_semantic_errors(spec)) == sorted(
        e.code for e in iter_semantic_errors(compile_spec(spec))
    )


def test_correlation_outside_the_three_kinds_is_refused() -> None:
    spec = with_node(spec_of(WAIT), "await", correlate="mail")
    (err,) = iter_semantic_errors(spec)
    assert err.code == "E-CORRELATE"
    assert err.json_path == "$.nodes.await.correlate"


def test_human_task_without_outcomes_is_one_error_not_also_a_dead_end() -> None:
    spec = spec_of("""
nodes:
  start: {type: start, next: review}
  review:
    type: human_task
    level: L1
    outcomes: {ok: {next: done}}
    timeout: {after: 4h, next: done}
  done: {type: end}
""")
    broken = with_node(spec, "review", outcomes=(), timeout=None, level=None)
    found = sorted((e.code, e.severity) for e in iter_semantic_errors(broken))
    assert ("E-HUMAN-TASK", "error") in found
    assert ("W-HUMAN-TIMEOUT", "warning") in found
    assert "E-GRAPH-DEADEND" not in {c for c, _ in found}
    message = next(e.message for e in iter_semantic_errors(broken) if e.code == "E-HUMAN-TASK")
    assert message == "human task 'review' has no outcomes and no level"


def test_loop_max_below_one_is_refused_even_without_the_schema() -> None:
    spec = spec_of("""
nodes:
  start: {type: start, next: again}
  again: {type: loop, max: 2, body: work, exit: done}
  work: {type: set, set: {}, next: again}
  done: {type: end}
""")
    assert codes(spec) == []
    assert codes(with_node(spec, "again", max=0)) == ["E-LOOP-BOUND"]


def test_warnings_do_not_fail_compilation() -> None:
    spec = spec_of("""
nodes:
  start: {type: start, next: await}
  await:
    type: wait
    on: [{event: customer_replied, next: done}]
  done: {type: end}
""")
    compiled = compile_sop(spec)  # does not raise
    (warning,) = iter_semantic_errors(compiled)
    assert (warning.code, warning.severity) == ("W-HUMAN-TIMEOUT", "warning")


def test_calls_in_a_cycle_across_two_sops_are_found() -> None:
    caller = spec_of("""
nodes:
  start: {type: start, next: sub}
  sub: {type: call, sop: helper, next: done}
  done: {type: end}
""")
    helper = dataclasses.replace(
        spec_of("""
nodes:
  start: {type: start, next: back}
  back: {type: call, sop: t, next: done}
  done: {type: end}
"""),
        id="helper",
    )
    library = SimpleNamespace(sops={"t": caller, "helper": helper})
    (err,) = iter_semantic_errors(compile_spec(caller), library)
    assert err.code == "E-CALL-CYCLE"
    assert "t -> helper -> t" in err.message


def test_unknown_sub_sop_is_not_claimed_for_a_partial_library() -> None:
    spec = spec_of("""
nodes:
  start: {type: start, next: sub}
  sub: {type: call, sop: elsewhere, next: done}
  done: {type: end}
""")
    assert codes(spec, SimpleNamespace(sops={"t": spec}, complete=True)) == ["E-CALL-UNKNOWN"]
    assert codes(spec, SimpleNamespace(sops={"t": spec}, complete=False)) == []
    assert codes(spec) == []


@pytest.mark.parametrize(
    ("conditions", "covered"),
    [
        (['tier == "gold"', 'tier == "silver"', 'tier == "standard"'], "tier"),
        (['tier == "gold"', "tier == 'silver'", '"standard" == tier'], "tier"),
        (['tier == "gold"', 'tier == "silver"'], None),  # misses standard
        (['tier == "gold"', 'tier != "gold"'], None),  # not the `==` shape
        (['tier == "gold"', 'level == "silver"', 'tier == "standard"'], None),  # two fields
        (['level == "a"'], None),  # not an enum field
    ],
)
def test_exhaustiveness_rule(conditions: list[str], covered: str | None) -> None:
    branches = "".join(f"      - {{when: {json.dumps(c)}, next: done}}\n" for c in conditions)
    spec = spec_of(f"""
data:
  tier: {{type: string, enum: [standard, silver, gold], input: true}}
  level: {{type: string, input: true}}
nodes:
  start: {{type: start, next: choose}}
  choose:
    type: decision
    branches:
{branches}  done: {{type: end}}
""")
    assert exhaustive_field(spec, spec.nodes["choose"]) == covered
    assert codes(spec) == ([] if covered else ["E-DECISION-NO-OTHERWISE"])


def test_automated_cycle_inside_a_region_with_a_human_task_is_still_a_livelock() -> None:
    spec = spec_of("""
data:
  n: {type: integer, default: 0}
nodes:
  start: {type: start, next: count}
  count: {type: set, set: {n: n + 1}, next: check}
  check:
    type: decision
    branches:
      - {when: n < 3, next: count}
      - {when: n < 5, next: ask}
    otherwise: done
  ask:
    type: human_task
    level: L1
    outcomes: {again: {next: count}}
    timeout: {after: 1h, next: done}
  done: {type: end}
""")
    (err,) = iter_semantic_errors(compile_spec(spec))
    assert err.code == "E-GRAPH-LIVELOCK"
    assert "count -> check -> count" in err.message


PINGPONG = """
nodes:
  start: {type: start, next: rounds}
  rounds: {type: loop, max: 2, body: l1_work, exit: done}
  l1_work:
    type: human_task
    level: L1
    outcomes: {escalate: {next: to_l2}, solved: {next: done}}
    timeout: {after: 4h, next: to_l2}
  to_l2: {type: escalate, to: L2, next: l2_work}
  l2_work:
    type: human_task
    level: L2
    outcomes: {back: {next: back_to_l1}}
    timeout: {after: 1d, next: back_to_l1}
  back_to_l1: {type: hand_back, to: L1, next: rounds}
  done: {type: end}
"""


def test_level_pingpong_bounded_by_a_loop_is_allowed() -> None:
    assert codes(spec_of(PINGPONG)) == []
    unbounded = spec_of(PINGPONG.replace("next: rounds}", "next: l1_work}"))
    assert "E-LEVEL-PINGPONG" in codes(unbounded)


def _clock_in_branches(when: str) -> str:
    return f"""
nodes:
  start: {{type: start, next: split}}
  split:
    type: parallel
    branches:
      - {{{when}next: a}}
      - {{next: b}}
    join: both
  a: {{type: sla_start, clock: c, next: both}}
  b: {{type: set, set: {{}}, next: both}}
  both: {{type: join, next: stop}}
  stop: {{type: sla_stop, clock: c, next: done}}
  done: {{type: end}}
"""


def test_sla_clock_started_in_one_branch_of_a_full_split_is_started_after_the_join() -> None:
    assert codes(spec_of(_clock_in_branches(""))) == []


def test_sla_clock_started_in_a_conditional_branch_is_not_started_after_the_join() -> None:
    spec = spec_of(_clock_in_branches("when: 1 > 2, "))
    assert codes(spec) == ["E-SLA-NOT-STARTED"]


def test_sla_clock_started_before_a_cycle_stays_started_around_it() -> None:
    spec = spec_of("""
nodes:
  start: {type: start, next: clock}
  clock: {type: sla_start, clock: c, next: rounds}
  rounds: {type: loop, max: 3, body: check, exit: stop}
  check: {type: sla_check, clock: c, ok: rounds, warning: rounds, breached: stop}
  stop: {type: sla_stop, clock: c, next: done}
  done: {type: end}
""")
    assert codes(spec) == []


def test_handler_paths_start_without_clocks() -> None:
    spec = spec_of("""
nodes:
  start: {type: start, next: clock}
  clock: {type: sla_start, clock: c, next: stop}
  stop: {type: sla_stop, clock: c, next: done}
  done: {type: end}
  cancel: {type: sla_stop, clock: c, next: cancelled}
  cancelled: {type: end, status: cancelled, terminate: true}
on_event:
  - {event: withdrawn, interrupt: true, next: cancel}
""")
    (err,) = iter_semantic_errors(compile_spec(spec))
    assert err.code == "E-SLA-NOT-STARTED"
    assert "path: cancel" in err.message


def test_level_direction_uses_default_ranks_without_a_library() -> None:
    spec = spec_of("""
nodes:
  start: {type: start, level: e, next: up}
  up: {type: escalate, to: L1, next: down}
  down: {type: hand_back, to: specialist, next: done}
  done: {type: end}
""")
    errors = list(iter_semantic_errors(compile_spec(spec)))
    assert [(e.code, e.json_path) for e in errors] == [("E-LEVEL-DIRECTION", "$.nodes.down.to")]


def test_org_references_are_checked_only_with_a_library() -> None:
    spec = spec_of("""
nodes:
  start: {type: start, next: clock}
  clock: {type: sla_start, clock: c, policy: nope, next: work}
  work:
    type: human_task
    level: L9
    outcomes: {ok: {next: stop}}
    timeout: {after: 1h, calendar: nowhere, next: stop}
  stop: {type: sla_stop, clock: c, next: done}
  done: {type: end}
""")
    assert codes(spec) == []
    org = SimpleNamespace(
        levels=SimpleNamespace(levels=(SimpleNamespace(id="L1", rank=1),)),
        policies=(SimpleNamespace(id="sla_default"),),
        calendars={"office_nl": object()},
        sops={},
    )
    assert codes(spec, org) == ["E-CALENDAR-UNKNOWN", "E-LEVEL-UNKNOWN", "E-SLA-UNKNOWN-POLICY"]


def test_every_error_names_where_and_how_to_fix(library: object) -> None:
    corpus = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
    seen: set[str] = set()
    for path in corpus:
        for err in collect_errors(path, library):
            assert isinstance(err, SopError)
            assert err.span is not None and err.span.line >= 1
            if err.code in CODES:
                seen.add(err.code)
                assert err.hint, f"{err.code} in {path.name} has no hint"
    # every semantic code the pipeline can reach is exercised by the corpus
    unreachable_by_schema = {"E-GRAPH-DEADEND", "E-CORRELATE"}
    assert CODES - unreachable_by_schema <= seen


def test_every_code_is_documented() -> None:
    reference = (ROOT / "docs" / "sop-reference.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([EW]-[A-Z0-9-]+)`", reference))
    assert CODES <= documented
    corpus_codes = {
        line.split(": ", 1)[1].strip()
        for path in (Path(__file__).parent / "invalid").glob("*.errors")
        for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    }
    assert corpus_codes <= documented, corpus_codes - documented


def test_node_types_all_appear_in_the_reference() -> None:
    reference = (ROOT / "docs" / "sop-reference.md").read_text(encoding="utf-8")
    for node_type in NodeType:
        assert f"### `{node_type.value}`" in reference


def test_pattern_examples_in_the_reference_are_the_tested_files() -> None:
    reference = (ROOT / "docs" / "sop-reference.md").read_text(encoding="utf-8")
    for path in sorted((Path(__file__).parent / "valid").glob("*.yaml")):
        body = "\n".join(
            line for line in path.read_text(encoding="utf-8").splitlines()
            if not line.startswith("#")
        )
        assert f"`tests/sop_semantics/valid/{path.name}`" in reference
        assert body in reference, f"docs/sop-reference.md shows an outdated {path.name}"


def test_definite_assignment_warns_when_some_path_skips_the_write() -> None:
    spec = spec_of("""
data:
  vip: {type: boolean, input: true}
  note: {type: string}
nodes:
  start: {type: start, next: choose}
  choose:
    type: decision
    branches:
      - {when: vip, next: remember}
    otherwise: reply
  remember: {type: set, set: {note: '"vip"'}, next: reply}
  reply:
    type: action
    action: send_message
    inputs: {body: "${ note }"}
    next: done
  done: {type: end}
""")
    (warn,) = iter_semantic_errors(compile_spec(spec))
    assert (warn.code, warn.severity) == ("W-DATA-MAYBE-UNSET", "warning")
    assert warn.json_path == "$.nodes.reply.inputs.body"
    compile_sop(spec)  # a warning does not fail compilation


def test_definite_assignment_follows_the_edges_writes_happen_on() -> None:
    spec = spec_of("""
data:
  answer: {type: string}
nodes:
  start: {type: start, next: await}
  await:
    type: wait
    on: [{event: customer_replied, set: {answer: 'string(event.body)'}, next: use}]
    timeout: {after: 1d, next: use}
  use:
    type: decision
    branches: [{when: answer == "yes", next: done}]
    otherwise: done
  done: {type: end}
""")
    assert codes(spec) == ["W-DATA-MAYBE-UNSET"]  # the timeout path never sets it
    fixed = spec_of("""
data:
  answer: {type: string}
nodes:
  start: {type: start, next: split}
  split:
    type: parallel
    branches: [{next: ask}, {next: other}]
    join: both
  ask: {type: set, set: {answer: '"yes"'}, next: both}
  other: {type: set, set: {}, next: both}
  both: {type: join, next: use}
  use:
    type: decision
    branches: [{when: answer == "yes", next: done}]
    otherwise: done
  done: {type: end}
""")
    assert codes(fixed) == []  # every branch of a full split has run at the join


def test_every_file_the_reference_names_exists() -> None:
    reference = (ROOT / "docs" / "sop-reference.md").read_text(encoding="utf-8")
    places = [Path(__file__).parent / "invalid", Path(__file__).parent / "valid",
              ROOT / "sop_definitions", ROOT / "sop_definitions" / "org", ROOT]
    named = set(re.findall(r"`([\w./-]+\.yaml)`", reference))
    assert named
    missing = {n for n in named if not any((p / n).exists() for p in places)}
    assert missing == set()
