"""The one place where text from outside (trigger bodies, messages, rule files) becomes Python values (pure).

Every JSON or YAML text a caller controls is decoded here, and every value decoded elsewhere (an SCF event the
runtime already turned into dicts) is checked here, against the same bounds:

* depth: at most ``max_depth`` nested arrays/objects (default 64; the deepest payload here, a CloudAudit record
  with its requestParameters, nests under 10). Python's json and PyYAML recurse once per level and fail with
  RecursionError near 1,000 levels (a 4 KB timer Message reaches 2,000), an error that escapes every
  ``except ValueError``;
* size: at most ``max_bytes`` of UTF-8 text (default 1 MiB, as large as any message a trigger brings: a CMQ
  message holds 1 MB, docs/facts.md#F-MQ-1; an asynchronous event 128 KB, docs/facts.md#F-SCF-2);
* text that every database, log line and UTF-8 encoder takes: valid UTF-8 without a byte order mark, no lone
  surrogate (``"\\ud800"`` decodes, then fails when encoded for the database or the log), no NUL (PostgreSQL
  refuses it in text);
* numbers: finite (no NaN, Infinity, or 1e999999, which json reads as inf), integers within 64 bits, signed or
  unsigned (no 10**100000, which fails in int() with ValueError past 4,300 digits);
* no duplicate keys (json and PyYAML keep the last one silently: a value accepted and dropped);
* YAML: only the safe tags, and aliases bounded by the size of what they expand to (a "billion laughs" file of a
  few hundred bytes expands to 10**9 nodes in whatever walks it next).

Anything else raises Unparseable (a ValueError, so pydantic validators report it as a field error), with a
one-line reason that may name where (a field path or a key, cut short and escaped) but never quotes a value; each
caller maps it to its own coded refusal (InvalidRequest for HTTP, InvalidEvent for triggers, RulesInvalid for rule
files).

Hand-written rather than a library: the stdlib json module has no depth or number bounds (only hooks for numbers
and constants, used below); pydantic's own JSON parser fixes its depth (about 200 levels) and reads NaN and
1e999999 (inf) into an untyped field; a compiled parser would be one more wheel in SCF's layer; and none of them
reads YAML. The depth scan and the YAML alias count are ~40 lines and run mostly at C speed (a regex over the
text; PyYAML's event stream, which is iterative where its composer recurses).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from functools import lru_cache
from typing import Any

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_BYTES = 1024 * 1024
#: expanded YAML nodes (scalars and collections, aliases counted as what they repeat)
DEFAULT_MAX_NODES = 100_000
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # signed or unsigned 64-bit
_MAX_INT_DIGITS = 21  # len(str(-(2**63))) = 20; one more so the range check, not the digit count, decides

#: A string (skipped whole, escapes included) or a bracket: the depth scan's tokens.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class Unparseable(ValueError):
    """Text or a value outside the bounds above; `reason` says why and where (never quoting a value)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def loads_json(text: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """`text` (str, or UTF-8 bytes) decoded as JSON within the bounds; raises Unparseable."""
    text = _text(text, max_bytes)
    _scan_depth(text, max_depth)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except Unparseable:
        raise
    except json.JSONDecodeError as exc:
        raise Unparseable(f"not JSON: {exc.msg} at position {exc.pos}") from exc
    except (ValueError, RecursionError, OverflowError, UnicodeError) as exc:  # belt and braces: bounded above
        raise Unparseable(f"not JSON: {type(exc).__name__}") from exc
    check_value(value, max_depth=max_depth)
    return value


def loads_yaml(
    text: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Any:
    """`text` decoded as one YAML document (safe tags only) within the bounds; raises Unparseable.

    Dates and timestamps stay date/datetime (YAML's own types); every other value is a JSON type.
    """
    import yaml  # only rule files need it

    text = _text(text, max_bytes, allow_bom=True)  # YAML 1.1 allows a BOM at the start of a stream
    try:
        _scan_yaml_events(yaml.parse(text, Loader=yaml.SafeLoader), max_depth, max_nodes)
        value = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except Unparseable:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise Unparseable(f"not YAML: {exc.problem or exc.context or 'syntax error'}{where}") from exc
    except yaml.YAMLError as exc:
        raise Unparseable(f"not YAML: {_first_line(exc)}") from exc
    except (ValueError, TypeError, RecursionError, OverflowError, UnicodeError) as exc:
        # e.g. an int of 5,000 digits (ValueError from int()), a list as a mapping key (TypeError: unhashable)
        raise Unparseable(f"not YAML: {type(exc).__name__}: {_first_line(exc)}") from exc
    check_value(value, max_depth=max_depth, allow=(date,))
    return value


def check_value(value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH, allow: tuple[type, ...] = ()) -> None:
    """Raise Unparseable unless `value` (already decoded: an SCF event, a field) is JSON-like within the bounds.

    Iterative, so it is safe on a value of any depth (it stops at the first level past max_depth). `allow` adds
    scalar types (YAML dates).
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise Unparseable(f"nested deeper than {max_depth} levels{_at(where)}")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise Unparseable(f"a key that is not a string{_at(where)}")
                    _check_text(key, where)
                    stack.append((child, depth + 1, f"{where}.{key}"[:120] if where else key[:120]))
            else:
                stack.extend((child, depth + 1, f"{where}[{i}]"[:120]) for i, child in enumerate(item))
        elif isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise Unparseable(f"an integer outside 64 bits{_at(where)}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise Unparseable(f"a number that is not finite (NaN, Infinity or out of range){_at(where)}")
        elif allow and isinstance(item, allow):
            continue
        else:
            raise Unparseable(f"a {type(item).__name__}, not a JSON value{_at(where)}")


def dumps_json(value: Any, **kwargs: Any) -> str:
    """json.dumps of a value first checked by check_value (so it cannot recurse without bound); Unparseable."""
    check_value(value)
    return json.dumps(value, **kwargs)


def printable(text: str, limit: int = 200) -> str:
    """`text` cut to `limit` characters and made safe for logs and error bodies (lone surrogates escaped)."""
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


# ------------------------------------------------------------------------------------------------------ helpers


def _at(where: str) -> str:
    return f" at {printable(where, 120)}" if where else ""


def _first_line(exc: BaseException) -> str:
    return printable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 200)


def _text(text: str | bytes, max_bytes: int, *, allow_bom: bool = False) -> str:
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_bytes:
            raise Unparseable(f"larger than {max_bytes} bytes")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unparseable(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    elif not isinstance(text, str):
        raise Unparseable(f"a {type(text).__name__}, not text")
    elif len(text) > max_bytes:  # characters: a cheap first cut before encoding
        raise Unparseable(f"larger than {max_bytes} bytes")
    _check_text(text, "", what="the text")
    if len(text) > max_bytes // 4 and len(text.encode("utf-8")) > max_bytes:
        raise Unparseable(f"larger than {max_bytes} bytes")
    if text.startswith("\ufeff") and not allow_bom:
        raise Unparseable("starts with a byte order mark (U+FEFF): send UTF-8 without one")
    return text


def _check_text(text: str, where: str, what: str = "a string") -> None:
    if "\x00" in text:
        raise Unparseable(f"{what} holds a NUL character{_at(where)}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Unparseable(f"{what} holds a lone surrogate (U+{ord(text[exc.start]):04X}){_at(where)}") from exc


def _scan_depth(text: str, max_depth: int) -> None:
    """Raise when brackets outside strings nest deeper than max_depth (before json recurses into them).

    Strings are skipped as json reads them; an unterminated one leaves its brackets counted, which only
    over-counts text json refuses anyway.
    """
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise Unparseable(f"nested deeper than {max_depth} levels")
        elif token in "]}":
            depth = max(depth - 1, 0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Unparseable(f"duplicate key {printable(key, 60)!r}")
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise Unparseable(f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    if len(digits) > _MAX_INT_DIGITS:
        raise Unparseable(f"an integer of {len(digits)} digits (at most 64 bits)")
    value = int(digits)
    if not INT_MIN <= value <= INT_MAX:
        raise Unparseable("an integer outside 64 bits")
    return value


def _finite_float(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):
        raise Unparseable("a number out of range (it reads as infinity)")
    return value


def _scan_yaml_events(events: Any, max_depth: int, max_nodes: int) -> None:
    """Depth and expanded size from PyYAML's event stream (its parser is iterative, unlike its composer)."""
    import yaml

    sizes: dict[str, int] = {}  # anchor -> expanded nodes of what it names
    open_: list[list[Any]] = []  # [anchor, expanded nodes so far] per open collection
    total = 0

    def add(n: int) -> None:
        nonlocal total
        if open_:
            open_[-1][1] += n
        else:
            total += n
        if total + sum(c[1] for c in open_) > max_nodes:
            raise Unparseable(f"expands to more than {max_nodes} nodes (aliases repeat what they name)")

    for event in events:
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(open_) >= max_depth:
                raise Unparseable(f"nested deeper than {max_depth} levels")
            open_.append([event.anchor, 1])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, count = open_.pop()
            if anchor:
                sizes[anchor] = count
            add(count)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            add(1)
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_):
                raise Unparseable(f"an alias inside what it names (*{printable(str(event.anchor), 60)}: a cycle)")
            add(sizes.get(event.anchor or "", 1))


@lru_cache(maxsize=1)
def _yaml_loader() -> Any:
    """SafeLoader refusing a key written twice in one mapping (keys merged in by `<<` may still be overridden)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise Unparseable(f"duplicate key {printable(str(key_node.value), 60)!r} at line {line}")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader
