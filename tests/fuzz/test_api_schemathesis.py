"""schemathesis against the served OpenAPI document, driving copy_request's REAL handler through SCF events.

The document is fetched from GET /openapi.json through the handler itself; every documented operation is then fed
generated requests, valid (positive) and invalid (negative), through `ScfWsgiApp` (request -> Function URL event ->
`main_handler` -> response), on the emulator and a real SQLite state table. Checks on every answer: no 5xx, the
status is one the operation documents, the body validates against the documented schema, Content-Type and
documented headers conform, and an operation that declares auth refuses the same request without or with bad
credentials (`ignored_auth`). Every 4xx also carries its stable error code.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from imagesync.domain import regions
from imagesync.handlers import copy_request
from imagesync.handlers.api import models, routes
from tests.fuzz.scf_wsgi import ScfWsgiApp

TOKEN = "fuzz-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
    ignored_auth,
]
#: the default world's images in ap-guangzhou: custom NORMAL, CREATING, CREATEFAILED, another account's, public
IMAGES = [
    "img-5ddkx3gh",
    "img-8c2rq9tw",
    "img-2hxv7lqe",
    "img-9fjm4wza",
    "img-0ldcr7ya",
    "img-sh4red01",
    "img-487zeit5",
]
#: examples per operation and generation mode: 6 operations x 2 modes x this, in well under a minute
MAX_EXAMPLES = 60


@pytest.fixture
def app(services: Any) -> ScfWsgiApp:
    """copy_request as a WSGI app, its API closed by a bearer token as a deployment runs it."""
    services.settings = services.settings.model_copy(update={"api_auth": "required", "api_token": SecretStr(TOKEN)})
    return ScfWsgiApp(copy_request.main_handler)


def _schema(app: ScfWsgiApp) -> Any:
    config = SchemathesisConfig.from_dict({"seed": 7, "auth": {"openapi": {"bearerAuth": {"bearer": TOKEN}}}})
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config, headers=AUTH)


def _realistic(body: dict[str, Any], data: st.DataObject) -> None:
    """Most generated regions and ids exist nowhere (422 Region.Unknown): swap in real ones, still schema-valid, so
    the requests also reach the image checks, SyncImages, 202, 200 (dry run) and 409 (a copy already in flight)."""
    if data.draw(st.integers(0, 3), label="realistic") == 3:  # a quarter stay as generated
        return
    known = sorted(regions.KNOWN)
    body["source_region"] = data.draw(st.sampled_from(["ap-guangzhou", *known]), label="source_region")
    images = st.lists(st.sampled_from(IMAGES), min_size=1, max_size=3, unique=True)
    destinations = st.lists(st.sampled_from(["ap-shanghai", "ap-beijing", *known]), min_size=1, max_size=3, unique=True)
    body["image_ids"] = data.draw(images, label="image_ids")
    body["destination_regions"] = data.draw(destinations, label="destinations")


def _has_input(operation: Any) -> bool:
    return any(len(group) for group in (operation.path_parameters, operation.query, operation.headers, operation.body))


def _error_code(answer: dict[str, Any]) -> str:
    if answer["headers"].get("Content-Type", "").startswith("text/html"):  # the status page's 400: code in the page
        found = re.search(r'id="error" data-code="([\w.]+)"', answer["body"])
        assert found, answer["body"][:500]
        return found.group(1)
    body = json.loads(answer["body"])
    models.ErrorBody.model_validate({"error": body["error"]})  # the documented error shape, with its code
    return str(body["error"]["code"])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_operation_conforms_to_the_document(
    app: ScfWsgiApp, services: Any, emulator: Any, mode: GenerationMode
) -> None:
    schema = _schema(app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the operation that serves the document it was loaded from (/openapi.json)
    served = {(spec.method, spec.path) for spec in routes.ROUTES if spec.path != "/openapi.json"}
    assert {(op.method.upper(), op.path) for op in operations} == served

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_input(operation):
            continue  # GET /health takes nothing: there is nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any, data: st.DataObject) -> None:
            if mode is GenerationMode.POSITIVE and case.method == "POST" and isinstance(case.body, dict):
                _realistic(case.body, data)
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        run()

    assert app.answers, "no request reached the handler"
    accepted: set[str] = set()
    for event, answer in app.answers:
        status = answer["statusCode"]
        assert status < 500, (event, answer)
        if status >= 400:
            assert _error_code(answer)
        elif event["httpMethod"] == "POST" and status == 202:
            accepted.add(json.loads(answer["body"])["id"])
    # the side effect: exactly the accepted requests were recorded, and only their images were copied
    stored = {r.id for r in services.store.list_replications(limit=100)[0]}
    assert stored == accepted
    copied = {i for call in emulator.admin.calls(action="SyncImages") for i in call["params"]["ImageIds"]}
    images = {i for rid in accepted for i in services.store.get_replication(rid).image_ids}
    assert copied <= images
    if mode is GenerationMode.NEGATIVE:
        assert not accepted and not copied, "an invalid request was acted on"
    else:
        assert accepted and copied, "no generated request got as far as a copy"
