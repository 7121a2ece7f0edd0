"""db upgrade: the state table's schema."""

from __future__ import annotations

from .common import console


def db_upgrade() -> None:
    """Create or upgrade the state table's schema at IMAGESYNC_DATABASE_URL to the newest revision."""
    from ..adapters.sql import current_revision, make_engine, upgrade
    from ..settings import get_settings

    url = get_settings().database_url
    engine = make_engine(url)
    upgrade(engine)
    console.print(f"schema at revision {current_revision(engine)} ({engine.url.render_as_string()})")
