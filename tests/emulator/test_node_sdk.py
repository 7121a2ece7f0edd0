"""The official Node.js SDK (tencentcloud-sdk-nodejs-cvm, from npm) against the emulator on an ordinary port.

The SDK signs `host:` without the port but sends `Host` with it, and signs the service named by its endpoint's
first label. So it is pointed at `cvm.localhost:PORT` (docs/emulator.md): the service is "cvm", and the emulator
accepts the signature over the host without its port. `make node-sdk` installs the SDK into .node-sdk/ from
tests/emulator/node/package-lock.json; IMAGESYNC_NODE_SDK names another install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from imagesync_emulator import Emulator

from .conftest import call, client

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "node" / "cvm_calls.js"


@pytest.fixture(scope="module")
def node_sdk() -> dict[str, str]:
    """The environment that lets `node` find the installed SDK."""
    node = shutil.which("node")
    modules = Path(os.environ.get("IMAGESYNC_NODE_SDK") or ROOT / ".node-sdk") / "node_modules"
    missing = None
    if node is None:
        missing = "node is not installed"
    elif not (modules / "tencentcloud-sdk-nodejs-cvm").is_dir():
        missing = f"the Node.js SDK is not installed in {modules.parent}: run `make node-sdk`"
    if missing:
        if os.environ.get("CI"):  # `make test` installs it: in CI a skip would hide a broken install step
            pytest.fail(missing)
        pytest.skip(missing)
    return {**os.environ, "NODE_PATH": str(modules)}


def node_calls(
    env: dict[str, str],
    emulator: Emulator,
    endpoint: str,
    *calls: tuple[str, dict[str, Any]],
    token: str | None = None,
    secret: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    secret_id, secret_key = secret or (emulator.secret_id, emulator.secret_key)
    spec = {
        "endpoint": endpoint,
        "secretId": secret_id,
        "secretKey": secret_key,
        "token": token,
        "region": "ap-guangzhou",
        "calls": [{"action": a, "params": p} for a, p in calls],
    }
    done = subprocess.run(["node", str(SCRIPT), json.dumps(spec)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_describe_and_sync_images_through_the_node_sdk(node_sdk: dict[str, str], emulator: Emulator) -> None:
    port = emulator.host_port.rsplit(":", 1)[1]
    described, synced = node_calls(
        node_sdk,
        emulator,
        f"cvm.localhost:{port}",
        ("DescribeImages", {"ImageIds": ["img-5ddkx3gh"]}),
        ("SyncImages", {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": ["ap-shanghai"], "ImageSetRequired": True}),
    )
    assert "error" not in described, described
    assert [i["ImageId"] for i in described["ok"]["ImageSet"]] == ["img-5ddkx3gh"]
    assert "error" not in synced, synced
    (copy,) = synced["ok"]["ImageSet"]
    assert copy["Region"] == "ap-shanghai"
    # the side effect, seen through the Python SDK: the copy exists in the destination, syncing
    seen = call(client(emulator, CvmClient, "ap-shanghai"), "DescribeImages", {"ImageIds": [copy["ImageId"]]})
    assert [(i["ImageId"], i["ImageState"]) for i in seen["ImageSet"]] == [(copy["ImageId"], "SYNCING")]
    assert [c["outcome"] for c in emulator.admin.calls() if c["action"] == "SyncImages"] == ["ok"]


def test_temporary_keys_and_wrong_keys_through_the_node_sdk(node_sdk: dict[str, str], emulator: Emulator) -> None:
    port = emulator.host_port.rsplit(":", 1)[1]
    temp = emulator.admin.temporary_credentials()
    (ok,) = node_calls(
        node_sdk,
        emulator,
        f"cvm.localhost:{port}",
        ("DescribeImageQuota", {}),
        token=temp["token"],
        secret=(temp["secret_id"], temp["secret_key"]),
    )
    assert ok["ok"]["ImageNumQuota"] == 500
    (bad,) = node_calls(
        node_sdk,
        emulator,
        f"cvm.localhost:{port}",
        ("DescribeImageQuota", {}),
        secret=(emulator.secret_id, "not-the-key"),
    )
    assert bad["error"]["code"] == "AuthFailure.SignatureFailure"


def test_an_ip_endpoint_signs_service_127_and_is_refused(node_sdk: dict[str, str], emulator: Emulator) -> None:
    """`127.0.0.1:PORT` makes the Node SDK sign the service "127": refused, as Tencent refuses a credential scope
    that names no product of the endpoint (the emulator does not guess the service from the action)."""
    (refused,) = node_calls(node_sdk, emulator, emulator.host_port, ("DescribeImages", {"ImageIds": ["img-5ddkx3gh"]}))
    assert refused["error"]["code"] == "AuthFailure.SignatureFailure"
    assert "`127`" in refused["error"]["message"]
