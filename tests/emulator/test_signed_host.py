"""The signed host (issue 11, item 4): the emulator accepts a TC3 signature over the Host header as received or
without its port (the Node.js SDK signs URL.hostname and sends URL.host), and over nothing else."""

from __future__ import annotations

import pytest
import requests

from imagesync_emulator import Emulator, sign_request
from imagesync_emulator.signature import signed_host_forms

GZ = "ap-guangzhou"


def answer(emulator: Emulator, *, signed_host: str, sent_host: str) -> dict:
    headers, body = sign_request(
        secret_id=emulator.secret_id,
        secret_key=emulator.secret_key,
        service="cvm",
        action="DescribeImageQuota",
        version="2017-03-12",
        host=signed_host,
        region=GZ,
    )
    headers["Host"] = sent_host
    return requests.post(emulator.endpoint + "/", data=body, headers=headers, timeout=30).json()["Response"]


def test_a_signature_over_the_host_without_its_port_verifies(emulator: Emulator) -> None:
    host, port = emulator.host_port.rsplit(":", 1)
    assert answer(emulator, signed_host=host, sent_host=f"{host}:{port}")["ImageNumQuota"] == 500
    assert answer(emulator, signed_host=f"{host}:{port}", sent_host=f"{host}:{port}")["ImageNumQuota"] == 500
    # a name whose first label is the service, as the Node.js SDK is pointed at the emulator
    assert answer(emulator, signed_host="cvm.localhost", sent_host=f"cvm.localhost:{port}")["ImageNumQuota"] == 500


@pytest.mark.parametrize("signed", ["127.0.0.2", "127.0.0.1:1", "cvm.localhost", "localhost", "127.0.0.1:"])
def test_any_other_signed_host_fails(emulator: Emulator, signed: str) -> None:
    _, port = emulator.host_port.rsplit(":", 1)
    if signed == "127.0.0.1:1" and port == "1":  # pragma: no cover - port 1 is never free to bind
        pytest.skip("the emulator is on port 1")
    resp = answer(emulator, signed_host=signed, sent_host=f"127.0.0.1:{port}")
    assert resp["Error"]["Code"] == "AuthFailure.SignatureFailure", signed


def test_a_host_with_a_scheme_is_only_signed_as_received(emulator: Emulator) -> None:
    # tccli's --endpoint http://HOST:PORT sends and signs that very string; its port is not optional
    sent = f"http://{emulator.host_port}"
    assert answer(emulator, signed_host=sent, sent_host=sent)["ImageNumQuota"] == 500
    assert (
        answer(emulator, signed_host="http://127.0.0.1", sent_host=sent)["Error"]["Code"]
        == "AuthFailure.SignatureFailure"
    )


def test_signed_host_forms() -> None:
    assert signed_host_forms("127.0.0.1:9000") == ("127.0.0.1:9000", "127.0.0.1")
    assert signed_host_forms("cvm.localhost:9000") == ("cvm.localhost:9000", "cvm.localhost")
    assert signed_host_forms("[::1]:9000") == ("[::1]:9000", "[::1]")
    assert signed_host_forms("cvm.tencentcloudapi.com") == ("cvm.tencentcloudapi.com",)
    assert signed_host_forms("[::1]") == ("[::1]",)
    assert signed_host_forms("http://127.0.0.1:9000") == ("http://127.0.0.1:9000",)
    assert signed_host_forms("a:b:9000") == ("a:b:9000",)
    assert signed_host_forms("host:port") == ("host:port",)
