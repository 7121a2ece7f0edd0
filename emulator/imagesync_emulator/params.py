"""Typed access to an action's JSON parameters, raising the error codes Tencent Cloud uses.

Missing required -> MissingParameter; wrong JSON type -> InvalidParameter; unknown name -> UnknownParameter
(checked by the dispatcher against the action's declared parameter set).
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError, bad_type, bad_value, missing


class Params:
    """Read-only view of the request body with typed getters."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        default: str | None = None,
        max_len: int | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> str | None:
        v = self.data.get(name)
        if v is None:
            if required:
                raise missing(name)
            return default
        if not isinstance(v, str):
            raise bad_type(name, "String")
        if required and v == "":
            raise missing(name)
        if max_len is not None and len(v) > max_len:
            raise bad_value(name, f"longer than {max_len} characters", "InvalidParameterValue.TooLong")
        if choices is not None and v not in choices:
            raise bad_value(name, f"must be one of {', '.join(choices)}")
        return v

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        v = self.data.get(name)
        if v is None:
            if required:
                raise missing(name)
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad_type(name, "Integer")
        if minimum is not None and v < minimum:
            raise bad_value(name, f"must be >= {minimum}")
        if maximum is not None and v > maximum:
            raise bad_value(name, f"must be <= {maximum}")
        return v

    def flag(self, name: str, *, default: bool = False) -> bool:
        v = self.data.get(name)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise bad_type(name, "Boolean")
        return v

    def str_list(self, name: str, *, required: bool = False) -> list[str] | None:
        v = self.data.get(name)
        if v is None:
            if required:
                raise missing(name)
            return None
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise bad_type(name, "Array of String")
        if required and not v:
            raise missing(name)
        return v

    def obj(self, name: str, *, required: bool = False) -> dict | None:
        v = self.data.get(name)
        if v is None:
            if required:
                raise missing(name)
            return None
        if not isinstance(v, dict):
            raise bad_type(name, "Object")
        return v

    def obj_list(
        self, name: str, *, required: bool = False, fields: dict[str, type | tuple[type, ...]] | None = None
    ) -> list[dict] | None:
        """A list of objects; ``fields`` maps member names to their JSON types (checked when present)."""
        v = self.data.get(name)
        if v is None:
            if required:
                raise missing(name)
            return None
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise bad_type(name, "Array of Object")
        if required and not v:
            raise missing(name)
        for i, item in enumerate(v):
            for key, typ in (fields or {}).items():
                val = item.get(key)
                if val is None:
                    continue
                ok = isinstance(val, typ) and not (isinstance(val, bool) and typ is int)
                if typ is list:
                    ok = isinstance(val, list) and all(isinstance(x, str) for x in val)
                if not ok:
                    raise bad_type(f"{name}.{i}.{key}", getattr(typ, "__name__", str(typ)))
        return v


def require_member(name: str, item: dict, key: str) -> Any:
    """A required member of one object of a list parameter."""
    val = item.get(key)
    if val is None or val == "":
        raise missing(f"{name}.{key}")
    return val


def check_unknown(data: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in data:
        if key not in allowed:
            raise ApiError("UnknownParameter", f"The parameter `{key}` is not recognized.")
