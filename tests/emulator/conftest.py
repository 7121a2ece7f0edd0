"""Shared helpers for the emulator tests: official SDK clients pointed at the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.eb.v20210416.eb_client import EbClient
from tencentcloud.region.v20220627.region_client import RegionClient
from tencentcloud.tag.v20180813.tag_client import TagClient
from tencentcloud.tdmq.v20200217.tdmq_client import TdmqClient

from imagesync_emulator import Emulator

GZ = "ap-guangzhou"
DEFAULT_UIN = "100000000001"
PARTNER_UIN = "100000000002"


def profile(endpoint: str, **http: Any) -> ClientProfile:
    return ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint, **http), language="en-US")


def client(
    emu: Emulator,
    cls: type = CvmClient,
    region: str | None = GZ,
    *,
    secret_id: str | None = None,
    secret_key: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> Any:
    cred = credential.Credential(secret_id or emu.secret_id, secret_key or emu.secret_key, token)
    return cls(cred, region, profile(endpoint or emu.host_port))


def partner_client(emu: Emulator, cls: type = CvmClient, region: str | None = GZ) -> Any:
    acct = next(a for a in emu.admin.accounts() if a["name"] == "partner")
    return client(emu, cls, region, secret_id=acct["secret_id"], secret_key=acct["secret_key"])


def call(c: Any, action: str, params: dict | None = None) -> dict:
    """Call through the official SDK's generic entry and return the Response body."""
    return c.call_json(action, params or {})["Response"]


def error_code(c: Any, action: str, params: dict | None = None) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        call(c, action, params)
    assert info.value.requestId, "every error envelope carries a RequestId"
    return info.value.code


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator per test (default world, rate limits on, seed 0) whose clock is FROZEN at the real time of
    its start: a test moves it with admin.advance(), or runs it with admin.set_time_scale() when the running clock
    is what it tests. (Running at 600x from the start, 0.5 s of a busy machine was 5 emulated minutes: an image
    meant to be CREATING had turned NORMAL, a copy meant to be half done was not.)"""
    with Emulator(world=None, time_scale=0.0, seed=0, rate_limits=True) as emu:
        yield emu


@pytest.fixture
def cvm(emulator: Emulator) -> CvmClient:
    return client(emulator, CvmClient)


@pytest.fixture
def tag(emulator: Emulator) -> TagClient:
    return client(emulator, TagClient, None)


@pytest.fixture
def tdmq(emulator: Emulator) -> TdmqClient:
    return client(emulator, TdmqClient)


@pytest.fixture
def eb(emulator: Emulator) -> EbClient:
    return client(emulator, EbClient)


@pytest.fixture
def region_api(emulator: Emulator) -> RegionClient:
    return client(emulator, RegionClient, None)
