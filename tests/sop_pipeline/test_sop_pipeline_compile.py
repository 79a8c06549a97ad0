"""Executable spec of building and compiling: the example SOP, graph shape, CEL, hash."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import networkx as nx
import pytest

from engine.errors import SopErrors, SourceSpan
from engine.sop import HANDLERS_NODE, CompiledSop, compile_text, load_document, load_text
from engine.sop.compiler import content_hash
from engine.sop.generate import generate_sop
from engine.sop.model import Duration, Expr, NodeType, SopSpec

from sop_pipeline_helpers import EXAMPLE

MINI = """\
kind: sop
id: mini
version: "1.0.0"
title: Mini
data:
  n: {type: integer, default: 0}
  label: {type: string}
nodes:
  start: {type: start, next: check}
  check:
    type: decision
    branches:
      - when: n > 3
        next: done
    otherwise: bump
  bump:
    type: set
    set:
      n: n + 1
    next: done
  done: {type: end, outcome: ok}
"""


@pytest.fixture(scope="module")
def example() -> CompiledSop:
    return compile_text(EXAMPLE.read_text(encoding="utf-8"), "password_reset.yaml")


def test_example_builds_into_the_model(example: CompiledSop) -> None:
    spec = example.spec
    assert (spec.id, spec.version, spec.itil, spec.category) == ("password_reset", "1.1.0", "service_request", "access")
    assert spec.source == "password_reset.yaml"
    assert spec.start.id == "start"
    assert spec.data["customer_tier"].enum == ("standard", "silver", "gold")
    assert spec.data["customer_tier"].default == "standard" and spec.data["customer_tier"].input

    classify = spec.nodes["classify"]
    assert classify.type is NodeType.ACTION and classify.level == "e"
    assert classify.retry.max_attempts == 3 and classify.retry.backoff == 2.0
    assert classify.retry.delay == Duration("10s", 10, SourceSpan("password_reset.yaml", 41, 37))
    assert classify.retry.max_delay is not None and classify.retry.max_delay.seconds == 300
    text_input = classify.inputs["text"]
    assert text_input == Expr("request_text", SourceSpan("password_reset.yaml", 36, 16))
    assert classify.set["intent"] == Expr("result.intent", SourceSpan("password_reset.yaml", 39, 15))

    verify = spec.nodes["verify_identity"]
    assert [o.name for o in verify.outcomes] == ["verified", "escalate"]
    assert verify.form[0].name == "verify_outcome" and verify.form[0].required
    assert verify.timeout is not None and verify.timeout.after.seconds == 4 * 3600
    assert verify.timeout.calendar == "office_nl" and verify.timeout.next == "escalate_overdue"

    wait = spec.nodes["await_confirmation"]
    assert wait.on[0].event == "customer_confirmed" and wait.on[0].set["confirmation"].source == "event"
    assert wait.timeout is not None and wait.timeout.after.seconds == 2 * 86400

    assert spec.nodes["specialist_fix"].outcomes[0].knowledge == "required"
    assert spec.nodes["withdrawn"].terminate is True and spec.nodes["withdrawn"].status == "cancelled"
    (handler,) = spec.on_event
    assert (handler.event, handler.interrupt, handler.next) == ("withdrawn", True, "withdrawn")


def test_graph_shape(example: CompiledSop) -> None:
    g = example.graph
    assert isinstance(g, nx.DiGraph)
    assert set(example.spec.nodes) | {HANDLERS_NODE} == set(g.nodes)
    assert g.nodes["classify"]["type"] == "action" and g.nodes["classify"]["level"] == "e"
    assert g.nodes["classify"]["spec"] is example.node("classify")
    assert g.nodes["classify"]["span"] == SourceSpan("password_reset.yaml", 30, 3)
    kinds = {(u, v): d["kind"] for u, v, d in g.edges(data=True)}
    assert kinds[("start", "classify")] == "next"
    assert kinds[("classify", "verify_identity_sla")] == "error"
    assert kinds[("route", "send_reset_link")] == "branch"
    when = example.node("route").branches[0].when
    assert when is not None and when.source.startswith('intent == "self_service_reset"')
    assert g.edges["route", "send_reset_link"]["condition"] == when.source
    assert g.edges["route", "send_reset_link"]["label"] == "forgot password"
    assert kinds[("route", "verify_identity_sla")] == "otherwise"
    assert kinds[("await_confirmation", "resolved_self_service")] == "event"
    assert kinds[("await_confirmation", "verify_identity_sla")] == "timeout"
    assert kinds[("verify_identity", "stop_first_response")] == "outcome"
    assert kinds[(HANDLERS_NODE, "withdrawn")] == "handler"
    assert g.nodes[HANDLERS_NODE]["virtual"] is True
    # every edge agrees with NodeSpec.successors()
    for node_id, node in example.spec.nodes.items():
        assert {t for t, _ in node.successors()} == set(g.successors(node_id))


def test_edges_of_loops_and_sla_checks() -> None:
    text = MINI.replace("  done: {type: end, outcome: ok}\n", """\
  done:
    type: loop
    max: 3
    body: chk
    exit: fin
  chk:
    type: sla_check
    clock: c
    ok: done
    warning: done
    breached: fin
  fin: {type: end}
""")
    spec = load_text(text)
    assert isinstance(spec, SopSpec)
    from engine.sop.compiler import compile_spec

    g = compile_spec(spec).graph
    assert g.edges["done", "chk"]["kind"] == "loop_body"
    assert g.edges["done", "fin"]["kind"] == "loop_exit"
    assert g.edges["chk", "done"]["kinds"] == ["sla_ok", "sla_warning"]
    assert g.edges["chk", "fin"]["kind"] == "sla_breached"


def test_programs_exist_for_every_expression(example: CompiledSop) -> None:
    spec = example.spec
    route = spec.nodes["route"].branches[0].when
    assert route is not None
    program = example.program(route)
    assert program.result_type == "bool"
    assert program.test({"intent": "self_service_reset", "email": "a@example.com"}) is True
    assert program.test({"intent": "access_problem", "email": "a@example.com"}) is False
    assert example.program(spec.nodes["classify"].inputs["text"]).evaluate({"request_text": "hi"}) == "hi"  # type: ignore[arg-type]
    assert example.program(spec.nodes["classify"].set["priority"]).evaluate(
        {"result": {"priority": "high"}}) == "high"
    with pytest.raises(KeyError):
        example.program(Expr("1 + 1", SourceSpan("x", 1, 1)))


def test_defaults_keep_their_yaml_type() -> None:
    spec = load_text(MINI)
    assert isinstance(spec, SopSpec)
    assert spec.data["n"].default == 0 and type(spec.data["n"].default) is int


def test_cel_errors_point_into_the_expression() -> None:
    text = MINI.replace("when: n > 3", "when: n > 'three'").replace("n: n + 1", "n: n +")
    with pytest.raises(SopErrors) as info:
        compile_text(text, "m.yaml")
    found = [(e.code, e.span.line, e.span.column, e.json_path) for e in info.value]  # type: ignore[union-attr]
    assert found == [
        ("E-CEL-TYPE", 13, 17, "$.nodes.check.branches[0].when"),
        ("E-CEL-SYNTAX", 19, 13, "$.nodes.bump.set.n"),
    ]


def test_conditions_must_be_bool_and_names_declared() -> None:
    text = MINI.replace("when: n > 3", "when: n + 3").replace("n: n + 1", "n: nn + 1")
    with pytest.raises(SopErrors) as info:
        compile_text(text)
    errors = list(info.value)
    assert "must be bool" in errors[0].message
    assert errors[1].code == "E-CEL-TYPE" and errors[1].hint == "did you mean 'n'?"


def test_unknown_reference_and_start_problems() -> None:
    text = MINI.replace("otherwise: bump", "otherwise: bmup").replace(
        "  done: {type: end, outcome: ok}\n", "  done: {type: end, outcome: ok}\n  again: {type: start, next: done}\n")
    with pytest.raises(SopErrors) as info:
        compile_text(text)
    found = {e.code: e for e in info.value}
    assert found["E-REF-UNKNOWN"].hint == "did you mean 'bump'?"
    assert found["E-REF-UNKNOWN"].json_path == "$.nodes.check.otherwise"
    assert found["E-REF-UNKNOWN"].span.line == 10  # the node (the model keeps no per-key span)  # type: ignore[union-attr]
    assert "'again'" in found["E-START-DUPLICATE"].message
    with pytest.raises(SopErrors) as info:
        compile_text(MINI.replace("start: {type: start, next: check}", "begin: {type: set, set: {n: '1'}, next: check}"))
    assert "E-START-MISSING" in [e.code for e in info.value]


def test_invalid_durations_are_reported() -> None:
    text = EXAMPLE.read_text().replace("after: P2D", "after: P2X").replace("delay: 30s", "delay: 30 parsecs")
    with pytest.raises(SopErrors) as info:
        load_text(text, "d.yaml")
    lines = text.splitlines()
    expected = [i + 1 for i, line in enumerate(lines) if "P2X" in line or "parsecs" in line]
    assert [(e.code, e.span.line) for e in info.value] == [("E-DURATION", n) for n in sorted(expected)]  # type: ignore[union-attr]
    messages = [e.message for e in info.value]
    assert "'30 parsecs'" in messages[0] and "'P2X'" in messages[1]


def test_compile_text_refuses_other_kinds() -> None:
    with pytest.raises(SopErrors) as info:
        compile_text("kind: levels\nlevels: [{id: e, name: e, rank: 0}]\n")
    assert [e.code for e in info.value] == ["E-KIND"]


# ---- hash ------------------------------------------------------------------------------------


def _reformatted(text: str) -> str:
    """Same SOP, different YAML: comments, flow style, key order, quoting, duration spelling."""
    text = "# a comment\n" + text.replace("version: \"1.1.0\"", "version: '1.1.0'  # quoted")
    text = text.replace("    type: start\n    next: classify\n", "    next: classify\n    type: start\n")
    text = text.replace("timeout: {after: P2D, next: verify_identity_sla}",
                        "timeout:\n      next: verify_identity_sla\n      after: 48h")
    text = text.replace("      verified: {next: stop_first_response}\n      escalate: {next: stop_first_response_escalate}\n",
                        "      escalate: {next: stop_first_response_escalate}\n      verified: {next: stop_first_response}\n")
    return text


def test_hash_ignores_formatting_and_key_order(example: CompiledSop) -> None:
    original = EXAMPLE.read_text()
    changed = _reformatted(original)
    assert changed != original
    again = compile_text(changed, "elsewhere.yaml")
    assert again.spec != example.spec  # spans differ ...
    assert again.hash == example.hash  # ... the meaning does not
    assert re.fullmatch(r"[0-9a-f]{64}", example.hash)


@pytest.mark.parametrize("edit", [
    ('intent == "self_service_reset"', 'intent == "access_problem"'),
    ("max_attempts: 5", "max_attempts: 6"),
    ("after: P2D", "after: P3D"),
    ("version: \"1.1.0\"", "version: \"1.1.1\""),
    ("title: Restore access\n", "title: Restore access now\n"),
])
def test_hash_changes_with_any_semantic_change(example: CompiledSop, edit: tuple[str, str]) -> None:
    text = EXAMPLE.read_text()
    assert edit[0] in text
    assert compile_text(text.replace(edit[0], edit[1], 1)).hash != example.hash


def test_branch_order_is_semantic() -> None:
    text = MINI.replace("""      - when: n > 3
        next: done
""", """      - when: n > 3
        next: done
      - when: n > 5
        next: bump
""")
    swapped = text.replace("""      - when: n > 3
        next: done
      - when: n > 5
        next: bump
""", """      - when: n > 5
        next: bump
      - when: n > 3
        next: done
""")
    assert compile_text(text).hash != compile_text(swapped).hash
    assert content_hash(load_text(text)) == compile_text(text).hash  # type: ignore[arg-type]


# ---- exports -----------------------------------------------------------------------------------


def test_node_link_and_graphml(example: CompiledSop) -> None:
    data = example.to_node_link()
    text = json.dumps(data)
    assert json.loads(text)["graph"]["hash"] == example.hash
    back = nx.node_link_graph(data, edges="edges")
    assert set(back.nodes) == set(example.graph.nodes)
    assert back.number_of_edges() == example.graph.number_of_edges()
    root = ET.fromstring(example.to_graphml())
    assert root.tag.endswith("graphml")
    assert len([n for n in root.iter() if n.tag.endswith("}node")]) == example.graph.number_of_nodes()


def test_load_document_reads_files() -> None:
    spec = load_document(EXAMPLE)
    assert isinstance(spec, SopSpec) and spec.source == str(EXAMPLE)


def test_generated_sop_is_valid_and_large() -> None:
    compiled = compile_text(generate_sop(400))
    assert len(compiled.spec.nodes) >= 390
    assert nx.is_weakly_connected(compiled.graph)


def test_the_handlers_node_id_is_reserved() -> None:
    text = MINI.replace("  done: {type: end, outcome: ok}\n",
                        "  done: {type: end, outcome: ok}\n  __handlers__: {type: end}\n")
    with pytest.raises(SopErrors) as info:
        compile_text(text)
    assert "E-NAME-RESERVED" in [e.code for e in info.value]


def test_no_handlers_node_without_handlers() -> None:
    assert HANDLERS_NODE not in compile_text(MINI).graph


def test_the_graph_is_frozen(example: CompiledSop) -> None:
    with pytest.raises(nx.NetworkXError, match="Frozen"):
        example.graph.add_edge("start", "withdrawn")
    assert example.graph.copy().number_of_nodes() == example.graph.number_of_nodes()


@pytest.mark.parametrize("flow", [False, True])
@pytest.mark.parametrize("sort_keys", [False, True])
def test_hash_survives_a_full_re_dump(example: CompiledSop, flow: bool, sort_keys: bool) -> None:
    """Any re-serialisation of the same data (flow or block style, sorted keys) keeps the hash."""
    import yaml

    from engine.sop.loader import load_yaml_text

    data = load_yaml_text(EXAMPLE.read_text()).data
    text = yaml.safe_dump(data, default_flow_style=flow, sort_keys=sort_keys, width=60)
    assert text != EXAMPLE.read_text()
    assert compile_text(text, "redumped.yaml").hash == example.hash


def test_hash_of_a_generated_sop_is_stable_across_reorderings() -> None:
    import yaml

    from engine.sop.loader import load_yaml_text

    text = generate_sop(60)
    data = load_yaml_text(text).data
    data["nodes"] = dict(reversed(list(data["nodes"].items())))
    data = dict(reversed(list(data.items())))
    assert compile_text(yaml.safe_dump(data, sort_keys=False)).hash == compile_text(text).hash


def test_cel_errors_in_block_scalars_point_at_the_text() -> None:
    text = MINI.replace("      - when: n > 3\n", "      - when: >-\n          n > 'x'\n")
    with pytest.raises(SopErrors) as info:
        compile_text(text, "b.yaml")
    (err,) = info.value.errors
    assert (err.code, err.span.line, err.span.column) == ("E-CEL-TYPE", 14, 13)  # type: ignore[union-attr]
