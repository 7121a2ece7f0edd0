"""domain.safeparse: the one bounded loader. Every pathological text is refused with a reason that never echoes
the input; what real payloads hold (up to the bounds) is accepted unchanged; rule files (JSON and YAML) refuse the
same table through loads_rules, with code Rules.Invalid."""

from __future__ import annotations

import json
import math

import pytest

from imagesync.domain import safeparse
from imagesync.domain.rules import RulesInvalid, loads_rules
from imagesync.domain.safeparse import Unparseable, check_value, loads_json, loads_yaml
from tests.pathological import BYTES, TEXTS, VALUES, deep_dict, deep_list, nested_arrays, nested_objects

GOOD_RULES = {
    "rules": [{"name": "r", "selector": {"source_regions": ["ap-guangzhou"]}, "destinations": ["ap-shanghai"]}]
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_pathological_text_is_refused_with_a_reason(name: str) -> None:
    with pytest.raises(Unparseable) as caught:
        loads_json(TEXTS[name])
    reason = caught.value.reason
    assert reason and len(reason) < 300 and isinstance(caught.value, ValueError)
    reason.encode("utf-8")  # a reason is always loggable: no lone surrogate copied from the input


@pytest.mark.parametrize("name", sorted(BYTES))
def test_bytes_that_are_not_utf8_are_refused(name: str) -> None:
    with pytest.raises(Unparseable, match="UTF-8"):
        loads_json(BYTES[name])


@pytest.mark.parametrize("name", sorted(VALUES))
def test_every_pathological_value_is_refused_by_check_value(name: str) -> None:
    with pytest.raises(Unparseable):
        check_value({"ok": [1, "two"], "bad": VALUES[name]})


@pytest.mark.parametrize(
    "text",
    [
        nested_arrays(64),
        nested_objects(64),
        "0",
        "-0.0",
        "1e308",
        str(2**63 - 1),
        str(-(2**63)),
        str(2**64 - 1),
        '"\\u00e9\\ud83d\\ude00 \u00e9\U0001f600"',  # an escaped surrogate PAIR is a character, not a lone surrogate
        '{"a": "]]]}}}", "b": "\\"[[["}',
        " \n\t{}\n",
        '"\\u0001 control but not NUL"',
    ],
    ids=[
        "64 arrays",
        "64 objects",
        "zero",
        "negative zero",
        "largest float",
        "int64 max",
        "int64 min",
        "uint64 max",
        "surrogate pair",
        "brackets in strings",
        "whitespace",
        "control char",
    ],
)
def test_what_real_payloads_hold_is_accepted_unchanged(text: str) -> None:
    assert loads_json(text) == json.loads(text)
    assert loads_json(text.encode("utf-8")) == json.loads(text)


def test_the_depth_bound_is_exact_and_configurable() -> None:
    loads_json(nested_arrays(10), max_depth=10)
    with pytest.raises(Unparseable, match="deeper than 10"):
        loads_json(nested_arrays(11), max_depth=10)
    with pytest.raises(Unparseable, match="deeper than 10"):
        check_value(json.loads(nested_objects(11)), max_depth=10)
    check_value(json.loads(nested_objects(10)), max_depth=10)


def test_check_value_is_iterative_on_any_depth() -> None:
    for value in (deep_list(200_000), deep_dict(200_000)):
        with pytest.raises(Unparseable, match="deeper than 64"):
            check_value(value)


def test_size_is_bounded_in_bytes_not_characters() -> None:
    text = json.dumps("é" * 600, ensure_ascii=False)  # 602 characters, 1,202 bytes
    assert loads_json(text, max_bytes=1202) == "é" * 600
    with pytest.raises(Unparseable, match="larger than 1000 bytes"):
        loads_json(text, max_bytes=1000)
    with pytest.raises(Unparseable, match="larger than 1000 bytes"):
        loads_json(text.encode(), max_bytes=1000)


def test_dumps_json_refuses_what_json_dumps_would_recurse_on() -> None:
    assert safeparse.dumps_json({"a": [1]}) == '{"a": [1]}'
    with pytest.raises(Unparseable):
        safeparse.dumps_json(deep_list(5_000))


def test_printable_cuts_and_escapes() -> None:
    assert safeparse.printable("a\ud800b") == "a\\ud800b"
    assert safeparse.printable("x" * 10, 4) == "xxxx..."


# --------------------------------------------------------------------------------------------------------- YAML

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 5_000, "deeper than 64"),
        ("a:\n" + "".join(" " * i + "- \n" for i in range(1, 200)), "deeper than 64"),  # block style nesting
        (LAUGHS, "expands to more than"),
        ("&a [*a]", "cycle"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ('a: "\\ud800"', "lone surrogate"),
        ('a: "\\0"', "NUL"),
        ("a: .nan", "not finite"),
        ("a: 1.0e+999999", "not finite"),
        ("a: " + "9" * 5_000, "Exceeds the limit"),
        ("a: 99999999999999999999999", "outside 64 bits"),
        ("a: !!binary aGVsbG8=", "bytes"),
        ("a: !!python/object/apply:os.system [ls]", "constructor"),
        ("? [a]\n: 1", "unhashable"),
        ("a: 1\n---\nb: 2", "another document"),
        ("a: [1, 2", "not YAML"),
    ],
    ids=[
        "flow nesting",
        "block nesting",
        "billion laughs",
        "alias cycle",
        "duplicate key",
        "surrogate",
        "NUL",
        "nan",
        "huge float",
        "int over digit limit",
        "int over 64 bits",
        "binary",
        "python tag",
        "list key",
        "two documents",
        "syntax",
    ],
)
def test_yaml_refusals(text: str, reason: str) -> None:
    with pytest.raises(Unparseable, match=reason):
        loads_yaml(text)


def test_yaml_keeps_what_rule_files_use() -> None:
    text = (
        "\ufeffdefaults: &d {destinations: [ap-shanghai]}\nrules:\n  - <<: *d\n    name: r\n"
        "    destinations: [ap-beijing]\n    since: 2026-01-01T00:00:00Z\n"
    )
    value = loads_yaml(text)  # a BOM, an anchor, a merge key overridden by an explicit key, a timestamp
    rule = value["rules"][0]
    assert rule["destinations"] == ["ap-beijing"] and rule["since"].year == 2026
    assert loads_yaml("") is None and loads_yaml("# only a comment\n") is None
    assert loads_yaml("a: " + str(2**63 - 1))["a"] == 2**63 - 1
    assert math.isclose(loads_yaml("a: 1.5e+3")["a"], 1500.0)


# ------------------------------------------------------------------------------------------------- rule files


@pytest.mark.parametrize("name", sorted(TEXTS))
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_rule_files_refuse_the_table_with_rules_invalid(fmt: str, name: str) -> None:
    # YAML reads a few of these as something else (single quotes, NaN as a string): refused all the same, by the
    # loader or by the rules model, never accepted and never a traceback
    with pytest.raises(RulesInvalid) as caught:
        loads_rules(TEXTS[name], fmt=fmt, source="rules.test")
    exc = caught.value
    assert exc.code == "Rules.Invalid" and exc.message.startswith("rules.test: ")
    json.dumps(exc.to_dict()).encode("utf-8")


def test_the_example_rules_still_load() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    ruleset = loads_rules((root / "examples" / "rules.yaml").read_text(encoding="utf-8"), fmt="yaml")
    assert len(ruleset.rules) == 3
    assert loads_rules(json.dumps(GOOD_RULES), fmt="json").rules[0].name == "r"
