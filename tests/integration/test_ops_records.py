"""The operator's records as CLS receives them: the three functions run (copies that succeed, fail and time out; a
hook failing until its completion is dead-lettered; refused requests; sweeps), the single-line JSON their logger
writes is read back, and every field the CLS queries (docs/operations.md) and alarms (deploy/cls/) use must be in
the records of the events they select, with the values they look for seen at least once.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from imagesync.domain.hooks import ShareHook
from imagesync.handlers import completion_hook, copy_request, status_sweep
from imagesync.local import deliver
from imagesync.runtime.records import FIELDS
from tests.conftest import load_event
from tests.integration.test_undeliverable_ends import Shifted

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "records-token-not-real"
TIMER = load_event("timer/every_minute.json")
SQL_WORDS = {
    "select",
    "as",
    "group",
    "by",
    "order",
    "desc",
    "asc",
    "limit",
    "count",
    "avg",
    "max",
    "min",
    "sum",
    "histogram",
    "interval",
    "minute",
    "and",
    "or",
    "not",
    "true",
    "false",
}


def queries() -> list[tuple[str, str]]:
    """(where, query) of every query in docs/operations.md (```cls blocks) and every alarm in deploy/cls/."""
    found = [
        ("docs/operations.md", q.strip())
        for q in re.findall(r"```cls\n(.*?)```", (ROOT / "docs" / "operations.md").read_text(), re.S)
    ]
    for path in sorted((ROOT / "deploy" / "cls").glob("*.json")):
        alarm = json.loads(path.read_text())
        for target in alarm.get("AlarmTargets", []):
            found.append((path.name, target["Query"]))
    return found


def parse(query: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """(events selected, field -> values the search part matches, fields the SQL part reads)."""
    search, _, sql = query.partition("|")
    terms: dict[str, set[str]] = {}
    for key, value in re.findall(r"\b([a-z_]+):(\w+)", search):
        terms.setdefault(key, set()).add(value)
    events = terms.pop("event", set())
    sql = re.sub(r"'[^']*'", "", sql)
    aliases = set(re.findall(r"\bas\s+([a-z_]+)", sql))
    read = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", sql)) - SQL_WORDS - aliases
    return events, terms, {f for f in read if not f.startswith("__")}


@pytest.fixture
def lines(services: Any, emulator: Any) -> Iterator[io.StringIO]:
    """Every JSON line the functions' logger writes during the test (the handler's own stream, swapped)."""
    from imagesync.platform.logs import logger

    services.settings = services.settings.model_copy(update={"api_auth": "required", "api_token": SecretStr(TOKEN)})
    buffer = io.StringIO()
    handler = logger.registered_handler
    old = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        handler.setStream(old)  # type: ignore[attr-defined]


def _post(body: dict[str, Any], token: str | None = TOKEN) -> int:
    event = load_event("http/function_url_create_replication.json")
    event["body"] = json.dumps(body)
    event["headers"] = {k: v for k, v in event["headers"].items() if k.lower() != "authorization"}
    if token:
        event["headers"]["authorization"] = f"Bearer {token}"
    return int(copy_request.main_handler(event, {"request_id": "rec"})["statusCode"])


def _body(image: str, region: str) -> dict[str, Any]:
    return {"source_region": "ap-guangzhou", "image_ids": [image], "destination_regions": [region]}


def _run_everything(services: Any, emulator: Any) -> None:
    emulator.admin.set_copy_duration(1800, 1800)
    services.settings = services.settings.model_copy(
        update={"hooks": [ShareHook(account_ids=["100000000099"])]}  # no such account: fails every delivery
    )
    assert _post(_body("img-5ddkx3gh", "ap-shanghai"), token=None) == 401
    assert _post(_body("img-487zeit5", "ap-shanghai")) == 422  # a public image
    emulator.admin.script_fault("SyncImages", 1, code="InvalidParameterValue.TooLarge", kind="error")
    assert _post(_body("img-8c2rq9tw", "ap-shanghai")) == 202  # fails at its start: replica_ended FAILED
    assert _post(_body("img-5ddkx3gh", "ap-shanghai")) == 202  # succeeds
    services.settings = services.settings.model_copy(update={"copy_timeout_seconds": 600})
    assert _post(_body("img-8c2rq9tw", "ap-beijing")) == 202  # times out
    status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})
    for _ in range(3):
        emulator.admin.advance(900)
        status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})
    on_dead = services.give_up().dead_lettered
    for _ in range(services.settings.queue_max_attempts * 3 + 2):  # the share hook fails until its last try
        deliver(services.queue, completion_hook.main_handler, max_messages=10, retry_delay=0, on_dead=on_dead)
    # an end whose completion is never delivered: the sweep's backstop gives its hook up (Hook.Undelivered)
    services.settings = services.settings.model_copy(update={"copy_timeout_seconds": 7200})
    assert _post(_body("img-5ddkx3gh", "ap-beijing")) == 202
    for _ in range(3):
        emulator.admin.advance(1200)
        status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})
    # the backstop reads the real clock (the link's redelivery window is real time): a sweep hours later
    services.wall = Shifted(timedelta(seconds=services.settings.completion_deadline_seconds + 1))
    assert status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})["undelivered"] == 1


def test_every_field_the_queries_and_alarms_use_is_in_the_records_emitted(
    services: Any, emulator: Any, lines: io.StringIO
) -> None:
    _run_everything(services, emulator)
    records: dict[str, list[dict[str, Any]]] = {}
    for text in lines.getvalue().splitlines():
        line = json.loads(text)  # every line the logger wrote is one JSON object
        if line.get("event") in FIELDS:
            records.setdefault(line["event"], []).append(line)
    assert set(records) == set(FIELDS), f"events never emitted: {set(FIELDS) - set(records)}"
    states = {r["state"] for r in records["replica_ended"]}
    assert states == {"SUCCEEDED", "FAILED", "TIMED_OUT"}
    for event, emitted in records.items():
        for record in emitted:  # stable: every field of its event, no null
            assert set(FIELDS[event]) <= set(record), (event, record)
            assert all(record[f] is not None for f in FIELDS[event])
    assert {r["code"] for r in records["hook_given_up"]} == {"Hook.Undelivered"}
    seen = queries()
    assert len(seen) >= 10
    for where, query in seen:
        events, terms, read = parse(query)
        assert events, f"{where}: {query!r} selects no event"
        selected = [r for e in events for r in records[e]]
        for field in set(terms) | read:
            assert any(field in r for r in selected), f"{where}: {field!r} is in no {sorted(events)} record"
        for field, values in terms.items():
            for value in values:
                assert any(str(r.get(field)).lower() == value.lower() for r in selected), (
                    f"{where}: no {sorted(events)} record with {field}:{value}"
                )


def test_alarm_conditions_name_columns_of_their_queries() -> None:
    for path in sorted((ROOT / "deploy" / "cls").glob("*.json")):
        alarm = json.loads(path.read_text())
        if "AlarmTargets" not in alarm:
            continue
        columns = {i + 1: set(re.findall(r"\bas\s+([a-z_]+)", t["Query"])) for i, t in enumerate(alarm["AlarmTargets"])}
        for number, column in re.findall(r"\$(\d+)\.([a-z_]+)", alarm["Condition"]):
            assert column in columns[int(number)], f"{path.name}: ${number}.{column} is not a column of its query"
        assert set(alarm) >= {"Name", "AlarmTargets", "MonitorTime", "Condition", "TriggerCount", "AlarmPeriod"}


def test_the_index_covers_every_field_the_queries_use() -> None:
    index = json.loads((ROOT / "deploy" / "cls" / "index.json").read_text())
    indexed = {kv["Key"] for kv in index["Rule"]["KeyValue"]["KeyValues"]}
    for where, query in queries():
        events, terms, read = parse(query)
        missing = ({"event"} | set(terms) | read) - indexed
        assert not missing, f"{where}: {sorted(missing)} not in deploy/cls/index.json"
