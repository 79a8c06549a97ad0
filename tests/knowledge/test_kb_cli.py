"""``careflow kb ...`` through the real CLI app on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import build_app

KB_DIR = Path(__file__).resolve().parents[2] / "sop_definitions" / "knowledge"


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One database for the module (schema by Alembic, starter KB imported by the CLI)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('kbcli') / 'cli.db'}"
    result = CliRunner().invoke(build_app(), ["kb", "import", str(KB_DIR), "--actor", "alice",
                                              "--db", url])
    return url, result.stdout


@pytest.fixture
def cli(cli_db: tuple[str, str], monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a helper
    monkeypatch.setenv("CAREFLOW_DATABASE_URL", cli_db[0])
    app, runner = build_app(), CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["kb", *args])
        return result.exit_code, result.stdout, result.stderr

    return run


def test_import_list_show_search_publish_retire(cli, cli_db: tuple[str, str]) -> None:  # noqa: ANN001
    assert "57 new" in cli_db[1]
    code, out, _ = cli("import", str(KB_DIR), "--actor", "alice")
    assert "57 unchanged" in out
    code, out, _ = cli("list", "--language", "de", "--json")
    items = json.loads(out)
    assert code == 0 and len(items) == 19 and all(i["language"] == "de" for i in items)
    code, out, _ = cli("search", "Ich habe mein Passwort vergessen", "--json")
    assert json.loads(out)["hits"][0]["article_id"] == "password-reset.de"
    code, out, _ = cli("retire", "password-reset.de", "--actor", "bob", "--reason", "moved")
    assert code == 0 and "retired" in out
    code, out, _ = cli("search", "Passwort vergessen", "--json", "--language", "de")
    assert "password-reset.de" not in [h["article_id"] for h in json.loads(out)["hits"]]
    code, out, _ = cli("show", "password-reset.de", "--history")
    assert code == 0 and "published -> retired" in out and "bob" in out


def test_lifecycle_errors_are_one_clear_line(cli) -> None:  # noqa: ANN001
    code, _, err = cli("publish", "password-reset.en", "--actor", "bob")
    assert code == 1
    assert err.strip() == ("careflow kb: password-reset.en: cannot move from published to "
                           "published (from published it may go to: retired, review)")
    code, _, err = cli("show", "pasword-reset.en")
    assert code == 1 and "no such article" in err


def test_a_5_mb_article_and_script_in_markdown(cli, tmp_path: Path) -> None:  # noqa: ANN001
    folder = tmp_path / "kb" / "en"
    folder.mkdir(parents=True)
    head = "---\nid: {id}\ntitle: T\ncategory: general\nlanguage: en\nstatus: published\n---\n"
    (folder / "huge.md").write_text(head.format(id="huge.en") + "a" * 5_000_000)
    code, _, err = cli("import", str(tmp_path / "kb"))
    assert code == 1 and f"{folder / 'huge.md'}:1:1: E-KB-SIZE" in err
    (folder / "huge.md").unlink()
    (folder / "xss.md").write_text(head.format(id="xss.en") +
                                   "Hi <script>alert(1)</script> [x](javascript:alert(1))")
    code, out, _ = cli("import", str(tmp_path / "kb"))
    assert code == 0
    code, out, _ = cli("show", "xss.en", "--html")
    assert "&lt;script&gt;" in out and "<script>" not in out and 'href="javascript' not in out


def test_a_100000_character_search_is_truncated(cli) -> None:  # noqa: ANN001
    code, out, _ = cli("search", "invoice " * 12_500, "--json")
    data = json.loads(out)
    assert code == 0 and data["truncated"] is True
    assert data["hits"][0]["article_id"] == "invoice-copy.en"


def test_gaps_shift_left_and_stats_run_on_an_empty_history(cli) -> None:  # noqa: ANN001
    assert cli("gaps")[1].strip() == "no knowledge gaps found"
    assert cli("shift-left", "--json")[1].strip() == "[]"
    stats = json.loads(cli("stats", "--json")[1])
    assert stats["attempts"] == 0 and stats["articles"] == []


def test_suggest_needs_a_known_case_or_task(cli) -> None:  # noqa: ANN001
    code, _, err = cli("suggest")
    assert code == 2 and "give --case or --task" in err
    code, _, err = cli("suggest", "--case", "C-404")
    assert code == 1 and "no such case 'C-404'" in err
    code, _, err = cli("suggest", "--task", "T-404")
    assert code == 1 and "no such task 'T-404'" in err
