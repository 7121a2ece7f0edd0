"""The region catalogue and the copy policy between regions (docs/facts.md#F-COPY-3).

Groups: ``mainland`` and ``elsewhere`` copy freely inside their group; mainland <-> elsewhere needs the account's
approved cross-border ticket; ``finance`` zones copy only among themselves; ``nocopy`` regions (ap-taipei) exist
for DescribeImages but can neither send nor receive copies. Regions not in the catalogue (ap-mumbai, na-toronto,
eu-moscow, typos) are unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ApiError

DEFAULT_GROUPS: dict[str, list[str]] = {
    "mainland": ["ap-guangzhou", "ap-shanghai", "ap-nanjing", "ap-beijing", "ap-chengdu", "ap-chongqing"],
    "elsewhere": [
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
    ],
    "finance": ["ap-shanghai-fsi", "ap-shenzhen-fsi", "ap-beijing-fsi"],
    "nocopy": ["ap-taipei"],
}

REGION_NAMES: dict[str, str] = {
    "ap-guangzhou": "South China(Guangzhou)",
    "ap-shanghai": "East China(Shanghai)",
    "ap-nanjing": "East China(Nanjing)",
    "ap-beijing": "North China(Beijing)",
    "ap-chengdu": "Southwest China(Chengdu)",
    "ap-chongqing": "Southwest China(Chongqing)",
    "ap-hongkong": "Hong Kong, Macau and Taiwan (China)(Hong Kong, China)",
    "ap-singapore": "Southeast Asia(Singapore)",
    "ap-jakarta": "Southeast Asia(Jakarta)",
    "ap-bangkok": "Southeast Asia(Bangkok)",
    "ap-seoul": "Northeast Asia(Seoul)",
    "ap-tokyo": "Northeast Asia(Tokyo)",
    "na-siliconvalley": "West US(Silicon Valley)",
    "na-ashburn": "East US(Virginia)",
    "eu-frankfurt": "Europe(Frankfurt)",
    "sa-saopaulo": "South America(São Paulo)",
    "ap-shanghai-fsi": "East China(Shanghai Finance)",
    "ap-shenzhen-fsi": "South China(Shenzhen Finance)",
    "ap-beijing-fsi": "North China(Beijing Finance)",
    "ap-taipei": "Hong Kong, Macau and Taiwan (China)(Taipei, China)",
}


@dataclass
class RegionCatalogue:
    """Which regions exist and which group each belongs to."""

    groups: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_GROUPS.items()})

    def group_of(self, region: str) -> str | None:
        for name, members in self.groups.items():
            if region in members:
                return name
        return None

    def all(self) -> list[str]:
        return [r for members in self.groups.values() for r in members]

    def exists(self, region: str) -> bool:
        return self.group_of(region) is not None

    def describe(self) -> list[dict]:
        return [{"Region": r, "RegionName": REGION_NAMES.get(r, r), "RegionState": "AVAILABLE"} for r in self.all()]

    def check_copy(self, source: str, dest: str, cross_border_approved: bool) -> None:
        """Raise the ApiError SyncImages answers for copying ``source`` -> ``dest``, or return when allowed.

        Codes: unknown destination -> InvalidRegion.NotFound; ap-taipei at either end -> InvalidRegion.Unavailable
        ("this region does not support image sync", per the SDK's errorcodes.py); finance <-> non-finance, and
        mainland <-> elsewhere without an approved ticket -> UnsupportedOperation.Region (a documented guess).
        """
        dg = self.group_of(dest)
        if dg is None:
            raise ApiError("InvalidRegion.NotFound", f"The region `{dest}` does not exist.")
        sg = self.group_of(source)
        if sg == "nocopy" or dg == "nocopy":
            raise ApiError("InvalidRegion.Unavailable", f"Image sync between `{source}` and `{dest}` is unavailable.")
        if sg == dg:
            return
        if "finance" in (sg, dg):
            raise ApiError(
                "UnsupportedOperation.Region",
                f"Finance zones copy images only among themselves (`{source}` -> `{dest}`).",
            )
        if {sg, dg} == {"mainland", "elsewhere"} and not cross_border_approved:
            raise ApiError(
                "UnsupportedOperation.Region",
                f"Copying images between mainland China and other regions (`{source}` -> `{dest}`) needs an "
                "approved support ticket for this account.",
            )
