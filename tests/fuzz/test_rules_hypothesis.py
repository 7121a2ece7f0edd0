"""Rule files on bad input: arbitrary and mutated documents, arbitrary text and bytes, through the loader and
through `imagesync rules check`.

The contract (README, "The command line"; imagesync.domain.rules): a rule file either loads as a RuleSet or is
refused whole with RulesInvalid (code Rules.Invalid) listing each problem; `imagesync rules check` exits 0 or 2,
naming the code on stderr, and never ends in a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from imagesync.cli import app
from imagesync.domain.rules import RuleSet, RulesInvalid, loads_rules, parse_rules
from tests.fuzz.strategies import deep_json_texts, json_values, mutated
from tests.pathological import TEXTS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
EXAMPLE_DATA = yaml.safe_load(EXAMPLE_TEXT)
FAST = settings(max_examples=200, deadline=None, database=None, derandomize=True)


def loads_or_refuses(load: Any) -> RuleSet | None:
    """Run `load()`: a RuleSet, or None after checking the refusal's code and its list of problems."""
    try:
        ruleset = load()
    except RulesInvalid as exc:
        assert exc.code == "Rules.Invalid"
        problems = exc.details.get("errors")
        assert problems and all(isinstance(p, str) and p for p in problems), exc.details
        assert exc.to_dict()["code"] == "Rules.Invalid"
        return None
    assert isinstance(ruleset, RuleSet)
    return ruleset


def test_the_example_loads() -> None:  # the seed of the mutations below is itself valid
    assert loads_or_refuses(lambda: parse_rules(EXAMPLE_DATA)) is not None


@FAST
@given(data=json_values)
def test_arbitrary_documents_load_or_are_refused_with_their_code(data: Any) -> None:
    loads_or_refuses(lambda: parse_rules(data))


@FAST
@given(data=mutated(EXAMPLE_DATA, max_mutations=4))
def test_mutated_example_loads_or_is_refused_naming_the_field(data: Any) -> None:
    ruleset = loads_or_refuses(lambda: parse_rules(data))
    if ruleset is not None:  # what loads is what was written: rule names survive as given
        assert [r.name for r in ruleset.rules] == [
            r["name"] for r in (data if isinstance(data, list) else (data or {}).get("rules") or [])
        ]


@st.composite
def edited_text(draw: st.DrawFn, text: str) -> str:
    """`text` with a few characters deleted, inserted or replaced: broken indentation, quotes, brackets."""
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 8))
        insert = draw(
            st.sampled_from(["", ":", "- ", "[", "{", "'", '"', "\n", "  ", "*a", "&a ", "!!binary ", "\t"])
            | st.text(max_size=4)
        )
        text = text[:at] + insert + text[at + cut :]
    return text


@FAST
@given(text=edited_text(EXAMPLE_TEXT) | st.text(max_size=200), fmt=st.sampled_from(["yaml", "json"]))
def test_arbitrary_and_edited_text_loads_or_is_refused(text: str, fmt: str) -> None:
    loads_or_refuses(lambda: loads_rules(text, fmt=fmt))


runner = CliRunner()


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rules")


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    content=st.one_of(
        mutated(EXAMPLE_DATA).map(lambda d: yaml.safe_dump(d).encode()),
        mutated(EXAMPLE_DATA).map(lambda d: json.dumps(d).encode()),
        edited_text(EXAMPLE_TEXT).map(str.encode),
        st.binary(max_size=64),
    ),
    suffix=st.sampled_from([".yaml", ".json"]),
)
def test_rules_check_exits_0_or_2_never_a_traceback(rules_dir: Path, content: bytes, suffix: str) -> None:
    file = rules_dir / f"rules{suffix}"
    file.write_bytes(content)
    result = runner.invoke(app, ["rules", "check", str(file), "--json"])
    assert result.exit_code in (0, 2), (result.exit_code, result.exception, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 0:
        assert json.loads(result.stdout)["valid"] is True
    else:
        assert "Rules.Invalid" in result.stderr, result.stderr


def test_a_rules_file_that_is_not_utf8_is_refused_by_the_functions_too(tmp_path: Path) -> None:
    """The functions load IMAGESYNC_RULES_FILE through wiring.load_rules: bad bytes are Rules.Invalid there as well
    (a bare UnicodeDecodeError would make copy_request retry the event as if the cloud had failed)."""
    from imagesync.settings import Settings
    from imagesync.wiring import load_rules

    file = tmp_path / "rules.yaml"
    file.write_bytes(b"rules:\n  - name: \x80\n")
    with pytest.raises(RulesInvalid) as refused:
        load_rules(Settings(rules_file=str(file)))
    assert refused.value.code == "Rules.Invalid" and "not UTF-8" in refused.value.message


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(text=deep_json_texts(), fmt=st.sampled_from(["yaml", "json"]))
def test_deeply_nested_rule_text_is_refused(text: str, fmt: str) -> None:
    with pytest.raises(RulesInvalid) as refused:  # never a RecursionError, whatever the depth
        loads_rules(text, fmt=fmt)
    assert refused.value.code == "Rules.Invalid"


LAUGHS = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    + "rules: *i\n"
)


@pytest.mark.parametrize(
    ("content", "suffix"),
    [
        (TEXTS["deep arrays"], ".json"),
        (TEXTS["deep mixed"], ".yaml"),
        (LAUGHS, ".yaml"),
        (TEXTS["lone surrogate escaped"], ".json"),
        (TEXTS["integer over the digit limit"], ".yaml"),
        ("rules: []\nrules: []\n", ".yaml"),
    ],
    ids=["deep JSON", "deep YAML", "billion laughs", "lone surrogate", "huge integer", "duplicate key"],
)
def test_rules_check_refuses_pathological_files_with_exit_2(rules_dir: Path, content: str, suffix: str) -> None:
    file = rules_dir / f"pathological{suffix}"
    file.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(file), "--json"])
    assert result.exit_code == 2, (result.exit_code, repr(result.exception), result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Rules.Invalid" in result.stderr, result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "Rules.Invalid"
