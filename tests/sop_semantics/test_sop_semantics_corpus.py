"""The SOP corpus as an executable spec: invalid files give exactly their listed errors,
pattern examples and the real library validate cleanly.

``invalid/<name>.yaml`` is paired with ``invalid/<name>.errors``: one ``line:col: CODE`` per
line (the file name is implied). The produced set of (line, column, code), warnings
included, must equal the listed set exactly -- no missing error, no extra one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sop_semantics_helpers import HERE, LIBRARY_DIR, collect_errors

from engine.sop.library import Library, iter_library_errors

INVALID = sorted((HERE / "invalid").glob("*.yaml"))
VALID = sorted((HERE / "valid").glob("*.yaml"))


def _expected(path: Path) -> set[tuple[int, int, str]]:
    found: set[tuple[int, int, str]] = set()
    for raw in path.with_suffix(".errors").read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        where, code = raw.split(": ", 1)
        line, col = where.split(":")
        found.add((int(line), int(col), code.strip()))
    return found


def test_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 40
    assert all(p.with_suffix(".errors").is_file() for p in INVALID)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_sop_gives_exactly_the_listed_errors(path: Path, library: Library) -> None:
    errors = collect_errors(path, library)
    produced = {(e.span.line, e.span.column, e.code) for e in errors if e.span is not None}
    assert all(e.span is not None for e in errors), "every error must say where"
    assert produced == _expected(path)
    assert any(e.severity == "error" for e in errors), "an invalid file must fail validation"
    assert all(e.message and e.json_path.startswith("$") for e in errors)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_workflow_pattern_validates_cleanly(path: Path, library: Library) -> None:
    assert collect_errors(path, library) == []


def test_every_library_sop_validates(library: Library) -> None:
    errors = [e for e in iter_library_errors(LIBRARY_DIR) if e.severity == "error"]
    assert errors == []
    assert {"password_reset", "complaint_handling", "billing_question", "warranty_claim",
            "software_update_notice", "general_enquiry_chat", "general_enquiry",
            "identity_check"} <= set(library.sops)
    assert library.routing is not None
    assert library.routing.fallback in library.sops
    assert {rule.sop for rule in library.routing.rules} <= set(library.sops)


@pytest.mark.parametrize("sop_id", ["complaint_handling", "billing_question", "warranty_claim",
                                    "software_update_notice", "general_enquiry_chat",
                                    "general_enquiry", "identity_check"])
def test_library_sops_are_documented_and_warning_free(sop_id: str, library: Library) -> None:
    spec = library.sops[sop_id].spec
    assert spec.owner and spec.purpose and spec.category and spec.itil
    assert all(f.description for f in spec.data.values()), "every data field is described"
    assert collect_errors(Path(spec.source), library) == []
