"""Pure parts of the status page and of HTTP Basic: the Accept negotiation, the ETag, Basic credentials, the
records' stable fields."""

from __future__ import annotations

import base64
import logging

import pytest

from imagesync.handlers.api import page
from imagesync.platform import auth
from imagesync.runtime import records

CONFIG = auth.AuthConfig(token="tok-not-real")


def basic(user_password: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(user_password).decode()}


def test_basic_takes_the_token_as_the_password_whatever_the_user() -> None:
    assert auth.authenticate(CONFIG, basic(b"anyone:tok-not-real"), "GET", "/", b"", 0) == "basic"
    assert auth.authenticate(CONFIG, basic(b":tok-not-real"), "GET", "/", b"", 0) == "basic"
    for bad in (basic(b"ops:wrong"), basic(b"tok-not-real"), {"authorization": "Basic %%%"}):
        with pytest.raises(auth.CredentialsInvalid):
            auth.authenticate(CONFIG, bad, "GET", "/", b"", 0)
    with pytest.raises(auth.CredentialsInvalid):  # a deployment with only an HMAC secret takes no Basic
        auth.authenticate(auth.AuthConfig(hmac_secret="s"), basic(b"u:s"), "GET", "/", b"", 0)


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser's navigation
        ("application/json", False),
        ("application/json, text/html", False),
        ("text/html;q=0, application/json", False),
        ("", False),
        (None, False),
        ("*/*", False),  # curl: the API's JSON
    ],
)
def test_html_only_when_asked_before_json(accept: str | None, html: bool) -> None:
    assert page.wants_html(accept) is html


def test_etag_names_the_body() -> None:
    tag = page.etag("<p>a</p>")
    assert page.not_modified(tag, "<p>a</p>") and page.not_modified(f'W/{tag}, "x"', "<p>a</p>")
    assert not page.not_modified(tag, "<p>b</p>") and not page.not_modified(None, "<p>a</p>")


def test_records_carry_every_field_never_null_and_refuse_unknown_ones(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="imagesync.records"):
        record = records.emit("request_refused", logging.INFO, "request refused", status=401, code="Auth.Required")
    assert set(record) == {"event", *records.FIELDS["request_refused"]}
    assert record["error"] == "" and record["status"] == 401
    assert caplog.records[-1].__dict__["code"] == "Auth.Required"
    with pytest.raises(TypeError):
        records.emit("request_refused", logging.INFO, "x", stauts=401)
