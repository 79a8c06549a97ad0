"""JSON Schema validation of parsed documents, reporting every error at its YAML span.

The schemas live in ``schemas/<kind>.schema.json`` (JSON Schema 2020-12, each with ``$id``
and a description on every property, for editors). They are read once, lazily.

``Draft202012Validator`` is wrapped, never subclassed. SOP nodes are validated one by one
against the definition of their own ``type`` (``$defs/node_<type>``), exactly what the
published ``if``/``then`` dispatch means, so an error names the real problem instead of a
blow-up of "not valid under any of the given schemas". Each jsonschema error becomes a
``SchemaError`` with code ``E-SCHEMA-<KEYWORD>`` (``E-SCHEMA-REQUIRED``, ``-ENUM``,
``-TYPE``, ``-ADDITIONAL`` ...), the span of the offending value (or key), its JSON path
and, for unknown keys and values, a did-you-mean hint.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from engine.errors import SchemaError, SopError
from engine.sop.loader import JsonPath, YamlDocument, format_json_path
from engine.sop.schema_fast import Check, compile_check

__all__ = [
    "KINDS",
    "SCHEMA_DIR",
    "iter_schema_errors",
    "load_schema",
    "node_keys",
    "schema_path",
]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
KINDS = ("sop", "levels", "calendar", "sla_policy", "routing", "agents")
_JSON_TYPES = {"dict": "object", "list": "array", "str": "string", "int": "integer",
               "float": "number", "bool": "boolean", "NoneType": "null"}


def schema_path(kind: str) -> Path:
    """Where the schema of document kind ``kind`` is stored."""
    return SCHEMA_DIR / f"{kind}.schema.json"


@cache
def load_schema(kind: str) -> Mapping[str, Any]:
    """The JSON Schema of ``kind`` (read once)."""
    with schema_path(kind).open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@cache
def _derived_schema(kind: str, definition: str | None = None) -> Mapping[str, Any]:
    """The schema actually validated: a document kind, or one SOP node type, flattened.

    Node schemas are *flattened* (``$ref`` inlined, ``node_common`` merged,
    ``unevaluatedProperties`` turned into ``additionalProperties``): the same constraints
    as the published schema, without the reference resolution and annotation tracking
    that make jsonschema slow on a 2,000-node SOP.
    """
    schema = copy.deepcopy(dict(load_schema(kind)))
    if definition is not None:
        defs = schema["$defs"]
        node = _inline(defs[definition], defs)
        common = _inline(defs["node_common"], defs)
        node.pop("allOf", None)
        node.pop("unevaluatedProperties", None)
        node["properties"] = {**common["properties"], **node["properties"]}
        node["additionalProperties"] = False
        schema = {"$schema": schema["$schema"], **node}
    elif kind == "sop":
        # nodes are checked one by one against their own type (see _iter_node_errors)
        schema["$defs"]["node"] = {"type": "object"}
    schema.pop("$id", None)
    return schema


@cache
def _validator(kind: str, definition: str | None = None) -> Any:
    """A jsonschema Draft 2020-12 validator (for the detailed errors)."""
    from jsonschema import Draft202012Validator  # lazy: only invalid documents need it

    return Draft202012Validator(_derived_schema(kind, definition))


@cache
def _fast(kind: str, definition: str | None = None) -> Check:
    """The fast yes/no check of the same schema (engine.sop.schema_fast)."""
    return compile_check(_derived_schema(kind, definition))


def _inline(schema: Any, defs: Mapping[str, Any]) -> Any:
    """``schema`` with every local ``$ref`` replaced by a copy of its target."""
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {k: _inline(v, defs) for k, v in schema.items() if k != "$ref"}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inline(defs[ref.removeprefix("#/$defs/")], defs)
        out = {**target, **out}
    return out


@cache
def node_types() -> tuple[str, ...]:
    """The SOP node types the schema knows."""
    return tuple(load_schema("sop")["$defs"]["node_common"]["properties"]["type"]["enum"])


@cache
def node_keys(node_type: str) -> frozenset[str]:
    """Every key a node of ``node_type`` may have (common keys included)."""
    defs = load_schema("sop")["$defs"]
    return frozenset(defs["node_common"]["properties"]) | frozenset(
        defs[f"node_{node_type}"]["properties"])


def _did_you_mean(word: object, choices: Iterable[object]) -> str | None:
    options = [str(c) for c in choices]
    text = str(word)
    close = difflib.get_close_matches(text, options, n=1, cutoff=0.6)
    if not close:  # web_form -> web, first -> first_response
        close = [o for o in options if len(o) >= 3 and len(text) >= 3
                 and (text.startswith(o) or o.startswith(text))][:1]
    return f"did you mean {close[0]!r}?" if close else None


def _error(doc: YamlDocument, code: str, message: str, path: JsonPath, *, key: bool = False,
           hint: str | None = None) -> SopError:
    span = doc.key_span(path) if key else doc.span(path)
    return SchemaError(code, message, span=span, json_path=format_json_path(path), hint=hint)


#: stop after this many errors in one document (a hopeless or hostile file); the last one says so
MAX_ERRORS = 500


def iter_schema_errors(doc: YamlDocument) -> Iterator[SopError]:
    """Every schema error of ``doc``, each at the YAML position of the offending value.

    After ``MAX_ERRORS`` errors a final ``E-TOO-MANY`` error ends the list.
    """
    for count, error in enumerate(_iter_schema_errors(doc), 1):
        if count > MAX_ERRORS:
            yield SchemaError("E-TOO-MANY", f"more than {MAX_ERRORS} errors; stopped here",
                              span=error.span, json_path=error.json_path,
                              hint="fix the errors above first")
            return
        yield error


def _iter_schema_errors(doc: YamlDocument) -> Iterator[SopError]:
    data = doc.data
    if not isinstance(data, Mapping):
        yield _error(doc, "E-SCHEMA-TYPE",
                     f"a document must be a mapping with 'kind:', not {_type_name(data)}", ())
        return
    kind = data.get("kind")
    if kind not in KINDS:
        if kind is None:
            yield _error(doc, "E-SCHEMA-REQUIRED", "missing 'kind'", (),
                         hint=f"start the document with 'kind: sop' (or {', '.join(KINDS[1:])})")
        else:
            yield _error(doc, "E-SCHEMA-ENUM", f"unknown document kind {kind!r}", ("kind",),
                         hint=_did_you_mean(kind, KINDS) or f"one of: {', '.join(KINDS)}")
        return
    schema = load_schema(str(kind))
    if not _fast(str(kind))(data):
        for err in _validator(str(kind)).iter_errors(data):
            yield from _convert(doc, err, (), schema)
    nodes = data.get("nodes")
    if kind == "sop" and isinstance(nodes, Mapping) and len(nodes) <= _max_nodes():
        for node_id, node in data["nodes"].items():
            yield from _iter_node_errors(doc, node_id, node)


@cache
def _max_nodes() -> int:
    limit: int = load_schema("sop")["properties"]["nodes"].get("maxProperties", 10**9)
    return limit


def _iter_node_errors(doc: YamlDocument, node_id: str, node: Any) -> Iterator[SopError]:
    path: JsonPath = ("nodes", node_id)
    if not isinstance(node, Mapping):
        return  # reported by the top-level validation (type: object)
    node_type = node.get("type")
    if node_type is None:
        yield _error(doc, "E-SCHEMA-REQUIRED", f"node {node_id!r} has no 'type'", path, key=True,
                     hint=f"add 'type:' ({', '.join(node_types())})")
        return
    if node_type not in node_types():
        yield _error(doc, "E-SCHEMA-ENUM", f"unknown node type {node_type!r}", (*path, "type"),
                     hint=_did_you_mean(node_type, node_types())
                     or f"one of: {', '.join(node_types())}")
        return
    if _fast("sop", f"node_{node_type}")(node):
        return
    schema = load_schema("sop")
    for err in _validator("sop", f"node_{node_type}").iter_errors(node):
        yield from _convert(doc, err, path, schema, node_type=str(node_type))


def _type_name(value: Any) -> str:
    return _JSON_TYPES.get(type(value).__name__, type(value).__name__)


def _convert(doc: YamlDocument, err: Any, prefix: JsonPath, schema: Mapping[str, Any],
             node_type: str | None = None) -> Iterator[SopError]:
    """One jsonschema error -> one or more SopErrors."""
    keyword = err.validator
    path: JsonPath = (*prefix, *err.absolute_path)
    instance = err.instance
    code = f"E-SCHEMA-{str(keyword).upper()}"
    if "propertyNames" in err.schema_path:
        yield _error(doc, "E-SCHEMA-NAME", f"{instance!r} is not an allowed name here",
                     (*path, str(instance)), key=True,
                     hint=_names_hint(err))
        return
    if keyword in ("additionalProperties", "unevaluatedProperties"):
        allowed = set(err.schema.get("properties", {}))
        if node_type is not None:
            allowed = set(node_keys(node_type))
        for key in instance:
            if key in allowed:
                continue
            where = f"node {path[1]!r} (type {node_type})" if node_type else "here"
            yield _error(doc, "E-SCHEMA-ADDITIONAL", f"unknown key {key!r} in {where}",
                         (*path, key), key=True, hint=_unknown_key_hint(key, allowed, node_type))
        return
    if keyword == "required":
        missing = [name for name in err.validator_value if name not in instance]
        for name in missing:
            what = f"node {path[1]!r} (type {node_type})" if node_type and len(path) == 2 \
                else format_json_path(path)
            yield _error(doc, code, f"{what} is missing required key {name!r}", path, key=True,
                         hint=_required_hint(name))
        return
    if keyword in ("enum", "const"):
        allowed_values = err.validator_value if keyword == "enum" else [err.validator_value]
        yield _error(doc, "E-SCHEMA-ENUM",
                     f"{instance!r} is not allowed; expected one of "
                     f"{', '.join(repr(v) for v in allowed_values)}", path,
                     hint=_did_you_mean(instance, allowed_values))
        return
    if keyword == "type":
        expected = err.validator_value
        expected_text = " or ".join(expected) if isinstance(expected, list) else expected
        hint = None
        if expected == "string" and isinstance(instance, (int, float)) and not isinstance(instance, bool):
            hint = f"quote it: \"{instance}\""
        elif expected == "object" and instance is None:
            hint = "the value is empty; give it keys or remove it"
        yield _error(doc, code, f"expected {expected_text}, got {_type_name(instance)} "
                                f"{_short(instance)}", path, hint=hint)
        return
    yield _error(doc, code, _plain_message(err), path)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return f"({text[:40]}...)" if len(text) > 40 else f"({text})"


def _plain_message(err: Any) -> str:
    keyword, value, instance = err.validator, err.validator_value, err.instance
    if keyword == "pattern":
        return f"{instance!r} does not have the expected form (pattern {value})"
    if keyword in ("minItems", "minProperties"):
        return f"needs at least {value} entr{'y' if value == 1 else 'ies'}"
    if keyword in ("maxItems", "maxProperties"):
        return f"allows at most {value} entries (has {len(instance)})"
    if keyword in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return f"{instance!r} is out of range ({keyword} {value})"
    if keyword in ("minLength", "maxLength"):
        return f"string length must respect {keyword} {value}"
    return str(err.message)


def _names_hint(err: Any) -> str | None:
    sub = err.schema
    if "enum" in sub:
        return _did_you_mean(err.instance, sub["enum"]) or f"one of: {', '.join(sub['enum'])}"
    return "use letters, digits and _ (start with a letter or _)"


def _unknown_key_hint(key: str, allowed: Iterable[str], node_type: str | None) -> str | None:
    hint = _did_you_mean(key, allowed)
    if hint:
        return hint
    if node_type is not None:
        owners = [t for t in node_types() if key in node_keys(t)]
        if owners:
            return f"{key!r} belongs to {'/'.join(owners)} nodes"
    return f"allowed keys: {', '.join(sorted(allowed))}" if allowed else None


def _required_hint(name: str) -> str | None:
    return {"kind": "start the document with 'kind: sop'",
            "next": "say where the case continues: 'next: <node id>'"}.get(name)
