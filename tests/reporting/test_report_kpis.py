"""One fixture per KPI, its answer computed by hand (see the comments), plus periods across a
month boundary and a DST change in the business time zone (Europe/Amsterdam)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.reporting.facts import _mark_repeat_contacts
from engine.reporting.report import build_report
from tests.reporting.conftest import case, clock, move, task, utc


def overall(facts: list[Any], ctx: Any, kpi: str) -> dict[str, Any]:
    return dict(build_report(facts, ctx).result(kpi).overall)


def test_sla_compliance_is_met_over_completed_per_metric(make_ctx: Any) -> None:
    t = utc(2026, 11, 2, 9)
    facts = [
        case("A", t, clocks=[clock("first_response")]),
        case("B", t, clocks=[clock("first_response", breached=True)]),
        case("C", t, clocks=[clock("first_response", "running", breached=True)]),  # not completed
        case("D", t, clocks=[clock("first_response"), clock("resolution_total", breached=True)]),
    ]
    figs = overall(facts, make_ctx(), "sla_compliance")
    assert figs["first_response"].value == pytest.approx(200 / 3)  # A, D met of A, B, D
    assert figs["first_response"].cases == ("A", "B", "D")
    assert figs["first_response"].hits == ("A", "D")
    assert figs["first_response_breaches"].value == 2  # B and C
    assert figs["resolution_total"].value == 0.0


def test_first_response_median_and_p90_in_business_and_wall_time(make_ctx: Any) -> None:
    s = utc(2026, 11, 2, 8)
    facts = [
        case("A", s, clocks=[clock("first_response", started=s, completed=utc(2026, 11, 2, 8, 10), business=600)]),
        case("B", s, clocks=[clock("first_response", started=s, completed=utc(2026, 11, 2, 8, 20), business=1200)]),
        case("C", s, clocks=[clock("first_response", started=s, completed=utc(2026, 11, 2, 10), business=1800)]),
        case("D", s, clocks=[clock("first_response", started=s, completed=utc(2026, 11, 3, 9), business=3600)]),
        case("E", s, clocks=[clock("first_response", "running", started=s, business=99999)]),
    ]
    figs = overall(facts, make_ctx(), "first_response")
    assert figs["median_business"].value == 1500  # (1200 + 1800) / 2
    assert figs["p90_business"].value == 3600  # nearest rank: ceil(0.9 * 4) = 4th
    assert figs["median_wall"].value == 4200  # (1200 + 7200) / 2
    assert figs["p90_wall"].value == 90000  # 25 h
    assert figs["median_wall"].cases == ("A", "B", "C", "D")


def test_next_reply_wall_time_across_the_dst_change_is_an_hour_shorter(make_ctx: Any) -> None:
    # Sat 28 March 2026 12:00 CET -> Sun 29 March 12:00 CEST: 24 h on the wall clock, 23 h elapsed
    start, done = utc(2026, 3, 28, 11), utc(2026, 3, 29, 10)
    facts = [case("A", start, clocks=[clock("next_reply", started=start, completed=done, business=0)])]
    figs = overall(facts, make_ctx(), "next_reply")
    assert figs["median_wall"].value == 23 * 3600
    assert figs["median_business"].value == 0  # the weekend is closed


def test_resolution_time_uses_the_business_calendar_and_true_elapsed_wall_time(make_ctx: Any) -> None:
    facts = [
        # Fri 27 Mar 17:00 CET -> Mon 30 Mar 09:00 CEST: business 17:00-17:30 + 08:00-09:00 = 5400 s;
        # wall 63 h (the DST night lost one hour: 64 h on the clock face)
        case("A", utc(2026, 3, 27, 16), ended=utc(2026, 3, 30, 7)),
        # Mon 2 Nov 09:00 -> 14:00 CET: business 09-12 + 13-14 = 4 h; wall 5 h
        case("B", utc(2026, 11, 2, 8), ended=utc(2026, 11, 2, 13)),
        case("C", utc(2026, 11, 2, 8)),  # open: no resolution time
    ]
    figs = overall(facts, make_ctx(), "resolution")
    assert figs["median_business"].value == (5400 + 14400) / 2
    assert figs["p90_business"].value == 14400
    assert figs["median_wall"].value == (63 * 3600 + 5 * 3600) / 2
    assert figs["p90_wall"].value == 63 * 3600


def test_first_contact_and_first_level_resolution(make_ctx: Any) -> None:
    t, e = utc(2026, 11, 2, 9), utc(2026, 11, 2, 12)
    facts = [
        case("A", t, ended=e, level="L1", moves=[move("escalated", "e", "L1", t)], tasks=[task("L1", t)]),
        case("B", t, ended=e),  # resolved at e-level, no human task
        case("C", t, ended=e, level="L1", tasks=[task("L1", t), task("L1", t)]),
        case("D", t, ended=e, level="L2", moves=[move("escalated", "L1", "L2", t)],
             tasks=[task("L1", t), task("L2", t)]),
        case("E", t, ended=e, level="L1", tasks=[task("L1", t)], reopened=True),
        case("F", t, level="L1", tasks=[task("L1", t)]),  # open
    ]
    figs = overall(facts, make_ctx(), "fcr")
    # A escalated e -> L1, so only B counts: 1 of 5 resolved; C has two tasks, D escalated, E reopened
    assert figs["first_contact"].hits == ("B",)
    assert figs["first_contact"].value == 20.0
    # resolved that reached a human level: A, C, D, E; deepest level L1: A, C, E
    assert figs["first_level"].hits == ("A", "C", "E")
    assert figs["first_level"].value == 75.0


def test_escalation_rate_per_level_hand_back_and_ping_pong(make_ctx: Any) -> None:
    t = utc(2026, 11, 2, 9)
    up, back = "escalated", "handed_back"
    facts = [
        case("A", t, level="L1", moves=[move(up, "e", "L1", t)]),
        case("B", t, level="L2", moves=[move(up, "e", "L1", t), move(up, "L1", "L2", t),
                                        move(back, "L2", "L1", t), move(up, "L1", "L2", t)]),
        case("C", t, ended=t),
        case("D", t, level="L1", moves=[move(up, "e", "L1", t), move(up, "L1", "L2", t), move(back, "L2", "L1", t)]),
    ]
    figs = overall(facts, make_ctx(), "escalation")
    assert figs["rate_e"].value == 75.0  # A, B, D of A, B, C, D
    assert figs["rate_L1"].value == pytest.approx(200 / 3)  # B, D of A, B, D
    assert figs["rate_L2"].value == 0.0  # B and D were at L2, neither escalated from it
    assert "rate_specialist" not in figs  # nothing deeper
    assert figs["hand_back"].hits == ("B", "D")
    assert figs["ping_pong"].hits == ("B",)  # up, up, down, up: two changes of direction
    assert figs["ping_pong"].value == pytest.approx(100 / 3)


def test_elevel_containment_and_deflection(make_ctx: Any) -> None:
    t, e = utc(2026, 11, 2, 9), utc(2026, 11, 2, 10)
    facts = [
        case("A", t, ended=e, elevel="confirmed"),
        case("B", t, ended=e, elevel="potential"),
        case("C", t, level="L1", moves=[move("escalated", "e", "L1", t)], elevel="escalated"),
        case("D", t, level="L1", tasks=[task("L1", t)]),  # started at L1 (a phone call)
        case("E", t, elevel="pending"),
    ]
    figs = overall(facts, make_ctx(), "elevel")
    assert figs["containment"].value == 50.0  # A, B of A, B, C, E
    assert figs["deflection_confirmed"].value == 25.0  # A of A, B, C, E
    assert figs["deflection_potential"].hits == ("B",)


def test_reopen_rate_and_repeat_contacts_within_the_window(make_ctx: Any) -> None:
    t = utc(2026, 11, 2, 9)
    facts = [
        case("A", t, ended=utc(2026, 11, 2, 10), customer="K1"),
        case("A2", utc(2026, 11, 8, 9), customer="K1"),  # 6 days later, same SOP: A reopened
        case("B", t, ended=utc(2026, 11, 2, 10), customer="K2"),
        case("B2", utc(2026, 11, 12, 9), customer="K2"),  # 10 days later: a new matter
        case("C", t, ended=utc(2026, 11, 2, 10), customer="K3"),
        case("C2", utc(2026, 11, 3, 9), customer="K3", sop="other"),  # another SOP
        case("D", t, ended=utc(2026, 11, 2, 10), reopened=True),  # worked again after it ended
    ]
    _mark_repeat_contacts(facts, 7.0)
    figs = overall(facts, make_ctx(), "reopen")
    assert figs["rate"].hits == ("A", "D")
    assert figs["rate"].value == 50.0  # of the 4 resolved


def test_backlog_by_age_bucket_with_inflow_and_outflow(make_ctx: Any) -> None:
    now = utc(2026, 11, 10, 12)
    facts = [
        case("A", utc(2026, 11, 10, 11)),  # 1 h
        case("B", utc(2026, 11, 10, 7)),  # 5 h
        case("C", utc(2026, 11, 8, 12)),  # 2 d
        case("D", utc(2026, 10, 31, 12)),  # 10 d
        case("E", utc(2026, 11, 9, 9), ended=utc(2026, 11, 9, 15)),
        case("F", utc(2026, 11, 9, 9), ended=utc(2026, 11, 11, 9)),  # ends after the as-of time
    ]
    figs = overall(facts, make_ctx(now=now), "backlog")
    counts = {k: f.value for k, f in figs.items()}
    assert counts == {"open": 4, "age <4h": 1, "age 4-24h": 1, "age 1-3d": 1, "age 3-7d": 0,
                      "age >7d": 1, "inflow": 6, "outflow": 1}
    assert figs["age >7d"].hits == ("D",)


def test_incident_rate_and_count(make_ctx: Any) -> None:
    t = utc(2026, 11, 2, 9)
    facts = [case("A", t, incidents=2), case("B", t), case("C", t)]
    figs = overall(facts, make_ctx(), "incidents")
    assert figs["case_rate"].value == pytest.approx(100 / 3)
    assert figs["count"].value == 2


def test_month_periods_are_cut_in_the_business_time_zone(make_ctx: Any) -> None:
    facts = [
        case("late-oct", utc(2026, 10, 31, 22, 30)),  # 23:30 CET: still October in Amsterdam
        case("nov-in-nl", utc(2026, 10, 31, 23, 30), ended=utc(2026, 11, 2, 9)),  # 00:30 CET on 1 Nov
        case("nov", utc(2026, 11, 15, 9), ended=utc(2026, 11, 30, 23, 30)),  # ends 1 Dec 00:30 CET
    ]
    rep = build_report(facts, make_ctx(period="month"))
    assert set(rep.result("incidents").cuts["period"]) == {"2026-10", "2026-11"}
    assert rep.result("incidents").cuts["period"]["2026-11"]["case_rate"].cases == ("nov-in-nl", "nov")
    flow = {p: (f["inflow"].value, f["outflow"].value) for p, f in rep.flow.items()}
    assert flow == {"2026-10": (1, 0), "2026-11": (2, 1), "2026-12": (0, 1)}


def test_day_periods_across_the_spring_dst_change(make_ctx: Any) -> None:
    facts = [
        case("a", utc(2026, 3, 28, 22, 30)),  # 23:30 CET, Saturday 28
        case("b", utc(2026, 3, 28, 23, 30)),  # 00:30 CET, Sunday 29
        case("c", utc(2026, 3, 29, 21, 30)),  # 23:30 CEST, Sunday 29
        case("d", utc(2026, 3, 29, 22, 30)),  # 00:30 CEST, Monday 30 (UTC still says the 29th)
    ]
    cuts = build_report(facts, make_ctx(period="day")).result("incidents").cuts["period"]
    assert {p: figs["case_rate"].cases for p, figs in cuts.items()} == {
        "2026-03-28": ("a",), "2026-03-29": ("b", "c"), "2026-03-30": ("d",)}


def test_every_kpi_is_cut_by_every_dimension(make_ctx: Any) -> None:
    t, e = utc(2026, 11, 2, 9), utc(2026, 11, 2, 12)
    facts = [
        case("A", t, ended=e, sop="s1", channel="web", priority="high", tier="gold"),
        case("B", t, ended=e, sop="s2", channel="email", priority="normal", tier="standard", level="L1",
             tasks=[task("L1", t)]),
        case("C", utc(2026, 12, 2, 9), sop="s2", channel="email", priority="normal", tier="standard"),
    ]
    rep = build_report(facts, make_ctx(period="month"))
    expected = {"sop": {"s1", "s2"}, "channel": {"web", "email"}, "level": {"e", "L1"},
                "priority": {"high", "normal"}, "tier": {"gold", "standard"}, "period": {"2026-11", "2026-12"}}
    for result in rep.results:
        assert {d: set(g) for d, g in result.cuts.items()} == expected, result.kpi.id
    assert rep.result("fcr").cuts["channel"]["email"]["first_contact"].hits == ("B",)
    assert rep.result("resolution").cuts["tier"]["gold"]["median_wall"].value == 3 * 3600
