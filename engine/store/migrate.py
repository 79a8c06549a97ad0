"""Schema migrations, run programmatically (``careflow db upgrade``): Alembic, no alembic.ini.

The scripts live in engine/store/migrations (env.py + versions/). ``upgrade(url)`` brings a
database to the newest revision; ``compare(url)`` lists differences between a database and
the models (empty after an upgrade: the test that proves the migrations match).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.errors import StoreError
from engine.store.db import make_engine, resolve_url

__all__ = ["MIGRATIONS_DIR", "alembic_config", "check_current", "compare", "head_revision",
           "revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", resolve_url(url).replace("%", "%%"))
    return cfg


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?([0-9a-f]+)?", re.M)


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration's revision id, read from the scripts' text (no Alembic import:
    every CLI command checks it)."""
    revisions, parents = set(), set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REVISION.findall(script.read_text(encoding="utf-8")))
        if found.get("revision"):
            revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise StoreError(f"the migrations in {MIGRATIONS_DIR} have {len(heads)} heads: {heads}")
    return heads.pop()


def check_current(engine: Any) -> None:
    """Refuse a case database whose schema is older than this careflow (its Alembic revision
    is not the newest); a database made without Alembic (tests, benchmarks) is not checked.

    Raises:
        StoreError: the database needs ``careflow db upgrade`` (the message says so).
    """
    from sqlalchemy import inspect, text

    if not inspect(engine).has_table("alembic_version"):
        return
    with engine.connect() as conn:
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    head = head_revision()
    if current != head:
        url = engine.url.render_as_string(hide_password=True)
        raise StoreError(f"the case database {url} is at schema revision {current}; this "
                         f"careflow needs {head}: run `careflow db upgrade` (with --db or "
                         f"CAREFLOW_DATABASE_URL naming it)")


def upgrade(url: str | None = None, target: str = "head") -> None:
    """Upgrade the database at ``url`` (default: CAREFLOW_DATABASE_URL / ./careflow.db)."""
    from alembic import command

    command.upgrade(alembic_config(url), target)


def revision(message: str, url: str | None = None) -> Any:
    """Autogenerate a new revision against the database at ``url`` (developers)."""
    from alembic import command

    return command.revision(alembic_config(url), message=message, autogenerate=True)


def compare(url: str | None = None) -> list[Any]:
    """Differences between the database at ``url`` and the models (Alembic autogenerate)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from engine.store.all_models import load_all

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, load_all().metadata))
    finally:
        engine.dispose()
