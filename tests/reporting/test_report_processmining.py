"""Process mining on the demo's case store: XES loads in pm4py and its model is the SOP's,
OCEL 2.0 loads too, and conformance finds no disallowed path -- but finds the planted ones."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.reporting.conformance import check_conformance
from engine.reporting.eventlog import NodeEvent, Trace, iter_traces, write_csv
from engine.reporting.ocel import write_ocel
from engine.reporting.xes import write_xes
from engine.sop import load_library
from engine.store.db import make_engine
from engine.store.models import AuditRecordRow, CaseRow
from tests.reporting.conftest import SOPS, utc

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pm4py: optional accelerators missing


@pytest.fixture(scope="module")
def library() -> Any:
    return load_library(SOPS)


def _enabled_after(graph: nx.DiGraph, a: str, b: str) -> bool:
    """b may follow a: an SOP edge, or b's predecessor is a node a was reached from (parallel)."""
    return graph.has_edge(a, b) or any(p == a or nx.has_path(graph, p, a) for p in graph.predecessors(b))


def test_xes_export_of_the_demo_loads_in_pm4py_and_matches_the_sop_paths(demo_db: Path, tmp_path: Path,
                                                                          library: Any) -> None:
    import pm4py

    engine = make_engine(f"sqlite:///{demo_db}")
    out = tmp_path / "demo.xes"
    events = write_xes(iter_traces(engine), out)
    log = pm4py.read_xes(str(out))
    assert len(log) == events
    with Session(engine) as s:
        cases = len(s.execute(select(CaseRow.id)).all())
    assert log["case:concept:name"].nunique() == cases
    for sop_id, compiled in library.sops.items():
        sub = log[log["case:sop"] == sop_id]
        if sub.empty:
            continue
        dfg, starts, _ends = pm4py.discover_dfg(sub)
        assert set(starts) <= {"start"}, sop_id
        assert set(sub["concept:name"]) <= set(compiled.spec.nodes), sop_id
        bad = [(a, b) for a, b in dfg if not _enabled_after(compiled.graph, a, b)]
        assert bad == [], sop_id


def test_ocel2_export_relates_events_to_cases_customers_and_tasks(demo_db: Path, tmp_path: Path) -> None:
    import pm4py

    engine = make_engine(f"sqlite:///{demo_db}")
    out = tmp_path / "demo.jsonocel"
    n = write_ocel(engine, iter_traces(engine), out)
    doc = json.loads(out.read_text())
    assert {t["name"] for t in doc["objectTypes"]} == {"case", "customer", "task"}
    assert len(doc["events"]) == n
    qualifiers = {r["qualifier"] for e in doc["events"] for r in e["relationships"]}
    assert qualifiers == {"case", "customer", "task"}
    ocel = pm4py.read_ocel2_json(str(out))
    assert len(ocel.events) == n
    assert set(ocel.objects["ocel:type"]) == {"case", "customer", "task"}


def test_csv_export_has_one_row_per_event(demo_db: Path, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{demo_db}")
    out = tmp_path / "log.csv"
    n = write_csv(iter_traces(engine, sop_id="password_reset"), out)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("case_id,activity,timestamp,resource")
    assert len(lines) == n + 1
    assert all(",password_reset," in line for line in lines[1:])


def test_conformance_finds_no_disallowed_path_in_the_demo(demo_db: Path, library: Any) -> None:
    engine = make_engine(f"sqlite:///{demo_db}")
    checked = 0
    for sop_id, compiled in library.sops.items():
        result = check_conformance(compiled, iter_traces(engine, sop_id=sop_id))
        assert result.violations == (), sop_id
        checked += result.cases
    assert checked > 0


def _plant(db: Path, case_id: str, template: str, nodes: list[list[str]]) -> None:
    """Insert a case whose trail walks ``nodes`` (one ``path`` audit row per inner list)."""
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as s, s.begin():
        tpl = s.execute(select(CaseRow).where(CaseRow.sop_id == template)).scalars().first()
        assert tpl is not None
        t = utc(2026, 11, 23, 10)
        s.add(CaseRow(id=case_id, sop_id=template, sop_hash=tpl.sop_hash, sop_version=tpl.sop_version,
                      status="resolved", level="e", channel="web", created_at=t, updated_at=t,
                      ended_at=t + timedelta(hours=1)))
        s.flush()  # the case row first: audit rows reference it
        for i, step in enumerate(nodes, start=1):  # one record (a step) per path entry
            s.add(AuditRecordRow(case_id=case_id, seq=i, first_seq=i, event_seq=i,
                                 at=t + timedelta(minutes=i), sop_version=tpl.sop_version,
                                 sop_hash=tpl.sop_hash, prev_hash="", hash=f"h{i}", entries=[
                                     {"actor": "system", "kind": "path", "node": None,
                                      "detail": {"nodes": step}}]))


def test_conformance_finds_the_planted_disallowed_paths(demo_copy: Path, library: Any) -> None:
    _plant(demo_copy, "PLANT-SKIP", "password_reset", [["start", "classify"], ["resolved_self_service"]])
    _plant(demo_copy, "PLANT-MIDSTART", "password_reset", [["route", "send_reset_link"]])
    engine = make_engine(f"sqlite:///{demo_copy}")
    result = check_conformance(library.sops["password_reset"], iter_traces(engine, sop_id="password_reset"))
    found = {(v.source, v.target): v.cases for v in result.violations}
    assert found == {("classify", "resolved_self_service"): ("PLANT-SKIP",),
                     (None, "route"): ("PLANT-MIDSTART",)}


def test_conformance_counts_branches_dead_edges_rare_branches_and_waits(library: Any) -> None:
    compiled = library.sops["password_reset"]
    t = utc(2026, 11, 23, 9)

    def trace(cid: str, nodes: list[str], step_minutes: int, version: str = compiled.version) -> Trace:
        return Trace(cid, "password_reset", version, "web", "normal", "standard", None, "resolved",
                     tuple(NodeEvent(n, t + timedelta(minutes=i * step_minutes), "system", "path")
                           for i, n in enumerate(nodes)))

    happy = ["start", "classify", "route", "send_reset_link", "await_confirmation", "resolved_self_service"]
    traces = [trace(f"H{i}", happy, 10) for i in range(30)]
    traces.append(trace("X", ["start", "classify", "route", "verify_identity_sla"], 60))
    traces.append(trace("OLD", ["start", "resolved_self_service"], 1, version="0.9.0"))
    result = check_conformance(compiled, traces)
    assert result.ok  # the old-version case is not judged by the new graph
    assert result.other_versions == 1
    assert result.branch_use["route"] == {"send_reset_link": 30, "verify_identity_sla": 1}
    assert ("route", "verify_identity_sla", 1, 31) in result.rare
    assert ("classify", "verify_identity_sla") in result.dead
    assert ("route", "send_reset_link") not in result.dead
    # route waits 10 minutes in the 30 happy cases and 60 in X
    assert result.waits["route"] == (pytest.approx((30 * 600 + 3600) / 31), 600.0, 31)
