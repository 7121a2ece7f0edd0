"""The Tencent adapter (official SDK clients + our retry) against the emulator's faults."""

from __future__ import annotations

from typing import Any

import pytest

from imagesync.adapters.credentials import credentials_from_env
from imagesync.adapters.cvm import TencentImages
from imagesync.adapters.tencent import TencentCloud
from imagesync.domain.errors import CloudError
from imagesync.runtime.deadline import deadline_in


@pytest.fixture
def images(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> TencentImages:
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", emulator.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", emulator.secret_key)
    return TencentImages(TencentCloud(endpoint=emulator.endpoint, base_delay=0.01, max_delay=0.05))


def test_describe_batches_by_100(images: TencentImages, emulator: Any) -> None:
    ids = [emulator.admin.add_image("ap-shanghai", name=f"n{i}", size=10) for i in range(150)]
    found = images.describe_images("ap-shanghai", ids + ["img-zzzzzzzz"])
    assert set(found) == set(ids)
    calls = emulator.admin.calls(action="DescribeImages")
    assert [len(c["params"]["ImageIds"]) for c in calls] == [100, 51]


def test_describe_progress_reads_the_same_calls_state_and_sync_percent_only(
    images: TencentImages, emulator: Any
) -> None:
    ids = [emulator.admin.add_image("ap-shanghai", name=f"n{i}", size=10) for i in range(101)]
    found = images.describe_progress("ap-shanghai", ids + ["img-zzzzzzzz"])
    calls = emulator.admin.calls(action="DescribeImages")
    assert [len(c["params"]["ImageIds"]) for c in calls] == [100, 2]  # the same pages as describe_images
    whole = images.describe_images("ap-shanghai", ids)
    assert found == {i: (img.state, img.sync_percent) for i, img in whole.items()}  # the missing id absent


def test_throttling_and_internal_errors_are_retried_for_reads(images: TencentImages, emulator: Any) -> None:
    emulator.admin.script_fault("DescribeImages", 2, code="RequestLimitExceeded")
    emulator.admin.script_fault("DescribeImages", 1, code="InternalError")
    assert "img-5ddkx3gh" in images.describe_images("ap-guangzhou", ["img-5ddkx3gh"])
    outcomes = [c["outcome"] for c in emulator.admin.calls(action="DescribeImages")]
    assert outcomes[-1] == "ok" and len(outcomes) >= 2


def test_sync_images_is_not_repeated_after_an_ambiguous_failure(images: TencentImages, emulator: Any) -> None:
    emulator.admin.script_fault("SyncImages", 1, code="InternalError")
    with pytest.raises(CloudError) as info:
        images.sync_image("ap-guangzhou", "img-5ddkx3gh", ["ap-shanghai"], name=None, dry_run=False)
    assert info.value.cloud_code == "InternalError" and info.value.retryable
    assert len(emulator.admin.calls(action="SyncImages")) == 1


def test_sync_images_refused_by_throttling_is_retried(images: TencentImages, emulator: Any) -> None:
    emulator.admin.script_fault("SyncImages", 2, code="RequestLimitExceeded")
    new = images.sync_image("ap-guangzhou", "img-5ddkx3gh", ["ap-shanghai", "ap-beijing"], name="x", dry_run=False)
    assert set(new) == {"ap-shanghai", "ap-beijing"}
    assert [c["outcome"] for c in emulator.admin.calls(action="SyncImages")][-1] == "ok"


def test_final_errors_are_not_retried(images: TencentImages, emulator: Any) -> None:
    with pytest.raises(CloudError) as info:
        images.sync_image("ap-guangzhou", "img-5ddkx3gh", ["ap-guangzhou"], name=None, dry_run=False)
    assert not info.value.retryable
    assert len(emulator.admin.calls(action="SyncImages")) == 1


def test_retries_stop_at_the_deadline(images: TencentImages, emulator: Any) -> None:
    emulator.admin.script_fault("DescribeImages", 100, code="RequestLimitExceeded")
    with deadline_in(0.5), pytest.raises(CloudError) as info:
        images.describe_images("ap-guangzhou", ["img-5ddkx3gh"])
    assert info.value.cloud_code == "RequestLimitExceeded"


def test_regions_from_the_region_service(images: TencentImages) -> None:
    regions = images.available_regions()
    assert {"ap-guangzhou", "ap-shanghai", "ap-singapore"} <= regions


def test_temporary_credentials_with_token(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = emulator.admin.temporary_credentials()
    env = {
        "TENCENTCLOUD_SECRETID": temp["secret_id"],
        "TENCENTCLOUD_SECRETKEY": temp["secret_key"],
        "TENCENTCLOUD_SESSIONTOKEN": temp["token"],
    }
    cloud = TencentCloud(endpoint=emulator.endpoint, credential_provider=lambda: credentials_from_env(env))
    assert "img-5ddkx3gh" in TencentImages(cloud).describe_images("ap-guangzhou", ["img-5ddkx3gh"])
