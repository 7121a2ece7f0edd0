"""The share hook's adapter converges when ModifyImageSharePermission already happened (a lost answer retried, or
a concurrent run of the same hook): FailedOperation.AccountAlreadyExists is the effect wanted, not a failure."""

from __future__ import annotations

from typing import Any

import pytest

from imagesync.adapters.cvm import TencentImageAdmin
from imagesync.adapters.tencent import TencentCloud

PARTNER = "100000000002"


@pytest.fixture
def admin(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> TencentImageAdmin:
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", emulator.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", emulator.secret_key)
    cloud = TencentCloud(endpoint=emulator.endpoint, base_delay=0.01, max_delay=0.05)
    return TencentImageAdmin(cloud, uin="100000000001")


def test_a_share_whose_answer_was_lost_is_not_a_failure(admin: TencentImageAdmin, emulator: Any) -> None:
    # the call runs (the image is shared), its answer is lost; the retry meets AccountAlreadyExists
    emulator.admin.script_fault("ModifyImageSharePermission", 1, kind="drop_after")
    assert admin.share_image("ap-guangzhou", "img-5ddkx3gh", [PARTNER]) == [PARTNER]
    assert PARTNER in emulator.admin.image("img-5ddkx3gh")["SharedWith"]
    outcomes = [c["outcome"] for c in emulator.admin.calls(action="ModifyImageSharePermission")]
    assert outcomes == ["ok", "FailedOperation.AccountAlreadyExists"]
