"""A fast yes/no JSON Schema check, compiled from the same schema files, for the valid case.

jsonschema is thorough but slow (about 100 µs per SOP node); most documents are valid, so
``engine.sop.schema`` first asks this checker "is it valid?" and only runs jsonschema (for
its detailed errors) when the answer is no. The checker is compiled from the JSON Schema
itself -- never written by hand -- and supports exactly the keywords careflow's schemas
use; an unknown keyword raises ``NotImplementedError`` when compiling, so a schema change
cannot silently weaken it. A property test checks it agrees with jsonschema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "compile_check"]

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "default",
                          "examples", "$comment", "then"})


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float))
    raise NotImplementedError(f"type {name!r}")


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema means it: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


class _Compiler:
    """Turns schema dicts into closures; ``$ref`` targets are compiled once, lazily."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.refs: dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/$defs/"):
            raise NotImplementedError(f"$ref {ref!r}")
        name = ref.removeprefix("#/$defs/")
        if name not in self.refs:
            self.refs[name] = lambda value: self.refs[name](value)  # recursion guard
            self.refs[name] = self.compile(self.defs[name])
        return self.refs[name]

    def compile(self, schema: Any) -> Check:  # noqa: C901 - one branch per keyword
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        checks: list[Check] = []
        for key, arg in schema.items():
            if key in _ANNOTATIONS:
                continue
            checks.append(self.keyword(key, arg, schema))
        if len(checks) == 1:
            return checks[0]
        return lambda value: all(check(value) for check in checks)

    def keyword(self, key: str, arg: Any, schema: Mapping[str, Any]) -> Check:  # noqa: C901, PLR0911, PLR0912
        if key == "type":
            names = arg if isinstance(arg, list) else [arg]
            return lambda value: any(_is_type(value, n) for n in names)
        if key == "enum":
            return lambda value: any(_json_equal(value, e) for e in arg)
        if key == "const":
            return lambda value: _json_equal(value, arg)
        if key == "$ref":
            return self.ref(arg)
        if key == "required":
            return lambda value: not isinstance(value, dict) or all(k in value for k in arg)
        if key == "properties":
            props = {name: self.compile(sub) for name, sub in arg.items()}
            return lambda value: not isinstance(value, dict) or all(
                props[k](v) for k, v in value.items() if k in props)
        if key == "additionalProperties":
            known = frozenset(schema.get("properties", {}))
            if "patternProperties" in schema:
                raise NotImplementedError("patternProperties")
            extra = self.compile(arg)
            return lambda value: not isinstance(value, dict) or all(
                extra(v) for k, v in value.items() if k not in known)
        if key == "propertyNames":
            name_check = self.compile(arg)
            return lambda value: not isinstance(value, dict) or all(name_check(k) for k in value)
        if key == "minProperties":
            return lambda value: not isinstance(value, dict) or len(value) >= arg
        if key == "maxProperties":
            return lambda value: not isinstance(value, dict) or len(value) <= arg
        if key == "items":
            item = self.compile(arg)
            skip = len(schema.get("prefixItems", ()))
            return lambda value: not isinstance(value, list) or all(item(v) for v in value[skip:])
        if key == "prefixItems":
            firsts = [self.compile(sub) for sub in arg]
            return lambda value: not isinstance(value, list) or all(
                check(v) for check, v in zip(firsts, value, strict=False))
        if key == "minItems":
            return lambda value: not isinstance(value, list) or len(value) >= arg
        if key == "maxItems":
            return lambda value: not isinstance(value, list) or len(value) <= arg
        if key == "minLength":
            return lambda value: not isinstance(value, str) or len(value) >= arg
        if key == "maxLength":
            return lambda value: not isinstance(value, str) or len(value) <= arg
        if key == "pattern":
            rx = re.compile(arg)
            return lambda value: not isinstance(value, str) or rx.search(value) is not None
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return _number_bound(key, arg)
        if key == "anyOf":
            subs = [self.compile(sub) for sub in arg]
            return lambda value: any(s(value) for s in subs)
        if key == "allOf":
            subs = [self.compile(sub) for sub in arg]
            return lambda value: all(s(value) for s in subs)
        if key == "if":
            cond = self.compile(arg)
            then = self.compile(schema.get("then", True))
            return lambda value: not cond(value) or then(value)
        raise NotImplementedError(f"JSON Schema keyword {key!r}")


def _number_bound(key: str, bound: float) -> Check:
    def check(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        number = float(value)
        if key == "minimum":
            return number >= bound
        if key == "maximum":
            return number <= bound
        if key == "exclusiveMinimum":
            return number > bound
        return number < bound

    return check


def compile_check(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> Check:
    """A function ``value -> bool``: does ``value`` match ``schema``?

    Args:
        schema: a JSON Schema (2020-12 subset: the keywords careflow's schemas use).
        defs: where ``#/$defs/...`` references point (default: ``schema["$defs"]``).

    Raises:
        NotImplementedError: the schema uses a keyword this checker does not know.
    """
    return _Compiler(defs if defs is not None else schema.get("$defs", {})).compile(schema)
