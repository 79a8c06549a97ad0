"""The audit chain's canonical JSON: one text per value, stable through the database."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.store import audit

AT = datetime(2026, 3, 2, 9, 30, 1, 250000, tzinfo=UTC)

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("actor,kind,node,detail", [
    ("system", "node_entered", "verify_identity", {"b": 1, "a": [1, "x"]}),
    ("agent \"ann\"", "task_completed", None, None),
    ("zoë\\n", "sla_started", "ünïcode \u2603 \n\t\x7f", {"nested": {"z": None, "a": 1.5}}),
    ("", "", "", "text"),
])
def test_chain_hash_with_precomputed_detail_is_the_same(actor, kind, node, detail) -> None:  # noqa: ANN001
    entry = audit.entry_fields("C1", 12345678901, AT, actor, kind, node, "h" * 64, None)
    detail_json = audit.canonical_json(detail)
    full = audit.canonical_json({**entry, "detail": detail})
    assert audit.chain_hash("p", entry, detail_json) == audit.chain_hash("p", {**entry, "detail": detail})
    assert audit.chain_hash("p", entry, detail_json) == hashlib.sha256(("p" + full).encode()).hexdigest()


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert audit.canonical_json({"b": 1, "a": [1, "zoë"], "c": (1, 2)}) == '{"a":[1,"zoë"],"b":1,"c":[1,2]}'
    assert audit.canonical_json({"t": AT}) == '{"t":"2026-03-02T09:30:01.250000+00:00"}'
    assert audit.canonical_json(MappingProxyType({"k": frozenset()})) == '{"k":[]}'


@dataclass
class _Thing:
    x: int


def test_values_outside_json_take_their_legacy_shape() -> None:
    # non-string keys become strings, huge integers stay exact, other objects are their str
    assert audit.canonical_json({1: "a", "b": 2**70}) == json.dumps(
        {"1": "a", "b": 2**70}, separators=(",", ":"))
    assert audit.canonical_json({"o": _Thing(1)}) == '{"o":"_Thing(x=1)"}'


@given(_json_values)
def test_canonical_json_survives_the_database_round_trip(value) -> None:  # noqa: ANN001
    text = audit.canonical_json(value)
    assert audit.canonical_json(json.loads(text)) == text


def test_chains_written_in_the_legacy_form_still_verify() -> None:
    class Row:
        def __init__(self, seq: int, prev: str, detail: object) -> None:
            self.case_id, self.seq, self.at, self.actor, self.kind = "C1", seq, AT, "zoë", "k"
            self.node, self.sop_hash, self.detail, self.prev_hash = None, "h", detail, prev
            entry = audit.entry_fields("C1", seq, AT, "zoë", "k", None, "h", detail)
            text = json.dumps(entry, sort_keys=True, separators=(",", ":"))
            self.hash = hashlib.sha256((prev + text).encode()).hexdigest()

    first = Row(1, "", {"x": 1e16, "s": "ü"})
    second = Row(2, first.hash, {"y": [1.5]})
    assert audit.verify_chain([first, second]) is None
    second.detail = {"y": [2.5]}
    assert audit.verify_chain([first, second]) == 2


@given(st.text(), st.text(), st.one_of(st.none(), st.text()), _json_values)
def test_chain_entry_is_chain_hash_with_the_detail_cut_out(actor, kind, node, detail) -> None:  # noqa: ANN001
    text, digest = audit.chain_entry("p", "C1", 7, AT.isoformat(), actor, kind, node, "h", detail)
    assert text == audit.canonical_json(detail)
    entry = audit.entry_fields("C1", 7, AT, actor, kind, node, "h", detail)
    assert digest == audit.chain_hash("p", entry)
