"""The demo is the main job: it must run the real pipeline and account for every contact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.demo.simulation import DemoConfig, Simulation, load_contacts
from engine.demo.summary import summarise

ROOT = Path(__file__).resolve().parents[2]


def test_bundled_day_has_several_hundred_contacts_on_every_channel() -> None:
    contacts = load_contacts()
    assert len(contacts) >= 300
    assert {c["channel"] for c in contacts} >= {"email", "phone", "web", "chat", "social",
                                                 "letter", "fax", "sms"}
    assert {c["language"] for c in contacts} == {"en", "nl", "de"}


def test_a_morning_through_the_engine_accounts_for_every_contact(tmp_path: Path) -> None:
    cfg = DemoConfig(db_path=tmp_path / "demo.db", sop_dir=ROOT / "sop_definitions", limit=40,
                     follow_days=1, use_prefect=False)
    sim = Simulation(cfg)
    run = sim.execute()
    summary = summarise(sim.rt.engine)
    assert run.contacts == 40
    # every contact became a case, joined a case, or is a dead letter with its reason
    assert summary.cases + run.intake.get("correlated", 0) + summary.dead_letters == 40
    assert summary.by_status.get("resolved", 0) > 0
    assert sum(run.tasks_completed.values()) > 0  # agents worked level queues
    assert summary.audit_rows > summary.cases
    assert summary.by_sop  # routed to real SOPs


def test_demo_command_runs_real_prefect_flows_and_prints_the_summary(tmp_path: Path) -> None:
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"), COLUMNS="200",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--limit", "12", "--follow-days", "0",
         "--db", str(tmp_path / "d.db"), "--report", str(tmp_path / "r.html")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the day at a glance" in proc.stdout
    assert "Prefect flow runs" in proc.stdout
    assert "where to look next" in proc.stdout


def test_replies_sent_through_the_outbox_are_on_the_customer_timeline(tmp_path: Path) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from engine.store.models import OutboxRow
    from engine.store.models_crm import InteractionRow

    sim = Simulation(DemoConfig(db_path=tmp_path / "t.db", sop_dir=ROOT / "sop_definitions",
                                limit=25, follow_days=0, use_prefect=False))
    sim.execute()
    with Session(sim.rt.engine) as s:
        sent = s.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.status == "sent", OutboxRow.channel.not_in(("internal", "log"))))
        outbound = s.scalar(select(func.count()).select_from(InteractionRow).where(
            InteractionRow.direction == "outbound"))
        inbound = s.scalar(select(func.count()).select_from(InteractionRow).where(
            InteractionRow.direction == "inbound"))
    assert sent > 0
    assert outbound == sent  # one timeline entry per message actually sent
    assert inbound >= 25


def test_demo_outside_the_checkout_says_where_the_sops_are_missing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from engine.cli import build_app

    result = CliRunner().invoke(build_app(), ["demo", "--sops", str(tmp_path / "nowhere"),
                                              "--db", str(tmp_path / "d.db")])
    assert result.exit_code == 2
    assert "no SOP library at" in result.output and "--sops DIR" in result.output
    assert not (tmp_path / "d.db").exists()
