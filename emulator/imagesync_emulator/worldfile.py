"""Build a World from a world file (YAML or JSON), a dict, or the built-in default world.

The format is documented in docs/emulator.md; ``worlds/default.yaml`` is the reference example. Unknown keys are
refused (a typo in a world file should fail loudly, not seed a different world).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from . import progress
from .accounts import Account
from .clock import Clock
from .world import Image, Instance, Queue, Subscription, Topic, World

DEFAULT_WORLD = Path(__file__).parent / "worlds" / "default.yaml"

_TOP_KEYS = {
    "settings",
    "regions",
    "accounts",
    "public_images",
    "images",
    "instances",
    "queues",
    "topics",
    "event_buses",
}


class WorldFileError(ValueError):
    """The world description is invalid."""


def load_world_data(world: None | str | Path | dict) -> dict:
    """The world as a dict: None -> the default world; a path -> its YAML/JSON content; a dict as is."""
    if world is None:
        world = DEFAULT_WORLD
    if isinstance(world, dict):
        return world
    path = Path(world)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise WorldFileError(f"{path}: a world file holds a mapping at the top level")
    return data


def _check_keys(where: str, item: dict, allowed: set[str]) -> None:
    unknown = set(item) - allowed
    if unknown:
        raise WorldFileError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")


def _epoch(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    text = str(value).replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def build_world(data: dict, clock: Clock, seed: int = 0) -> World:
    """A fresh World from ``data`` (see load_world_data). Raises WorldFileError on bad input."""
    _check_keys("world", data, _TOP_KEYS)
    w = World(clock, seed)
    start = clock.now()

    s = data.get("settings") or {}
    _check_keys(
        "settings",
        s,
        {
            "copy_duration",
            "copy_failure_rate",
            "create_duration",
            "max_copy_size_gb",
            "auto_create_queues",
            "auto_create_event_buses",
            "audit_include_image_id",
            "progress_curve",
        },
    )
    if "copy_duration" in s:
        lo, hi = s["copy_duration"]
        w.settings.copy_duration = (float(lo), float(hi))
    for key in ("copy_failure_rate", "create_duration"):
        if key in s:
            setattr(w.settings, key, float(s[key]))
    for key in ("max_copy_size_gb", "auto_create_queues", "auto_create_event_buses", "audit_include_image_id"):
        if key in s:
            setattr(w.settings, key, s[key])

    if "progress_curve" in s:
        try:
            w.settings.progress_curve = progress.check_name(str(s["progress_curve"]))
        except ValueError as exc:
            raise WorldFileError(f"settings.progress_curve: {exc}") from exc

    if data.get("regions"):
        w.regions.groups = {str(k): [str(r) for r in v] for k, v in data["regions"].items()}

    for i, a in enumerate(data.get("accounts") or []):
        _check_keys(
            f"accounts[{i}]",
            a,
            {
                "name",
                "uin",
                "app_id",
                "secret_id",
                "secret_key",
                "cross_border_approved",
                "image_quota",
                "region_image_quotas",
                "roles",
            },
        )
        uin = str(a["uin"])
        w.add_account(
            Account(
                name=str(a.get("name", uin)),
                uin=uin,
                app_id=int(a.get("app_id", 1250000000 + i)),
                secret_id=str(a.get("secret_id", f"AKIDEMULATOR{uin:0>24}")),
                secret_key=str(a.get("secret_key", f"emulator-secret-key-not-real-{uin}")),
                cross_border_approved=bool(a.get("cross_border_approved", False)),
                image_quota=int(a.get("image_quota", 500)),
                region_image_quotas={str(r): int(q) for r, q in (a.get("region_image_quotas") or {}).items()},
            )
        )
    if not w.accounts:
        raise WorldFileError("a world needs at least one account")

    def owner_uin(where: str, ref: Any) -> str:
        ref = str(ref)
        if ref in w.accounts:
            return ref
        acct = w.account_by_name(ref)
        if acct is None:
            raise WorldFileError(f"{where}: unknown account {ref!r}")
        return acct.uin

    for i, a in enumerate(data.get("accounts") or []):
        for j, r in enumerate(a.get("roles") or []):
            where = f"accounts[{i}].roles[{j}]"
            _check_keys(where, r, {"name", "trusted"})
            w.add_role(str(a["uin"]), str(r["name"]), [owner_uin(where, t) for t in r.get("trusted") or []])

    image_keys = {
        "id",
        "region",
        "owner",
        "name",
        "type",
        "state",
        "size",
        "tags",
        "description",
        "architecture",
        "platform",
        "os_name",
        "image_source",
        "license_type",
        "family",
        "deprecated",
        "shared_with",
        "created_time",
        "ready_after",
        "final_state",
        "encrypted",
        "kms_key_id",
        "snapshot_ids",
        "is_support_cloudinit",
    }

    def make_image(where: str, m: dict, region: str, owner: str | None, image_type: str) -> Image:
        _check_keys(where, m, image_keys)
        img = Image(
            image_id=str(m["id"]),
            region=region,
            owner=owner,
            name=str(m.get("name", m["id"])),
            image_type=image_type,
            size=int(m.get("size", 20)),
            created_at=_epoch(m.get("created_time"), start - 86400.0),
            state=str(m.get("state", "NORMAL")),
            description=str(m.get("description", "")),
            architecture=str(m.get("architecture", "x86_64")),
            platform=str(m.get("platform", "TencentOS")),
            os_name=str(m.get("os_name", m.get("name", "") if owner is None else "TencentOS Server 3.1 (TK4)")),
            image_source=str(m.get("image_source", "OFFICIAL" if owner is None else "CREATE_IMAGE")),
            license_type=str(m.get("license_type", "TencentCloud")),
            family=str(m.get("family", "")),
            deprecated=bool(m.get("deprecated", False)),
            encrypted=bool(m.get("encrypted", False)),
            kms_key_id=m.get("kms_key_id"),
            is_support_cloudinit=bool(m.get("is_support_cloudinit", True)),
            snapshot_ids=[str(x) for x in m.get("snapshot_ids", [])],
        )
        if not img.snapshot_ids:
            img.snapshot_ids = [w.new_id("snap-")]
        if img.state in ("CREATING", "SYNCING", "IMPORTING") and m.get("ready_after") is not None:
            img.started_at = start
            img.ready_at = start + float(m["ready_after"])
            img.final_state = str(m.get("final_state", "NORMAL"))
        return img

    for i, m in enumerate(data.get("public_images") or []):
        for region in w.regions.all():
            w.add_image(make_image(f"public_images[{i}]", m, region, None, "PUBLIC_IMAGE"))

    for i, m in enumerate(data.get("images") or []):
        where = f"images[{i}]"
        region = str(m["region"])
        if not w.regions.exists(region):
            raise WorldFileError(f"{where}: unknown region {region!r}")
        image_type = str(m.get("type", "PRIVATE_IMAGE"))
        if image_type not in ("PRIVATE_IMAGE", "PUBLIC_IMAGE"):
            raise WorldFileError(f"{where}: type is PRIVATE_IMAGE or PUBLIC_IMAGE (sharing is `shared_with`)")
        owner = None if image_type == "PUBLIC_IMAGE" else owner_uin(where, m.get("owner", "default"))
        img = w.add_image(make_image(where, m, region, owner, image_type))
        for ref in m.get("shared_with") or []:
            img.shared_with[owner_uin(where, ref)] = start
        if m.get("tags") and owner is not None:
            w.tags[w.resource_name(img)] = {str(k): str(v) for k, v in m["tags"].items()}

    for i, m in enumerate(data.get("instances") or []):
        where = f"instances[{i}]"
        _check_keys(
            where,
            m,
            {"id", "region", "owner", "image_id", "name", "instance_type", "zone", "state", "system_disk_size"},
        )
        region = str(m["region"])
        w.instances[str(m["id"])] = Instance(
            instance_id=str(m["id"]),
            region=region,
            owner=owner_uin(where, m.get("owner", "default")),
            image_id=str(m.get("image_id", "")),
            name=str(m.get("name", m["id"])),
            instance_type=str(m.get("instance_type", "S5.MEDIUM2")),
            zone=str(m.get("zone", f"{region}-3")),
            state=str(m.get("state", "RUNNING")),
            created_at=start - 3600.0,
            system_disk_size=int(m.get("system_disk_size", 50)),
        )

    for i, m in enumerate(data.get("queues") or []):
        _check_keys(f"queues[{i}]", m, {"owner", "region", "name"})
        uin = owner_uin(f"queues[{i}]", m.get("owner", "default"))
        w.queues[(uin, str(m["region"]), str(m["name"]))] = Queue(str(m["name"]), w.new_id("cmq-queue-"))
    for i, m in enumerate(data.get("topics") or []):
        _check_keys(f"topics[{i}]", m, {"owner", "region", "name", "subscriptions"})
        uin = owner_uin(f"topics[{i}]", m.get("owner", "default"))
        topic = Topic(str(m["name"]), w.new_id("cmq-topic-"))
        for sub in m.get("subscriptions") or []:
            topic.subscriptions.append(
                Subscription(
                    name=str(sub["name"]),
                    protocol=str(sub.get("protocol", "queue")),
                    endpoint=str(sub["endpoint"]),
                    filter_tags=[str(t) for t in sub.get("filter_tags", [])],
                    subscription_id=w.new_id("sub-"),
                )
            )
        w.topics[(uin, str(m["region"]), topic.name)] = topic
    for i, m in enumerate(data.get("event_buses") or []):
        _check_keys(f"event_buses[{i}]", m, {"owner", "id", "name"})
        uin = owner_uin(f"event_buses[{i}]", m.get("owner", "default"))
        w.event_buses[(uin, str(m["id"]))] = str(m.get("name", m["id"]))
    return w
