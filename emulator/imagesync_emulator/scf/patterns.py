"""EventBridge event patterns (Tencent's "事件模式", 1359/56084, the same model as AWS's): a pattern is a JSON object
whose leaves are LISTS of allowed values; an event matches when every key of the pattern matches. A value in the
list is a literal (compared with ==, numbers by value) or a rule: {"prefix": s}, {"suffix": s}, {"anything-but": v or
[v...]}, {"exists": bool}, {"numeric": [op, n, op, n...]}. An event field holding a list matches when one element does.
"""

from __future__ import annotations

import operator
from typing import Any

_MISSING = object()
_NUMERIC_OPS = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_RULES = ("prefix", "suffix", "anything-but", "exists", "numeric")


class PatternError(ValueError):
    """The pattern is not valid (EventBridge answers InvalidParameterValue.EventPattern)."""


def validate(pattern: Any, path: str = "") -> None:
    if not isinstance(pattern, dict):
        raise PatternError(f"the pattern{(' at ' + path) if path else ''} must be a JSON object")
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            validate(value, where)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and (len(item) != 1 or next(iter(item)) not in _RULES):
                    raise PatternError(f"{where}: unknown rule {item}")
        else:
            raise PatternError(f"{where}: a pattern's values are lists or objects")


def _literal(allowed: Any, value: Any) -> bool:
    if isinstance(allowed, bool) or isinstance(value, bool):
        return allowed is value
    return allowed == value


def _one(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return value is not _MISSING and _literal(rule, value)
    ((name, arg),) = rule.items()
    if name == "exists":
        return (value is not _MISSING) == bool(arg)
    if value is _MISSING:
        return False
    if name == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if name == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if name == "anything-but":
        banned = arg if isinstance(arg, list) else [arg]
        return not any(_literal(b, value) for b in banned)
    if name == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        pairs = zip(arg[0::2], arg[1::2], strict=False)
        return all(_NUMERIC_OPS[op](value, n) for op, n in pairs)
    return False


def _leaf(rules: list, value: Any) -> bool:
    candidates = value if isinstance(value, list) else [value]
    return any(_one(rule, v) for rule in rules for v in candidates) if candidates else False


def matches(pattern: dict, event: Any) -> bool:
    for key, rules in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rules, dict):
            if not isinstance(value, dict) or not matches(rules, value):
                return False
        elif not _leaf(rules, value):
            return False
    return True
