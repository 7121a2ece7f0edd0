"""Replication rules: which custom images are copied where, with which options and hooks (pure).

A rule file (YAML or JSON) holds a RuleSet. Loading validates everything once, with messages that name the rule
and the field, and raises RulesInvalid (code "Rules.Invalid") -- the file is refused as a whole, never applied in
part. Matching and planning are pure functions over image facts (domain.models.SourceImage); the use cases that
list images and request copies live in imagesync.app.rules.

The copy name: SyncImages takes ONE ImageName for all the destination regions of a call, so a name template is
rendered once per request. A template that names `{destination}` therefore makes one request (one SyncImages) per
destination region; every other template makes one request per image with all its destinations.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import safeparse
from .accounts import AccountDestination
from .destinations import has_keyword, resolve
from .errors import ImageSyncError
from .hooks import EncryptHook, HookSpec
from .models import SourceImage
from .types import Destination, Region
from .validation import MAX_NAME

#: Placeholders a name template may use.
#: resolves a rule's destination keywords: (source region, destinations) -> regions
Resolver = Callable[[str, Sequence[str]], list[str]]
PLACEHOLDERS = frozenset({"name", "region", "destination", "image_id", "rule", "date"})
#: The longest region id Tencent has (for the load-time length check of the fixed part of a template).
_LONGEST_REGION = 16  # "na-siliconvalley"
#: SyncImages' KmsKeyId is a KMS key id (a UUID on the real cloud); refuse only what can never be one.
_KMS_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{7,127}$")


class RulesInvalid(ImageSyncError):
    """A rule file (or inline rules) does not validate; `details["errors"]` lists each problem."""

    code = "Rules.Invalid"
    kind = "invalid"


class Selector(BaseModel):
    """Which images a rule takes: all conditions must hold (an empty condition holds for every image)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    source_regions: list[Region] = Field(min_length=1, description="regions whose custom images are considered")
    name_glob: str | None = Field(default=None, description="shell-style pattern on the whole name, e.g. 'web-*'")
    name_regex: str | None = Field(default=None, description="regular expression searched in the name")
    tags: dict[str, str] = Field(default_factory=dict, description="tag key -> value that must be equal")
    tag_keys: list[str] = Field(default_factory=list, description="tag keys that must exist (any value)")
    image_family: str | None = Field(default=None, description="ImageFamily must be equal")

    @field_validator("source_regions")
    @classmethod
    def _unique_regions(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a source region is named twice")
        return value

    @field_validator("name_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _one_name_condition(self) -> Selector:
        if self.name_glob is not None and self.name_regex is not None:
            raise ValueError("give name_glob or name_regex, not both")
        return self

    def matches(self, image: SourceImage) -> bool:
        """Whether `image` (in image.region) is selected. Tags and names compare exactly (case-sensitive)."""
        if image.region not in self.source_regions:
            return False
        if self.name_glob is not None and not fnmatch.fnmatchcase(image.name, self.name_glob):
            return False
        if self.name_regex is not None and re.search(self.name_regex, image.name) is None:
            return False
        if any(image.tags.get(key) != value for key, value in self.tags.items()):
            return False
        if any(key not in image.tags for key in self.tag_keys):
            return False
        return self.image_family is None or (image.family or "") == self.image_family


class CopyOptions(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    name_template: str = Field(
        default="{name}",
        description="copy name; placeholders {name} {region} (source) {destination} {image_id} {rule} {date}",
    )
    #: destination region -> KMS key id: the copy there is re-encrypted after it lands (an EncryptHook)
    encrypt: dict[Region, str] = Field(default_factory=dict)

    @field_validator("name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            fields = [f for _, f, spec, conv in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from exc
        unknown = sorted({f for f in fields} - PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown placeholder(s) {unknown}; known: {sorted(PLACEHOLDERS)}")
        if not value.strip():
            raise ValueError("an empty name")
        # The fixed part must leave room for a name: every placeholder but {name} at its longest.
        longest = {
            "name": "",
            "region": "r" * _LONGEST_REGION,
            "destination": "r" * _LONGEST_REGION,
            "image_id": "img-00000000",
            "rule": "",
            "date": "20260101",
        }
        fixed = len(value.format(**longest))
        if fixed > MAX_NAME:
            raise ValueError(f"renders to {fixed} characters before any name; at most {MAX_NAME}")
        return value

    @field_validator("encrypt")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for region, key in value.items():
            if not _KMS_KEY.match(key):
                raise ValueError(f"{region}: {key!r} is not a KMS key id")
        return value

    @property
    def per_destination(self) -> bool:
        return "{destination}" in self.name_template.replace("{{", "")


class CleanupPolicy(BaseModel):
    """What happens to a rule's copies when their source image is deleted (app.cleanup)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    #: delete: the copies imagesync made of it are deleted (with their snapshots) unless one is in use, syncing or
    #: shared out; keep: left alone
    on_source_deleted: Literal["delete", "keep"] = "keep"
    #: decide and record, delete nothing (the default: turn it off on purpose)
    dry_run: bool = True


class Rule(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    enabled: bool = True
    selector: Selector
    #: regions, or keywords (all, all-mainland, all-overseas) resolved per request (domain.destinations)
    destinations: list[Destination] = Field(min_length=1)
    copy_options: CopyOptions = Field(default_factory=CopyOptions, alias="copy")
    hooks: list[HookSpec] = Field(default_factory=list)
    #: the sweep's reconcile pass also requests this rule's missing copies (not only new-image events)
    reconcile: bool = True
    #: images created before this are left alone (so a new rule does not back-fill years of images)
    since: datetime | None = None
    #: clean up with the source: see CleanupPolicy
    cleanup: CleanupPolicy = Field(default_factory=CleanupPolicy)
    #: deliveries into other accounts (domain.accounts) of each new image (CreateImage events; not the reconcile
    #: pass), made with the rule's first request for the image
    accounts: list[AccountDestination] = Field(default_factory=list)

    @field_validator("destinations")
    @classmethod
    def _unique_destinations(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a destination region is named twice")
        return value

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-01-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if not set(self.destinations) - set(self.selector.source_regions) and len(self.selector.source_regions) == 1:
            raise ValueError("every destination is the source region: a custom image cannot be copied into its own")
        stray = sorted(set(self.copy_options.encrypt) - set(self.destinations))
        if stray and not has_keyword(self.destinations):  # with a keyword, a region it covers may be encrypted
            raise ValueError(f"copy.encrypt names region(s) {stray} that are not destinations")
        keys = [h.key for h in self.all_hooks]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise ValueError(f"hook name(s) {duplicated} used twice; give each hook a distinct `name`")
        return self

    @property
    def all_hooks(self) -> list[Any]:
        """The rule's hooks, plus the EncryptHook its `copy.encrypt` option stands for."""
        hooks: list[Any] = list(self.hooks)
        if self.copy_options.encrypt:
            hooks.append(EncryptHook(kms_key_ids=dict(self.copy_options.encrypt)))
        return hooks

    def destinations_for(self, image: SourceImage, resolver: Resolver | None = None) -> list[str]:
        """Where this rule copies `image`: its destinations but the image's own region, keywords resolved by
        `resolver` (source region, destinations -> regions; default: the static region lists, no cross-border)."""
        destinations = list(self.destinations)
        if has_keyword(destinations):
            if resolver is None:
                destinations = resolve(image.region, destinations, available=None, cross_border_allowed=False).regions
            else:
                destinations = resolver(image.region, destinations)
        return [d for d in destinations if d != image.region]

    def render_name(self, image: SourceImage, *, destination: str | None, now: datetime) -> str:
        """The copy name for `image` (at most 60 characters, else NameTooLong from the request's validation)."""
        return self.copy_options.name_template.format(
            name=image.name,
            region=image.region,
            destination=destination or "",
            image_id=image.image_id,
            rule=self.name,
            date=now.strftime("%Y%m%d"),
        )


class RuleSet(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    version: int = Field(default=1, ge=1, le=1)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        names = [r.name for r in self.rules]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"rule name(s) {duplicated} used twice")
        return self

    @property
    def active(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]

    def source_regions(self, *, reconcile_only: bool = False) -> list[str]:
        regions: dict[str, None] = {}
        for rule in self.active:
            if rule.reconcile or not reconcile_only:
                regions.update(dict.fromkeys(rule.selector.source_regions))
        return list(regions)

    def matching(self, image: SourceImage) -> list[Rule]:
        return [r for r in self.active if r.selector.matches(image)]


class PlannedCopy(BaseModel):
    """One request a rule makes for one image: SyncImages-sized (one image, one name, its destinations)."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    rule: str
    image: SourceImage
    destinations: list[str]
    name: str | None  # None: the source's own name (the template is "{name}")


def plan_copies(
    rules: RuleSet,
    image: SourceImage,
    *,
    now: datetime,
    covered: Iterable[str] = (),
    respect_since: bool = True,
    resolver: Resolver | None = None,
) -> list[PlannedCopy]:
    """The requests the rules make for `image`, skipping destinations in `covered` (copied or in flight).

    Each destination goes to the first rule (in file order) that selects the image and names it, so two rules
    never request the same copy. Pure: no calls, nothing recorded.
    """
    taken = set(covered)
    out: list[PlannedCopy] = []
    created = image.created_at
    for rule in rules.matching(image):
        if respect_since and rule.since is not None and created is not None and created < rule.since:
            continue
        destinations = [d for d in rule.destinations_for(image, resolver) if d not in taken]
        if not destinations:
            continue
        taken.update(destinations)
        groups = [[d] for d in destinations] if rule.copy_options.per_destination else [destinations]
        for group in groups:
            name = rule.render_name(image, destination=group[0] if len(group) == 1 else None, now=now)
            out.append(
                PlannedCopy(rule=rule.name, image=image, destinations=group, name=None if name == image.name else name)
            )
    return out


def parse_rules(data: Any, *, source: str = "rules") -> RuleSet:
    """A RuleSet from already-decoded data: a mapping with `rules`, or a bare list of rules."""
    if isinstance(data, list):
        data = {"rules": data}
    if data is None:
        data = {"rules": []}
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(e, data) for e in exc.errors()]
        raise RulesInvalid(f"{source}: {len(problems)} problem(s): " + "; ".join(problems), errors=problems) from exc


def loads_rules(text: str, *, fmt: str, source: str = "rules") -> RuleSet:
    """Decode `text` as "yaml" or "json", then validate (RulesInvalid on any problem, syntax included).

    Decoding is bounded (domain.safeparse: nesting, size, numbers, NUL, lone surrogates, duplicate keys, YAML
    aliases that expand past 100,000 nodes): a file outside the bounds is refused like any other bad file.
    """
    try:
        decode = safeparse.loads_json if fmt == "json" else safeparse.loads_yaml
        data = decode(text) if text.strip() else None
    except safeparse.Unparseable as exc:
        problem = f"not valid {fmt.upper()}: {exc.reason}"
        raise RulesInvalid(f"{source}: {problem}", errors=[problem]) from exc
    if data is not None and not isinstance(data, (Mapping, list)):
        raise RulesInvalid(
            f"{source}: expected a mapping with `rules` or a list of rules",
            errors=["top level is a " + type(data).__name__],
        )
    return parse_rules(data, source=source)


def _problem(error: Mapping[str, Any], data: Any) -> str:
    """'rules[1] (web-east).copy.name_template: <message>' -- names the rule when it can."""
    loc: Sequence[Any] = error.get("loc") or ()
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int) and i > 0 and loc[i - 1] == "rules":
            name = ""
            with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
                name = str(data["rules"][part].get("name") or "")
            parts[-1] = f"rules[{part}]" + (f" ({name})" if name else "")
        elif isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(str(part))
    where = ".".join(parts).replace(".[", "[") or "(top)"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}"
