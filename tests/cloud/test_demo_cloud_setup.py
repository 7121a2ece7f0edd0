"""make demo-cloud's refusals before it deploys anything: no MariaDB, a serverless.yml variable it has no value for."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from imagesync_dev.demo_cloud import DemoError, fresh_database, serverless_env


def test_an_unreachable_mariadb_is_said_plainly() -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listened
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(DemoError, match=rf"MariaDB is not reachable at 127\.0\.0\.1:{port} as root"):
            fresh_database(f"mysql+pymysql://root@127.0.0.1:{port}/imagesync_demo_cloud")


def test_a_serverless_yml_variable_without_a_value_is_named(tmp_path: Path) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text("inputs:\n  region: ${env:REGION}\n  x: ${env:NEW_KNOB}\n")
    with pytest.raises(DemoError, match="NEW_KNOB"):
        serverless_env({"REGION": "ap-guangzhou"}, path)
    assert serverless_env({"REGION": "r", "NEW_KNOB": "", "OTHER": "o"}, path) == {"REGION": "r", "NEW_KNOB": ""}
