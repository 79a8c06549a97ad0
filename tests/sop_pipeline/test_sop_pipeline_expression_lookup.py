"""Names, field paths and small expressions are evaluated in Python, not by CEL.

``email``, ``result.intent`` (direct lookup) and comparisons with literals joined by &&,
||, !, ?: and ``in [...]`` must be indistinguishable from CEL: the same value (type for
type, a fresh copy of maps and lists, tuples as lists) and, for everything the Python path
does not reproduce (missing names and keys, nulls, values CEL cannot hold, operands of
other types), the very same ExpressionError or result, because it hands those to CEL.
``Program.evaluate_cel`` is the reference: CEL every time.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ExpressionError
from engine.sop.expressions import ExpressionEnv, Program

FIELDS = [("s", "string", None), ("n", "integer", None), ("f", "number", None),
          ("b", "boolean", None), ("t", "timestamp", None), ("d", "duration", None),
          ("o", "object", None), ("tags", "array", "string"), ("nums", "array", "integer"),
          ("any_list", "array", None), ("x", "mystery", None)]
ENV = ExpressionEnv(FIELDS)
NAMES = [name for name, _, _ in FIELDS] + ["case", "event", "result", "now"]
PATHS = NAMES + ["o.a", "o.a.b", "o.b", "event.a", "event.a.b", "event.a.b.c", "result.a",
                 "result.value", "case.level", "x.a", " o.a "]


def _outcome(program: Program, variables: dict[str, Any], *, cel: bool) -> tuple[str, Any]:
    try:
        value = program.evaluate_cel(variables) if cel else program.evaluate(variables)
    except ExpressionError as exc:
        return "error", str(exc)
    return "value", value


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (True is not 1, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                      math.copysign(1, b))
    if isinstance(a, datetime):
        return a == b and a.tzinfo is b.tzinfo
    return bool(a == b)


def _assert_like_cel(source: str, variables: dict[str, Any]) -> None:
    program = ENV.compile(source)
    fast, ref = _outcome(program, variables, cel=False), _outcome(program, variables, cel=True)
    assert fast[0] == ref[0], (source, variables, fast, ref)
    assert _same(fast[1], ref[1]), (source, variables, fast, ref)


def test_names_paths_and_small_expressions_take_the_python_route_and_nothing_else() -> None:
    for source in ("s", "result.intent", "event", " o.a ", "o.a.b", "case.level", "now",
                   's + "x"', "o.a == 1", "true", "null", "(s)", '"call_back"',
                   'case.tier == "gold" && s != ""', "!b || o.a == null",
                   's in ["a", "b"]', 'b ? "x" : s', "n == 3 && (b || !b)", "n + 1",
                   "n < 3", 's >= "m" || f + f > f'):
        assert ENV.compile(source)._direct is not None, source
    for source in ("o['a']", "size(tags)", "-n", "has(o.a)", "f == 1.5", "f < 3.0", "x == 3u",
                   'r"x" == s', '"a\\tb" == s', "[1] == [1]", "tags == []", 'b ? ["a"] : tags',
                   "o.a.size()", 'string(n) == "1"', "{'a': 1}.a == 1",
                   'n in [1, "a"]', "s in tags"):
        assert ENV.compile(source)._direct is None, source


CET = timezone(timedelta(hours=1))
text = st.text(max_size=6) | st.sampled_from(["", "a\x00b", "a\udc80", "é", "ok"])
scalars = (
    st.none() | st.booleans() | text
    | st.integers(-(2**64), 2**65)
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), 2**64 - 1, 2**64, 2**53 + 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.datetimes(timezones=st.sampled_from([UTC, CET]) | st.none())
    | st.sampled_from([datetime.min.replace(tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC)])
    | st.timedeltas() | st.sampled_from([timedelta(days=3_652_500), timedelta(days=-3_652_501)])
    | st.binary(max_size=2)
)
keys = st.sampled_from(["a", "b", "c", "value", "level"]) | text | st.integers(0, 2)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(keys, inner, max_size=3)
    | st.dictionaries(keys, inner, max_size=2).map(MappingProxyType),
    max_leaves=10,
)
variables = st.dictionaries(st.sampled_from(NAMES), values, max_size=len(NAMES))

# values of the declared types, as case data usually holds them (mostly the direct route)
friendly = st.recursive(
    st.none() | st.booleans() | st.text(max_size=4) | st.integers(-(2**63), 2**64 - 1)
    | st.floats(),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner)
    | st.dictionaries(st.sampled_from(["a", "b", "c", "value"]), inner, max_size=3),
    max_leaves=8,
)
maps = st.dictionaries(st.sampled_from(["a", "b", "c", "value", "level"]), friendly, max_size=4)
typed = {
    "s": st.text(max_size=5), "n": st.integers(-(2**63), 2**63 - 1),
    "f": st.floats() | st.integers(-(2**53), 2**53), "b": st.booleans(),
    "t": st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                      timezones=st.just(UTC)),
    "d": st.timedeltas(min_value=timedelta(days=-3_600_000), max_value=timedelta(days=3_600_000)),
    "o": maps | maps.map(MappingProxyType), "tags": st.lists(st.text(max_size=3), max_size=3),
    "nums": st.lists(st.integers(-5, 5), max_size=3).map(tuple),
    "any_list": st.lists(friendly, max_size=2),
    "x": friendly, "case": maps, "event": maps, "result": maps,
    "now": st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1)),
}
typed_scope = st.fixed_dictionaries({}, optional=typed)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PATHS), variables)
def test_direct_lookup_gives_what_cel_gives_for_any_value(source: str,
                                                          scope: dict[str, Any]) -> None:
    _assert_like_cel(source, scope)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PATHS), typed_scope)
def test_direct_lookup_gives_what_cel_gives_for_typed_values(source: str,
                                                             scope: dict[str, Any]) -> None:
    _assert_like_cel(source, scope)


@pytest.mark.parametrize(("source", "scope"), [
    ("s", {"s": "plain"}), ("s", {}), ("s", {"s": None}), ("s", {"s": 5}),
    ("s", {"s": "é\x00cut"}), ("s", {"s": "a\udc80"}),
    ("n", {"n": True}), ("n", {"n": 2**63}), ("f", {"f": 3}), ("f", {"f": 2**53 + 1}),
    ("t", {"t": datetime(2026, 1, 1, tzinfo=UTC)}), ("t", {"t": datetime(2026, 1, 1)}),
    ("t", {"t": datetime(2026, 1, 1, tzinfo=CET)}), ("t", {"t": "2026-01-01"}),
    ("d", {"d": timedelta(seconds=1.5)}), ("d", {"d": timedelta(days=3_652_501)}),
    ("o", {"o": {"a": 1, "b": [1, (2, 3)], "c": {"d": None}}}), ("o", {"o": {1: 2}}),
    ("o.a", {"o": {"a": 1}}), ("o.a", {"o": {}}), ("o.a", {"o": {"a": None}}), ("o.a", {}),
    ("o.a.b", {"o": {"a": {"b": 2}}}), ("o.a.b", {"o": {"a": "str"}}),
    ("o.a.b", {"o": {"a": None}}), ("o.a", {"o": None}), ("o.a", {"o": [1]}),
    ("o.a", {"o": {"a": 1, "b": datetime(2026, 1, 1, tzinfo=UTC)}}),  # CEL refuses the whole map
    ("o.a", {"o": {"a": 1, "b": b"x"}}), ("o.a", {"o": {"a": 1, 2: 3}}),
    ("event", {"event": {"x": (1, 2), "y": {"z": MappingProxyType({"k": None})}}}),
    ("event.x", {"event": {"x": {"k": (1,)}}}), ("result", {"result": {"value": 5}}),
    ("result.intent", {"result": {"intent": "reset", "priority": "high"}}),
    ("case.level", {"case": {"level": None}}), ("tags", {"tags": ("a", "b")}),
    ("tags", {"tags": ["a", 1]}), ("nums", {"nums": [1, True]}), ("x", {"x": {"a": (1,)}}),
    ("x.a", {"x": "s"}), ("now", {"now": datetime(2026, 3, 2, 9, tzinfo=UTC)}),
])
def test_edge_cases_match_cel(source: str, scope: dict[str, Any]) -> None:
    _assert_like_cel(source, scope)


def test_the_result_is_a_copy_never_the_case_data_itself() -> None:
    data = {"o": {"a": [1, 2], "b": {"c": 1}}}
    value = ENV.compile("o").evaluate(data)
    assert value == data["o"]
    assert value is not data["o"]
    assert value["a"] is not data["o"]["a"]
    assert value["b"] is not data["o"]["b"]
    inner = ENV.compile("o.a").evaluate(data)
    assert inner == [1, 2]
    assert inner is not data["o"]["a"]


def test_missing_values_keep_the_cel_error_text() -> None:
    with pytest.raises(ExpressionError, match="no value yet for s"):
        ENV.compile("s").evaluate({})
    with pytest.raises(ExpressionError, match='Key not found in map : "a"'):
        ENV.compile("o.a").evaluate({"o": {}})


# ---- small expressions: random ones from the subset, checked against CEL --------------------

LEAVES = ["s", "n", "f", "b", "o", "o.a", "o.a.b", "case.level", "event.a", "result.a", "x",
          "x.a", "now", '"a"', '""', "'b'", '"é"', "1", "0", "9223372036854775807", "true",
          "false", "null", "f + f"]


#: leaves that mostly type-check together and take the Python route
TYPED_LEAVES = ["s", "o.a", "case.level", "event.a", "result.a", '"a"', '""', "b", "true",
                "false", "n", "1", "x"]


def _expressions(leaves: list[str] = LEAVES) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(leaves)
    lists = st.lists(st.sampled_from(['"a"', '""', "'b'", "1", "0", "true"]), max_size=3).map(
        lambda items: "[" + ", ".join(items) + "]")

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["==", "!=", "&&", "||", "+", "<", "<=", ">", ">="]),
                      inner).map(" ".join),
            inner.map(lambda e: f"!{e}"), inner.map(lambda e: f"({e})"),
            st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
            st.tuples(inner, lists).map(lambda t: f"{t[0]} in {t[1]}"),
        )

    return st.recursive(leaf, extend, max_leaves=6)


def _compiled(source: str) -> Program | None:
    try:
        return ENV.compile(source)
    except ExpressionError:
        return None  # not type-correct: no program, nothing to compare


@settings(max_examples=700, deadline=None)
@given(_expressions() | _expressions(TYPED_LEAVES), typed_scope | variables)
def test_small_expressions_give_what_cel_gives(source: str, scope: dict[str, Any]) -> None:
    program = _compiled(source)
    if program is None:
        return
    fast, ref = _outcome(program, scope, cel=False), _outcome(program, scope, cel=True)
    assert fast[0] == ref[0], (source, scope, fast, ref)
    assert _same(fast[1], ref[1]), (source, scope, fast, ref)


@pytest.mark.parametrize(("source", "scope", "expected"), [
    ('intent == "self_service_reset" && email != ""',
     {"intent": "self_service_reset", "email": "a@b"}, True),
    ('intent == "self_service_reset" && email != ""', {"intent": "x", "email": ""}, False),
    ('case.tier == "gold"', {"case": {"tier": "gold"}}, True),
    ('topic in ["refund", "bank_details_change"]', {"topic": "refund"}, True),
    ("result.confident == true", {"result": {"confident": 1}}, False),  # CEL: int != bool
    ("result.x == 1", {"result": {"x": 1.0}}, True),  # CEL compares numbers across types
    ("result.x || true", {"result": {}}, True),  # CEL: an error on one side of || absorbed
    ("false && result.x", {"result": {"x": "s"}}, False),
    ("result.n + 1 > 5", {"result": {"n": 5}}, True),
    ("result.n + 1 > 5", {"result": {"n": 9223372036854775807}}, None),  # CEL: overflow
    ("result.n < 2", {"result": {"n": 1.5}}, True),  # CEL compares numbers across types
    ('result.s < "b"', {"result": {"s": "a"}}, True),
])
def test_known_conditions(source: str, scope: dict[str, Any], expected: bool | None) -> None:
    env = ExpressionEnv([("intent", "string", None), ("email", "string", None),
                         ("topic", "string", None)])
    program = env.compile(source)
    assert program._direct is not None
    if expected is None:  # an error, the same both ways
        with pytest.raises(ExpressionError) as fast:
            program.evaluate(scope)
        with pytest.raises(ExpressionError) as cel:
            program.evaluate_cel(scope)
        assert str(fast.value) == str(cel.value)
        return
    assert program.evaluate(scope) is expected
    assert program.evaluate_cel(scope) is expected


def test_falling_back_to_cel_keeps_nothing_alive() -> None:
    """Each hand-over to CEL raises a fresh signal: nothing of an evaluation (its variables,
    the step's working copy) outlives it."""
    import gc
    import weakref

    class Scope(dict[str, Any]):
        pass

    program = ENV.compile("n + 1 == 2")  # the subset's + takes strings only: CEL decides
    refs = []
    for _ in range(50):
        scope = Scope(n=1)
        assert program.evaluate(scope) is True
        refs.append(weakref.ref(scope))
        del scope
    gc.collect()
    assert all(ref() is None for ref in refs)
