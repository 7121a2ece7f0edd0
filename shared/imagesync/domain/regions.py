"""Where an image may be copied: the region groups of the CVM image-copy rules (docs/facts.md#F-COPY-3).

The live list of regions comes from the region service at run time (DescribeRegions, Product="cvm"); this module
holds the copy policy, which no API exposes.
"""

from __future__ import annotations

from . import errors

MAINLAND = frozenset({"ap-guangzhou", "ap-shanghai", "ap-nanjing", "ap-beijing", "ap-chengdu", "ap-chongqing"})
# ap-hongkong is treated as "elsewhere": whether it counts as mainland for the copy rule is unconfirmed.
ELSEWHERE = frozenset(
    {
        "ap-hongkong",
        "ap-singapore",
        "ap-jakarta",
        "ap-bangkok",
        "ap-seoul",
        "ap-tokyo",
        "na-siliconvalley",
        "na-ashburn",
        "eu-frankfurt",
        "sa-saopaulo",
    }
)
FINANCE = frozenset({"ap-shanghai-fsi", "ap-shenzhen-fsi", "ap-beijing-fsi"})
CANNOT_COPY = frozenset({"ap-taipei"})
KNOWN = MAINLAND | ELSEWHERE | FINANCE | CANNOT_COPY


def group(region: str) -> str:
    if region in MAINLAND:
        return "mainland"
    if region in ELSEWHERE:
        return "elsewhere"
    if region in FINANCE:
        return "finance"
    if region in CANNOT_COPY:
        return "none"
    return "unknown"


def check_copy(
    source: str,
    destination: str,
    *,
    available: frozenset[str] | None = None,
    cross_border_allowed: bool = False,
) -> None:
    """Raise the domain error that forbids copying from `source` to `destination`, or return.

    `available` is the live set of regions the account can use (None: trust the static lists).
    """
    for region in (source, destination):
        if region not in KNOWN and (available is None or region not in available):
            raise errors.UnknownRegion(f"unknown region {region!r}", region=region)
        if available is not None and region not in available:
            raise errors.RegionUnavailable(f"region {region!r} is not available for CVM images", region=region)
    if destination == source:
        raise errors.SameRegion(
            f"destination {destination} is the source region; a custom image cannot be copied into its own region",
            region=destination,
        )
    src, dst = group(source), group(destination)
    if "none" in (src, dst):
        bad = source if src == "none" else destination
        raise errors.RegionCannotCopy(f"images cannot be copied to or from {bad}", region=bad)
    if "finance" in (src, dst) and src != dst:
        raise errors.FinanceZoneIsolation(
            f"finance zones copy only among themselves: {source} -> {destination}",
            source=source,
            destination=destination,
        )
    if {src, dst} == {"mainland", "elsewhere"} and not cross_border_allowed:
        raise errors.CrossBorderNotAllowed(
            f"copying between mainland China and other regions needs an approved ticket: {source} -> {destination}"
            " (set IMAGESYNC_CROSS_BORDER_ALLOWED=true once Tencent has approved it for the account)",
            source=source,
            destination=destination,
        )
