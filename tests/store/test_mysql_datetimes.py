"""PyMySQL's DATETIME values read by datetime.fromisoformat (adapters/sql/engine.py, _pymysql_conversions): the
same values as PyMySQL's own converter gives, for what the server sends and for what it should never send."""

from __future__ import annotations

from datetime import datetime

import pytest
from pymysql.constants import FIELD_TYPE
from pymysql.converters import convert_datetime

from imagesync.adapters.sql.engine import _pymysql_conversions


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29 17:41:29.182712",  # DATETIME(6): what the state table's columns send
        "2026-11-29 17:41:29.000000",
        "2026-11-29 17:41:29",  # DATETIME(0)
        "2026-11-29T17:41:29",
        "2026-11-29 17:41:29.182",  # a shorter fraction: PyMySQL's converter
        "0000-00-00 00:00:00",  # a zero date: left as text, as PyMySQL leaves it
        "2026-02-31 10:00:00",  # an invalid day: likewise
        "2026-11-29",
    ],
)
def test_datetimes_read_as_pymysql_reads_them(text: str) -> None:
    conv = _pymysql_conversions()
    for field_type in (FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP):
        got, expected = conv[field_type](text), convert_datetime(text)
        assert got == expected and type(got) is type(expected)
    assert isinstance(conv[FIELD_TYPE.DATETIME]("2026-11-29 17:41:29.182712"), datetime)
