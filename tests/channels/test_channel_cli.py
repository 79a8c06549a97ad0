"""The channel CLI: intake, deadletter list/show/retry, customer show/merge/unmerge/suggestions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import build_app

LIBRARY = Path(__file__).parent / "library"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CAREFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    app = build_app()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def _event(tmp_path: Path, name: str, **kw: object) -> Path:
    data = {"channel": "email", "external_id": f"<{name}@x>", "direction": "inbound",
            "occurred_at": "2026-03-02T09:00:00Z", "subject": "Help", "body": "Please help"}
    data.update(kw)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_intake_deadletter_and_customer_commands(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = _event(tmp_path, "one", customer={"email": "lea@example.org", "name": "Lea"})
    other = _event(tmp_path, "two", customer={"email": "lea.private@example.org", "name": "Lea"})
    bad = tmp_path / "bad.json"
    bad.write_text('{"channel": "email", "direction": "inbound"}')
    out = run("intake", str(good), str(other), str(bad), "--sops", str(LIBRARY))
    statuses = [json.loads(line.split(": ", 1)[1])["status"] for line in out.strip().splitlines()]
    assert statuses == ["started", "started", "dead_letter"]

    listing = run("deadletter", "list")
    assert "file:bad.json" in listing and "external_id" in listing
    shown = json.loads(run("deadletter", "show", "1"))
    assert shown["payload"]["event"]["channel"] == "email"
    assert "dead_letter" in run("deadletter", "retry", "1", "--sops", str(LIBRARY), code=1)
    assert "no dead letter with id 9" in run("deadletter", "show", "9", code=1)

    view = run("customer", "show", "lea@example.org")
    assert "lea@example.org" in view and "timeline (2 entries" in view
    suggestions = run("customer", "suggestions")
    assert "name=Lea" in suggestions
    merged = run("customer", "merge", "lea@example.org", "lea.private@example.org",
                 "--reason", "same person", "--actor", "sup")
    merge_id = re.search(r"merge (\d+)", merged).group(1)  # type: ignore[union-attr]
    assert "timeline (4 entries" in run("customer", "show", "lea.private@example.org")
    assert "moved back" in run("customer", "unmerge", merge_id, "--actor", "sup")
    assert "timeline (2 entries" in run("customer", "show", "lea@example.org")
    assert "no customer matches" in run("customer", "show", "nobody@example.org", code=1)
    verified = run("customer", "verify", "lea@example.org", "phone", "020 111 2233")
    assert "phone=+31201112233 verified" in verified
    assert "member of Acme" in run("customer", "org", "020 111 2233", "Acme", "--role", "buyer")
    assert "tier gold" in run("customer", "tier", "lea@example.org", "gold")
    shown = run("customer", "show", "lea@example.org")
    assert "organisations=Acme" in shown and "tier=gold" in shown


def test_connectors_list_shows_builtins(run) -> None:  # type: ignore[no-untyped-def]
    out = run("connectors", "list")
    assert "connector contract 1.0" in out
    assert "sms_example" in out and "memory" in out
