"""The emulated cloud's state: accounts, images, instances, tags, queues, events, and the rules of time.

Thread safety: every read or write of a ``World`` happens under ``world.lock`` (one re-entrant lock for the
whole world; the emulator is I/O-bound and small, so one lock keeps every action atomic at no real cost).

Time: image state is never advanced by a background thread. An image in a transitional state (CREATING,
SYNCING) carries ``started_at``/``ready_at``/``final_state``; ``image_state()`` computes its state from the
emulated clock on every read, so advancing the clock is enough to finish copies.
"""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import progress
from .accounts import Account, CredentialStore
from .clock import Clock
from .regions import RegionCatalogue

TRANSITIONAL = ("CREATING", "SYNCING", "IMPORTING")
_ID_ALPHABET = string.ascii_lowercase + string.digits
ROLE_ID_BASE = 4611686018427397919  # the SDK docs' example role id


def iso8601(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Image:
    """One image in one region. Public images have ``owner=None`` and exist once per region (same id)."""

    image_id: str
    region: str
    owner: str | None
    name: str
    image_type: str  # PRIVATE_IMAGE | PUBLIC_IMAGE (SHARED_IMAGE is a viewpoint, never stored)
    size: int
    created_at: float
    state: str = "NORMAL"  # the settled state; see image_state()
    description: str = ""
    architecture: str = "x86_64"
    platform: str = "TencentOS"
    os_name: str = "TencentOS Server 3.1 (TK4)"
    image_source: str = "CREATE_IMAGE"
    license_type: str = "TencentCloud"
    family: str = ""
    deprecated: bool = False
    is_support_cloudinit: bool = True
    encrypted: bool = False
    kms_key_id: str | None = None
    snapshot_ids: list[str] = field(default_factory=list)
    shared_with: dict[str, float] = field(default_factory=dict)  # uin -> emulated time shared
    # transitional state, computed lazily
    started_at: float | None = None
    ready_at: float | None = None
    final_state: str | None = None
    copy_of: tuple[str, str] | None = None  # (region, image_id) of the source of a copy
    is_copy: bool = False
    progress_curve: str = "linear"  # how SyncPercent rises while this copy runs (progress.py)

    @property
    def key(self) -> tuple[str, str]:
        return (self.region, self.image_id)


@dataclass
class Instance:
    instance_id: str
    region: str
    owner: str
    image_id: str
    name: str = ""
    instance_type: str = "S5.MEDIUM2"
    zone: str = ""
    state: str = "RUNNING"
    created_at: float = 0.0
    system_disk_size: int = 50


@dataclass
class Subscription:
    name: str
    protocol: str  # queue | http
    endpoint: str
    filter_tags: list[str] = field(default_factory=list)
    subscription_id: str = ""


@dataclass
class Topic:
    name: str
    topic_id: str
    subscriptions: list[Subscription] = field(default_factory=list)


@dataclass
class Queue:
    name: str
    queue_id: str


@dataclass
class Role:
    """A CAM role of account ``uin`` that the accounts in ``trusted`` (uins) may assume with sts AssumeRole."""

    uin: str
    name: str
    role_id: str
    trusted: list[str] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"qcs::cam::uin/{self.uin}:roleName/{self.name}"


@dataclass
class Snapshot:
    """A cloud block storage snapshot that an image is made of (its SnapshotSet); it outlives the image unless
    DeleteImages is asked to delete it (DeleteBindedSnap)."""

    snapshot_id: str
    region: str
    owner: str
    size: int
    created_at: float
    disk_usage: str = "SYSTEM_DISK"
    image_ids: list[str] = field(default_factory=list)  # images made of it (empty once they are gone)


@dataclass
class Settings:
    """World-wide behaviour knobs (all emulated seconds)."""

    copy_duration: tuple[float, float] = (600.0, 1800.0)
    copy_failure_rate: float = 0.0
    create_duration: float = 300.0
    max_copy_size_gb: int | None = None  # None: no size limit (the 2021+ API docs); 50 = the old product page
    auto_create_queues: bool = False
    auto_create_event_buses: bool = False
    # CloudAudit records of CreateImage leave the new image id out (the real record carries no response); True
    # puts it first in ``resources`` and in ``resourceName``.
    audit_include_image_id: bool = False
    # The progress curve of copies started from now on (progress.py): a curve name, or "mixed" (drawn per copy).
    progress_curve: str = "linear"


class World:
    """The whole emulated cloud. Hold ``lock`` for every access."""

    def __init__(self, clock: Clock, seed: int = 0) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.rng = random.Random(seed)
        self.settings = Settings()
        self.regions = RegionCatalogue()
        self.accounts: dict[str, Account] = {}  # uin -> account
        self.credentials = CredentialStore()
        self.images: dict[tuple[str, str], Image] = {}
        self.copies: dict[tuple[str, str], list[tuple[str, str]]] = {}  # source key -> copy keys
        self.instances: dict[str, Instance] = {}
        #: RunInstances' ClientToken (uin, region, token) -> the instance ids its first call launched
        self.client_tokens: dict[tuple[str, str, str], list[str]] = {}
        self.tags: dict[str, dict[str, str]] = {}  # resource name -> {key: value}
        self.queues: dict[tuple[str, str, str], Queue] = {}  # (uin, region, name)
        self.topics: dict[tuple[str, str, str], Topic] = {}
        self.event_buses: dict[tuple[str, str], str] = {}  # (uin, bus id) -> bus name
        self.outbox: list[dict] = []  # CMQ messages, drained by the admin handle
        self.events: list[dict] = []  # EventBridge events, drained by the admin handle
        self.audit_events: list[dict] = []  # CloudAudit CloudEvents (audit.py), drained by the admin handle
        # Its own stream, so audit event ids never shift the ids and copy durations drawn from ``rng``.
        self.audit_rng = random.Random(f"{seed}:audit")
        # Likewise for the curves "mixed" draws, so choosing a curve never shifts ids or durations.
        self.progress_rng = random.Random(f"{seed}:progress")
        self.roles: dict[tuple[str, str], Role] = {}  # (owner uin, role name) -> role (sts AssumeRole)
        self.snapshots: dict[str, Snapshot] = {}  # snapshot id -> snapshot (the images' SnapshotSet)
        self.history: list[dict] = []  # notable world events (copies started/finished...), for dump()
        self.eb_rules: dict[str, dict] = {}  # rule id -> {"uin", "bus_id", "name", "pattern", "enabled", "targets"}
        self.scf: Any = None  # the emulated SCF runtime (scf/runtime.py), set by the Emulator

    # ---- ids -------------------------------------------------------------------------------------------------
    def new_id(self, prefix: str, length: int = 8) -> str:
        """A fresh id such as ``img-1a2b3c4d``, deterministic under the seed, unused in this world."""
        while True:
            candidate = prefix + "".join(self.rng.choice(_ID_ALPHABET) for _ in range(length))
            if not self._id_used(candidate):
                return candidate

    def _id_used(self, candidate: str) -> bool:
        if candidate.startswith("img-"):
            return any(k[1] == candidate for k in self.images)
        if candidate.startswith("snap-"):
            return candidate in self.snapshots
        return candidate in self.instances

    # ---- accounts --------------------------------------------------------------------------------------------
    def add_account(self, account: Account) -> None:
        self.accounts[account.uin] = account
        self.credentials.add_account(account)

    def account_by_name(self, name: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.name == name), None)

    def add_role(self, uin: str, name: str, trusted: list[str]) -> Role:
        """Create (or replace the trust policy of) role ``name`` of account ``uin``; ``trusted`` are uins."""
        role = self.roles.get((uin, name))
        if role is None:
            # Role ids look like CAM's (4611686018427...) and are numbered in creation order: no rng draw.
            role = Role(uin=uin, name=name, role_id=str(ROLE_ID_BASE + len(self.roles)))
            self.roles[(uin, name)] = role
        role.trusted = list(dict.fromkeys(trusted))
        return role

    # ---- images ----------------------------------------------------------------------------------------------
    def add_image(self, image: Image) -> Image:
        """Add ``image`` and record the snapshots it is made of (a custom image's; public images have none)."""
        self.images[image.key] = image
        if image.owner is not None:
            for i, sid in enumerate(image.snapshot_ids):
                snap = self.snapshots.get(sid)
                if snap is None:
                    snap = self.snapshots[sid] = Snapshot(
                        snapshot_id=sid,
                        region=image.region,
                        owner=image.owner,
                        size=image.size,
                        created_at=image.created_at,
                        disk_usage="SYSTEM_DISK" if i == 0 else "DATA_DISK",
                    )
                if image.image_id not in snap.image_ids:
                    snap.image_ids.append(image.image_id)
        return image

    def remove_image(self, image: Image, delete_snapshots: bool) -> list[str]:
        """Delete ``image`` (and its tags); its snapshots stay unless ``delete_snapshots``, which deletes those no
        other image is made of. Returns the ids of the snapshots deleted."""
        self.tags.pop(self.resource_name(image), None)
        del self.images[image.key]
        gone = []
        for sid in image.snapshot_ids:
            snap = self.snapshots.get(sid)
            if snap is None:
                continue
            snap.image_ids = [i for i in snap.image_ids if i != image.image_id]
            if delete_snapshots and not snap.image_ids:
                del self.snapshots[sid]
                gone.append(sid)
        return gone

    def find_image(self, image_id: str, region: str | None = None) -> Image | None:
        """Any image with this id (in ``region`` if given), regardless of who may see it."""
        if region is not None:
            return self.images.get((region, image_id))
        return next((img for k, img in self.images.items() if k[1] == image_id), None)

    def resource_name(self, img: Image) -> str:
        return f"qcs::cvm:{img.region}:uin/{img.owner}:image/{img.image_id}"

    def image_tags(self, img: Image) -> dict[str, str]:
        if img.owner is None:
            return {}
        return self.tags.get(self.resource_name(img), {})

    def active_copies(self, img: Image, now: float) -> list[Image]:
        out = []
        for key in self.copies.get(img.key, []):
            copy = self.images.get(key)
            if copy is not None and copy.ready_at is not None and now < copy.ready_at:
                out.append(copy)
        return out

    def image_state(self, img: Image, now: float) -> tuple[str, int | None]:
        """(ImageState, SyncPercent) at emulated time ``now``.

        A copy in flight is SYNCING with SyncPercent following its progress curve (progress.py; linear unless set),
        then its final state. The source of running copies shows SYNCING (busy, "not NORMAL") with the least
        advanced copy's percent. An image being created is CREATING, then its final state. A finished copy keeps
        SyncPercent 100; others have None.
        """
        if img.ready_at is not None and img.started_at is not None and now < img.ready_at:
            if img.is_copy:
                return "SYNCING", progress.percent(
                    img.progress_curve, now - img.started_at, img.ready_at - img.started_at
                )
            return img.state, None
        settled = (img.final_state or "NORMAL") if img.ready_at is not None else img.state
        percent = 100 if img.is_copy else None
        active = self.active_copies(img, now) if settled == "NORMAL" else []
        if active:
            return "SYNCING", min(self.image_state(c, now)[1] or 0 for c in active)
        return settled, percent

    def settle(self, img: Image, state: str) -> None:
        """Force ``img`` into ``state`` now (admin set_image_state): ends any transition."""
        img.state = state
        img.started_at = img.ready_at = img.final_state = None

    def viewer_type(self, img: Image, uin: str) -> str | None:
        """How account ``uin`` sees ``img``: PUBLIC_IMAGE, PRIVATE_IMAGE, SHARED_IMAGE, or None (invisible)."""
        if img.image_type == "PUBLIC_IMAGE":
            return "PUBLIC_IMAGE"
        if img.owner == uin:
            return "PRIVATE_IMAGE"
        if uin in img.shared_with:
            return "SHARED_IMAGE"
        return None

    def visible_images(self, uin: str, region: str) -> list[tuple[Image, str]]:
        out = []
        for (r, _), img in self.images.items():
            if r != region:
                continue
            vt = self.viewer_type(img, uin)
            if vt is not None:
                out.append((img, vt))
        return out

    def image_quota(self, account: Account, region: str) -> int:
        """The account's custom image quota in ``region`` (a per-region override, else the account's quota)."""
        return account.region_image_quotas.get(region, account.image_quota)

    def custom_image_count(self, uin: str, region: str) -> int:
        """Images counting against the 500-per-region quota: the account's own custom images, any state."""
        return sum(
            1
            for (r, _), img in self.images.items()
            if r == region and img.owner == uin and img.image_type == "PRIVATE_IMAGE"
        )

    def image_view(self, img: Image, viewer_type: str, now: float) -> dict:
        """The image exactly as DescribeImages shows it."""
        state, percent = self.image_state(img, now)
        return {
            "ImageId": img.image_id,
            "OsName": img.os_name,
            "ImageType": viewer_type,
            "CreatedTime": iso8601(img.created_at),
            "ImageName": img.name,
            "ImageDescription": img.description,
            "ImageSize": img.size,
            "Architecture": img.architecture,
            "ImageState": state,
            "Platform": img.platform,
            "ImageCreator": img.owner or "",
            "ImageSource": img.image_source,
            "SyncPercent": percent,
            "IsSupportCloudinit": img.is_support_cloudinit,
            "SnapshotSet": [
                {"SnapshotId": s, "DiskUsage": "SYSTEM_DISK" if i == 0 else "DATA_DISK", "DiskSize": img.size}
                for i, s in enumerate(img.snapshot_ids)
            ],
            "Tags": [{"Key": k, "Value": v} for k, v in self.image_tags(img).items()],
            "LicenseType": img.license_type,
            "ImageFamily": img.family,
            "ImageDeprecated": img.deprecated,
        }

    def admin_image_view(self, img: Image, now: float) -> dict:
        view = self.image_view(img, img.image_type, now)
        view.update({"Region": img.region, "OwnerUin": img.owner, "SharedWith": sorted(img.shared_with)})
        if img.is_copy:
            view["ProgressCurve"] = img.progress_curve
        return view

    # ---- dump ------------------------------------------------------------------------------------------------
    def dump(self) -> dict:
        now = self.clock.now()
        images: dict[str, list[dict]] = {}
        for img in self.images.values():
            images.setdefault(img.region, []).append(self.admin_image_view(img, now))
        return {
            "now": now,
            "settings": {
                "copy_duration": list(self.settings.copy_duration),
                "copy_failure_rate": self.settings.copy_failure_rate,
                "create_duration": self.settings.create_duration,
                "max_copy_size_gb": self.settings.max_copy_size_gb,
                "audit_include_image_id": self.settings.audit_include_image_id,
                "progress_curve": self.settings.progress_curve,
            },
            "regions": {k: list(v) for k, v in self.regions.groups.items()},
            "accounts": [
                {
                    **a.public(),
                    "cross_border_approved": a.cross_border_approved,
                    "image_quota": a.image_quota,
                    "region_image_quotas": dict(a.region_image_quotas),
                }
                for a in self.accounts.values()
            ],
            "images": images,
            "instances": [vars(i).copy() for i in self.instances.values()],
            "snapshots": [{**vars(s), "image_ids": list(s.image_ids)} for s in self.snapshots.values()],
            "roles": [
                {"uin": r.uin, "name": r.name, "role_id": r.role_id, "arn": r.arn, "trusted": list(r.trusted)}
                for r in self.roles.values()
            ],
            "tags": {k: dict(v) for k, v in self.tags.items()},
            "queues": [
                {"uin": k[0], "region": k[1], "name": q.name, "queue_id": q.queue_id} for k, q in self.queues.items()
            ],
            "topics": [
                {
                    "uin": k[0],
                    "region": k[1],
                    "name": t.name,
                    "topic_id": t.topic_id,
                    "subscriptions": [vars(s).copy() for s in t.subscriptions],
                }
                for k, t in self.topics.items()
            ],
            "event_buses": [{"uin": k[0], "event_bus_id": k[1], "name": n} for k, n in self.event_buses.items()],
            "messages": [dict(m) for m in self.outbox],
            "events": [dict(e) for e in self.events],
            "audit_events": [dict(e) for e in self.audit_events],
            "history": [dict(h) for h in self.history],
        }
