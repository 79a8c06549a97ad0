"""Executable spec of JSON Schema validation: codes, positions, hints, and schema hygiene."""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.errors import SopError, SopErrors
from engine.sop import load_text
from engine.sop.build import NODE_FIELDS, SOP_FIELDS
from engine.sop.loader import load_yaml_file, load_yaml_text
from engine.sop.model import NodeSpec, NodeType, SopSpec
from engine.sop.schema import KINDS, SCHEMA_DIR, iter_schema_errors, load_schema, node_keys

BAD = """\
kind: sop
id: bad
version: 1.0
title: Bad
data:
  n: {type: integer}
  m: {type: intger}
nodes:
  start:
    type: start
    nxt: a
  a:
    type: decison
  b:
    type: decision
    branches:
      - when: n > 1
        next: c
        label: 3
    otherwise: c
  c:
    type: action
    action: foo
    next: d
    branches: []
  d:
    type: end
    status: done
"""


def errors_of(text: str) -> list[SopError]:
    with pytest.raises(SopErrors) as info:
        load_text(text, "bad.yaml")
    return list(info.value)


def where(errors: list[SopError]) -> list[tuple[int, int, str]]:
    return [(e.span.line, e.span.column, e.code) for e in errors if e.span]


def test_all_schema_errors_are_reported_at_their_yaml_position() -> None:
    errors = errors_of(BAD)
    assert where(errors) == [
        (3, 10, "E-SCHEMA-TYPE"),        # version: 1.0 is a number
        (7, 13, "E-SCHEMA-ENUM"),        # intger
        (9, 3, "E-SCHEMA-REQUIRED"),     # start without next
        (11, 5, "E-SCHEMA-ADDITIONAL"),  # nxt
        (13, 11, "E-SCHEMA-ENUM"),       # decison
        (19, 16, "E-SCHEMA-TYPE"),       # label: 3
        (25, 5, "E-SCHEMA-ADDITIONAL"),  # branches on an action
        (28, 13, "E-SCHEMA-ENUM"),       # status: done
    ]
    by_code = {(e.span.line if e.span else 0): e for e in errors}
    assert by_code[3].hint == 'quote it: "1.0"'
    assert by_code[7].hint == "did you mean 'integer'?"
    assert by_code[11].hint == "did you mean 'next'?"
    assert by_code[11].json_path == "$.nodes.start.nxt"
    assert by_code[13].hint == "did you mean 'decision'?"
    assert by_code[13].json_path == "$.nodes.a.type"
    assert by_code[25].hint == "'branches' belongs to decision/parallel nodes"
    assert by_code[9].message == "node 'start' (type start) is missing required key 'next'"
    assert by_code[19].json_path == "$.nodes.b.branches[0].label"


def test_missing_kind_and_unknown_kind() -> None:
    (err,) = errors_of("id: x\n")
    assert err.code == "E-SCHEMA-REQUIRED" and "kind: sop" in (err.hint or "")
    (err,) = errors_of("kind: sopp\n")
    assert (err.code, err.hint) == ("E-SCHEMA-ENUM", "did you mean 'sop'?")
    (err,) = errors_of("- a\n")
    assert err.code == "E-SCHEMA-TYPE"


def test_a_node_without_type_is_reported_once() -> None:
    errs = errors_of("kind: sop\nid: x\nversion: '1'\ntitle: t\nnodes:\n  a: {next: b}\n")
    codes = [e.code for e in errs]
    assert "E-SCHEMA-REQUIRED" in codes
    assert codes.count("E-SCHEMA-ADDITIONAL") == 0


def test_bad_names_are_reported_at_the_key() -> None:
    errs = errors_of("kind: sop\nid: x\nversion: '1.0.0'\ntitle: t\nnodes:\n  start: {type: start, next: e}\n"
                     "  e: {type: end}\n  'bad name': {type: end}\n")
    (err,) = errs
    assert (err.code, err.span.line, err.span.column) == ("E-SCHEMA-NAME", 8, 3)  # type: ignore[union-attr]


def test_org_documents_are_validated_too() -> None:
    errs = errors_of("kind: calendar\nid: c\ntimezone: UTC\nweek:\n  mon: ['25:00-26:00']\n  funday: []\n")
    assert [e.code for e in errs] == ["E-SCHEMA-ANYOF", "E-SCHEMA-ADDITIONAL"]
    errs = errors_of("kind: sla_policy\nid: p\norder: 1\ncalendar: c\nmetrics:\n  first_respons: {target: 4h}\n")
    assert errs[0].code == "E-SCHEMA-NAME" and errs[0].hint == "did you mean 'first_response'?"
    errs = errors_of("kind: routing\nrules:\n  - {sop: x, channels: [web_form]}\n")
    assert errs[0].code == "E-SCHEMA-ENUM" and errs[0].hint == "did you mean 'web'?"


# ---- schema hygiene ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_schemas_are_valid_2020_12_with_id_and_title(kind: str) -> None:
    schema = load_schema(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://careflow.dev/schemas/{kind}.schema.json"
    assert schema["title"] and schema["description"]


def _iter_properties(schema: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            yield f"{path}.{name}", sub
        for key, value in schema.items():
            if key != "properties" or not isinstance(value, dict):
                yield from _iter_properties(value, f"{path}/{key}")
            else:
                for name, sub in value.items():
                    yield from _iter_properties(sub, f"{path}.{name}")
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from _iter_properties(item, f"{path}[{i}]")


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_has_a_description(kind: str) -> None:
    missing = [p for p, sub in _iter_properties(load_schema(kind)) if not sub.get("description")]
    assert missing == []


def test_schema_files_are_the_ones_the_cli_publishes() -> None:
    for kind in KINDS:
        assert json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())["$id"].endswith(
            f"/{kind}.schema.json")


# ---- drift: schema <-> builder <-> model -----------------------------------------------------

#: YAML key -> NodeSpec field where they differ (none today; keep the map explicit)
YAML_TO_NODE_FIELD: dict[str, str] = {}
#: NodeSpec fields that are not written in YAML under a node (derived by the builder)
NODE_FIELDS_NOT_IN_YAML = {"id", "span"}
SOP_FIELDS_NOT_IN_YAML = {"span", "source"}


def test_node_schema_keys_equal_builder_keys_equal_model_fields() -> None:
    defs = load_schema("sop")["$defs"]
    schema_keys = set(defs["node_common"]["properties"])
    for node_type in NodeType:
        schema_keys |= set(defs[f"node_{node_type.value}"]["properties"])
    assert schema_keys == set(NODE_FIELDS), "schema and builder disagree on node keys"
    model_fields = set(NodeSpec.__dataclass_fields__) - NODE_FIELDS_NOT_IN_YAML
    assert {YAML_TO_NODE_FIELD.get(k, k) for k in NODE_FIELDS.values()} == model_fields


def test_sop_schema_keys_equal_builder_keys_equal_model_fields() -> None:
    schema_keys = set(load_schema("sop")["properties"]) - {"kind"}
    assert schema_keys == set(SOP_FIELDS)
    assert set(SOP_FIELDS.values()) == set(SopSpec.__dataclass_fields__) - SOP_FIELDS_NOT_IN_YAML


def test_every_node_type_has_a_schema_definition() -> None:
    defs = load_schema("sop")["$defs"]
    assert {t.value for t in NodeType} == {k.removeprefix("node_") for k in defs
                                          if k.startswith("node_") and k != "node_common"}
    assert node_keys("action") >= {"type", "title", "action", "retry", "on_error", "next"}


def _published_errors(text: str) -> set[tuple[str, ...]]:
    """(json path, keyword) of the errors the *published* schema (if/then) reports."""
    data = load_yaml_text(text).data
    validator = Draft202012Validator(load_schema("sop"))
    found = set()
    for err in validator.iter_errors(data):
        stack = [err]
        while stack:
            e = stack.pop()
            if e.context:
                stack.extend(e.context)
            found.add(tuple(str(p) for p in e.absolute_path))
    return found


def test_published_schema_and_fast_validators_agree(example_text: str) -> None:
    """The flattened per-type validators find problems exactly where the published
    if/then schema does (editors and the CLI never disagree on validity)."""
    assert _published_errors(example_text) == set()
    assert list(iter_schema_errors(load_yaml_text(example_text))) == []
    text = BAD.replace("    type: decison\n", "    type: decision\n    branches: [{next: c}]\n")
    ours = {e.json_path for e in iter_schema_errors(load_yaml_text(text))}
    theirs = _published_errors(text)
    # every error we report sits at (or under) a path the published schema complains about
    for path in ours:
        parts = tuple(p for p in path.replace("$", "").replace("[", ".").replace("]", "").split(".") if p)
        assert any(parts[: len(t)] == t or t[: len(parts)] == parts for t in theirs), path
    assert len(ours) >= 5


def _corpus() -> list[Path]:
    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "sop_definitions").rglob("*.yaml"))
    files += sorted((root / "tests" / "sop_semantics").rglob("*.yaml"))
    return files


def test_fast_check_agrees_with_jsonschema_on_every_corpus_file() -> None:
    from engine.sop.schema import _fast, _validator

    checked = 0
    for path in _corpus():
        try:
            data = load_yaml_file(path).data
        except SopErrors:
            continue
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind not in KINDS:
            continue
        assert _fast(kind)(data) == _validator(kind).is_valid(data), path
        checked += 1
        for node in (data.get("nodes") or {}).values() if kind == "sop" else ():
            if isinstance(node, dict) and node.get("type") in {t.value for t in NodeType}:
                definition = f"node_{node['type']}"
                assert _fast("sop", definition)(node) == _validator("sop", definition).is_valid(node), path
    assert checked >= 10


def test_hopeless_documents_stop_after_max_errors() -> None:
    from engine.sop.schema import MAX_ERRORS

    head = "kind: sop\nid: big\nversion: '1.0.0'\ntitle: t\nnodes:\n  start: {type: start, next: e0}\n"
    errs = errors_of(head + "".join(f"  e{i}: {{type: ned}}\n" for i in range(MAX_ERRORS + 50)))
    assert len(errs) == MAX_ERRORS + 1 and errs[-1].code == "E-TOO-MANY"
    errs = errors_of(head + "".join(f"  e{i}: {{type: end}}\n" for i in range(5001)))
    assert [e.code for e in errs] == ["E-SCHEMA-MAXPROPERTIES"]
