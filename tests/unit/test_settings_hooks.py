"""IMAGESYNC_HOOKS: validated on entry as every setting (each a domain.hooks spec), though the hook models' schema
is built only when there are hooks to validate (an empty value costs a cold start nothing: docs/benchmarks.md)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from imagesync.domain.hooks import ShareHook, TagHook
from imagesync.settings import Settings


def test_hooks_from_the_environment_are_hook_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESYNC_HOOKS", '[{"type": "tag"}, {"type": "share", "account_ids": ["100000000002"]}]')
    assert Settings().hooks == [TagHook(), ShareHook(account_ids=["100000000002"])]


@pytest.mark.parametrize("value", ["", "  ", "[]"])
def test_none_is_an_empty_list(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("IMAGESYNC_HOOKS", value)
    assert Settings().hooks == []


@pytest.mark.parametrize(
    ("value", "loc", "kind"),
    [
        ('[{"type": "nope"}]', ("hooks", 0), "union_tag_invalid"),
        ('[{"type": "share"}]', ("hooks", 0, "share", "account_ids"), "missing"),
        ('{"type": "tag"}', ("hooks",), "list_type"),
        ("not json", ("hooks",), "value_error"),
    ],
)
def test_a_bad_spec_fails_on_entry_with_its_place(
    monkeypatch: pytest.MonkeyPatch, value: str, loc: tuple[object, ...], kind: str
) -> None:
    monkeypatch.setenv("IMAGESYNC_HOOKS", value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(loc, kind)]


def test_specs_given_as_models_are_kept() -> None:
    hook = TagHook(extra={"owner": "platform"})
    assert Settings(hooks=[hook]).hooks == [hook]
