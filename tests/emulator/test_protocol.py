"""The API 3.0 wire protocol: envelopes, TC3 signature checks, routing, parameter errors."""

from __future__ import annotations

import json
import time
import types

import pytest
import requests
from tencentcloud.common import abstract_client
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.cvm.v20170312 import models
from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.tag.v20180813.tag_client import TagClient

from imagesync_emulator import Emulator, sign_request

from .conftest import DEFAULT_UIN, GZ, call, client, error_code, profile


def test_answers_are_json_envelopes_with_unique_request_ids(emulator: Emulator) -> None:
    headers, body = sign_request(
        secret_id=emulator.secret_id,
        secret_key=emulator.secret_key,
        service="cvm",
        action="DescribeImageQuota",
        version="2017-03-12",
        host=emulator.host_port,
        region=GZ,
    )
    ids = set()
    with requests.Session() as s:
        for _ in range(3):
            r = s.post(emulator.endpoint + "/", data=body, headers=headers)
            assert r.status_code == 200
            assert r.headers["Content-Type"] == "application/json"
            resp = r.json()["Response"]
            assert resp["ImageNumQuota"] == 500
            ids.add(resp["RequestId"])
    assert len(ids) == 3
    assert {c["request_id"] for c in emulator.admin.calls()} == ids


def test_sdk_typed_models_round_trip(cvm: CvmClient) -> None:
    resp = cvm.DescribeImageQuota(models.DescribeImageQuotaRequest())
    assert resp.ImageNumQuota == 500 and resp.RequestId


def test_wrong_secret_key_is_signature_failure(emulator: Emulator) -> None:
    c = client(emulator, secret_key="not-the-key")
    assert error_code(c, "DescribeImageQuota") == "AuthFailure.SignatureFailure"
    last = emulator.admin.calls()[-1]
    assert last["outcome"] == "AuthFailure.SignatureFailure" and last["account"] == DEFAULT_UIN


def test_unknown_secret_id(emulator: Emulator) -> None:
    c = client(emulator, secret_id="AKIDnobodyhasthiskey000000000000000")
    assert error_code(c, "DescribeImageQuota") == "AuthFailure.SecretIdNotFound"


@pytest.mark.parametrize("skew", [-400, 400])
def test_timestamp_off_by_more_than_five_minutes_is_expired(
    emulator: Emulator, cvm: CvmClient, monkeypatch: pytest.MonkeyPatch, skew: int
) -> None:
    fake = types.SimpleNamespace(time=lambda: time.time() + skew)
    monkeypatch.setattr(abstract_client, "time", fake)  # only the SDK's clock is off
    assert error_code(cvm, "DescribeImageQuota") == "AuthFailure.SignatureExpire"


def test_timestamp_within_five_minutes_is_fine(cvm: CvmClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(abstract_client, "time", types.SimpleNamespace(time=lambda: time.time() - 200))
    assert call(cvm, "DescribeImageQuota")["ImageNumQuota"] == 500


def test_emulated_clock_does_not_move_signature_window(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.advance(86400 * 3)
    assert call(cvm, "DescribeImageQuota")["ImageNumQuota"] == 500


def test_temporary_keys_need_their_token(emulator: Emulator) -> None:
    tmp = emulator.admin.temporary_credentials()
    ok = client(emulator, secret_id=tmp["secret_id"], secret_key=tmp["secret_key"], token=tmp["token"])
    assert call(ok, "DescribeImageQuota")["ImageNumQuota"] == 500
    assert emulator.admin.calls()[-1]["account"] == DEFAULT_UIN
    no_token = client(emulator, secret_id=tmp["secret_id"], secret_key=tmp["secret_key"])
    assert error_code(no_token, "DescribeImageQuota") == "AuthFailure.TokenFailure"
    bad_token = client(emulator, secret_id=tmp["secret_id"], secret_key=tmp["secret_key"], token="forged")
    assert error_code(bad_token, "DescribeImageQuota") == "AuthFailure.TokenFailure"


def test_temporary_keys_of_another_account(emulator: Emulator) -> None:
    tmp = emulator.admin.temporary_credentials("100000000002")
    c = client(emulator, secret_id=tmp["secret_id"], secret_key=tmp["secret_key"], token=tmp["token"])
    names = {i["ImageName"] for i in call(c, "DescribeImages", {"Limit": 100})["ImageSet"]}
    assert "partner-golden" in names and "web-base-2026" not in names


def test_routing_by_the_signed_service(emulator: Emulator) -> None:
    # The same action name exists in cvm and region: the credential scope decides which one answers.
    cvm_regions = call(client(emulator, CvmClient), "DescribeRegions")
    assert cvm_regions["TotalCount"] == len(cvm_regions["RegionSet"]) > 10
    with pytest.raises(TencentCloudSDKException) as info:
        call(client(emulator, TagClient, GZ), "DescribeImages")
    assert info.value.code == "InvalidAction"


def test_host_naming_another_service_is_refused(emulator: Emulator) -> None:
    """Through the emulator as an HTTP proxy, the Host header is the real cloud's: <service>.tencentcloudapi.com."""
    proxy = {"proxy": emulator.endpoint}

    def via_host(cls: type, host: str, region: str | None = GZ):  # type: ignore[no-untyped-def]
        from tencentcloud.common import credential

        return cls(credential.Credential(emulator.secret_id, emulator.secret_key), region, profile(host, **proxy))

    assert call(via_host(CvmClient, "cvm.tencentcloudapi.com"), "DescribeImageQuota")["ImageNumQuota"] == 500

    class TagScopedCvm(CvmClient):
        _service = "tag"  # signs with a tag credential scope, sends to cvm's host

    assert (
        error_code(via_host(TagScopedCvm, "cvm.tencentcloudapi.com"), "DescribeImageQuota")
        == "AuthFailure.SignatureFailure"
    )

    class UnknownScope(CvmClient):
        _service = "nosuchservice"

    assert error_code(client(emulator, UnknownScope), "DescribeImageQuota") == "AuthFailure.SignatureFailure"


def test_scheme_in_host_header_is_signed_as_received(emulator: Emulator) -> None:
    # tccli's --endpoint http://HOST:PORT puts the scheme into the SDK's endpoint, hence into Host.
    c = client(emulator, endpoint=emulator.endpoint)
    assert call(c, "DescribeImageQuota")["ImageNumQuota"] == 500


def test_unknown_action(cvm: CvmClient) -> None:
    assert error_code(cvm, "DescribeUnicorns") == "InvalidAction"


def test_wrong_version(emulator: Emulator) -> None:
    class OldCvm(CvmClient):
        _apiVersion = "2016-01-01"

    assert error_code(client(emulator, OldCvm), "DescribeImageQuota") == "NoSuchVersion"


def test_missing_region(emulator: Emulator) -> None:
    assert error_code(client(emulator, CvmClient, None), "DescribeImageQuota") == "MissingParameter"


def test_unknown_region(emulator: Emulator) -> None:
    assert error_code(client(emulator, CvmClient, "ap-mumbai"), "DescribeImageQuota") == "UnsupportedRegion"


def test_missing_mistyped_and_unknown_parameters(cvm: CvmClient) -> None:
    assert error_code(cvm, "DescribeImageSharePermission") == "MissingParameter"
    assert error_code(cvm, "DescribeImages", {"Limit": "ten"}) == "InvalidParameter"
    assert error_code(cvm, "DescribeImages", {"ImageIds": "img-5ddkx3gh"}) == "InvalidParameter"
    assert (
        error_code(
            cvm, "SyncImages", {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": ["ap-beijing"], "DryRun": "yes"}
        )
        == "InvalidParameter"
    )
    assert error_code(cvm, "DescribeImages", {"Limit": 101}) == "InvalidParameterValue"
    assert error_code(cvm, "DescribeImages", {"Colour": "blue"}) == "UnknownParameter"


def test_malformed_json_body(emulator: Emulator) -> None:
    # The SDK cannot send broken JSON: a raw request signed exactly as the SDK signs.
    headers, body = sign_request(
        secret_id=emulator.secret_id,
        secret_key=emulator.secret_key,
        service="cvm",
        action="DescribeImages",
        version="2017-03-12",
        host=emulator.host_port,
        region=GZ,
        body=b'{"Limit": 1,',
    )
    r = requests.post(emulator.endpoint, data=body, headers=headers)
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["Response"]["Error"]["Code"] == "InvalidParameter"


def test_missing_or_garbled_authorization(emulator: Emulator) -> None:
    headers, body = sign_request(
        secret_id=emulator.secret_id,
        secret_key=emulator.secret_key,
        service="cvm",
        action="DescribeImageQuota",
        version="2017-03-12",
        host=emulator.host_port,
        region=GZ,
    )
    for auth in (None, "Bearer abc"):
        h = dict(headers)
        h.pop("Authorization")
        if auth:
            h["Authorization"] = auth
        r = requests.post(emulator.endpoint, data=body, headers=h)
        assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    h = dict(headers)
    h.pop("X-TC-Action")
    assert (
        requests.post(emulator.endpoint, data=body, headers=h).json()["Response"]["Error"]["Code"] == "MissingParameter"
    )


def test_tampered_body_fails_signature(emulator: Emulator) -> None:
    headers, _ = sign_request(
        secret_id=emulator.secret_id,
        secret_key=emulator.secret_key,
        service="cvm",
        action="DescribeImages",
        version="2017-03-12",
        host=emulator.host_port,
        region=GZ,
        params={"Limit": 1},
    )
    r = requests.post(emulator.endpoint, data=json.dumps({"Limit": 2}), headers=headers)
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_admin_over_http(emulator: Emulator, cvm: CvmClient) -> None:
    call(cvm, "DescribeImageQuota")
    base = emulator.endpoint + "/_emulator/"
    calls = requests.get(base + "calls", params={"action": "DescribeImageQuota"}).json()["result"]
    assert [c["outcome"] for c in calls] == ["ok"]
    assert requests.get(base + "counters").json()["result"]["DescribeImageQuota"] == {"ok": 1}
    before = requests.get(base + "now").json()["result"]
    after = requests.post(base + "advance", json={"seconds": 3600}).json()["result"]
    assert after >= before + 3600
    assert requests.post(base + "set_rate_limits", json={"enabled": False}).status_code == 200
    assert (
        requests.get(base + "image", params={"image_id": "img-5ddkx3gh"}).json()["result"]["ImageName"]
        == "web-base-2026"
    )
    assert requests.get(base + "nope").status_code == 404
    assert requests.post(base + "advance", json={"bogus": 1}).status_code == 400
