"""Schema migrations, run programmatically (``careflow db upgrade``): Alembic, no alembic.ini.

The scripts live in engine/store/migrations (env.py + versions/). ``upgrade(url)`` brings a
database to the newest revision; ``compare(url)`` lists differences between a database and
the models (empty after an upgrade: the test that proves the migrations match).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from engine.store.db import make_engine, resolve_url

__all__ = ["MIGRATIONS_DIR", "alembic_config", "compare", "revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", resolve_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, target: str = "head") -> None:
    """Upgrade the database at ``url`` (default: CAREFLOW_DATABASE_URL / ./careflow.db)."""
    command.upgrade(alembic_config(url), target)


def revision(message: str, url: str | None = None) -> Any:
    """Autogenerate a new revision against the database at ``url`` (developers)."""
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
