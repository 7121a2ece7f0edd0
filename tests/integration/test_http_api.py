"""copy_request's HTTP API in-process on the emulator and SQLite: every route, every status, both SCF event shapes,
auth (bearer and HMAC), and the OpenAPI document against what is actually served.

Every call goes through `call()`, which also checks the answer against the OpenAPI document: the status is one the
operation documents and the body validates against the documented model.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from imagesync.handlers import copy_request
from imagesync.handlers.api import models, routes
from imagesync.platform import auth
from imagesync.platform.http import to_rest_event
from imagesync.platform.logs import logger
from tests.conftest import EVENTS, load_event

TOKEN = "example-api-token"  # what the events/http/*.json files that carry credentials send
SECRET = "example-hmac-secret"
BODY = {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
RESPONSE_KEYS = {"statusCode", "headers", "body", "isBase64Encoded"}


@pytest.fixture
def secured(services: Any) -> Any:
    """The services with the API's auth on: a bearer token and an HMAC secret, as a deployment sets them."""
    services.settings = services.settings.model_copy(
        update={"api_auth": "required", "api_token": SecretStr(TOKEN), "api_hmac_secret": SecretStr(SECRET)}
    )
    return services


def _documented(method: str, path: str) -> dict[str, Any] | None:
    """The OpenAPI operation serving (method, path), if any."""
    for spec in routes.routes_for(path):
        if spec.method == method:
            return routes.openapi_spec()["paths"][spec.path][method.lower()]
    return None


def _model_for(schema: dict[str, Any]) -> type[BaseModel]:
    model = getattr(models, schema["$ref"].rsplit("/", 1)[1])  # components are named after the models
    assert issubclass(model, BaseModel)
    return model


def invoke(event: dict[str, Any], request_id: str = "req-test") -> tuple[int, dict[str, str], Any]:
    """The real handler on `event`; checks SCF's response shape and the answer against the OpenAPI document."""
    response = copy_request.main_handler(event, {"request_id": request_id, "time_limit_in_ms": 30000})
    assert set(response) == RESPONSE_KEYS, response
    assert isinstance(response["body"], str) and response["isBase64Encoded"] is False
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response["headers"].items())
    assert response["headers"]["Content-Type"] == "application/json"
    status, body = response["statusCode"], json.loads(response["body"])
    rest = to_rest_event(event)
    operation = _documented(rest["httpMethod"], rest["path"])
    if operation is not None:
        documented = operation["responses"]
        assert str(status) in documented, (rest["httpMethod"], rest["path"], status, body)
        _model_for(documented[str(status)]["content"]["application/json"]["schema"]).model_validate(body)
    else:  # 404 / 405 are answered outside any operation, in the documented error shape
        assert status in (404, 405), (status, body)
        models.ErrorBody.model_validate(body)
    return status, response["headers"], body


def url_event(
    method: str, path: str, body: Any = None, headers: dict[str, Any] | None = None, query: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A Function URL event (lower-case headers, queryString) with the bearer token unless headers say otherwise."""
    event = load_event("http/function_url_health.json")
    event.update(httpMethod=method, path=path, queryString=query or {})
    merged = {**event["headers"], "authorization": f"Bearer {TOKEN}"}
    if body is not None:
        merged["content-type"] = "application/json"
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    merged.update(headers or {})
    event["headers"] = {k: v for k, v in merged.items() if v is not None}  # None: leave the header out
    return event


def nothing_recorded(services: Any, emulator: Any) -> None:
    assert services.store.list_replications()[0] == []
    assert emulator.admin.calls(action="SyncImages") == []


# ------------------------------------------------------------------------------------------------ event shapes


def test_post_function_url_event_is_202_and_starts_the_copy(secured: Any, emulator: Any) -> None:
    status, _, body = invoke(url_event("POST", "/replications", BODY))
    assert status == 202
    assert body["state"] == "COPYING" and body["origin"] == "http"
    stored = secured.store.get_replication(body["id"])
    assert [(r.source_image_id, r.destination_region, r.state.value) for r in stored.replicas] == [
        ("img-5ddkx3gh", "ap-shanghai", "COPYING")
    ]
    assert len(emulator.admin.calls(action="SyncImages")) == 1


def test_legacy_api_gateway_event_with_list_valued_mixed_case_headers(secured: Any) -> None:
    created = invoke(url_event("POST", "/replications", BODY))[2]
    event = load_event("http/apigw_get_replication.json")
    event["path"] = f"/replications/{created['id']}"
    assert event["headers"]["AUTHORIZATION"] == [f"Bearer {TOKEN}"]  # any case, list-valued
    status, _, body = invoke(event)
    assert status == 200
    assert body == json.loads(json.dumps(body)) and body["id"] == created["id"]
    assert body["replicas"][0]["destination_region"] == "ap-shanghai"


def test_legacy_api_gateway_post_with_upper_case_content_type(secured: Any, emulator: Any) -> None:
    event = load_event("http/apigw_create_replication.json")
    event["headers"]["Authorization"] = [f"Bearer {TOKEN}"]
    event["headers"]["CONTENT-TYPE"] = event["headers"].pop("Content-Type")
    status, _, body = invoke(event)
    assert status == 202
    assert [r["state"] for r in body["replicas"]] == ["WAITING_SOURCE"]
    assert secured.store.get_replication(body["id"]).requested_by == "198.51.100.7"


def test_base64_body_is_decoded(secured: Any, emulator: Any) -> None:
    status, _, body = invoke(load_event("http/function_url_create_replication_base64.json"))
    assert status == 202
    assert body["image_ids"] == ["img-8c2rq9tw"] and body["destination_regions"] == ["ap-chengdu"]
    assert emulator.admin.calls(action="SyncImages")[0]["params"]["DestinationRegions"] == ["ap-chengdu"]


def test_bad_base64_body_is_400(secured: Any, emulator: Any) -> None:
    event = load_event("http/function_url_create_replication_base64.json")
    event["body"] = "not base64!"
    status, _, body = invoke(event)
    assert (status, body["error"]["code"]) == (400, "InvalidRequest")
    nothing_recorded(secured, emulator)


# ------------------------------------------------------------------------------------------------------- 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/replications", BODY),
        ("GET", "/replications", None),
        ("GET", "/replications/rep-x", None),
        ("GET", "/openapi.json", None),
    ],
)
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"authorization": None}, "Auth.Required"),
        ({"authorization": "Bearer wrong"}, "Auth.Invalid"),
        ({"authorization": f"Basic {TOKEN}"}, "Auth.Invalid"),
        ({"authorization": "Bearer"}, "Auth.Invalid"),
    ],
)
def test_every_route_but_health_needs_credentials(
    secured: Any, emulator: Any, method: str, path: str, body: Any, headers: dict[str, Any], code: str
) -> None:
    status, response_headers, answer = invoke(url_event(method, path, body, headers))
    assert (status, answer["error"]["code"]) == (401, code)
    assert response_headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in json.dumps(answer)
    nothing_recorded(secured, emulator)


def test_health_needs_no_credentials(secured: Any) -> None:
    assert invoke(url_event("GET", "/health", headers={"authorization": None}))[:3:2] == (200, {"status": "ok"})


def test_unconfigured_deployment_is_closed(services: Any, emulator: Any) -> None:
    services.settings = services.settings.model_copy(update={"api_auth": "required"})  # no token, no secret
    status, _, body = invoke(url_event("POST", "/replications", BODY))
    assert (status, body["error"]["code"]) == (401, "Auth.NotConfigured")
    nothing_recorded(services, emulator)
    assert invoke(url_event("GET", "/health"))[0] == 200


def test_auth_none_opens_the_api_on_purpose(services: Any) -> None:
    assert services.settings.api_auth == "none"  # the shared fixture's choice
    assert invoke(url_event("POST", "/replications", BODY, {"authorization": None}))[0] == 202


def _signed(method: str, path: str, body: str, *, at: float | None = None, secret: str = SECRET) -> dict[str, Any]:
    timestamp = str(int(time.time() if at is None else at))
    signature = auth.sign(secret, timestamp, method, path, body.encode())
    event = url_event(
        method,
        path,
        body or None,
        {"authorization": None, "X-Imagesync-Signature": signature, "X-IMAGESYNC-TIMESTAMP": timestamp},
    )
    return event


def test_hmac_signature_is_accepted(secured: Any, emulator: Any) -> None:
    status, _, body = invoke(_signed("POST", "/replications", json.dumps(BODY)))
    assert status == 202
    assert secured.store.get_replication(body["id"]) is not None
    status, _, page = invoke(_signed("GET", "/replications", ""))
    assert status == 200 and [r["id"] for r in page["items"]] == [body["id"]]


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("stale", "Auth.SignatureExpired"),
        ("future", "Auth.SignatureExpired"),
        ("body", "Auth.Invalid"),
        ("path", "Auth.Invalid"),
        ("secret", "Auth.Invalid"),
        ("timestamp", "Auth.Invalid"),
    ],
)
def test_bad_hmac_signatures_are_401(secured: Any, emulator: Any, tamper: str, code: str) -> None:
    raw = json.dumps(BODY)
    at = {"stale": time.time() - 301, "future": time.time() + 301}.get(tamper)
    event = _signed("POST", "/replications", raw, at=at, secret="other" if tamper == "secret" else SECRET)
    if tamper == "path":  # signed for another path
        event["headers"]["X-Imagesync-Signature"] = auth.sign(
            SECRET, event["headers"]["X-IMAGESYNC-TIMESTAMP"], "POST", "/replications/other", raw.encode()
        )
    if tamper == "body":
        event["body"] = raw.replace("ap-shanghai", "ap-beijing")
    if tamper == "timestamp":
        event["headers"]["X-IMAGESYNC-TIMESTAMP"] = "yesterday"
    status, _, body = invoke(event)
    assert (status, body["error"]["code"]) == (401, code)
    nothing_recorded(secured, emulator)


def test_signature_refused_when_only_a_token_is_configured(secured: Any, emulator: Any) -> None:
    secured.settings = secured.settings.model_copy(update={"api_hmac_secret": SecretStr("")})
    status, _, body = invoke(_signed("POST", "/replications", json.dumps(BODY)))
    assert (status, body["error"]["code"]) == (401, "Auth.Invalid")
    nothing_recorded(secured, emulator)


def test_authenticate_contract() -> None:
    config = auth.AuthConfig(token=TOKEN, hmac_secret=SECRET)
    now = 1_800_000_000.0
    assert auth.authenticate(config, {"authorization": f"bearer {TOKEN}"}, "GET", "/x", b"", now) == "bearer"
    signed = {
        "x-imagesync-signature": auth.sign(SECRET, "1800000100", "get", "/x", b"{}"),
        "x-imagesync-timestamp": "1800000100",
    }
    assert auth.authenticate(config, signed, "GET", "/x", b"{}", now) == "hmac"
    assert signed["x-imagesync-signature"].startswith("sha256=") and len(signed["x-imagesync-signature"]) == 71
    with pytest.raises(auth.SignatureExpired):
        auth.authenticate(config, signed, "GET", "/x", b"{}", now + 401)
    with pytest.raises(auth.CredentialsInvalid):  # non-ASCII never reaches a str comparison
        auth.authenticate(config, {"authorization": "Bearer tökén"}, "GET", "/x", b"", now)
    assert auth.authenticate(auth.AuthConfig(mode="none"), {}, "GET", "/x", b"", now) == "anonymous"


# ------------------------------------------------------------------------------------------- 400 413 415 422


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ("{not json", None),
        ("\xff\xfe garbage", None),
        ("[]", ["body"]),
        (json.dumps({**BODY, "image_ids": ["bogus"], "extra": 1}), ["body.image_ids.0", "body.extra"]),
        (json.dumps({"source_region": "ap-guangzhou"}), ["body.image_ids", "body.destination_regions"]),
        ("", ["body"]),
    ],
)
def test_malformed_body_is_400_with_field_errors(
    secured: Any, emulator: Any, raw: str, fields: list[str] | None
) -> None:
    status, _, body = invoke(url_event("POST", "/replications", raw))
    assert (status, body["error"]["code"]) == (400, "InvalidRequest")
    if fields is None:
        assert "not valid JSON" in body["error"]["message"]
    else:
        assert [f["field"] for f in body["error"]["details"]["fields"]] == fields
    nothing_recorded(secured, emulator)


def test_body_over_the_limit_is_413(secured: Any, emulator: Any) -> None:
    secured.settings = secured.settings.model_copy(update={"api_max_body_bytes": 200})
    small = {**BODY, "name": "n" * 40}
    assert invoke(url_event("POST", "/replications", small))[0] == 202
    big = {**BODY, "image_ids": ["img-8c2rq9tw"], "name": "n" * 200}
    status, _, body = invoke(url_event("POST", "/replications", big))
    assert (status, body["error"]["code"]) == (413, "Request.TooLarge")
    assert body["error"]["details"] == {"limit": 200}
    assert len(secured.store.list_replications()[0]) == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_415(secured: Any, emulator: Any, content_type: str | None) -> None:
    status, _, body = invoke(url_event("POST", "/replications", json.dumps(BODY), {"content-type": content_type}))
    assert (status, body["error"]["code"]) == (415, "Request.UnsupportedMediaType")
    nothing_recorded(secured, emulator)


def test_business_rule_is_422_with_its_code(secured: Any, emulator: Any) -> None:
    event = load_event("http/function_url_cross_border_rejected.json")
    event["headers"]["Authorization"] = f"Bearer {TOKEN}"
    status, _, body = invoke(event)
    assert (status, body["error"]["code"]) == (422, "Region.CrossBorderNotAllowed")
    nothing_recorded(secured, emulator)


def test_copy_in_flight_is_409_with_the_existing_replication(secured: Any, emulator: Any) -> None:
    first = invoke(url_event("POST", "/replications", BODY))[2]
    status, _, body = invoke(url_event("POST", "/replications", {**BODY, "destination_regions": ["ap-shanghai"]}))
    assert (status, body["error"]["code"]) == (409, "Replication.AlreadyInFlight")
    assert body["replication"]["id"] == first["id"]
    assert len(secured.store.list_replications()[0]) == 1 and len(emulator.admin.calls(action="SyncImages")) == 1


def test_dry_run_is_200(secured: Any, emulator: Any) -> None:
    status, _, body = invoke(url_event("POST", "/replications", {**BODY, "dry_run": True}))
    assert status == 200 and body["dry_run"] is True
    assert secured.store.list_replications()[0] == []


# ----------------------------------------------------------------------------------------------- 404 405 500


def test_unknown_replication_and_unknown_path_are_404(secured: Any) -> None:
    status, _, body = invoke(url_event("GET", "/replications/rep-000000000000"))
    assert (status, body["error"]["code"]) == (404, "Replication.NotFound")
    status, _, body = invoke(url_event("GET", "/nope"))
    assert (status, body["error"]["code"]) == (404, "Route.NotFound")
    status, _, body = invoke(url_event("GET", "/replications/a/b"))
    assert (status, body["error"]["code"]) == (404, "Route.NotFound")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/replications", "GET, POST"),
        ("PUT", "/replications/rep-x", "GET"),
        ("POST", "/health", "GET"),
        ("PATCH", "/openapi.json", "GET"),
    ],
)
def test_known_path_with_another_method_is_405(secured: Any, emulator: Any, method: str, path: str, allow: str) -> None:
    status, headers, body = invoke(url_event(method, path, BODY))
    assert (status, body["error"]["code"], headers["Allow"]) == (405, "Method.NotAllowed", allow)
    nothing_recorded(secured, emulator)


def _logged_errors(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """ERROR records as the function's JSON log lines (powertools' formatter, as SCF ships them to CLS)."""
    formatter = logger.registered_formatter
    return [json.loads(formatter.format(r)) for r in caplog.records if r.levelname == "ERROR"]


def test_unexpected_failure_is_500_without_internals_and_logs_the_request_id(
    secured: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("connection to postgresql://imagesync:hunter2@db.internal failed")

    monkeypatch.setattr(secured.store, "get_replication", broken)  # a seam: the store failing
    status, _, body = invoke(url_event("GET", "/replications/rep-000000000000"), request_id="scf-req-500")
    assert (status, body) == (
        500,
        {"error": {"code": "InternalError", "message": "internal error", "request_id": "scf-req-500"}},
    )
    [failure] = _logged_errors(caplog)
    assert failure["request_id"] == "scf-req-500" and "hunter2" in failure["exception"]


def test_failure_inside_an_error_handler_is_still_a_500(
    secured: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    invoke(url_event("POST", "/replications", BODY))

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("db.internal:5432 gone")

    monkeypatch.setattr(secured.store, "get_replication", broken)  # the 409 handler reads the existing one
    event = url_event("POST", "/replications", BODY)
    event["headers"]["x-scf-request-id"] = "http-req-9"
    status, _, body = invoke(event, request_id="local")  # no SCF id: the HTTP request's id is used
    assert (status, body["error"]["request_id"]) == (500, "http-req-9")
    assert "db.internal" not in json.dumps(body)
    [failure] = _logged_errors(caplog)
    assert failure["request_id"] == "http-req-9" and "db.internal" in failure["exception"]


# ----------------------------------------------------------------------------------------- GET /replications


def test_list_filters_and_pages(secured: Any, emulator: Any) -> None:
    emulator.admin.set_rate_limits(False)
    ids = []
    for image, region in [
        ("img-5ddkx3gh", "ap-shanghai"),
        ("img-8c2rq9tw", "ap-beijing"),
        ("img-5ddkx3gh", "ap-chengdu"),
    ]:
        ids.append(
            invoke(url_event("POST", "/replications", {**BODY, "image_ids": [image], "destination_regions": [region]}))[
                2
            ]["id"]
        )
        emulator.admin.advance(1)  # newest first: each one a second later on the (frozen) emulated clock
    # the third waits: its source is busy with the first copy (a source copies one SyncImages at a time)
    status, _, copying = invoke(load_event("http/function_url_list_replications.json"))  # state=COPYING, limit=2
    assert status == 200 and [r["id"] for r in copying["items"]] == [ids[1], ids[0]]
    first = invoke(url_event("GET", "/replications", query={"limit": "2"}))[2]
    assert [r["id"] for r in first["items"]] == [ids[2], ids[1]] and first["next_cursor"]
    second = invoke(url_event("GET", "/replications", query={"limit": "2", "cursor": first["next_cursor"]}))[2]
    assert [r["id"] for r in second["items"]] == [ids[0]] and second["next_cursor"] is None
    waiting = invoke(url_event("GET", "/replications", query={"state": "WAITING_SOURCE"}))[2]
    assert [r["id"] for r in waiting["items"]] == [ids[2]]
    by_image = invoke(url_event("GET", "/replications", query={"image_id": "img-8c2rq9tw"}))[2]
    assert [r["id"] for r in by_image["items"]] == [ids[1]]
    by_region = invoke(url_event("GET", "/replications", query={"region": "ap-chengdu"}))[2]
    assert [r["id"] for r in by_region["items"]] == [ids[2]]
    assert invoke(url_event("GET", "/replications", query={"state": "SUCCEEDED"}))[2] == {
        "items": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": "DONE"}, "query.state"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "x"}, "query.limit"),
        ({"image_id": "nope"}, "query.image_id"),
        ({"cursor": "garbage"}, "query.cursor"),
        ({"status": "COPYING"}, "query.status"),
    ],
)
def test_bad_query_is_400(secured: Any, query: dict[str, str], field: str) -> None:
    status, _, body = invoke(url_event("GET", "/replications", query=query))
    assert (status, body["error"]["code"]) == (400, "InvalidRequest")
    assert [f["field"] for f in body["error"]["details"]["fields"]] == [field]


# -------------------------------------------------------------------------------------------------- OpenAPI


def test_openapi_document_is_served_and_valid(secured: Any) -> None:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

    status, _, doc = invoke(url_event("GET", "/openapi.json"))
    assert status == 200 and doc == json.loads(json.dumps(routes.openapi_spec()))
    OpenAPI.model_validate(doc)  # the OpenAPI 3 object model powertools ships: structure and field types
    assert doc["openapi"] == "3.1.0"
    # the API's own description (a query parameter's description once took its place)
    assert doc["info"]["description"].startswith("Copies Tencent Cloud CVM custom images across regions.")

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    found = refs(doc)
    assert found and all(r.removeprefix("#/components/schemas/") in doc["components"]["schemas"] for r in found)
    ids = [op["operationId"] for path in doc["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    post = doc["paths"]["/replications"]["post"]
    assert set(post["responses"]) == {"200", "202", "400", "401", "409", "413", "415", "422", "500", "503"}
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CopyRequestBody"
    }
    listed = {p["name"]: p for p in doc["paths"]["/replications"]["get"]["parameters"]}
    assert set(listed) == {"state", "image_id", "region", "limit", "cursor"}
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert doc["components"]["schemas"]["CopyRequestBody"]["additionalProperties"] is False


def test_every_served_route_is_documented_and_vice_versa() -> None:
    served = {
        (r.method, r.openapi_path)
        for r in routes.app._static_routes + routes.app._dynamic_routes  # noqa: SLF001
    }
    documented = {(m.upper(), p) for p, ops in routes.openapi_spec()["paths"].items() for m in ops}
    assert (
        served
        == documented
        == {
            ("POST", "/replications"),
            ("GET", "/replications"),
            ("GET", "/replications/{replication_id}"),
            ("GET", "/health"),
            ("GET", "/openapi.json"),
            ("POST", "/replications/{replication_id}/retry"),
            ("GET", "/"),
        }
    )


def test_base64_request_round_trip_helper() -> None:
    encoded = base64.b64encode(b'{"a": 1}').decode()
    from imagesync.platform.http import body_bytes

    assert body_bytes(encoded, True) == b'{"a": 1}' and body_bytes("x", False) == b"x" and body_bytes(None, True) == b""


EXPECTED_STATUS = {
    "apigw_create_replication.json": 202,
    "apigw_get_replication.json": 404,  # names a replication this fresh state table does not hold
    "function_url_create_replication.json": 202,
    "function_url_create_replication_base64.json": 202,
    "function_url_cross_border_rejected.json": 422,
    "function_url_health.json": 200,
    "function_url_list_replications.json": 200,
}


@pytest.mark.parametrize("name", sorted(p.name for p in (EVENTS / "http").glob("*.json")))
def test_every_http_event_file(secured: Any, name: str) -> None:
    """copy_request on each events/http file, authenticated as a caller would be; every file has its outcome."""
    event = load_event(f"http/{name}")
    event.setdefault("headers", {})["Authorization"] = f"Bearer {TOKEN}"
    status, _, _ = invoke(event)
    assert status == EXPECTED_STATUS[name]
