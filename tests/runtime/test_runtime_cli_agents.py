"""The task CLI with an agents document and a four-eyes task, as executable spec: refusals
are exit code 1 saying what is missing; ``task confirm`` decides a proposal; ``task list``
and ``task show`` say who proposed, and who may work on and decide the task."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from agents_fixtures import write_library
from typer.testing import CliRunner

from engine.cli import build_app


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("CAREFLOW_AGENT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("CAREFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    library = write_library(tmp_path / "lib")
    app, runner = build_app(), CliRunner()

    def run(*args: str):  # noqa: ANN202
        return runner.invoke(app, [*args, "--sops", str(library)])
    return run


def _task(output: str, level: str) -> str:
    found = re.search(rf"open task (\S+) \[{level}\]", output)
    assert found, output
    return found.group(1)


def test_refusals_say_what_is_missing_and_exit_1(cli) -> None:  # noqa: ANN001
    started = cli("case", "start", "refund", "-d", "amount=20")
    assert started.exit_code == 0, started.output
    review = _task(started.output, "L1")
    nobody = cli("task", "claim", review)  # the default agent is not in the directory
    assert nobody.exit_code == 1
    assert "unknown agent 'agent'" in nobody.output and "known: cleo, sam" in nobody.output
    assert "give --agent ID or set CAREFLOW_AGENT" in nobody.output
    wrong_level = cli("task", "complete", review, "--outcome", "reject", "--agent", "tara")
    assert wrong_level.exit_code == 1 and "it is a level L1 task and tara works at L2" in \
        wrong_level.output
    no_role = cli("task", "complete", review, "--outcome", "approve", "--agent", "cleo")
    assert no_role.exit_code == 1
    assert "cleo may not choose outcome 'approve'" in no_role.output
    assert "needs one of the roles senior_clerk" in no_role.output


def test_agent_from_the_environment(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    review = _task(cli("case", "start", "refund", "-d", "amount=20").output, "L1")
    monkeypatch.setenv("CAREFLOW_AGENT", "cleo")
    claimed = cli("task", "claim", review)
    assert claimed.exit_code == 0 and f"task {review} claimed by cleo" in claimed.output


def test_show_says_who_may_work_on_and_decide_the_task(cli) -> None:  # noqa: ANN001
    review = _task(cli("case", "start", "refund", "-d", "amount=20").output, "L1")
    shown = cli("task", "show", review)
    assert shown.exit_code == 0, shown.output
    assert "role: clerk\n" in shown.output
    assert "outcome approve [roles: senior_clerk]" in shown.output
    assert "outcome reject\n" in shown.output


def test_four_eyes_propose_list_confirm(cli) -> None:  # noqa: ANN001
    review = _task(cli("case", "start", "refund", "-d", "amount=20").output, "L1")
    approved = cli("task", "complete", review, "--outcome", "approve", "--agent", "sam")
    assert approved.exit_code == 0, approved.output
    pay = _task(approved.output, "L2")
    shown = cli("task", "show", pay)
    assert "role: treasurer; four eyes: a second agent confirms the outcome" in shown.output

    proposed = cli("task", "complete", pay, "--outcome", "paid", "-f", "note=ok", "--agent", "tara")
    assert proposed.exit_code == 0, proposed.output
    assert f"task {pay}: tara proposed paid; four eyes" in proposed.output
    assert f"careflow task confirm {pay} --agent ID" in proposed.output
    listed = cli("task", "list", "--level", "L2")
    assert listed.exit_code == 0 and "proposed by tara" in listed.output
    assert pay in cli("task", "list", "--status", "proposed").output
    assert "proposed by tara at" in cli("task", "show", pay).output

    own = cli("task", "confirm", pay, "--agent", "tara")
    assert own.exit_code == 1 and "cannot confirm it too" in own.output
    usage = cli("task", "confirm", pay, "--agent", "tom", "--reject")
    assert usage.exit_code == 2 and "--reject needs --reason" in usage.output
    done = cli("task", "confirm", pay, "--agent", "tom")
    assert done.exit_code == 0, done.output
    assert f"task {pay} completed: paid proposed by tara, confirmed by tom" in done.output
    assert ": resolved (paid)" in done.output
    assert "completed by tara, confirmed by tom: paid" in cli("task", "show", pay).output
    again = cli("task", "confirm", pay, "--agent", "tom")
    assert again.exit_code == 1 and "already completed by tara, confirmed by tom" in again.output


def test_four_eyes_reject(cli) -> None:  # noqa: ANN001
    review = _task(cli("case", "start", "refund", "-d", "amount=20").output, "L1")
    pay = _task(cli("task", "complete", review, "--outcome", "approve", "--agent", "sam").output,
                "L2")
    cli("task", "complete", pay, "--outcome", "paid", "--agent", "tara")
    rejected = cli("task", "confirm", pay, "--agent", "tom", "--reject", "--reason", "wrong IBAN")
    assert rejected.exit_code == 0, rejected.output
    assert f"task {pay}: tom rejected paid proposed by tara (wrong IBAN); the task is open " \
        "again" in rejected.output
    shown = cli("task", "show", pay)
    assert "(open" in shown.output
    assert "last proposal (paid by tara) rejected by tom: wrong IBAN" in shown.output
