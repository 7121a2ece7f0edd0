"""Deliveries into other accounts (app.accounts via CopyStarter and Sweep) and clean up with the source
(app.cleanup) on the in-memory fakes; assumed-role keys cached until shortly before they expire."""

from __future__ import annotations

from typing import Any

from imagesync.adapters.accounts import RENEW_BEFORE, AssumedRoleCredential
from imagesync.app.cleanup import SourceCleanup
from imagesync.app.start_copies import CopyStarter
from imagesync.domain.errors import CloudError
from imagesync.domain.models import Replication
from imagesync.domain.rules import parse_rules
from imagesync.domain.states import ReplicaState
from tests.unit.fakes import FakeAccounts
from tests.unit.test_sweep_and_starter import SRC, World

S = ReplicaState
PARTNER = "100000000002"
ROLE = "imagesync-delivery"


class AccountWorld(World):
    def __init__(self) -> None:
        super().__init__()
        self.accounts = FakeAccounts()

    def starter(self) -> CopyStarter:
        return CopyStarter(
            replicas=self.replicas,
            audit=self.audit,
            images=self.images,
            clock=self.clock,
            first_check_seconds=60,
            retry_seconds=120,
            accounts=self.accounts,
        )


def test_handover_shares_then_the_account_copies_the_shared_image_into_its_own_region() -> None:
    w = AccountWorld()
    w.images.add(SRC, "img-src00001")
    handover = w.replica("img-src00001", SRC, account=PARTNER, role=ROLE)
    [started] = w.starter().start([handover])
    assert w.accounts.shares == [(SRC, "img-src00001", PARTNER)]
    assert started.state is S.COPYING and started.destination_image_id == "img-copy0001"
    partner = w.accounts.accounts[PARTNER]
    assert [e for e in partner.log if e[0] == "sync_image"] == [("sync_image", (SRC, "img-src00001", [SRC]))]
    assert not [e for e in w.images.log if e[0] == "sync_image"]  # nothing copied with the own keys


def test_handover_waits_while_the_source_cannot_be_shared() -> None:
    w = AccountWorld()
    w.accounts.share_fail.append(CloudError("InvalidImageId.IncorrectState", "SYNCING"))
    handover = w.replica("img-src00001", SRC, account=PARTNER, role=ROLE)
    [saved] = w.starter().start([handover])
    assert saved.state is S.WAITING_SOURCE and saved.error_code == "InvalidImageId.IncorrectState"
    assert PARTNER not in w.accounts.accounts or not w.accounts.accounts[PARTNER].log


def test_the_account_s_other_regions_wait_for_the_handover_then_copy_from_it() -> None:
    w = AccountWorld()
    handover = w.copying("img-src00001", SRC, "img-part0001", account=PARTNER, role=ROLE)
    partner = w.accounts.images(PARTNER, ROLE)
    partner.add(SRC, "img-part0001", state="SYNCING")
    onward = w.replica(
        "img-src00001", "ap-beijing", S.WAITING_SOURCE, account=PARTNER, role=ROLE, parent_replica_id=handover.id
    )
    report = w.sweep()()
    assert report.outcomes == {}  # the handover is still copying: its child waits
    assert w.replicas.rows[onward.id].state is S.WAITING_SOURCE
    partner.add(SRC, "img-part0001", state="NORMAL")
    w.clock.advance(seconds=600)
    report = w.sweep()()
    assert report.outcomes == {"SUCCEEDED": 1, "STARTED": 1}
    child = w.replicas.rows[onward.id]
    assert child.state is S.COPYING
    assert ("sync_image", (SRC, "img-part0001", ["ap-beijing"])) in partner.log


def test_a_failed_handover_fails_its_regions() -> None:
    w = AccountWorld()
    handover = w.replica("img-src00001", SRC, S.FAILED, account=PARTNER, role=ROLE, error_code="X")
    onward = w.replica(
        "img-src00001", "ap-beijing", S.WAITING_SOURCE, account=PARTNER, role=ROLE, parent_replica_id=handover.id
    )
    assert w.sweep()().outcomes == {"FAILED": 1}
    assert w.replicas.rows[onward.id].error_code == "Account.HandoverFailed"


class FakeSts:
    """The seam under AssumedRoleCredential: the own account's cloud answering AssumeRole."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.expires = 1000.0

    def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> dict[str, Any]:
        self.calls.append({"product": product, "action": action, **params})
        n = len(self.calls)
        return {
            "Credentials": {"TmpSecretId": f"id{n}", "TmpSecretKey": f"key{n}", "Token": f"tok{n}"},
            "ExpiredTime": self.expires,
        }


def test_assumed_keys_are_cached_until_shortly_before_they_expire() -> None:
    sts, now = FakeSts(), [0.0]
    cred = AssumedRoleCredential(sts, PARTNER, ROLE, region=SRC, now=lambda: now[0])  # type: ignore[arg-type]
    assert cred.get_credential_info() == ("id1", "key1", "tok1")
    now[0] = sts.expires - RENEW_BEFORE - 1
    assert cred.get_credential_info() == ("id1", "key1", "tok1") and len(sts.calls) == 1
    sts.expires = 5000.0
    now[0] = 1000.0 - RENEW_BEFORE
    assert cred.get_credential_info() == ("id2", "key2", "tok2")
    assert sts.calls[0]["RoleArn"] == f"qcs::cam::uin/{PARTNER}:roleName/{ROLE}"
    assert sts.calls[0]["action"] == "AssumeRole" and sts.calls[0]["product"] == "sts"


class FakeAdmin:
    def __init__(self) -> None:
        self.using: dict[str, list[str]] = {}
        self.shared: dict[str, list[str]] = {}
        self.deleted: list[tuple[str, list[str], bool]] = []

    def instances_using(self, region: str, image_id: str) -> list[str]:
        return self.using.get(image_id, [])

    def shared_with(self, region: str, image_id: str) -> list[str]:
        return self.shared.get(image_id, [])

    def delete_images(self, region: str, image_ids: list[str], *, delete_snapshots: bool = False) -> None:
        self.deleted.append((region, list(image_ids), delete_snapshots))


def test_cleanup_decides_each_copy_and_deletes_with_its_snapshots() -> None:
    w = World()
    rules = parse_rules(
        {
            "rules": [
                {
                    "name": "r",
                    "selector": {"source_regions": [SRC]},
                    "destinations": ["ap-beijing"],
                    "cleanup": {"on_source_deleted": "delete", "dry_run": False},
                }
            ]
        }
    )
    done = w.replica("img-src00001", "ap-beijing", S.SUCCEEDED, destination_image_id="img-bj000001")
    used = w.replica("img-src00001", "ap-shanghai", S.SUCCEEDED, destination_image_id="img-sh000001")
    shared = w.replica("img-src00001", "ap-chengdu", S.SUCCEEDED, destination_image_id="img-cd000001")
    busy = w.replica("img-src00001", "ap-nanjing", S.COPYING, destination_image_id="img-nj000001")
    other = w.replica(
        "img-src00001", "ap-hangzhou", S.SUCCEEDED, destination_image_id="img-hz000001", account=PARTNER, role=ROLE
    )
    w.replicas.replications["rep-1"] = Replication(
        id="rep-1", source_region=SRC, image_ids=["img-src00001"], destination_regions=["ap-beijing"], rule="r"
    )
    for r in (done, used, shared):
        w.images.add(r.destination_region, r.destination_image_id or "")
    admin = FakeAdmin()
    admin.using["img-sh000001"] = ["ins-1"]
    admin.shared["img-cd000001"] = [PARTNER]
    cleanup = SourceCleanup(rules, w.replicas, w.audit, w.images, admin)  # type: ignore[arg-type]
    decisions = {
        d["replica_id"]: (d["decision"], d["code"]) for d in cleanup.on_deleted(SRC, ["img-src00001"], trigger="event")
    }
    assert decisions == {
        done.id: ("deleted", "Cleanup.Deleted"),
        used.id: ("kept", "Cleanup.InUse"),
        shared.id: ("kept", "Cleanup.SharedOut"),
        busy.id: ("kept", "Cleanup.StillSyncing"),
        other.id: ("kept", "Cleanup.OtherAccount"),
    }
    assert admin.deleted == [("ap-beijing", ["img-bj000001"], True)]  # DeleteBindedSnap
    assert [a["event"] for a in w.audit.records] == ["cleanup"] * 5
    assert cleanup.on_deleted(SRC, ["img-src00001"], trigger="event") == []  # nothing new to record
