"""The one error type every layer of the emulator raises: it becomes the Tencent Cloud error envelope."""

from __future__ import annotations


class ApiError(Exception):
    """An API error answered as ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``.

    ``code`` is the exact Tencent Cloud error code (e.g. ``InvalidImageId.NotFound``).
    """

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message or code


def missing(name: str) -> ApiError:
    """MissingParameter for a required parameter or header."""
    return ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")


def bad_type(name: str, expected: str) -> ApiError:
    """InvalidParameter for a parameter of the wrong JSON type."""
    return ApiError("InvalidParameter", f"The value type of parameter `{name}` is not valid: expected {expected}.")


def bad_value(name: str, why: str, code: str = "InvalidParameterValue") -> ApiError:
    """InvalidParameterValue (or a sub-code) for a parameter of the right type but an unusable value."""
    return ApiError(code, f"The value of parameter `{name}` is not valid: {why}.")
