"""The report over a real case store, through the CLI: terminal tables, JSON, CSV, HTML, errors."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import build_app
from engine.reporting.context import ReportError, context_from_org
from engine.reporting.report import load_report
from engine.store.db import make_engine
from tests.reporting.conftest import ROOT, SOPS

runner = CliRunner()
app = build_app()


def _run(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_report_of_the_demo_store_accounts_for_every_case(demo_db: Path) -> None:
    engine = make_engine(f"sqlite:///{demo_db}")
    ctx = context_from_org(SOPS, now=datetime(2026, 11, 25, tzinfo=UTC), period="day")
    rep = load_report(engine, ctx)
    backlog = rep.result("backlog").overall
    assert backlog["inflow"].value == rep.cases > 0
    assert backlog["open"].value + backlog["outflow"].value <= rep.cases
    assert sum(len(ids) for ids in rep.feedback["by_channel"].values()) == rep.cases
    resolved = sum(1 for v in rep.views if v.f.resolved)
    assert rep.result("reopen").overall["rate"].n == resolved
    assert ctx.tz == "Europe/Amsterdam"  # the default calendar's zone


def test_report_cli_writes_json_and_csv_with_the_cases_behind_every_number(demo_db: Path, tmp_path: Path) -> None:
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    result = _run("report", "--db", f"sqlite:///{demo_db}", "--sops", str(SOPS), "--period", "day",
                  "--json", str(out_json), "--csv", str(out_csv), "--by", "sop")
    assert result.exit_code == 0, result.output
    assert "First-contact and first-level resolution" in result.output
    assert "password_reset" in result.output  # --by sop
    doc = json.loads(out_json.read_text())
    assert doc["business_tz"] == "Europe/Amsterdam"
    assert {k["id"] for k in doc["kpis"]} >= {"sla_compliance", "fcr", "escalation", "elevel", "backlog"}
    inflow = next(k for k in doc["kpis"] if k["id"] == "backlog")["overall"]["inflow"]
    assert inflow["n"] == doc["cases"] == len(inflow["cases"])
    rows = list(csv.DictReader(out_csv.read_text().splitlines()))
    fcr = next(r for r in rows if r["kpi"] == "fcr" and r["figure"] == "first_contact" and r["dimension"] == "all")
    assert len(fcr["hit_ids"].split()) == int(fcr["hits"])
    assert {r["dimension"] for r in rows} >= {"all", "sop", "channel", "level", "priority", "tier", "period"}


def test_report_cli_explains_a_missing_store_and_a_bad_zone(tmp_path: Path, demo_db: Path) -> None:
    result = _run("report", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.exit_code == 1
    assert "no case store" in result.output
    result = _run("report", "--db", f"sqlite:///{demo_db}", "--tz", "Mars/Olympus", "-q")
    assert result.exit_code == 1
    assert "business time zone 'Mars/Olympus' is unknown" in result.output
    with pytest.raises(ReportError, match="period 'fortnight'"):
        context_from_org(SOPS, now=datetime(2026, 1, 1, tzinfo=UTC), period="fortnight")


def test_export_log_and_conformance_commands(demo_db: Path, demo_copy: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{demo_db}"
    for fmt, name in (("xes", "l.xes"), ("ocel", "l.json"), ("csv", "l.csv")):
        result = _run("export-log", "--db", db, "--format", fmt, "--out", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).stat().st_size > 0
    assert "<log xes.version=\"1849-2016\"" in (tmp_path / "l.xes").read_text()
    result = _run("conformance", "password_reset", "--db", db, "--sops", str(SOPS), "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["disallowed"] == []
    result = _run("conformance", "no_such_sop", "--db", db, "--sops", str(SOPS))
    assert result.exit_code == 1
    assert "unknown SOP 'no_such_sop'" in result.output
    result = _run("export-log", "--db", db, "--format", "bpmn", "--out", str(tmp_path / "x"))
    assert result.exit_code == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian package chromium (scripts/bootstrap.sh)")
def test_html_report_renders_in_chromium_without_a_javascript_error(demo_db: Path, tmp_path: Path) -> None:
    from engine.reporting.html import write_html_report

    page = write_html_report(make_engine(f"sqlite:///{demo_db}"), tmp_path / "report.html", SOPS)
    html = page.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "").replace("http://www.w3.org/", "")  # self-contained
    assert html.count("<svg") >= 5  # trends x2, heat, funnel, SOP diagram, bars
    # a click on the first KPI card must open the drill-down panel with case ids
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", "<script>document.querySelector('.card').click();"
                                  "document.body.setAttribute('data-panel', document.getElementById('panel')"
                                  ".querySelectorAll('code').length);</script></body>"))
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=90, cwd=ROOT)
        clicked = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert "Uncaught" not in proc.stderr
    assert 'data-report-ready="ok"' in proc.stdout  # the page's script ran to its end
    shown = re.search(r'data-panel="(\d+)"', clicked.stdout)
    assert shown is not None
    assert int(shown.group(1)) > 0


def test_html_figures_drill_down_to_the_cases_behind_them(demo_db: Path) -> None:
    from engine.reporting.html import render_html

    engine = make_engine(f"sqlite:///{demo_db}")
    rep = load_report(engine, context_from_org(SOPS, now=datetime(2026, 11, 25, tzinfo=UTC), period="day"))
    page = render_html(rep)
    drill = json.loads(re.search(r"<script type='application/json' id='drill-data'>(.*?)</script>", page,
                                 re.S).group(1))  # type: ignore[union-attr]
    backlog = next(k for k, m in re.findall(r'data-k="(k\d+)"><b>[^<]*</b><span>([^<]*)', page)
                   if m.startswith("open backlog"))
    assert drill[backlog]["ids"] == list(rep.result("backlog").overall["open"].hits)
    fcr = rep.result("fcr").overall["first_contact"]
    card = next(k for k, m in re.findall(r'data-k="(k\d+)"><b>[^<]*</b><span>([^<]*)', page)
                if m.startswith("first-contact resolution"))
    assert drill[card]["n"] == fcr.n  # a rate drills down to its population
    assert all(len(d["ids"]) == min(d["n"], 500) for d in drill.values())
    assert drill[card]["h"] == list(fcr.hits)  # ... and to the cases counted in the numerator
