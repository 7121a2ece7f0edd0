"""Pathological input for every parser, generated here (no huge files in the repo): the table the unit,
integration and end-to-end tests drive through each trigger, and the deep values a runtime may already have decoded.

Each text is something a caller controls and the project must refuse with its code, never a 500, a traceback, a
retry or a half-recorded effect. Depths go far past Python's recursion limit (~1,000 frames).
"""

from __future__ import annotations

from typing import Any

DEEP = 50_000  # levels: 100 KB of brackets, "tens of thousands of levels", well past any recursion limit
TIMER_DEEP = 2_048  # what a 4 KB timer Message (SCF's limit) holds

#: A replication request with one field replaced by `{}` (text substituted), to nest inside an otherwise valid body.
REQUEST = '{"source_region": "ap-guangzhou", "image_ids": {}, "destination_regions": ["ap-shanghai"]}'


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def nested_mixed(depth: int) -> str:
    return '{"a":[' * (depth // 2) + "1" + "]}" * (depth // 2)


#: name -> JSON text (str) that no parser of the project may accept. Kept below 64 KB (the API's default body
#: limit) except "enormous string", which each trigger refuses by size.
TEXTS: dict[str, str] = {
    "deep arrays": nested_arrays(DEEP // 2),
    "deep objects": nested_objects(DEEP // 10),
    "deep mixed": nested_mixed(DEEP // 5),
    "4 KB timer nesting": nested_arrays(TIMER_DEEP),
    "deep inside a valid field": REQUEST.replace("{}", nested_arrays(DEEP // 2)),
    "huge exponent": '{"source_region": 1e999999}',
    "integer over the digit limit": '{"batch": ' + "9" * 5_000 + "}",  # int() raises ValueError past 4,300 digits
    "integer over 64 bits": '{"batch": 18446744073709551616}',
    "NaN": '{"batch": NaN}',
    "Infinity": '{"batch": -Infinity}',
    "lone surrogate escaped": '{"source_region": "\\ud800"}',
    "lone surrogate raw": '{"source_region": "\ud800"}',
    "NUL escaped": '{"source_region": "ap-guangzhou\\u0000"}',
    "NUL raw": '{"source_region": "ap\x00"}',
    "byte order mark": "\ufeff" + REQUEST.replace("{}", '["img-5ddkx3gh"]'),
    "duplicate keys": REQUEST.replace("{}", '["img-5ddkx3gh"]').replace('"image_ids"', '"image_ids": [], "image_ids"'),
    "enormous string": '{"source_region": "' + "a" * 1_100_000 + '"}',
    "not JSON": "{'single': 'quotes'}",
}

#: name -> bytes that are not UTF-8 JSON (a base64 body is the only text a caller sends as raw bytes).
BYTES: dict[str, bytes] = {
    "invalid UTF-8": b'{"source_region": "\xff\xfe"}',
    "CESU-8 surrogate": b'{"source_region": "\xed\xa0\x80"}',  # json.loads(bytes) once decoded it with surrogatepass
    "UTF-16": REQUEST.replace("{}", '["img-5ddkx3gh"]').encode("utf-16"),
}


def deep_list(depth: int = DEEP) -> Any:
    """A list nested `depth` levels, built without recursion (what a runtime's decoder could hand over)."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int = DEEP) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


#: name -> a value (as an SCF runtime decodes it) that must make the record holding it invalid.
VALUES: dict[str, Any] = {
    "deep list": deep_list(),
    "deep dict": deep_dict(),
    "integer over 64 bits": 10**30,
    "NaN": float("nan"),
    "lone surrogate": "img-\ud800",
    "NUL": "img-\x00",
}
