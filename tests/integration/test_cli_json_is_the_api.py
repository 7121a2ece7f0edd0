"""The CLI's --json and the HTTP API print one document per replication: the same response model serves both
(handlers/api/models.py), so `copy --json`, `status ID --json` and `status --json` equal what the API answers for
the same replications, hook runs and ETA included. The CLI runs in-process on the same services as the handler."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from imagesync import cli
from imagesync.domain.hooks import TagHook
from imagesync.handlers import completion_hook, status_sweep
from imagesync.local import deliver
from tests.conftest import load_event
from tests.integration.test_http_api import invoke, url_event


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _sweep() -> None:
    status_sweep.main_handler(load_event("timer/every_minute.json"), {"time_limit_in_ms": 30000})


def test_cli_json_and_the_api_answer_the_same_document(services: Any, emulator: Any) -> None:
    services.settings = services.settings.model_copy(update={"uin": "100000000001", "hooks": [TagHook()]})
    emulator.admin.set_copy_duration(1200, 1200)

    copied = _cli("copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to", "ap-shanghai", "--json")
    status, _, page = invoke(url_event("GET", "/replications"))
    assert status == 200 and page["items"] == [copied]  # as created: no hooks loaded, no ETA yet
    assert "hooks" not in copied["replicas"][0] and copied["replicas"][0]["eta"] is None

    emulator.admin.advance(45 * 60)
    _sweep()
    assert deliver(services.queue, completion_hook.main_handler, max_messages=1) == {"delivered": 1, "failed": 0}
    shown = _cli("status", copied["id"], "--json")
    status, _, body = invoke(url_event("GET", f"/replications/{copied['id']}"))
    assert status == 200 and shown == body
    assert shown["state"] == "SUCCEEDED"
    assert [(h["hook"], h["status"]) for h in shown["replicas"][0]["hooks"]] == [("tag", "done")]

    status, _, posted = invoke(
        url_event(
            "POST",
            "/replications",
            {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-beijing"]},
        )
    )
    assert status == 202
    emulator.admin.advance(600)
    _sweep()
    listed = _cli("status", "--json")
    status, _, page = invoke(url_event("GET", "/replications"))
    assert status == 200 and listed == page["items"]
    assert [r["id"] for r in listed] == [posted["id"], copied["id"]]  # newest first
    copying = listed[0]["replicas"][0]
    assert copying["state"] == "COPYING" and copying["sync_percent"] and copying["eta"] is not None
