"""Replication rules: every selector, validation with clear messages and a stable code, and the plan (pure)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from imagesync.domain.hooks import EncryptHook
from imagesync.domain.models import SourceImage
from imagesync.domain.rules import RulesInvalid, loads_rules, parse_rules, plan_copies

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def image(name: str = "web-base-2026", region: str = "ap-guangzhou", **kw: Any) -> SourceImage:
    fields: dict[str, Any] = {
        "image_id": "img-5ddkx3gh",
        "region": region,
        "name": name,
        "image_type": "PRIVATE_IMAGE",
        "state": "NORMAL",
        "size_gb": 20,
        "created_time": "2026-11-26T11:00:00Z",
        **kw,
    }
    return SourceImage(**fields)


def rule(selector: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "name": kw.pop("name", "r1"),
        "selector": {"source_regions": ["ap-guangzhou"], **(selector or {})},
        "destinations": kw.pop("destinations", ["ap-shanghai"]),
        **kw,
    }


def selects(selector: dict[str, Any], img: SourceImage) -> bool:
    return bool(parse_rules([rule(selector)]).matching(img))


@pytest.mark.parametrize(
    ("selector", "img", "expected"),
    [
        ({}, image(), True),
        ({}, image(region="ap-beijing"), False),  # source_regions
        ({"name_glob": "web-*"}, image(), True),
        ({"name_glob": "web-*"}, image("api-base"), False),
        ({"name_glob": "WEB-*"}, image(), False),  # case-sensitive, like the names themselves
        ({"name_glob": "*-20??"}, image(), True),
        ({"name_regex": r"^web-\w+-\d{4}$"}, image(), True),
        ({"name_regex": r"^api-"}, image(), False),
        ({"name_regex": "base"}, image(), True),  # searched, not anchored
        ({"tags": {"team": "web"}}, image(tags={"team": "web", "env": "prod"}), True),
        ({"tags": {"team": "web"}}, image(tags={"team": "api"}), False),
        ({"tags": {"team": "web", "env": "prod"}}, image(tags={"team": "web"}), False),
        ({"tag_keys": ["env"]}, image(tags={"env": ""}), True),
        ({"tag_keys": ["env"]}, image(tags={"team": "web"}), False),
        ({"image_family": "golden"}, image(family="golden"), True),
        ({"image_family": "golden"}, image(family="silver"), False),
        ({"image_family": "golden"}, image(), False),
        (
            {"name_glob": "web-*", "tags": {"team": "web"}, "tag_keys": ["env"], "image_family": "golden"},
            image(tags={"team": "web", "env": "x"}, family="golden"),
            True,
        ),
    ],
)
def test_each_selector(selector: dict[str, Any], img: SourceImage, expected: bool) -> None:
    assert selects(selector, img) is expected


def test_disabled_rule_selects_nothing() -> None:
    assert parse_rules([rule(enabled=False)]).matching(image()) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([rule(), rule()], "rule name(s) ['r1'] used twice"),
        ([rule({"name_glob": "a*", "name_regex": "a"})], "rules[0] (r1).selector: give name_glob or name_regex"),
        ([rule({"name_regex": "("})], "not a valid regular expression"),
        ([rule({"source_regions": []})], "selector.source_regions"),
        ([rule({"source_regions": ["Guangzhou!"]})], "selector.source_regions[0]"),
        ([rule(destinations=["ap-guangzhou"])], "every destination is the source region"),
        ([rule(destinations=["ap-shanghai", "ap-shanghai"])], "a destination region is named twice"),
        ([rule(copy={"name_template": "{nam}"})], "unknown placeholder(s) ['nam']"),
        ([rule(copy={"name_template": "x" * 50 + "-{destination}"})], "renders to 67 characters before any name"),
        (
            [rule(copy={"encrypt": {"ap-beijing": "4e8ad5b1-3c3d-4c1f-9d43-2f3a9e1b7c10"}})],
            "copy.encrypt names region(s) ['ap-beijing'] that are not destinations",
        ),
        ([rule(copy={"encrypt": {"ap-shanghai": "not a key"}})], "is not a KMS key id"),
        ([rule(hooks=[{"type": "tag"}, {"type": "tag"}])], "hook name(s) ['tag'] used twice"),
        ([rule(hooks=[{"type": "nope"}])], "hooks[0]"),
        ([rule(surprise=1)], "rules[0] (r1).surprise: Extra inputs are not permitted"),
        ([rule(since="2026-01-01T00:00:00")], "give a time zone"),
    ],
)
def test_invalid_rules_are_refused_with_the_rule_and_field_named(bad: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RulesInvalid) as caught:
        parse_rules(bad, source="rules.yaml")
    assert caught.value.code == "Rules.Invalid"
    assert caught.value.message.startswith("rules.yaml: ")
    assert any(message in p for p in caught.value.details["errors"]), caught.value.details


def test_yaml_and_json_and_syntax_errors() -> None:
    text = "rules:\n  - name: web\n    selector: {source_regions: [ap-guangzhou]}\n    destinations: [ap-shanghai]\n"
    assert loads_rules(text, fmt="yaml").rules[0].name == "web"
    assert loads_rules(json.dumps([rule()]), fmt="json").rules[0].name == "r1"
    assert loads_rules("", fmt="yaml").rules == []
    for text, fmt in (("rules: [", "yaml"), ("{", "json"), ("- 1\n- 2", "yaml"), ("42", "json")):
        with pytest.raises(RulesInvalid) as caught:
            loads_rules(text, fmt=fmt, source="f")
        assert caught.value.code == "Rules.Invalid"


def test_encrypt_option_becomes_an_encrypt_hook() -> None:
    key = "4e8ad5b1-3c3d-4c1f-9d43-2f3a9e1b7c10"
    r = parse_rules([rule(copy={"encrypt": {"ap-shanghai": key}}, hooks=[{"type": "tag"}])]).rules[0]
    assert [h.type for h in r.all_hooks] == ["tag", "encrypt"]
    assert isinstance(r.all_hooks[1], EncryptHook) and r.all_hooks[1].kms_key_ids == {"ap-shanghai": key}


def test_plan_first_rule_wins_each_destination_and_skips_covered_and_own_region() -> None:
    rules = parse_rules(
        [
            rule(name="a", destinations=["ap-shanghai", "ap-beijing"]),
            rule(name="b", destinations=["ap-beijing", "ap-nanjing", "ap-guangzhou"]),
        ]
    )
    planned = plan_copies(rules, image(), now=NOW, covered={"ap-shanghai"})
    assert [(p.rule, p.destinations, p.name) for p in planned] == [
        ("a", ["ap-beijing"], None),
        ("b", ["ap-nanjing"], None),
    ]


def test_plan_renders_the_name_once_per_request_or_once_per_destination() -> None:
    once = parse_rules(
        [rule(destinations=["ap-shanghai", "ap-beijing"], copy={"name_template": "{name}-{region}-{date}"})]
    )
    assert [(p.destinations, p.name) for p in plan_copies(once, image(), now=NOW)] == [
        (["ap-shanghai", "ap-beijing"], "web-base-2026-ap-guangzhou-20261126")
    ]
    each = parse_rules(
        [rule(destinations=["ap-shanghai", "ap-beijing"], copy={"name_template": "{name}@{destination}"})]
    )
    assert [(p.destinations, p.name) for p in plan_copies(each, image(), now=NOW)] == [
        (["ap-shanghai"], "web-base-2026@ap-shanghai"),
        (["ap-beijing"], "web-base-2026@ap-beijing"),
    ]


def test_plan_respects_since() -> None:
    rules = parse_rules([rule(since="2026-11-26T11:30:00Z")])
    assert plan_copies(rules, image(created_time="2026-11-26T11:00:00Z"), now=NOW) == []
    assert len(plan_copies(rules, image(created_time="2026-11-26T11:45:00Z"), now=NOW)) == 1


def test_example_rules_file_is_valid() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"
    rules = loads_rules(path.read_text(), fmt="yaml")
    assert [r.name for r in rules.active] == ["web-images-east", "golden-family-everywhere"]
