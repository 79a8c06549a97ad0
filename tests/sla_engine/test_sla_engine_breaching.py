"""`careflow sla list --breaching-within`: the operator's view of clocks about to breach."""

from __future__ import annotations

from sla_engine_helpers import Sim, at
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli import build_app
from engine.store.queries import clocks_breaching_within


def test_breaching_window_lists_open_clocks_by_due_time(sim: Sim) -> None:
    first = sim.start("sla_reply", email="ann@example.com")  # first_response due 11:00
    with Session(sim.rt.engine) as s:
        assert clocks_breaching_within(s, 30 * 60, now=at(2, 9, 15)) == []
        rows = clocks_breaching_within(s, 2 * 3600, now=at(2, 9, 15))
    assert [(r.case_id, r.clock, r.due_at) for r in rows] == [(first, "first_response", at(2, 11))]
    assert rows[0].metric == "first_response"
    sim.complete(first, "reply", "replied", at(2, 10))  # met: no longer breaching
    with Session(sim.rt.engine) as s:
        assert clocks_breaching_within(s, 8 * 3600, now=at(2, 10)) == []


def test_sla_list_command_prints_the_window(sim: Sim) -> None:
    case_id = sim.start("sla_reply", email="bob@example.com")
    url = str(sim.rt.engine.url)
    result = CliRunner().invoke(build_app(), ["sla", "list", "--breaching-within", "2h",
                                              "--db", url, "--at", at(2, 9, 30).isoformat()])
    assert result.exit_code == 0, result.output
    assert case_id in result.output and "first_response" in result.output
    bad = CliRunner().invoke(build_app(), ["sla", "list", "--db", url, "--at", "yesterday"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output
