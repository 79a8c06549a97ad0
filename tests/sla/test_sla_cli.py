"""``careflow calendar add|diff|hours``: through the real Typer app, with CliRunner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import build_app

ORG = Path(__file__).resolve().parents[2] / "sop_definitions" / "org"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_add_prints_iso_instant_with_calendar_offset() -> None:
    code, out, _ = run(
        "calendar",
        "add",
        "--calendar",
        "office_nl",
        "--org",
        str(ORG),
        "--start",
        "2026-01-09T16:00",
        "--duration",
        "2h",
    )
    assert code == 0
    assert out.strip() == "2026-01-12T08:30:00+01:00"


def test_add_accepts_an_instant_with_offset_and_iso_duration() -> None:
    code, out, _ = run(
        "calendar",
        "add",
        "-c",
        "office_nl",
        "--org",
        str(ORG),
        "-s",
        "2026-01-09T15:00:00Z",
        "-d",
        "PT2H",
    )
    assert code == 0
    assert out.strip() == "2026-01-12T08:30:00+01:00"


def test_add_business_days_and_end_of_day() -> None:
    code, out, _ = run(
        "calendar",
        "add",
        "-c",
        "office_nl",
        "--org",
        str(ORG),
        "-s",
        "2026-04-24T10:00",
        "-d",
        "1",
        "--days",
    )
    assert code == 0
    assert out.strip() == "2026-04-28T10:00:00+02:00"  # King's Day skipped
    code, out, _ = run(
        "calendar",
        "add",
        "-c",
        "office_nl",
        "--org",
        str(ORG),
        "-s",
        "2026-04-24T10:00",
        "-d",
        "P1D",
        "--days",
        "--end-of-day",
    )
    assert code == 0
    assert out.strip() == "2026-04-28T17:30:00+02:00"


def test_diff_prints_seconds_and_human_form() -> None:
    code, out, _ = run(
        "calendar",
        "diff",
        "-c",
        "office_nl",
        "--org",
        str(ORG),
        "--start",
        "2026-01-09T16:00",
        "--end",
        "2026-01-12T10:00",
    )
    assert code == 0
    assert out.strip() == "12600 (3h30m)"
    code, out, _ = run(
        "calendar",
        "diff",
        "-c",
        "office_nl",
        "--org",
        str(ORG),
        "--start",
        "2026-01-12T10:00",
        "--end",
        "2026-01-09T16:00",
    )
    assert out.strip() == "0 (0s)"


def test_hours_lists_open_intervals() -> None:
    code, out, _ = run(
        "calendar", "hours", "-c", "night_desk", "--org", str(ORG), "-s", "2026-01-09", "--for", "3"
    )
    assert code == 0
    assert out.splitlines() == [
        "Fri 2026-01-09T00:00:00+01:00  ->  2026-01-09T06:00:00+01:00",
        "Sun 2026-01-11T22:00:00+01:00  ->  2026-01-12T00:00:00+01:00",
    ]


def test_calendar_file_path(tmp_path: Path) -> None:
    cal = tmp_path / "cal.yaml"
    cal.write_text("kind: calendar\nid: tiny\ntimezone: UTC\nweek:\n  mon: ['09:00-10:00']\n")
    code, out, _ = run("calendar", "add", "-c", str(cal), "-s", "2026-01-05T09:30", "-d", "1h")
    assert code == 0
    assert out.strip() == "2026-01-12T09:30:00+00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "nope", "-s", "2026-01-05T09:00", "-d", "1h"], "unknown calendar 'nope'"),
        (
            ["-c", "office_nl", "-s", "yesterday", "-d", "1h"],
            "--start 'yesterday' is not an ISO 8601",
        ),
        (["-c", "office_nl", "-s", "2026-01-05T09:00", "-d", "-1h"], "negative durations"),
        (["-c", "office_nl", "-s", "2026-01-05T09:00", "-d", "36h", "--days"], "whole days"),
        (["-c", "office_nl", "-s", "2026-01-05T09:00", "-d", "1h", "--end-of-day"], "needs --days"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message(args: list[str], message: str) -> None:
    code, _, err = run("calendar", "add", "--org", str(ORG), *args)
    assert code == 1
    assert message in err


def test_invalid_calendar_document_points_at_the_line(tmp_path: Path) -> None:
    cal = tmp_path / "bad.yaml"
    cal.write_text("kind: calendar\nid: bad\ntimezone: UTC\nweek:\n  mon: ['9-5']\n")
    code, _, err = run("calendar", "diff", "-c", str(cal), "-s", "2026-01-05", "-e", "2026-01-06")
    assert code == 1
    assert "bad.yaml:5:" in err


def test_calendar_commands_do_not_import_prefect() -> None:
    probe = (
        "import sys, typer\n"
        "from typer.testing import CliRunner\n"
        "from engine.cli import sla_cmds\n"
        "app = typer.Typer(); sla_cmds.register(app)\n"
        f"r = CliRunner().invoke(app, ['calendar', 'add', '-c', 'office_nl', '--org', {str(ORG)!r},"
        " '-s', '2026-01-05T09:00', '-d', '1h'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'sqlalchemy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sla_list_registered_only_with_the_store_query() -> None:
    from engine.cli.sla_cmds import store_has_breaching_query

    code, out, err = run("sla", "list", "--breaching-within", "1h")
    if store_has_breaching_query():
        assert "No such command" not in out + err
    else:
        assert code != 0
        assert "No such command 'sla'" in out + err


def test_sla_list_prints_rows_from_the_store_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    import typer

    from engine.cli import sla_cmds
    from engine.store import queries

    seen: list[int] = []

    def fake(session: object, seconds: int, *, now: object = None) -> list[dict[str, object]]:
        seen.append(seconds)
        due = datetime(2026, 1, 5, 14, tzinfo=UTC)
        return [
            {"case_id": "c-1", "clock": "first_response", "metric": "first_response", "due_at": due}
        ]

    monkeypatch.setattr(queries, "clocks_breaching_within", fake, raising=False)
    app = typer.Typer()
    app.command("list")(sla_cmds.sla_list)
    app.command("noop")(lambda: None)
    result = runner.invoke(
        app, ["list", "--breaching-within", "30m", "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    )
    assert result.exit_code == 0, result.output
    assert seen == [1800]
    assert result.stdout.strip() == "c-1\tfirst_response\tfirst_response\t2026-01-05T14:00:00+00:00"
