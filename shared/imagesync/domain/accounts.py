"""Destinations in other accounts: {account (uin), role to assume there, regions} beside plain region strings.

A delivery into another account is a chain of copies (docs/facts.md#F-ACCT-1): the source is shared with the
account in the source region (ModifyImageSharePermission), the account -- through the role imagesync assumes
there (sts AssumeRole) -- makes its own copy of the shared image in that region (SyncImages of a SHARED_IMAGE: same
region only), then copies that on to its other regions. Each step is a replica of the replication; the first is
the "handover" (destination = the source region), the others name it as their parent and wait for it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from . import errors, regions
from .types import Region

#: CAM role names: letters, digits and +=,.@_- ; 1-128 characters
ROLE_NAME = r"^[\w+=,.@-]{1,128}$"
_ROLE = re.compile(ROLE_NAME)


class AccountDestination(BaseModel):
    """One other account: its uin, the CAM role there imagesync may assume, and the regions to deliver into."""

    # defer_build (on every imagesync model): pydantic builds a model's validator on its first use, not at import,
    # so a cold start pays only for the models its first answer touches (docs/benchmarks.md, cold import).
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    account: str = Field(pattern=r"^[1-9][0-9]{4,19}$", description="the account's uin")
    role: str = Field(pattern=ROLE_NAME, description="the CAM role in that account imagesync assumes (sts AssumeRole)")
    regions: list[Region] = Field(
        min_length=1, description="the account's destination regions (the source region: its copy there only)"
    )

    def role_arn(self) -> str:
        return role_arn(self.account, self.role)


def role_arn(account: str, role: str) -> str:
    """The role's ARN as sts AssumeRole takes it (docs/facts.md#F-ACCT-2)."""
    return f"qcs::cam::uin/{account}:roleName/{role}"


def check_accounts(
    source_region: str,
    accounts: list[AccountDestination],
    *,
    own_uin: str | None,
    available: frozenset[str] | None,
    cross_border_allowed: bool,
    max_regions: int,
) -> None:
    """Each account once, never the own account, regions distinct and copyable from the source region."""
    seen: set[str] = set()
    for dest in accounts:
        if dest.account in seen:
            raise errors.DuplicateAccount(f"account {dest.account} is named twice", account=dest.account)
        seen.add(dest.account)
        if own_uin and dest.account == own_uin:
            raise errors.OwnAccount(
                f"{dest.account} is this account: name its regions as plain destinations", account=dest.account
            )
        if not _ROLE.match(dest.role):  # the model checks it too; kept for objects built without validation
            raise errors.InvalidRequest(f"{dest.role!r} is not a CAM role name", account=dest.account)
        if len(set(dest.regions)) != len(dest.regions):
            raise errors.DuplicateRegion(
                f"the same region is named twice for account {dest.account}", regions=dest.regions
            )
        if len(dest.regions) > max_regions:
            raise errors.TooManyItems(
                f"{len(dest.regions)} regions for account {dest.account}; at most {max_regions}", limit=max_regions
            )
        for region in dest.regions:
            if region == source_region:
                continue  # the handover copy itself
            regions.check_copy(source_region, region, available=available, cross_border_allowed=cross_border_allowed)
