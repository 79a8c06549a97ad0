"""Property tests: whatever bytes or YAML trees come in, only careflow's own errors come out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import SopErrors
from engine.sop import load_document, load_text
from engine.sop.pipeline import compile_sop
from engine.sop.model import SopSpec

KEYS = st.sampled_from(["kind", "id", "version", "title", "nodes", "type", "next", "start", "end",
                        "branches", "when", "data", "on", "timeout", "after", "set", "x", "levels",
                        "rank", "name", "metrics", "rules", "sop", "outcomes", "form", "retry"])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["sop", "levels", "calendar", "sla_policy", "routing", "start", "end", "action",
                     "decision", "human_task", "wait", "1.0.0", "4h", "P2D", "x > 1", "${ x }", "yes"]),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=30,
)


def _check(text: str) -> None:
    try:
        doc = load_text(text, "fuzz.yaml")
    except SopErrors as exc:
        assert all(e.code for e in exc)
        return
    if isinstance(doc, SopSpec):
        try:
            compile_sop(doc)
        except SopErrors:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_sop_errors(tmp_path_factory: Any, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "f.yaml"
    path.write_bytes(data)
    try:
        load_document(path)
    except SopErrors:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES, st.sampled_from(["block", "flow"]))
def test_arbitrary_yaml_trees_raise_only_sop_errors(tree: Any, style: str) -> None:
    text = yaml.safe_dump(tree, default_flow_style=style == "flow", allow_unicode=True)
    _check(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, TREES, max_size=6))
def test_sop_shaped_trees_raise_only_sop_errors(tree: dict[str, Any]) -> None:
    base: dict[str, Any] = {"kind": "sop", "id": "f", "version": "1.0.0", "title": "t",
                            "nodes": {"start": {"type": "start", "next": "e"}, "e": {"type": "end"}}}
    nodes = tree.pop("nodes", None)
    if isinstance(nodes, dict):
        base["nodes"].update({f"n{i}": v for i, v in enumerate(nodes.values())})
    base.update({k: v for k, v in tree.items() if k not in ("kind",)})
    _check(yaml.safe_dump(base))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("[]{}:-,'\"#&*!|> \n\tab1")), max_size=200))
def test_yaml_punctuation_soup_raises_only_sop_errors(text: str) -> None:
    _check(text)


# ---- the fast schema check agrees with jsonschema ---------------------------------------------

NODE_KEYS = st.sampled_from(["type", "next", "title", "level", "action", "inputs", "set", "retry",
                             "branches", "otherwise", "outcomes", "form", "timeout", "on", "max",
                             "body", "exit", "clock", "to", "status", "terminate", "when", "after",
                             "max_attempts", "label", "knowledge", "event", "bogus"])
NODE_VALUES = st.recursive(
    st.one_of(SCALARS, st.sampled_from(["start", "end", "action", "decision", "human_task", "wait",
                                        "loop", "escalate", "sla_start", "a_node", "4h"])),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(NODE_KEYS, children, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(NODE_KEYS, NODE_VALUES, max_size=7),
       st.sampled_from(["start", "action", "decision", "parallel", "human_task", "wait", "loop",
                        "sla_check", "call", "end", "escalate", "set"]))
def test_fast_node_check_agrees_with_jsonschema(node: dict[str, Any], node_type: str) -> None:
    from engine.sop.schema import _fast, _validator

    node = {**node, "type": node_type}
    definition = f"node_{node_type}"
    assert _fast("sop", definition)(node) == _validator("sop", definition).is_valid(node)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["sop", "levels", "calendar", "sla_policy", "routing"]),
       st.dictionaries(st.sampled_from(["id", "version", "title", "nodes", "levels", "timezone",
                                        "week", "metrics", "order", "calendar", "rules",
                                        "fallback", "always", "data", "on_event"]),
                       NODE_VALUES, max_size=6))
def test_fast_document_check_agrees_with_jsonschema(kind: str, doc: dict[str, Any]) -> None:
    from engine.sop.schema import _fast, _validator

    doc = {**doc, "kind": kind}
    assert _fast(kind)(doc) == _validator(kind).is_valid(doc)
