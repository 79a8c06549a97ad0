"""Executable spec of library loading: documents by kind, latest versions, cross references."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import SopErrors
from engine.sop import Library, iter_library_errors, load_library
from engine.sop.model import CalendarSpec, LevelsDoc, RoutingDoc, SlaPolicyDoc

from sop_pipeline_helpers import ROOT


def test_loads_every_kind(org_library: Path) -> None:
    lib = load_library(org_library)
    assert isinstance(lib, Library) and lib.root == org_library and lib.complete
    assert list(lib.sops) == ["password_reset"]
    assert isinstance(lib.levels, LevelsDoc)
    assert [lv.id for lv in lib.levels.levels] == ["e", "L1", "L2", "specialist"]
    assert lib.levels.levels[0].automated and lib.levels.levels[1].ola == "ola_l1"
    cal = lib.calendars["office_nl"]
    assert isinstance(cal, CalendarSpec)
    assert cal.week["mon"] == (("08:00", "17:00"),)
    assert cal.week["tue"] == (("08:00", "12:00"), ("13:00", "17:00"))
    assert cal.recurring_holidays == ("12-25",) and cal.closures == ("2026-04-27",)
    (policy,) = lib.policies
    assert isinstance(policy, SlaPolicyDoc) and policy.calendar == "office_nl"
    metric = policy.metrics["first_response"]
    assert metric.target is not None and metric.target.seconds == 4 * 3600
    assert metric.by_priority["critical"].seconds == 3600
    assert metric.escalation[0].after.seconds == 0 and metric.escalation[0].to_level == "L2"
    assert metric.warnings[0].percent == 80
    assert policy.reopen_window is not None and policy.reopen_window.seconds == 7 * 86400
    assert isinstance(lib.routing, RoutingDoc)
    assert lib.routing.rules[0].channels == ("email", "web") and lib.routing.fallback == "password_reset"


def test_latest_version_wins_and_all_versions_are_kept(org_library: Path) -> None:
    text = (org_library / "password_reset.yaml").read_text()
    (org_library / "v2.yaml").write_text(text.replace('version: "1.1.0"', 'version: "1.10.0"'))
    (org_library / "v1_2.yaml").write_text(text.replace('version: "1.1.0"', 'version: "1.2.0"'))
    lib = load_library(org_library)
    assert lib.sops["password_reset"].version == "1.10.0"
    assert lib.sop("password_reset", "1.1.0").version == "1.1.0"
    assert sorted(v for _, v in lib.versions) == ["1.1.0", "1.10.0", "1.2.0"]


def test_policies_are_sorted_by_order(org_library: Path) -> None:
    policy = (org_library / "org" / "policy.yaml").read_text()
    (org_library / "org" / "early.yaml").write_text(
        policy.replace("id: ola_l1", "id: early").replace("order: 10", "order: 1"))
    assert [p.id for p in load_library(org_library).policies] == ["early", "ola_l1"]


def test_cross_reference_errors_of_all_files(org_library: Path) -> None:
    org = org_library / "org"
    (org / "policy.yaml").write_text((org / "policy.yaml").read_text()
                                     .replace("calendar: office_nl", "calendar: ofice_nl")
                                     .replace("to_level: L2", "to_level: L22"))
    (org / "routing.yaml").write_text((org / "routing.yaml").read_text()
                                      .replace("fallback: password_reset", "fallback: pasword_reset")
                                      .replace('subject.contains("password")', "subjekt == 1"))
    (org / "levels.yaml").write_text((org / "levels.yaml").read_text().replace("ola: ola_l1", "ola: ola_l2"))
    with pytest.raises(SopErrors) as info:
        load_library(org_library)
    found = {(Path(e.span.file).name, e.code, e.hint) for e in info.value if e.span}
    assert ("policy.yaml", "E-REF-UNKNOWN", "did you mean 'office_nl'?") in found
    assert ("policy.yaml", "E-REF-UNKNOWN", "did you mean 'L2'?") in found
    assert ("routing.yaml", "E-REF-UNKNOWN", "did you mean 'password_reset'?") in found
    assert ("levels.yaml", "E-REF-UNKNOWN", "did you mean 'ola_l1'?") in found
    assert any(code == "E-CEL-TYPE" and f == "routing.yaml" for f, code, _ in found)
    for err in info.value:
        assert err.span is not None and err.span.line >= 1 and err.span.column >= 1
    assert [e.code for e in iter_library_errors(org_library) if e.severity == "error"] == \
        [e.code for e in info.value]


def test_errors_of_several_files_are_all_reported(org_library: Path) -> None:
    (org_library / "broken1.yaml").write_text("kind: sop\nid: a\n")
    (org_library / "broken2.yaml").write_text("a: yes\n")
    with pytest.raises(SopErrors) as info:
        load_library(org_library)
    files = {Path(e.span.file).name for e in info.value if e.span}
    assert files == {"broken1.yaml", "broken2.yaml"}


def test_duplicate_ids_are_reported(org_library: Path) -> None:
    text = (org_library / "password_reset.yaml").read_text()
    (org_library / "copy.yaml").write_text(text)
    cal = (org_library / "org" / "calendar.yaml").read_text()
    (org_library / "org" / "calendar2.yaml").write_text(cal)
    codes = [e.code for e in iter_library_errors(org_library)]
    assert codes.count("E-LIB-DUPLICATE") == 2


def test_a_partial_library_checks_only_what_is_loaded(org_library: Path) -> None:
    # just the SOP file: no calendar is loaded, so timeout.calendar is not checked
    lib = load_library([org_library / "password_reset.yaml"])
    assert not lib.complete and lib.calendars == {}
    # a whole folder without the calendar is a complete library: the reference is wrong
    (org_library / "org" / "calendar.yaml").unlink()
    codes = {e.code for e in iter_library_errors(org_library)}
    assert codes & {"E-REF-UNKNOWN", "E-CALENDAR-UNKNOWN"}


def test_missing_path_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_library(tmp_path / "nope")


def test_the_real_library_loads() -> None:
    lib = load_library(ROOT / "sop_definitions")
    assert "password_reset" in lib.sops and lib.levels is not None and lib.calendars
