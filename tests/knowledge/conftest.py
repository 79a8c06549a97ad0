"""Fixtures of the knowledge tests: the starter KB on a real SQLite file and on PostgreSQL.

PostgreSQL tables live in a schema unique to the test run (``kb_test_<hex>``), dropped at the
end; the PostgreSQL tests are skipped, with the reason, when 127.0.0.1:5432 is unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from engine.knowledge import repo
from engine.knowledge.files import load_article_folder
from engine.knowledge.model import ArticleSpec
from engine.store.all_models import load_all
from engine.store.db import make_engine, sessions

ROOT = Path(__file__).resolve().parents[2]
KB_DIR = ROOT / "sop_definitions" / "knowledge"
EVAL_FILE = Path(__file__).with_name("eval_questions.yaml")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def kb_tables() -> list:
    meta = load_all().metadata
    return [t for t in meta.sorted_tables if t.name.startswith("kb_")]


def create_kb_schema(engine: Engine) -> None:
    load_all().metadata.create_all(engine, tables=kb_tables())
    with sessions(engine)() as s, s.begin():
        repo.ensure_search_schema(s)


def import_starter(engine: Engine, specs: list[ArticleSpec]) -> None:
    with sessions(engine)() as s, s.begin():
        repo.import_specs(s, specs, actor="test", at=T0)


@pytest.fixture(scope="session")
def starter_specs() -> list[ArticleSpec]:
    return load_article_folder(KB_DIR)


@pytest.fixture
def kb_engine(tmp_path: Path) -> Iterator[Engine]:
    """An empty knowledge schema on a fresh SQLite file."""
    engine = make_engine(f"sqlite:///{tmp_path / 'kb.db'}")
    create_kb_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def starter_engine(kb_engine: Engine, starter_specs: list[ArticleSpec]) -> Engine:
    """A fresh SQLite file holding the starter knowledge base (safe to change)."""
    import_starter(kb_engine, starter_specs)
    return kb_engine


@pytest.fixture(scope="session")
def sqlite_starter_ro(tmp_path_factory: pytest.TempPathFactory,
                      starter_specs: list[ArticleSpec]) -> Iterator[Engine]:
    """The starter KB on SQLite, shared by read-only tests."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('kbro') / 'kb.db'}")
    create_kb_schema(engine)
    import_starter(engine, starter_specs)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def shared_starter(tmp_path_factory: pytest.TempPathFactory,
                   starter_specs: list[ArticleSpec]) -> Iterator[Engine]:
    """The starter KB on SQLite for one test module that writes (unique case ids per test)."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('kbmod') / 'kb.db'}")
    create_kb_schema(engine)
    import_starter(engine, starter_specs)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def case_db_template(tmp_path_factory: pytest.TempPathFactory,
                     starter_specs: list[ArticleSpec]) -> Path:
    """A SQLite file with the whole case schema and the starter KB, built once; tests copy it."""
    path = tmp_path_factory.mktemp("casedb") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    load_all().metadata.create_all(engine)
    with sessions(engine)() as s, s.begin():
        repo.ensure_search_schema(s)
        repo.import_specs(s, starter_specs, actor="import", at=T0)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def case_db(case_db_template: Path, tmp_path: Path) -> Engine:
    """A private copy of the case database template (whole schema + starter KB)."""
    import shutil

    target = tmp_path / "careflow.db"
    shutil.copy(case_db_template, target)
    return make_engine(f"sqlite:///{target}")


def _pg_reachable() -> str | None:
    try:
        probe = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip with the reason
        return f"PostgreSQL at 127.0.0.1:5432 unreachable: {type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def pg_schema_engine() -> Iterator[Callable[[], Engine]]:
    """A factory of engines on a fresh PostgreSQL schema (each call: a new schema, dropped at end)."""
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    made: list[tuple[Engine, str]] = []

    def make() -> Engine:
        schema = f"kb_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
        made.append((engine, schema))
        return engine

    yield make
    admin = create_engine(PG_URL)
    for engine, schema in made:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_starter_ro(pg_schema_engine: Callable[[], Engine],
                  starter_specs: list[ArticleSpec]) -> Engine:
    """The starter KB on PostgreSQL, shared by read-only tests."""
    engine = pg_schema_engine()
    create_kb_schema(engine)
    import_starter(engine, starter_specs)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def starter_ro(request: pytest.FixtureRequest) -> Engine:
    """The read-only starter KB on each backend."""
    name = "sqlite_starter_ro" if request.param == "sqlite" else "pg_starter_ro"
    return request.getfixturevalue(name)


def session_of(engine: Engine) -> Session:
    return sessions(engine)()
