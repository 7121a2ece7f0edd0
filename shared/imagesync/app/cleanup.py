"""Clean up with the source (issue 14 item 4): when a source image is deleted, the copies imagesync made of it are
deleted too, where the replication's rule asks for it (`cleanup: {on_source_deleted: delete, dry_run: false}`).

Two ways in: the CloudAudit DeleteImages event (EventBridge -> copy_request), and the sweep's reconcile pass as a
backstop (a source the rules' copies were made of that no longer exists). Candidates are only the destination ids
the state table holds (an image imagesync did not make is never considered). A copy is kept, with the reason, when
it belongs to another account, is still syncing, is not the account's own image, is used by an instance
(DescribeInstances paged: no image-id filter, docs/facts.md#F-IMG-3) or is shared out (DescribeImageSharePermission).
Otherwise it is deleted with DeleteBindedSnap (no snapshot left billing), or, in a dry run (the default), recorded
as what would be deleted. Every decision is one JSON log record and one audit record ("cleanup") of its
replication, shown by GET /replications/{id} and `imagesync status ID`; a decision already recorded for a copy is
not recorded again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..domain.errors import CloudError
from ..domain.models import Replica, Replication
from ..domain.rules import RuleSet
from ..domain.states import ReplicaState
from ..ports import AuditLog, ImageAdmin, ImageService, ReplicaStore

log = logging.getLogger(__name__)
READY = "NORMAL"
AUDIT_EVENT = "cleanup"
#: decisions after which a copy is never decided again
FINAL = ("deleted", "gone")


class SourceCleanup:
    def __init__(
        self, rules: RuleSet, replicas: ReplicaStore, audit: AuditLog, images: ImageService, admin: ImageAdmin
    ) -> None:
        self.rules = {r.name: r for r in rules.active}
        self.replicas = replicas
        self.audit = audit
        self.images = images
        self.admin = admin

    def on_deleted(self, region: str, image_ids: Sequence[str], *, trigger: str) -> list[dict[str, Any]]:
        """Decide (and act) for every copy of these deleted sources; returns the decisions recorded now."""
        copies = self.replicas.copies_of_source(region, image_ids)
        replications: dict[str, Replication | None] = {}
        decisions: list[dict[str, Any]] = []
        for replica in copies:
            if replica.replication_id not in replications:
                replications[replica.replication_id] = self.replicas.get_replication(replica.replication_id)
            replication = replications[replica.replication_id]
            rule = self.rules.get(replication.rule or "") if replication is not None else None
            if rule is None or rule.cleanup.on_source_deleted != "delete":
                continue  # nobody asked: copies of requests without a rule, or of rules that keep them
            if replica.state is ReplicaState.SUCCEEDED and not replica.destination_image_id:
                continue
            if replica.state.terminal and replica.state is not ReplicaState.SUCCEEDED:
                continue  # no copy was made
            decision = self._decide(replica, dry_run=rule.cleanup.dry_run)
            record = {
                "source_region": region,
                "source_image_id": replica.source_image_id,
                "replica_id": replica.id,
                "rule": rule.name,
                "region": replica.destination_region,
                "image_id": replica.destination_image_id,
                "dry_run": rule.cleanup.dry_run,
                "trigger": trigger,
                **decision,
            }
            if self._already(replica, record):
                continue
            log.info("cleanup %s %s", record["decision"], replica.destination_image_id, extra={"cleanup": record})
            self.audit.record_audit(
                replica.replication_id, AUDIT_EVENT, actor="imagesync", origin=trigger, detail=record
            )
            decisions.append(record)
        return decisions

    def _already(self, replica: Replica, record: dict[str, Any]) -> bool:
        """The same decision is the last one recorded for this copy (a redelivered event, the next reconcile)."""
        last = None
        for entry in self.audit.audit_trail(replica.replication_id):
            if entry["event"] == AUDIT_EVENT and entry["detail"].get("replica_id") == replica.id:
                last = entry["detail"]
        if last is None:
            return False
        if last.get("decision") in FINAL and not last.get("dry_run"):
            return True  # deleted (or found gone): nothing is left to decide
        return all(last.get(k) == record.get(k) for k in ("decision", "code", "dry_run"))

    def _decide(self, replica: Replica, *, dry_run: bool) -> dict[str, Any]:
        def kept(code: str, **why: Any) -> dict[str, Any]:
            return {"decision": "kept", "code": code, **why}

        if replica.account:
            return kept("Cleanup.OtherAccount", account=replica.account)
        if not replica.terminal:
            return kept("Cleanup.StillSyncing", state=replica.state.value)
        region, image_id = replica.destination_region, replica.destination_image_id or ""
        image = self.images.describe_images(region, [image_id]).get(image_id)
        if image is None:
            return {"decision": "gone", "code": "Cleanup.AlreadyGone"}
        if image.state != READY:
            return kept("Cleanup.StillSyncing", state=image.state)
        if image.image_type and image.image_type != "PRIVATE_IMAGE":
            return kept("Cleanup.NotOwned", type=image.image_type)
        users = self.admin.instances_using(region, image_id)
        if users:
            return kept("Cleanup.InUse", instances=users[:20])
        shared = self.admin.shared_with(region, image_id)
        if shared:
            return kept("Cleanup.SharedOut", accounts=shared[:20])
        if dry_run:
            return {"decision": "would_delete", "code": "Cleanup.DryRun"}
        try:
            self.admin.delete_images(region, [image_id], delete_snapshots=True)
        except CloudError as exc:
            if exc.cloud_code.startswith("InvalidImageId.NotFound"):
                return {"decision": "gone", "code": "Cleanup.AlreadyGone"}
            if exc.retryable:
                raise
            return kept(exc.cloud_code, message=exc.message[:300])
        return {"decision": "deleted", "code": "Cleanup.Deleted", "snapshots_deleted": True}

    def reconcile(self, limit: int = 500) -> dict[str, Any]:
        """The backstop: sources of the cleaning rules' copies that no longer exist get their copies decided."""
        names = [name for name, rule in self.rules.items() if rule.cleanup.on_source_deleted == "delete"]
        if not names:
            return {"rules": 0}
        by_region: dict[str, list[str]] = defaultdict(list)
        for region, image_id in self.replicas.sources_copied(names)[:limit]:
            by_region[region].append(image_id)
        missing: list[str] = []
        decisions: list[dict[str, Any]] = []
        for region, ids in by_region.items():
            found = self.images.describe_images(region, ids)
            gone = [i for i in ids if i not in found]
            missing += gone
            if gone:
                decisions += self.on_deleted(region, gone, trigger="reconcile")
        counts: dict[str, int] = defaultdict(int)
        for d in decisions:
            counts[d["decision"]] += 1
        return {"rules": len(names), "sources_missing": missing, "decisions": dict(counts)}
