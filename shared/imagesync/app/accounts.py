"""Starting the copies of a delivery into another account (domain.accounts).

The handover copy: share the source with the account in the source region (with imagesync's own keys), then, with
the keys of the role assumed in the account, one SyncImages of the now SHARED_IMAGE into its own region
(docs/facts.md#F-ACCT-1). The account's other regions: once the handover copy SUCCEEDED, one SyncImages of it (an
image of the account) into all of them, with the same keys. A lost SyncImages answer is handled as for the own
account: the attempt is on record first, and the next start searches the account's region for the copy by name.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from ..domain.errors import CloudError
from ..domain.models import Replica
from ..domain.states import ReplicaState
from ..runtime.failpoints import failpoint
from .start_copies import CopyStarter

log = logging.getLogger(__name__)
S = ReplicaState
NOT_CONFIGURED = "Account.NotConfigured"
PARENT_FAILED = "Account.HandoverFailed"
#: ModifyImageSharePermission's refusal of an image that is not NORMAL (docs/facts.md#F-ACCT-1)
SHARE_NOT_NORMAL = "InvalidImageId.IncorrectState"


class AccountStarter:
    """Starts replicas in other accounts for a CopyStarter (its store, clock, audit and Accounts port)."""

    def __init__(self, starter: CopyStarter) -> None:
        self.s = starter

    def start(self, replicas: list[Replica]) -> list[Replica]:
        done: list[Replica] = []
        children: dict[str, list[Replica]] = defaultdict(list)
        for replica in replicas:
            if self.s.accounts is None or not replica.role:
                saved = self.s._save(
                    replica,
                    S.FAILED,
                    error_code=NOT_CONFIGURED,
                    error_message="copies into other accounts need the cloud (sts AssumeRole) and a role",
                )
                done.extend([saved] if saved else [])
            elif replica.handover:
                done.extend(self._handover(replica))
            else:
                children[replica.parent_replica_id or ""].append(replica)
        for parent_id, group in children.items():
            done.extend(self._onward(parent_id, group))
        return done

    def _handover(self, replica: Replica) -> list[Replica]:
        assert self.s.accounts is not None and replica.account and replica.role
        region = replica.source_region
        images = self.s.accounts.images(replica.account, replica.role)
        try:
            adopted, rest = self.s._adopt([replica], images=images)
            if not rest:
                return adopted
            go = self.s._reserve(rest)
            if not go:
                return []
            replica = go[0]
            try:
                self.s.accounts.share(region, replica.source_image_id, replica.account or "")
            except CloudError as exc:
                if exc.cloud_code != SHARE_NOT_NORMAL:
                    raise
                # only a NORMAL image can be shared: the source's own copies (or another account's) are running.
                # Wait for it, as for a source still CREATING.
                now = self.s.clock.now()
                saved = self.s._save(
                    replica,
                    S.WAITING_SOURCE,
                    next_check_at=now + self.s.retry,
                    error_code=exc.cloud_code,
                    error_message=exc.message,
                )
                return [saved] if saved else []
            new_ids = images.sync_image(
                region, replica.source_image_id, [region], name=replica.image_name, dry_run=False
            )
        except CloudError as exc:
            log.warning("handover of %s to %s failed: %s", replica.source_image_id, replica.account, exc.cloud_code)
            return [r for r in [self.s._refused(replica, exc)] if r]
        failpoint("after_sync_images")
        return self._started([replica], new_ids)

    def _onward(self, parent_id: str, group: list[Replica]) -> list[Replica]:
        assert self.s.accounts is not None
        parent = self.s.replicas.get_replica(parent_id)
        if parent is None or parent.state is not S.SUCCEEDED or not parent.destination_image_id:
            return []  # the sweep starts them once their handover copy SUCCEEDED
        account, role = group[0].account or "", group[0].role or ""
        images = self.s.accounts.images(account, role)
        rest, go = group, []
        try:
            adopted, rest = self.s._adopt(group, images=images)
            go = self.s._reserve(rest)
            if not go:
                return adopted
            new_ids = images.sync_image(
                parent.destination_region,
                parent.destination_image_id,
                [r.destination_region for r in go],
                name=parent.image_name,
                dry_run=False,
            )
        except CloudError as exc:
            log.warning("copies in account %s of %s failed: %s", account, parent.destination_image_id, exc.cloud_code)
            return [r for r in (self.s._refused(x, exc) for x in (go or rest)) if r]
        failpoint("after_sync_images")
        return adopted + self._started(go, new_ids)

    def _started(self, group: list[Replica], new_ids: dict[str, str]) -> list[Replica]:
        now = self.s.clock.now()
        out: list[Replica] = []
        for replica in group:
            new_id = new_ids.get(replica.destination_region)
            if new_id is None:
                saved = self.s._save(
                    replica,
                    replica.state,
                    next_check_at=now + self.s.retry,
                    error_code="Copy.NoImageId",
                    error_message="SyncImages returned no image id for this region",
                )
            else:
                saved = self.s._save(
                    replica,
                    S.COPYING,
                    destination_image_id=new_id,
                    started_at=now,
                    next_check_at=now + self.s.first_check_after(replica),
                    sync_percent=0,
                    error_code=None,
                    error_message=None,
                )
            if saved:
                out.append(saved)
        return out


def waiting_on_parent(starter: CopyStarter, replica: Replica) -> tuple[str, dict[str, object]]:
    """What a copy in an account's other region does while it waits for its handover copy: "start" (it
    SUCCEEDED), "wait", or "fail" (it ended otherwise; the changes say why)."""
    parent = starter.replicas.get_replica(replica.parent_replica_id or "")
    if parent is None:
        return "fail", {"error_code": PARENT_FAILED, "error_message": "its handover copy is not on record"}
    if parent.state is S.SUCCEEDED and parent.destination_image_id:
        return "start", {}
    if parent.state.terminal:
        return "fail", {
            "error_code": PARENT_FAILED,
            "error_message": f"the account's copy in {parent.destination_region} ended {parent.state.value}"
            + (f" ({parent.error_code})" if parent.error_code else ""),
        }
    return "wait", {}
