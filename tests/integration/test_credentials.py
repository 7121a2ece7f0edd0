"""Where imagesync finds Tencent Cloud keys (issue 11, item 8): the official SDK's chain, imagesync's environment
variables first, each place proven by a real call to the emulator with the keys found there.

The instance role is asked of a local HTTP server standing in for the CVM metadata service (the SDK's own
CVMRoleCredential does the asking: CredentialChain only points it at another address).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from imagesync.adapters.credentials import CredentialChain, credentials_from_env
from imagesync.adapters.cvm import TencentImages
from imagesync.adapters.tencent import TencentCloud
from imagesync.domain.errors import CloudError, CredentialsInvalid, CredentialsNotFound

KEY_VARS = (
    "TENCENTCLOUD_SECRETID",
    "TENCENTCLOUD_SECRETKEY",
    "TENCENTCLOUD_SESSIONTOKEN",
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "TENCENTCLOUD_SESSION_TOKEN",
    "TCCLI_PROFILE",
)
NO_ROLE = "http://127.0.0.1:9/latest/meta-data/cam/security-credentials/"  # the discard port: refused at once


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and no keys in the environment."""
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def describe_with(chain: CredentialChain, emulator: Any) -> Any:
    cloud = TencentCloud(endpoint=emulator.endpoint, credential_provider=chain)
    return TencentImages(cloud).describe_images("ap-guangzhou", ["img-5ddkx3gh"])


def write_sdk_profile(home: Path, secret_id: str, secret_key: str) -> Path:
    path = home / ".tencentcloud" / "credentials"
    path.parent.mkdir()
    path.write_text(f"[default]\nsecret_id = {secret_id}\nsecret_key = {secret_key}\n")
    return path


def test_the_sdk_profile_file_is_found_and_works(home: Path, emulator: Any) -> None:
    write_sdk_profile(home, emulator.secret_id, emulator.secret_key)
    chain = CredentialChain(role_endpoint=NO_ROLE)
    assert chain().secret_id == emulator.secret_id
    assert "img-5ddkx3gh" in describe_with(chain, emulator)


def test_environment_comes_before_the_profile_file(home: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    write_sdk_profile(home, "AKIDnotTheseKeys", "wrong")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", emulator.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", emulator.secret_key)
    assert "img-5ddkx3gh" in describe_with(CredentialChain(role_endpoint=NO_ROLE), emulator)
    # and the SCF names before the SDK's
    cred = credentials_from_env(
        {
            "TENCENTCLOUD_SECRETID": "AKIDscf",
            "TENCENTCLOUD_SECRETKEY": "k",
            "TENCENTCLOUD_SESSIONTOKEN": "t",
            "TENCENTCLOUD_SECRET_ID": "AKIDsdk",
            "TENCENTCLOUD_SECRET_KEY": "k2",
        }
    )
    assert cred is not None and (cred.secret_id, cred.token) == ("AKIDscf", "t")
    assert credentials_from_env({}) is None


def test_a_profile_file_without_default_is_a_coded_error_naming_it(home: Path) -> None:
    # the SDK's ProfileCredential raises AttributeError on it; imagesync says what is wrong and where
    path = home / ".tencentcloud" / "credentials"
    path.parent.mkdir()
    path.write_text("[work]\nsecret_id = AKIDx\nsecret_key = y\n")
    with pytest.raises(CredentialsInvalid) as info:
        CredentialChain(role_endpoint=NO_ROLE)()
    assert info.value.code == "Credentials.Invalid"
    assert str(path) in info.value.message and "[default]" in info.value.message


def test_tccli_configure_keys_are_found(home: Path, emulator: Any) -> None:
    """What `tccli configure` writes (~/.tccli/default.credential, JSON), written by tccli itself."""
    tccli = Path(os.environ.get("IMAGESYNC_TCCLI") or Path(__file__).resolve().parents[2] / ".venv-tccli/bin/tccli")
    if not tccli.exists():
        pytest.skip(f"tccli not found at {tccli}: run `make tccli` or set IMAGESYNC_TCCLI")
    import subprocess

    done = subprocess.run(
        [str(tccli), "configure", "set", "secretId", emulator.secret_id, "secretKey", emulator.secret_key],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (home / ".tccli" / "default.credential").exists()
    assert not (home / ".tencentcloud").exists()  # tccli does not write the SDK's profile file
    assert "img-5ddkx3gh" in describe_with(CredentialChain(role_endpoint=NO_ROLE), emulator)


def test_tccli_profile_is_chosen_by_tccli_profile(home: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / ".tccli").mkdir()
    (home / ".tccli" / "work.credential").write_text(
        json.dumps({"secretId": emulator.secret_id, "secretKey": emulator.secret_key})
    )
    with pytest.raises(CredentialsNotFound):
        CredentialChain(role_endpoint=NO_ROLE)()
    monkeypatch.setenv("TCCLI_PROFILE", "work")
    assert "img-5ddkx3gh" in describe_with(CredentialChain(role_endpoint=NO_ROLE), emulator)


class MetadataService:
    """Stands in for http://metadata.tencentyun.com/latest/meta-data/: the CAM role and its temporary keys."""

    def __init__(self, role: str | None, keys: dict[str, Any] | None, expires_in: float = 3600) -> None:
        self.requests: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                service.requests.append(self.path)
                base = "/latest/meta-data/cam/security-credentials/"
                if role and self.path == base:
                    self._answer(200, role)
                elif role and keys and self.path == base + role:
                    self._answer(
                        200,
                        json.dumps(
                            {
                                "TmpSecretId": keys["secret_id"],
                                "TmpSecretKey": keys["secret_key"],
                                "Token": keys["token"],
                                "ExpiredTime": int(time.time() + expires_in),
                                "Code": "Success",
                            }
                        ),
                    )
                else:
                    self._answer(404, "Not Found")

            def _answer(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/latest/meta-data/cam/security-credentials/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metadata(request: pytest.FixtureRequest) -> Iterator[Any]:
    made: list[MetadataService] = []

    def make(*args: Any, **kwargs: Any) -> MetadataService:
        made.append(MetadataService(*args, **kwargs))
        return made[-1]

    yield make
    for service in made:
        service.close()


def test_the_instance_role_gives_temporary_keys_that_work(home: Path, emulator: Any, metadata: Any) -> None:
    keys = emulator.admin.temporary_credentials()
    service = metadata("imagesync-runner", keys)
    chain = CredentialChain(role_endpoint=service.url)
    assert chain().get_credential_info() == (keys["secret_id"], keys["secret_key"], keys["token"])
    assert "img-5ddkx3gh" in describe_with(chain, emulator)  # X-TC-Token accepted: the token came along
    # found once, then kept: the SDK's credential renews itself; nothing asks the metadata service per call
    asked = len(service.requests)
    describe_with(chain, emulator)
    chain()
    assert len(service.requests) == asked


def test_profile_keys_come_before_the_instance_role(home: Path, emulator: Any, metadata: Any) -> None:
    write_sdk_profile(home, emulator.secret_id, emulator.secret_key)
    service = metadata("imagesync-runner", emulator.admin.temporary_credentials())
    assert CredentialChain(role_endpoint=service.url)().secret_id == emulator.secret_id
    assert service.requests == []


def test_an_instance_without_a_role_and_no_keys_anywhere(home: Path, metadata: Any) -> None:
    service = metadata(None, None)  # a metadata service, no role bound: 404
    with pytest.raises(CredentialsNotFound) as info:
        CredentialChain(role_endpoint=service.url)()
    looked = info.value.details["looked"]
    assert len(looked) == 5
    assert str(home / ".tencentcloud" / "credentials") in looked and service.url in looked[-1]
    assert str(home / ".tccli" / "default.credential") in looked


def test_a_role_without_keys_is_a_coded_error(home: Path, metadata: Any) -> None:
    service = metadata("broken-role", None)  # names a role, then 404 for its keys
    with pytest.raises(CredentialsInvalid) as info:
        CredentialChain(role_endpoint=service.url)()
    assert "broken-role" in info.value.message


def test_nothing_found_is_a_coded_error_not_a_cloud_refusal(home: Path) -> None:
    """The SDK's own DefaultCredentialProvider ends in TKE's provider and raises EnvironmentError("TKE_REGION not
    exist"); imagesync's chain raises its coded error instead, before the SDK is asked to sign anything."""
    with pytest.raises(CredentialsNotFound) as info:
        TencentImages(
            TencentCloud(endpoint="http://127.0.0.1:9", credential_provider=CredentialChain(role_endpoint=NO_ROLE))
        ).describe_images("ap-guangzhou", ["img-5ddkx3gh"])
    assert not isinstance(info.value, CloudError)  # not a refusal by the cloud: no copy is failed for it
    assert info.value.code == "Credentials.NotFound"
