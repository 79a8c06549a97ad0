"""The case/task/incident CLI as executable spec: start, inspect, complete, refuse bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import build_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, library_dir: Path):  # noqa: ANN201
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("CAREFLOW_AGENT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: room for whole ids
    monkeypatch.setenv("CAREFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    app, runner = build_app(), CliRunner()

    def run(*args: str):  # noqa: ANN202
        return runner.invoke(app, [*args, "--sops", str(library_dir)]
                             if args[0] not in ("db",) else list(args))
    return run


def test_db_upgrade_then_a_case_from_start_to_end(cli) -> None:  # noqa: ANN001
    up = cli("db", "upgrade")
    assert up.exit_code == 0 and "newest schema revision" in up.output
    started = cli("case", "start", "password_reset", "-d", "request_text=locked out",
                  "-d", "email=c@example.com", "--tier", "gold")
    assert started.exit_code == 0, started.output
    case_id = started.output.splitlines()[0]
    task_id = re.search(r"open task (\S+) \[L1\]", started.output).group(1)
    listed = cli("task", "list", "--level", "L1")
    assert listed.exit_code == 0 and "L1" in listed.output

    bad = cli("task", "complete", task_id, "--outcome", "verifyed", "-f", "verify_outcome=verified",
              "--agent", "ann")
    assert bad.exit_code == 1 and "did you mean 'verified'" in bad.output
    missing = cli("task", "complete", task_id, "--outcome", "verified", "--agent", "ann")
    assert missing.exit_code == 1 and "needs field(s) verify_outcome" in missing.output

    done = cli("task", "complete", task_id, "--outcome", "verified", "-f", "verify_outcome=verified",
               "--agent", "ann")
    assert done.exit_code == 0 and f"{case_id}: resolved (resolved_l1)" in done.output
    again = cli("task", "complete", task_id, "--outcome", "verified", "-f", "verify_outcome=verified",
                "--agent", "cem")
    assert again.exit_code == 1 and "already completed by ann" in again.output

    shown = cli("case", "show", case_id, "--json")
    view = json.loads(shown.output)
    assert view["status"] == "resolved" and view["clocks"][0]["state"] == "completed"
    assert [e["kind"] for e in view["timeline"]][0] == "case_started"
    table = cli("case", "show", case_id)
    assert table.exit_code == 0 and "timeline" in table.output
    assert case_id in cli("case", "list", "--status", "resolved").output


def test_unknown_things_are_exit_code_1_with_the_reason(cli) -> None:  # noqa: ANN001
    assert "unknown SOP 'pasword_reset'" in cli("case", "start", "pasword_reset").output
    res = cli("case", "event", "NOPE", "customer_confirmed")
    assert res.exit_code == 1 and "no such case" in res.output
    assert cli("incident", "retry", "42").exit_code == 1


def test_case_verify_finds_altered_and_truncated_audit_trails(cli, tmp_path: Path) -> None:  # noqa: ANN001
    import sqlalchemy as sa

    cases = [cli("case", "start", "password_reset", "-d", "request_text=locked out",
                 "-d", "email=c@example.com").output.splitlines()[0] for _ in range(3)]
    app, runner = build_app(), CliRunner()
    ok = runner.invoke(app, ["case", "verify"])
    assert ok.exit_code == 0 and "3 audit trail(s) intact" in ok.output, ok.output
    assert runner.invoke(app, ["case", "verify", "C-NOPE"]).exit_code == 2

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.begin() as conn:  # someone edits one entry and removes another case's last step
        conn.execute(sa.text("UPDATE audit_records SET entries = json_set(entries, '$[1].actor', "
                             "'mallory') WHERE case_id = :c AND first_seq <= 2 AND seq >= 2"),
                     {"c": cases[0]})
        conn.execute(sa.text("DELETE FROM audit_records WHERE case_id = :c AND seq = "
                             "(SELECT max(seq) FROM audit_records WHERE case_id = :c)"),
                     {"c": cases[1]})
        assert conn.execute(sa.text("SELECT actor FROM audit_log WHERE case_id = :c AND seq = 2"),
                            {"c": cases[0]}).scalar() == "mallory"
    engine.dispose()
    bad = runner.invoke(app, ["case", "verify"])
    assert bad.exit_code == 1
    assert re.search(rf"{cases[0]}: entry 1: the hash does not match entries 1-\d+ and the "
                     r"record before", bad.output), bad.output
    assert f"{cases[1]}: end of trail: the case points at entry" in bad.output
    assert cases[2] not in bad.output
    assert runner.invoke(app, ["case", "verify", cases[2]]).exit_code == 0


def test_task_hand_back_returns_a_billing_task_to_level_1(cli) -> None:  # noqa: ANN001
    started = cli("case", "start", "billing_question", "-d", "request_text=why this invoice?",
                  "-d", "customer_id=K-1")
    assert started.exit_code == 0, started.output
    triage = re.search(r"open task (\S+) \[L1\]", started.output).group(1)
    passed = cli("task", "complete", triage, "--outcome", "to_billing", "-f", "topic=other",
                 "--agent", "ann")
    review = re.search(r"open task (\S+) \[L2\]", passed.output).group(1)
    refused = cli("task", "hand-back", review, "--reason", "L1 knows this", "--agent", "bea")
    assert refused.exit_code == 1 and "--knowledge-article ID or --knowledge-none" in refused.output
    back = cli("task", "hand-back", review, "--reason", "L1 knows this", "--agent", "bea",
               "--knowledge-article", "KB-EN-BILL-1")
    assert back.exit_code == 0, back.output
    assert "hand-back queued" in back.output and re.search(r"open task \S+ \[L1\]", back.output)
