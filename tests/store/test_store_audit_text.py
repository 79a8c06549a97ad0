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


class _Record:
    """A record as verify_chain reads it (AuditRecordRow attributes)."""

    def __init__(self, first: int, prev: str, entries: list[dict], form: int = 1) -> None:  # type: ignore[type-arg]
        self.case_id, self.first_seq, self.seq, self.at = "C1", first, first + len(entries) - 1, AT
        self.sop_hash, self.entries, self.prev_hash, self.form = "h", entries, prev, form
        self.hash = audit.chain_record(prev, "C1", first, self.seq, AT.isoformat(), "h",
                                       entries)[1]


def test_chains_written_per_entry_in_the_legacy_forms_still_verify() -> None:
    def legacy(seq: int, prev: str, detail: object, *, python_json: bool) -> _Record:
        row = _Record(seq, prev, [{"actor": "zoë", "kind": "k", "node": None, "detail": detail}],
                      form=0)
        entry = audit.entry_fields("C1", seq, AT, "zoë", "k", None, "h", detail)
        text = (json.dumps(entry, sort_keys=True, separators=(",", ":")) if python_json
                else audit.canonical_json(entry))
        row.hash = hashlib.sha256((prev + text).encode()).hexdigest()
        return row

    first = legacy(1, "", {"x": 1e16, "s": "ü"}, python_json=True)
    second = legacy(2, first.hash, {"y": [1.5]}, python_json=False)
    third = _Record(3, second.hash, [{"actor": "a", "kind": "k", "node": "n", "detail": {}}] * 2)
    assert audit.verify_chain([first, second, third]) is None
    second.entries = [{**second.entries[0], "detail": {"y": [2.5]}}]
    assert audit.verify_chain([first, second, third]) == 2


def test_a_record_chain_catches_an_edited_reordered_or_missing_entry() -> None:
    one = [{"actor": "system", "kind": "case_started", "node": "start", "detail": {"a": 1}},
           {"actor": "system", "kind": "path", "node": None, "detail": {"nodes": ["start"]}}]
    first = _Record(1, "", one)
    second = _Record(3, first.hash, [{"actor": "ann", "kind": "task_completed", "node": "t",
                                      "detail": {"outcome": "ok"}}])
    assert audit.verify_chain([first, second]) is None
    first.entries = [one[1], one[0]]
    assert audit.verify_chain([first, second]) == 1
    first.entries = one[:1]  # an entry cut out of the record
    assert audit.verify_chain([first, second]) == 1
    first.entries = one
    assert audit.verify_chain([second]) == 3  # the first record is gone
    gap = _Record(4, first.hash, second.entries)  # entries 3.. never written
    assert audit.verify_chain([first, gap]) == 4


@given(st.lists(st.fixed_dictionaries({"actor": st.text(), "kind": st.text(),
                                       "node": st.one_of(st.none(), st.text()),
                                       "detail": _json_values}), min_size=1, max_size=4))
def test_chain_record_hashes_the_record_with_its_entries_spliced_in(entries) -> None:  # noqa: ANN001
    text, digest = audit.chain_record("p", "C1", 7, 6 + len(entries), AT.isoformat(), "h",
                                      entries)
    assert text == audit.canonical_json(entries)
    record = {"case": "C1", "first_seq": 7, "seq": 6 + len(entries), "at": AT.isoformat(),
              "sop": "h", "entries": entries}
    assert digest == hashlib.sha256(b"p" + audit.canonical_bytes(record)).hexdigest()
    assert audit.verify_chain([_Record(1, "", entries)]) is None  # through the database form
