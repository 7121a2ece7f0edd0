"""Hypothesis strategies shared by the fuzz tests: arbitrary JSON, and real-shaped documents mutated.

Mutating the project's own real-shaped files (events/, examples/) reaches far deeper than random JSON: most of a
mutated event is still valid, so the one bad field meets the code that reads it. Keys are drawn partly from the
names the trigger shapes use (docs/facts.md#events), so random objects also look like this or that trigger.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

#: field names of the trigger shapes and of our payloads, so generated objects hit the envelopes' branches
KEYS = [
    "Type",
    "type",
    "TriggerName",
    "Time",
    "time",
    "Message",
    "Records",
    "CMQ",
    "cmq",
    "Ckafka",
    "ckafka",
    "msgBody",
    "msgTag",
    "msgId",
    "topicOwner",
    "topicName",
    "msgKey",
    "topic",
    "partition",
    "offset",
    "EventList",
    "specversion",
    "id",
    "source",
    "subject",
    "subjuect",
    "data",
    "region",
    "resource",
    "eventName",
    "eventRegion",
    "errorCode",
    "apiErrorCode",
    "requestParameters",
    "ImageName",
    "userIdentity",
    "resources",
    "resourceName",
    "message_id",
    "body",
    "receipt",
    "attempts",
    "httpMethod",
    "path",
    "headers",
    "queryString",
    "requestContext",
    "isBase64Encoded",
    "replica_id",
    "state",
    "ended_at",
    "reconcile",
    "batch",
    "rules",
    "name",
    "selector",
    "destinations",
    "copy",
    "hooks",
    "source_regions",
    "name_glob",
    "name_regex",
    "tags",
    "enabled",
    "name_template",
    "encrypt",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "",
            "0",
            "Timer",
            "timer",
            "queue",
            "topic",
            "CreateImage",
            "cvm:CloudEvent:ApiCall",
            "ap-guangzhou",
            "ap-shanghai",
            "img-5ddkx3gh",
            "SUCCEEDED",
            "{}",
            "[]",
            '{"a": 1}',
            "1767225600000",
            "2026-11-26T12:00:00Z",
            "not json {",
        ]
    )
)
keys = st.sampled_from(KEYS) | st.text(max_size=12)

json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=25,
)
json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(keys, json_values, max_size=8)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `value` (dict keys and list indexes), the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


@st.composite
def mutated(draw: st.DrawFn, document: Any, max_mutations: int = 3) -> Any:
    """`document` with 1..max_mutations changes: a value replaced, a key dropped or added, a subtree JSON-encoded
    into a string (SCF sends some objects as strings) or a string decoded, a list emptied or its item repeated."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, max_mutations))):
        path = draw(st.sampled_from(_paths(doc)))
        target = _get(doc, path)
        action = draw(st.sampled_from(["replace", "drop", "add", "stringify", "decode", "list"]))
        if not path:  # the root: replace it, or add a key to it
            if action == "add" and isinstance(doc, dict):
                doc[draw(keys)] = draw(json_values)
            elif action == "replace":
                doc = draw(json_values)
            continue
        parent, last = _get(doc, path[:-1]), path[-1]
        if action == "replace":
            parent[last] = draw(json_values)
        elif action == "drop":
            del parent[last]
        elif action == "add" and isinstance(target, dict):
            target[draw(keys)] = draw(json_values)
        elif action == "stringify":
            parent[last] = json.dumps(target)
        elif action == "decode" and isinstance(target, str):
            try:
                parent[last] = json.loads(target)
            except ValueError:
                parent[last] = target[: draw(st.integers(0, len(target)))]  # or cut it short
        elif action == "list" and isinstance(target, list):
            parent[last] = [] if not target or draw(st.booleans()) else target + target[:1]
    return doc


#: An opening token of a nesting level -> what closes it (arrays, objects, and both inside real field names).
OPENERS = {"[": "]", '{"a":': "}", "[1,": "]", '{"image_ids":': "}", '{"msgBody":': "}", '{"reconcile":': "}"}
#: Documents with one field to fill ("@"), so the nesting also sits inside an otherwise valid payload.
WRAPPERS = [
    "@",
    '{"source_region": "ap-guangzhou", "image_ids": @, "destination_regions": ["ap-shanghai"]}',
    '{"reconcile": "force", "batch": @}',
    '{"ImageName": "web", "InstanceId": @}',
    '{"message_id": "msg-1", "replica_id": @}',
    '{"rules": [{"name": "r", "selector": @}]}',
]


@st.composite
def deep_json_texts(draw: st.DrawFn, min_depth: int = 65, max_depth: int = 20_000) -> str:
    """JSON text nested past the loaders' 64 levels (up to 20,000, far past Python's recursion limit): a repeated
    pattern of array/object openers, a leaf, the closers, inside a real-shaped document; sometimes cut short or
    with its closers missing. Every such text must be refused (too deep, or not JSON at all)."""
    pattern = draw(st.lists(st.sampled_from(sorted(OPENERS)), min_size=1, max_size=4))
    depth = draw(st.integers(min_depth, max_depth))
    opens = [pattern[i % len(pattern)] for i in range(depth)]
    leaf = draw(st.sampled_from(["1", '"x"', "null", "[]", "{}", "", "1e999999", '"\\ud800"']))
    closers = "".join(OPENERS[o] for o in reversed(opens))
    if draw(st.booleans()):
        closers = closers[: draw(st.integers(0, len(closers)))]
    return draw(st.sampled_from(WRAPPERS)).replace("@", "".join(opens) + leaf + closers)


@st.composite
def deep_values(draw: st.DrawFn, min_depth: int = 65, max_depth: int = 20_000) -> Any:
    """A Python value nested past 64 levels, as an SCF runtime could hand it over already decoded (built in a
    loop: no recursion)."""
    depth = draw(st.integers(min_depth, max_depth))
    kinds = draw(st.lists(st.sampled_from(["list", "dict", "pair"]), min_size=1, max_size=3))
    value: Any = draw(st.sampled_from([None, 1, "x", [], {}]))
    for i in range(depth):
        kind = kinds[i % len(kinds)]
        value = [value] if kind == "list" else {"a": value} if kind == "dict" else [1, {"data": value}]
    return value
