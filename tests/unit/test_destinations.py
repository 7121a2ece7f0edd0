"""domain.destinations: keyword resolution against a live region list (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from imagesync.domain.destinations import has_keyword, resolve
from imagesync.domain.models import CopyRequest

LIVE = {
    "ap-guangzhou",
    "ap-shanghai",
    "ap-beijing",
    "ap-singapore",
    "ap-tokyo",
    "ap-taipei",
    "ap-shanghai-fsi",
    "ap-shenzhen-fsi",
    "xx-newregion",
}


def test_all_from_the_mainland_without_approval() -> None:
    got = resolve("ap-guangzhou", ["all"], available=LIVE, cross_border_allowed=False)
    assert got.regions == ["ap-beijing", "ap-shanghai"]
    assert got.excluded == {
        "ap-singapore": "Region.CrossBorderNotAllowed",
        "ap-tokyo": "Region.CrossBorderNotAllowed",
        "ap-taipei": "Region.CannotCopy",
        "ap-shanghai-fsi": "Region.FinanceZoneIsolation",
        "ap-shenzhen-fsi": "Region.FinanceZoneIsolation",
        "xx-newregion": "Region.Unknown",
    }


def test_all_with_approval_and_from_a_finance_zone() -> None:
    got = resolve("ap-guangzhou", ["all"], available=LIVE, cross_border_allowed=True)
    assert got.regions == ["ap-beijing", "ap-shanghai", "ap-singapore", "ap-tokyo"]
    finance = resolve("ap-shanghai-fsi", ["all"], available=LIVE, cross_border_allowed=True)
    assert finance.regions == ["ap-shenzhen-fsi"]  # finance zones copy only among themselves


def test_group_keywords_explicit_regions_and_order() -> None:
    assert resolve("ap-guangzhou", ["all-mainland"], available=LIVE, cross_border_allowed=True).regions == [
        "ap-beijing",
        "ap-shanghai",
    ]
    overseas = resolve("ap-singapore", ["all-overseas"], available=LIVE, cross_border_allowed=False)
    assert overseas.regions == ["ap-tokyo"]
    # a live region in no known group may be either kind: left out, and said so, by every keyword
    assert overseas.excluded == {"ap-taipei": "Region.CannotCopy", "xx-newregion": "Region.Unknown"}
    mixed = resolve("ap-guangzhou", ["ap-shanghai", "all-mainland"], available=LIVE, cross_border_allowed=False)
    assert mixed.regions == ["ap-shanghai", "ap-beijing"]  # explicit first, no repeats
    assert resolve("ap-guangzhou", ["all-overseas"], available=LIVE, cross_border_allowed=False).regions == []


def test_the_keywords_are_the_only_non_regions_accepted() -> None:
    assert has_keyword(["ap-shanghai", "all"]) and not has_keyword(["ap-shanghai"])
    CopyRequest(source_region="ap-guangzhou", image_ids=["img-5ddkx3gh"], destination_regions=["all-overseas"])
    with pytest.raises(ValidationError):
        CopyRequest(source_region="ap-guangzhou", image_ids=["img-5ddkx3gh"], destination_regions=["everywhere"])
