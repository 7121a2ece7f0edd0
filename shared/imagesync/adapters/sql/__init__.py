"""The state table on SQLAlchemy Core: SQLite, MySQL/MariaDB (pymysql), PostgreSQL (psycopg 3).

Public API::

    engine = make_engine(url)            # one per URL per process; pre-ping; connect retried ~30 s
    upgrade(url_or_engine)               # alembic upgrade head (what `imagesync db upgrade` runs)
    current_revision(url_or_engine)      # the schema revision the database is at (None: no schema)
    store = SqlStateStore(engine, auto_create=False)   # raises SchemaOutOfDate unless the schema is at head

SqlStateStore is every store of the package over one engine; each concern is also a class of its own (store.py
lists them).
"""

from .engine import dispose_engines, make_engine
from .migrate import HEAD, check_schema, current_revision, downgrade, upgrade
from .rows import inflight_key
from .store import SqlStateStore

__all__ = [
    "HEAD",
    "SqlStateStore",
    "check_schema",
    "current_revision",
    "dispose_engines",
    "downgrade",
    "inflight_key",
    "make_engine",
    "upgrade",
]
