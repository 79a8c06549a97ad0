"""The audit chain's direct entry text is byte-identical to json.dumps' canonical JSON."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from engine.store import audit

AT = datetime(2026, 3, 2, 9, 30, 1, 250000, tzinfo=UTC)


@pytest.mark.parametrize("actor,kind,node,detail", [
    ("system", "node_entered", "verify_identity", {"b": 1, "a": [1, "x"]}),
    ("agent \"ann\"", "task_completed", None, None),
    ("zoë\\n", "sla_started", "ünïcode \u2603 \n\t", {"nested": {"z": None, "a": 1.5}}),
    ("", "", "", "text"),
])
def test_entry_text_matches_canonical_json(actor, kind, node, detail) -> None:  # noqa: ANN001
    entry = audit.entry_fields("C1", 12345678901, AT, actor, kind, node, "h" * 64, None)
    detail_json = audit.canonical_json(detail)
    full = audit.canonical_json({**entry, "detail": detail})
    assert audit._entry_text(entry, detail_json) == full
    assert audit.chain_hash("p", entry, detail_json) == audit.chain_hash("p", {**entry, "detail": detail})
    assert audit.chain_hash("p", entry, detail_json) == hashlib.sha256(("p" + full).encode()).hexdigest()


def test_unusual_entries_fall_back_to_json_dumps() -> None:
    entry = audit.entry_fields("C1", 1, AT, "system", "k", None, "h", None)
    assert audit._entry_text({**entry, "seq": True}, "null") is None
    assert audit._entry_text({**entry, "extra": 1}, "null") is None
    assert audit.chain_hash("", {**entry, "seq": 2.0}, "{}") == audit.chain_hash("", {**entry, "seq": 2.0, "detail": {}})
