"""Deprecation follows the copy: the reconcile pass looks at the images imagesync copied, and when one has been
deprecated (ImageDeprecated) since, deprecates its SUCCEEDED copies that are not yet (ModifyImageAttribute).

Bounded per run: at most `sources_limit` sources looked at (the most recently copied first; DescribeImages 100 ids
per call) and at most `limit` copies changed; what is left is done by the next run. Every copy changed is logged and
audited on its replication (event "copy_deprecated"); the run's report is part of the sweep's `reconciled` result.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from ..domain.errors import CloudError
from ..ports import AuditLog, ImageAdmin, ImageService, ReplicaStore

log = logging.getLogger(__name__)


class FollowSource:
    def __init__(
        self,
        replicas: ReplicaStore,
        images: ImageService,
        admin: ImageAdmin,
        audit: AuditLog,
        *,
        limit: int = 20,
        sources_limit: int = 500,
    ) -> None:
        self.replicas = replicas
        self.images = images
        self.admin = admin
        self.audit = audit
        self.limit = limit
        self.sources_limit = sources_limit

    def __call__(self) -> dict[str, Any]:
        by_region: dict[str, list[str]] = defaultdict(list)
        sources = self.replicas.copied_sources(limit=self.sources_limit)
        for region, image_id in sources:
            by_region[region].append(image_id)
        deprecated: dict[str, list[str]] = {}
        for region, ids in by_region.items():
            found = self.images.describe_images(region, ids)
            gone = [i for i in ids if i in found and found[i].deprecated]
            if gone:
                deprecated[region] = gone
        changed: list[dict[str, str]] = []
        failed: list[dict[str, str]] = []
        deferred = 0
        for region, ids in deprecated.items():
            copies = self.replicas.copies_of(region, ids)
            by_destination: dict[str, list[Any]] = defaultdict(list)
            for copy in copies:
                by_destination[copy.destination_region].append(copy)
            for destination, group in by_destination.items():
                live = self.images.describe_images(destination, [c.destination_image_id for c in group])
                for copy in group:
                    image = live.get(copy.destination_image_id or "")
                    if image is None or image.deprecated:
                        continue  # gone, or already deprecated
                    if len(changed) >= self.limit:
                        deferred += 1
                        continue
                    assert copy.destination_image_id is not None
                    try:
                        self.admin.modify_image(destination, copy.destination_image_id, deprecated=True)
                    except CloudError as exc:
                        failed.append({"image_id": copy.destination_image_id, "code": exc.cloud_code})
                        log.warning("deprecating copy %s failed: %s", copy.destination_image_id, exc.cloud_code)
                        continue
                    row = {
                        "replica_id": copy.id,
                        "source_image_id": copy.source_image_id,
                        "region": destination,
                        "image_id": copy.destination_image_id,
                    }
                    changed.append(row)
                    log.info("copy %s deprecated after its source %s", copy.destination_image_id, copy.source_image_id)
                    self.audit.record_audit(
                        copy.replication_id, "copy_deprecated", actor="imagesync", origin="reconcile", detail=row
                    )
        return {
            "sources_checked": len(sources),
            "sources_deprecated": sum(len(v) for v in deprecated.values()),
            "copies_deprecated": changed,
            "failed": failed,
            "deferred": deferred,
        }
