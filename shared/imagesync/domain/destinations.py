"""Destination keywords: `all`, `all-mainland`, `all-overseas` stand for every region of that kind the account can
use, resolved at request time from the region service's live list (DescribeRegions, Product=cvm:
docs/facts.md#F-COPY-3 for the copy rules).

A keyword expands to the live regions of its group (domain.regions) minus the source region and minus every region
the copy policy refuses from this source (the region that cannot take copies, finance zones unless the source is
one, cross-border regions unless IMAGESYNC_CROSS_BORDER_ALLOWED); each left-out region is kept with the code that
refused it, so nothing is dropped unsaid. A live region in no known group is left out too (Region.Unknown): whether
copies may cross into it is not known. A region named explicitly next to a keyword is kept and checked as always
(an error, not a silent skip). Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from . import errors, regions

ALL = "all"
ALL_MAINLAND = "all-mainland"
ALL_OVERSEAS = "all-overseas"
#: keyword -> the region groups it covers
KEYWORDS: dict[str, frozenset[str]] = {
    ALL: frozenset({"mainland", "elsewhere", "finance", "none"}),
    ALL_MAINLAND: frozenset({"mainland"}),
    ALL_OVERSEAS: frozenset({"elsewhere", "none"}),  # "none": ap-taipei, listed as left out (Region.CannotCopy)
}


def has_keyword(destinations: Iterable[str]) -> bool:
    return any(d in KEYWORDS for d in destinations)


@dataclass(frozen=True)
class Resolution:
    regions: list[str]
    #: region -> the code of the rule that left it out of a keyword's expansion
    excluded: dict[str, str] = field(default_factory=dict)


def resolve(
    source: str,
    destinations: Sequence[str],
    *,
    available: Iterable[str] | None,
    cross_border_allowed: bool,
) -> Resolution:
    """The regions `destinations` stand for from `source`: explicit regions as given (in order), then each
    keyword's regions (sorted), without repeats. `available`: the live region list (None: the static lists)."""
    live = sorted(set(available) if available is not None else regions.KNOWN)
    out: dict[str, None] = {}
    excluded: dict[str, str] = {}
    for destination in destinations:
        if destination not in KEYWORDS:
            out.setdefault(destination, None)
    for destination in destinations:
        if destination not in KEYWORDS:
            continue
        for region in live:
            if region == source:
                continue
            group = regions.group(region)
            if group == "unknown":
                excluded.setdefault(region, errors.UnknownRegion.code)
                continue
            if group not in KEYWORDS[destination]:
                continue
            try:
                regions.check_copy(source, region, available=None, cross_border_allowed=cross_border_allowed)
            except errors.ImageSyncError as exc:
                excluded.setdefault(region, exc.code)
                continue
            out.setdefault(region, None)
    return Resolution(list(out), {k: v for k, v in excluded.items() if k not in out})
