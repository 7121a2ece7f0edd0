"""Alembic environment: online only, on the connection imagesync.adapters.sql.migrate passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from imagesync.adapters.sql.migrate import VERSION_TABLE
from imagesync.adapters.sql.schema import metadata

config = context.config


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:  # the `alembic` CLI with an ini file: build the engine from sqlalchemy.url
        from imagesync.adapters.sql.engine import make_engine

        url = config.get_main_option("sqlalchemy.url")
        assert url, "set sqlalchemy.url or use imagesync.adapters.sql.upgrade()"
        with make_engine(url).begin() as conn:
            _run(conn)
    else:
        _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite needs batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `imagesync db upgrade`")
run_migrations_online()
