"""Schema versions: Alembic, driven from code (no alembic.ini on disk; the scripts ship inside the package).

``upgrade(url_or_engine)`` is what ``imagesync db upgrade`` runs. ``check_schema(engine)`` is what the store runs
on start: it reads the alembic_version row and compares it with HEAD, a constant, so a cold start does not import
Alembic or parse the version scripts (tests/store/test_migrations.py keeps HEAD equal to the scripts' head).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from ...domain.errors import SchemaOutOfDate
from .engine import make_engine, run_read

if TYPE_CHECKING:
    from alembic.config import Config

#: the newest revision in imagesync/migrations/versions (bump with every new migration)
HEAD = "0008"
VERSION_TABLE = "alembic_version"
SCRIPT_LOCATION = str(Path(__file__).resolve().parent.parent.parent / "migrations")


def _engine(url_or_engine: str | Engine) -> Engine:
    return make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine


def alembic_config(connection: Connection | None = None) -> Config:
    """An in-memory Alembic config for imagesync's scripts; `connection` is handed to env.py."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> str | None:
    """Apply the migrations up to `revision` (default head); returns the revision the database is then at.

    Safe to run again (a database at head is left alone). On MySQL/MariaDB DDL commits implicitly, so a migration
    that fails half-way must be fixed forward; on PostgreSQL and SQLite each upgrade runs in one transaction.
    """
    from alembic import command

    engine = _engine(url_or_engine)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    return current_revision(engine)


def downgrade(url_or_engine: str | Engine, revision: str) -> str | None:
    """Revert the migrations down to `revision` ("base" = empty). For tests and emergencies, never automatic."""
    from alembic import command

    engine = _engine(url_or_engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)
    return current_revision(engine)


def current_revision(url_or_engine: str | Engine) -> str | None:
    """The revision the database is at, or None when it has no imagesync schema (no version table or row)."""

    def read(conn: Connection) -> str | None:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        return rows[0] if len(rows) == 1 else None

    return run_read(_engine(url_or_engine), read)


def check_schema(engine: Engine) -> str:
    """Return the database's revision if it is HEAD; raise SchemaOutOfDate otherwise (the message says what to do).

    Missing schema, an older revision, or a revision this code does not know (the database was upgraded by newer
    code: deploy that code, do not downgrade blindly) are all refused; nothing is created here.
    """
    current = current_revision(engine)
    where = engine.url.render_as_string(hide_password=True)
    if current == HEAD:
        return current
    if current is None:
        msg = f"the state database {where} has no imagesync schema; run `imagesync db upgrade` first"
    elif current < HEAD:
        msg = (
            f"the state database {where} is at schema revision {current}, this code needs {HEAD}; "
            "run `imagesync db upgrade`"
        )
    else:
        msg = (
            f"the state database {where} is at schema revision {current}, newer than this code's {HEAD}; "
            "deploy the code that matches it (or run `imagesync db upgrade` from the newer release)"
        )
    raise SchemaOutOfDate(msg, current=current, required=HEAD)
