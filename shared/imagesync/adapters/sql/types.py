"""Column types shared by the schema and the migrations."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


def timestamp_type() -> TypeEngine[Any]:
    """The storage type of every timestamp: naive UTC with microseconds.

    MySQL/MariaDB DATETIME drops fractions unless fsp=6 is given; SQLite stores ISO text (fixed width, so string
    order is time order); PostgreSQL TIMESTAMP WITHOUT TIME ZONE. The migrations use this same function, so the
    DDL they emit and the metadata agree.
    """
    from sqlalchemy.dialects import mysql  # here: a SQLite or PostgreSQL cold start does not load MySQL's dialect

    return DateTime(timezone=False).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


_UTC = timezone.utc


def utc_text(value: datetime) -> str:
    """An aware datetime as naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff": what SQLite stores (UTCDateTime), and a
    value MySQL's DATETIME(6) and PostgreSQL's TIMESTAMP read exactly. Raises ValueError on a naive datetime."""
    if value.tzinfo is not _UTC:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the state store only takes timezone-aware datetimes")
        value = value.astimezone(_UTC)
    # the year is always 4 digits: the first 26 characters are the naive text, without "+00:00"
    return value.isoformat(" ", "microseconds")[:26]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime in Python, naive UTC in the database.

    Contract: binding a naive datetime raises ValueError (a naive value is a bug: local or UTC is unknowable);
    aware values of any zone are converted to UTC. Values read back are always aware UTC, on every backend.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql  # loaded by the engine already: no cost to a cold start

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, one function from the aware datetime to the stored text (the same text SQLAlchemy's SQLite
        DATETIME writes: "YYYY-MM-DD HH:MM:SS.ffffff"); elsewhere process_bind_param, then the dialect's own.

        Why fused on SQLite: a sweep binds three timestamps per copy it records, and the two layers (this
        decorator, then SQLAlchemy's %-formatting of each field) were a measurable part of its time there
        (docs/benchmarks.md, "One sweep of 10,000 copies")."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            return None if value is None else utc_text(value)

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite, one function from the stored text to an aware UTC datetime (see bind_processor: a claim reads
        seven timestamps per copy); elsewhere the dialect's own, then process_result_value."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            # parsed with its zone appended: several times cheaper than parse(value).replace(tzinfo=utc)
            return None if value is None else parse(value + "+00:00")

        return process

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the state store only takes timezone-aware datetimes")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            return value.astimezone(timezone.utc)
        return value.replace(tzinfo=timezone.utc)
