"""Migrations on every backend: from empty, from each earlier revision, stepwise down and up, and the start check."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from imagesync.adapters.sql import HEAD, SqlStateStore, current_revision, downgrade, make_engine, upgrade
from imagesync.adapters.sql.migrate import alembic_config
from imagesync.adapters.sql.schema import metadata
from imagesync.domain.errors import SchemaOutOfDate

TABLES = {"replications", "replicas", "outbox", "audit", "idempotency"}


def _revisions() -> list[str]:
    """All revisions, oldest first (the script directory walked from head down to base)."""
    script = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in reversed(list(script.walk_revisions("base", "heads")))]


def _tables(url: str) -> set[str]:
    with make_engine(url).connect() as conn:
        return set(inspect(conn).get_table_names()) & TABLES


def test_head_constant_matches_the_scripts() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD], "bump imagesync.adapters.sql.migrate.HEAD with every new migration"
    assert _revisions()[-1] == HEAD


def test_upgrade_from_empty_matches_the_metadata(empty_url: str) -> None:
    assert current_revision(empty_url) is None
    assert upgrade(empty_url) == HEAD
    assert upgrade(empty_url) == HEAD  # again: nothing to do
    assert _tables(empty_url) == TABLES
    with make_engine(empty_url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == [], "the migrations and imagesync.adapters.sql.schema disagree"
    SqlStateStore(make_engine(empty_url))  # the start check passes


@pytest.mark.parametrize("start", _revisions())
def test_upgrade_from_each_earlier_revision_and_downgrade_stepwise(empty_url: str, start: str) -> None:
    revisions = _revisions()
    assert upgrade(empty_url, start) == start
    assert upgrade(empty_url) == HEAD
    store = SqlStateStore(make_engine(empty_url))
    assert store.count_by_state()["PENDING"] == 0
    # down one revision at a time to base, then up one at a time back to head
    for prev in reversed(["base", *revisions[:-1]]):
        assert downgrade(empty_url, prev) == (None if prev == "base" else prev)
    assert _tables(empty_url) == set()
    for rev in revisions:
        assert upgrade(empty_url, rev) == rev
    assert _tables(empty_url) == TABLES


def test_store_refuses_a_missing_schema_and_never_creates_it(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with pytest.raises(SchemaOutOfDate, match="imagesync db upgrade"):
        SqlStateStore(engine)
    assert _tables(empty_url) == set()
    store = SqlStateStore(engine, auto_create=True)
    assert store.revision == HEAD and current_revision(engine) == HEAD


@pytest.mark.parametrize(("stored", "words"), [("0000", "run `imagesync db upgrade`"), ("9999", "newer")])
def test_store_refuses_a_schema_behind_or_ahead(empty_url: str, stored: str, words: str) -> None:
    engine = make_engine(empty_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": stored})
    with pytest.raises(SchemaOutOfDate) as err:
        SqlStateStore(engine)
    assert words in err.value.message and stored in err.value.message
    assert err.value.details == {"current": stored, "required": HEAD}
